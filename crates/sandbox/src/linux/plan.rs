//! From a [`Profile`] and the command to run, everything the child will do, decided and
//! converted (paths to C strings, sizes to numbers) in the parent — the child only issues
//! system calls on it.
//!
//! The new root is a read-only tmpfs holding only: the system directories (read-only), the
//! server's own installation (read-only), the configured `read` (read-only) and `write`
//! (read-write) paths, the working directory, a private `/tmp`, a minimal `/dev` and a
//! `/proc` of the server's own PID namespace. Every path is bound at the same place it has
//! on the host, so the command line, the configured paths and error messages stay true.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::sys::resource::Resource;

use super::landlock::{fs as lfs, net as lnet, scope};
pub(crate) use super::root::{MountOp, mounts};
use super::seccomp::Filters;
use crate::profile::{Network, Profile};

/// The port of the proxy on the sandbox's own loopback.
pub const PROXY_PORT: u16 = 3128;

/// System directories bound read-only (or recreated as the symbolic links they are on
/// merged-`/usr` systems).
pub(super) const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// What of `/etc` a program needs: the loader's cache, users and groups, name service and
/// time zone, certificates, MIME types. Not `/etc` whole: it holds `shadow`, SSH host keys
/// and `sudoers`, which a gateway running as root would otherwise hand over (inside the
/// sandbox its processes still own root's files).
pub(super) const ETC_ENTRIES: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/ca-certificates.conf",
    "/etc/pki",
    "/etc/crypto-policies",
    "/etc/alternatives",
    "/etc/mime.types",
    "/etc/os-release",
    "/etc/lsb-release",
    "/etc/debian_version",
    "/etc/protocols",
    "/etc/services",
    "/etc/locale.alias",
    "/etc/locale.conf",
];

/// Device files a program may expect; bound from the host's `/dev`.
pub(super) const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom"];

/// Paths a profile may never bind: they would hand the server the host itself.
const NEVER_BOUND: &[&str] = &["/", "/proc", "/sys", "/dev", "/run", "/boot"];

/// The Landlock part: rights handled, and the rules that grant them back.
#[derive(Debug)]
pub(crate) struct LandlockPlan {
    pub handled_fs: u64,
    pub handled_net: u64,
    pub scoped: u64,
    /// (path, rights, whether a missing path is an error).
    pub paths: Vec<(CString, u64, bool)>,
    pub ports: Vec<(u16, u64)>,
}

/// Everything the child does, in order (the new root's construction is in [`super::root`]).
#[derive(Debug)]
pub(crate) struct ChildPlan {
    pub gateway_pid: libc::pid_t,
    /// New user, mount, PID, IPC, UTS (and network) namespaces and a new root; false when
    /// this kernel refuses namespaces and the profile does not require them.
    pub namespaces: bool,
    pub isolate_net: bool,
    pub proxy: bool,
    pub uid_map: CString,
    pub gid_map: CString,
    pub mounts: Vec<MountOp>,
    pub cwd: Option<CString>,
    pub hostname: CString,
    pub rlimits: Vec<(Resource, u64)>,
    pub landlock: Option<LandlockPlan>,
    pub seccomp: Option<Filters>,
}

/// A path bound into the sandbox, for the plan and for `check`/`trust` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub path: PathBuf,
    pub writable: bool,
    /// Why it is there: "system", "installation", "read", "write", "working directory".
    pub reason: &'static str,
}

/// The command the sandbox will run.
#[derive(Debug, Clone)]
pub struct SandboxTarget<'a> {
    /// The program as it will be executed: an absolute path.
    pub program: &'a Path,
    pub args: &'a [String],
    pub cwd: Option<&'a Path>,
    /// The default for `write` when the profile names none.
    pub roots: &'a [PathBuf],
}

/// What a profile cannot be turned into.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("sandbox {list} path \"{path}\" {problem}")]
    Path {
        list: &'static str,
        path: String,
        problem: String,
    },
    #[error("the program \"{0}\" must be an absolute path once resolved")]
    RelativeProgram(String),
    #[error("a path contains a NUL byte")]
    Nul,
}

pub(super) fn cstr(path: &Path) -> Result<CString, PlanError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| PlanError::Nul)
}

pub(super) fn cstring(text: &str) -> Result<CString, PlanError> {
    CString::new(text).map_err(|_| PlanError::Nul)
}

/// The binds of a profile for a target, parents before children.
pub fn binds(profile: &Profile, target: &SandboxTarget<'_>) -> Result<Vec<Bind>, PlanError> {
    if !target.program.is_absolute() {
        return Err(PlanError::RelativeProgram(
            target.program.display().to_string(),
        ));
    }
    let mut out: Vec<Bind> = Vec::new();
    let add = |out: &mut Vec<Bind>, path: PathBuf, writable: bool, reason: &'static str| {
        if let Some(existing) = out.iter_mut().find(|b| b.path == path) {
            existing.writable |= writable;
        } else {
            out.push(Bind {
                path,
                writable,
                reason,
            });
        }
    };
    for entry in SYSTEM_DIRS.iter().chain(ETC_ENTRIES) {
        let p = Path::new(entry);
        // Symbolic links are recreated as links (see `mounts`), not bound.
        if p.symlink_metadata()
            .is_ok_and(|m| !m.file_type().is_symlink())
        {
            add(&mut out, p.to_path_buf(), false, "system");
        }
    }
    for p in installation(target) {
        if !covered(&p, SYSTEM_DIRS) {
            add(&mut out, p, false, "installation");
        }
    }
    for p in &profile.read {
        add(&mut out, checked(p, "read")?, false, "read");
    }
    let writes: &[PathBuf] = if profile.write.is_empty() {
        target.roots
    } else {
        &profile.write
    };
    for p in writes {
        add(&mut out, checked(p, "write")?, true, "write");
    }
    if let Some(cwd) = target.cwd {
        let cwd = checked(cwd, "working directory")?;
        if !out.iter().any(|b| cwd.starts_with(&b.path)) {
            add(&mut out, cwd, false, "working directory");
        }
    }
    // Parents first, so that a child bind lands on top of its parent's.
    out.sort_by_key(|b| b.path.components().count());
    Ok(out)
}

/// A configured path: absolute, existing, resolved, and not one that hands over the host.
fn checked(path: &Path, list: &'static str) -> Result<PathBuf, PlanError> {
    let err = |problem: &str| PlanError::Path {
        list,
        path: path.display().to_string(),
        problem: problem.to_owned(),
    };
    if !path.is_absolute() {
        return Err(err("must be absolute"));
    }
    let real = std::fs::canonicalize(path).map_err(|e| err(&format!("cannot be resolved: {e}")))?;
    for never in NEVER_BOUND {
        if real == Path::new(never) || (*never != "/" && real.starts_with(never)) {
            return Err(err(&format!(
                "resolves to {}, which would hand the server the host's {never}",
                real.display()
            )));
        }
    }
    Ok(real)
}

fn covered(path: &Path, dirs: &[&str]) -> bool {
    dirs.iter().any(|d| path.starts_with(d))
}

/// The server's own installation: the prefix of its executable (the directory above `bin/`,
/// or the file itself), both as named and as resolved, and for each absolute path on its
/// command line, the project it belongs to (a `node_modules` tree, a Python environment) or,
/// for a file outside one, the file itself. Directories on the command line are not bound.
fn installation(target: &SandboxTarget<'_>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut exe_paths = vec![target.program.to_path_buf()];
    if let Ok(real) = std::fs::canonicalize(target.program) {
        exe_paths.push(real);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    for exe in exe_paths {
        let prefix = prefix_of_executable(&exe);
        // `~/.local/bin/tool` would make all of `~/.local` (keyrings, app data) the
        // installation: under the home directory only the executable itself is bound.
        let too_wide = home
            .as_deref()
            .is_some_and(|h| prefix == h || prefix.parent() == Some(h));
        out.push(if too_wide { exe } else { prefix });
    }
    for arg in target.args {
        let p = Path::new(arg);
        if !p.is_absolute() {
            continue;
        }
        let Ok(real) = std::fs::canonicalize(p) else {
            continue;
        };
        // A file (a script, a config) is what the server runs or reads to start; a
        // directory on the command line is usually what it is asked to work on, and that
        // is for `read`, `write` or `roots` to grant, never this guess.
        match package_root(&real) {
            Some(project) => out.push(project),
            None if real.is_file() => out.push(real),
            None => {}
        }
    }
    out.retain(|p| checked(p, "installation").is_ok());
    out.sort();
    out.dedup();
    out
}

/// `/opt/node/bin/node` → `/opt/node`; `/x/target/debug/portcullis` → itself.
fn prefix_of_executable(exe: &Path) -> PathBuf {
    match exe.parent() {
        Some(dir) if dir.file_name().is_some_and(|n| n == "bin") => dir
            .parent()
            .filter(|p| p.parent().is_some())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| exe.to_path_buf()),
        _ => exe.to_path_buf(),
    }
}

/// For a path inside a `node_modules` tree: the directory holding the outermost
/// `node_modules` (the project, with every dependency). For a path inside a Python
/// environment (`lib/pythonX/site-packages`): the environment.
fn package_root(path: &Path) -> Option<PathBuf> {
    let mut acc = PathBuf::new();
    for c in path.components() {
        if let Component::Normal(name) = c {
            if name == "site-packages" {
                // <env>/lib/pythonX.Y/site-packages → <env>
                return acc.parent()?.parent().map(Path::to_path_buf);
            }
            if name == "node_modules" {
                return Some(acc);
            }
        }
        acc.push(c);
    }
    None
}

/// The Landlock rules for the binds (which exist at the same paths inside), the private
/// directories, and the network.
pub(crate) fn landlock(
    abi: u32,
    binds: &[Bind],
    namespaces: bool,
    network: &Network,
) -> Result<LandlockPlan, PlanError> {
    let all = lfs::all(abi);
    let mut paths = Vec::new();
    for b in binds {
        let rights = if b.writable { lfs::WRITE } else { lfs::READ };
        // A file (an executable bound on its own) takes only file rights.
        let rights = if b.path.is_dir() {
            rights
        } else {
            rights & (lfs::EXECUTE | lfs::READ_FILE | lfs::WRITE_FILE | lfs::TRUNCATE)
        };
        paths.push((cstr(&b.path)?, rights & all, true));
    }
    if namespaces {
        paths.push((cstring("/tmp")?, lfs::WRITE & all, true));
        paths.push((cstring("/dev/shm")?, lfs::WRITE & all, false));
        paths.push((cstring("/dev")?, lfs::READ_DIR, true));
        for dev in DEVICES {
            paths.push((cstring(&format!("/dev/{dev}"))?, lfs::DEVICE & all, false));
        }
        paths.push((
            cstring("/proc")?,
            (lfs::READ_FILE | lfs::READ_DIR) & all,
            true,
        ));
    }
    let (handled_net, ports) = match network {
        Network::Host => (0, Vec::new()),
        _ if abi < 4 => (0, Vec::new()),
        Network::None => (lnet::BIND_TCP | lnet::CONNECT_TCP, Vec::new()),
        Network::Allow(_) => (
            lnet::BIND_TCP | lnet::CONNECT_TCP,
            vec![(PROXY_PORT, lnet::CONNECT_TCP)],
        ),
    };
    let scoped = if abi >= 6 {
        scope::ABSTRACT_UNIX_SOCKET | scope::SIGNAL
    } else {
        0
    };
    Ok(LandlockPlan {
        handled_fs: all,
        handled_net,
        scoped,
        paths,
        ports,
    })
}

/// The resource limits, as rlimits.
pub(crate) fn rlimits(limits: &crate::ResourceLimits) -> Vec<(Resource, u64)> {
    let mut out = vec![
        (Resource::RLIMIT_NOFILE, limits.files),
        (Resource::RLIMIT_DATA, limits.memory),
        (Resource::RLIMIT_NPROC, limits.processes),
        (Resource::RLIMIT_CORE, 0),
    ];
    if let Some(cpu) = limits.cpu_seconds {
        out.push((Resource::RLIMIT_CPU, cpu));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target<'a>(
        program: &'a Path,
        args: &'a [String],
        roots: &'a [PathBuf],
    ) -> SandboxTarget<'a> {
        SandboxTarget {
            program,
            args,
            cwd: None,
            roots,
        }
    }

    #[test]
    fn the_default_profile_binds_system_directories_read_only_and_nothing_of_home() {
        let binds = binds(
            &Profile::default(),
            &target(Path::new("/usr/bin/env"), &[], &[]),
        )
        .expect("binds");
        assert!(
            binds
                .iter()
                .any(|b| b.path == Path::new("/usr") && !b.writable)
        );
        assert!(binds.iter().any(|b| b.path == Path::new("/etc/passwd")));
        assert!(
            binds
                .iter()
                .all(|b| b.path != Path::new("/etc") && b.path != Path::new("/etc/shadow")),
            "all of /etc handed over"
        );
        assert!(binds.iter().all(|b| !b.writable));
        assert!(
            binds
                .iter()
                .all(|b| !b.path.starts_with("/home") && !b.path.starts_with("/root"))
        );
    }

    #[test]
    fn write_defaults_to_the_roots_and_parents_come_first() {
        let dir = tempfile::tempdir().expect("tmp");
        let inner = dir.path().join("out");
        std::fs::create_dir(&inner).expect("mkdir");
        let profile = Profile {
            read: vec![dir.path().to_path_buf()],
            ..Profile::default()
        };
        let roots = [inner.clone()];
        let binds =
            binds(&profile, &target(Path::new("/usr/bin/env"), &[], &roots)).expect("binds");
        let real_dir = std::fs::canonicalize(dir.path()).expect("real");
        let real_inner = std::fs::canonicalize(&inner).expect("real");
        let pos = |p: &Path| binds.iter().position(|b| b.path == p).expect("bound");
        assert!(pos(&real_dir) < pos(&real_inner));
        assert!(binds[pos(&real_inner)].writable);
        assert!(!binds[pos(&real_dir)].writable);
    }

    #[test]
    fn paths_that_would_hand_over_the_host_are_refused() {
        for bad in ["/", "/proc", "/proc/self", "/sys", "/dev", "relative/path"] {
            let profile = Profile {
                read: vec![PathBuf::from(bad)],
                ..Profile::default()
            };
            let r = binds(&profile, &target(Path::new("/usr/bin/env"), &[], &[]));
            assert!(r.is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn a_directory_on_the_command_line_is_not_bound_but_a_script_is() {
        let dir = tempfile::tempdir().expect("tmp");
        let script = dir.path().join("server.py");
        std::fs::write(&script, "print()").expect("write");
        let args = vec![
            script.display().to_string(),
            dir.path().display().to_string(),
        ];
        let binds = binds(
            &Profile::default(),
            &target(Path::new("/usr/bin/python3"), &args, &[]),
        )
        .expect("binds");
        let real_dir = std::fs::canonicalize(dir.path()).expect("real");
        assert!(binds.iter().any(|b| b.path == real_dir.join("server.py")));
        assert!(binds.iter().all(|b| b.path != real_dir), "{binds:?}");
    }

    #[test]
    fn a_script_in_node_modules_brings_its_whole_project() {
        assert_eq!(
            package_root(Path::new("/srv/app/node_modules/@scope/pkg/dist/index.js")),
            Some(PathBuf::from("/srv/app"))
        );
        assert_eq!(
            package_root(Path::new("/srv/venv/lib/python3.11/site-packages/mcp/x.py")),
            Some(PathBuf::from("/srv/venv"))
        );
        assert_eq!(package_root(Path::new("/srv/tool.py")), None);
        assert_eq!(
            prefix_of_executable(Path::new("/opt/node/bin/node")),
            PathBuf::from("/opt/node")
        );
        assert_eq!(
            prefix_of_executable(Path::new("/x/target/debug/portcullis")),
            PathBuf::from("/x/target/debug/portcullis")
        );
    }

    #[test]
    fn landlock_rights_are_masked_to_the_abi() {
        let b = [Bind {
            path: PathBuf::from("/usr"),
            writable: true,
            reason: "write",
        }];
        let plan = landlock(1, &b, true, &Network::None).expect("plan");
        assert_eq!(plan.handled_fs & lfs::TRUNCATE, 0);
        assert_eq!(plan.handled_net, 0, "ABI 1 has no TCP rules");
        assert!(plan.paths.iter().all(|(_, r, _)| r & !plan.handled_fs == 0));
        let plan = landlock(6, &b, true, &Network::None).expect("plan");
        assert_ne!(plan.handled_net, 0);
        assert!(plan.ports.is_empty(), "no network: no port allowed");
        assert_ne!(plan.scoped, 0);
    }
}
