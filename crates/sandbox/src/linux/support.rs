//! What this kernel lets the sandbox do, probed once, and which layers a profile gets.

use std::ffi::CString;
use std::sync::OnceLock;

use super::cgroup;
use super::landlock;
use super::seccomp;
use crate::profile::{Network, Profile};

/// The kernel's answer to each layer, probed once per process.
#[derive(Debug, Clone)]
pub struct Support {
    /// User, mount, PID, IPC, UTS and network namespaces (with a tmpfs mount inside), or
    /// why not.
    pub namespaces: Result<(), String>,
    /// The Landlock ABI version, if Landlock is enabled.
    pub landlock_abi: Option<u32>,
    /// seccomp filters that answer with an errno.
    pub seccomp: bool,
    /// Where pids cgroups can be made (a root gateway on a cgroup v1 host).
    pub pids_cgroup: Option<std::path::PathBuf>,
    /// The gateway runs as the real root user (whose processes `RLIMIT_NPROC` ignores).
    pub root: bool,
}

/// The probe's result, computed on first use.
pub fn support() -> &'static Support {
    static SUPPORT: OnceLock<Support> = OnceLock::new();
    SUPPORT.get_or_init(|| Support {
        namespaces: probe_namespaces(),
        landlock_abi: landlock::abi_version(),
        seccomp: seccomp::available(),
        pids_cgroup: cgroup::pids_root(),
        root: nix::unistd::geteuid().is_root(),
    })
}

/// Forks a child that creates every namespace the sandbox uses and mounts a tmpfs in
/// them, and reports whether it could.
fn probe_namespaces() -> Result<(), String> {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let uid_map = CString::new(format!("{uid} {uid} 1")).map_err(|e| e.to_string())?;
    let gid_map = CString::new(format!("{gid} {gid} 1")).map_err(|e| e.to_string())?;
    // SAFETY: the child makes only system calls on data prepared before the fork, then
    // _exits; the parent waits for it.
    #[allow(unsafe_code)]
    unsafe {
        let pid = libc::fork();
        if pid < 0 {
            return Err(format!("fork failed: {}", std::io::Error::last_os_error()));
        }
        if pid == 0 {
            let write =
                |path: &std::ffi::CStr, data: &[u8]| super::child::write_file(path, data).is_ok();
            if libc::unshare(libc::CLONE_NEWUSER) < 0 {
                libc::_exit(10);
            }
            if !write(c"/proc/self/setgroups", b"deny")
                || !write(c"/proc/self/uid_map", uid_map.as_bytes())
                || !write(c"/proc/self/gid_map", gid_map.as_bytes())
            {
                libc::_exit(11);
            }
            let flags = libc::CLONE_NEWNS
                | libc::CLONE_NEWPID
                | libc::CLONE_NEWIPC
                | libc::CLONE_NEWUTS
                | libc::CLONE_NEWNET;
            if libc::unshare(flags) < 0 {
                libc::_exit(12);
            }
            let null = std::ptr::null::<libc::c_char>();
            if libc::mount(
                null,
                c"/".as_ptr(),
                null,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) < 0
                || libc::mount(
                    c"tmpfs".as_ptr(),
                    c"/tmp".as_ptr(),
                    c"tmpfs".as_ptr(),
                    0,
                    std::ptr::null(),
                ) < 0
            {
                libc::_exit(13);
            }
            libc::_exit(0);
        }
        let mut st = 0;
        while libc::waitpid(pid, &mut st, 0) < 0 {
            if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                return Err("waiting for the probe failed".into());
            }
        }
        match libc::WIFEXITED(st).then(|| libc::WEXITSTATUS(st)) {
            Some(0) => Ok(()),
            Some(10) => Err("the kernel refuses to create a user namespace (kernel.unprivileged_userns_clone, user.max_user_namespaces, or an AppArmor/SELinux policy)".into()),
            Some(11) => Err("the kernel refuses to map ids in a new user namespace".into()),
            Some(12) => Err("the kernel refuses mount/PID/IPC/UTS/network namespaces inside a user namespace".into()),
            Some(13) => Err("the kernel refuses mounts inside a user namespace".into()),
            _ => Err("the namespace probe failed".into()),
        }
    }
}

/// How well one layer holds for one profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerState {
    Enforced,
    /// Enforced without some of its parts; the detail says which.
    Partial,
    /// Not enforced.
    Missing,
    /// Switched off by the profile itself (e.g. `network = "host"`).
    Off,
}

/// One line of `portcullis check`'s sandbox report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub name: &'static str,
    pub state: LayerState,
    pub detail: String,
}

/// Which layers `profile` gets on this kernel.
pub fn layers(profile: &Profile, support: &Support) -> Vec<Layer> {
    let mut out = Vec::new();
    let mut push = |name, state, detail: String| {
        out.push(Layer {
            name,
            state,
            detail,
        })
    };
    let ns = support.namespaces.is_ok();
    let ns_reason = support.namespaces.clone().err().unwrap_or_default();
    push(
        "namespaces",
        if ns {
            LayerState::Enforced
        } else {
            LayerState::Missing
        },
        if ns {
            "user, mount, PID, IPC and UTS namespaces of its own".into()
        } else {
            ns_reason.clone()
        },
    );
    push(
        "filesystem",
        if ns {
            LayerState::Enforced
        } else {
            LayerState::Missing
        },
        if ns {
            "a read-only root with only the system directories, its installation and the configured paths; private /tmp, minimal /dev, its own /proc".into()
        } else {
            "no private root without a mount namespace (Landlock still limits what it opens)".into()
        },
    );
    let (state, detail) = match (&profile.network, ns) {
        (Network::Host, _) => (LayerState::Off, "the host's network, unfiltered".to_owned()),
        (Network::None, true) => (
            LayerState::Enforced,
            "no network: a loopback of its own".to_owned(),
        ),
        (Network::Allow(_), true) => (
            LayerState::Enforced,
            format!(
                "only {} through the gateway's proxy",
                match &profile.network {
                    Network::Allow(list) => list
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    _ => String::new(),
                }
            ),
        ),
        (_, false) => (LayerState::Missing, "no network namespace".to_owned()),
    };
    push("network", state, detail);
    let (state, detail) = match support.landlock_abi {
        None => (
            LayerState::Missing,
            "Landlock is not enabled in this kernel".to_owned(),
        ),
        Some(abi) => {
            let mut missing = Vec::new();
            if abi < 3 {
                missing.push("truncate");
            }
            if abi < 4 && profile.network != Network::Host {
                missing.push("TCP rules");
            }
            if abi < 6 {
                missing.push("IPC scoping");
            }
            if missing.is_empty() {
                (
                    LayerState::Enforced,
                    format!("ABI {abi}: files, TCP ports, signals and abstract sockets"),
                )
            } else {
                (
                    LayerState::Partial,
                    format!("ABI {abi}: without {}", missing.join(", ")),
                )
            }
        }
    };
    push("landlock", state, detail);
    push(
        "seccomp",
        if support.seccomp {
            LayerState::Enforced
        } else {
            LayerState::Missing
        },
        if support.seccomp {
            format!(
                "{} kinds of system call refused",
                super::seccomp::REFUSED.len()
            )
        } else {
            "seccomp filters are not available".into()
        },
    );
    push(
        "no_new_privs",
        LayerState::Enforced,
        "set-uid binaries gain nothing".into(),
    );
    let l = &profile.limits;
    let (state, how) = match (&support.pids_cgroup, support.root) {
        (Some(_), _) => (LayerState::Enforced, "a pids cgroup"),
        (None, false) => (LayerState::Enforced, "RLIMIT_NPROC in its user namespace"),
        (None, true) => (
            LayerState::Missing,
            "not enforced: the gateway runs as root and no pids cgroup is writable",
        ),
    };
    push(
        "processes",
        state,
        format!("at most {} processes and threads ({how})", l.processes),
    );
    push(
        "limits",
        LayerState::Enforced,
        format!(
            "memory {} MiB (RLIMIT_DATA), {} open files{}",
            l.memory >> 20,
            l.files,
            l.cpu_seconds
                .map(|s| format!(", {s} CPU seconds"))
                .unwrap_or_default()
        ),
    );
    push(
        "lifetime",
        LayerState::Enforced,
        "killed with its process group when its session ends; parent-death signal if the gateway dies".into(),
    );
    out
}
