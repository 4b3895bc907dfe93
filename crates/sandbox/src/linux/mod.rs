//! The Linux sandbox: namespaces, a minimal root, Landlock, seccomp, rlimits.
//!
//! [`Sandbox::new`] turns a profile into a plan once (when the gateway loads its config);
//! [`Sandbox::arm`] installs the plan on one `Command` before it is spawned; [`Armed::finish`]
//! reads what the child reported and returns what the running server holds (the proxy's
//! listening socket, the pids cgroup).

mod cgroup;
mod child;
pub(crate) mod landlock;
pub mod plan;
mod root;
pub mod seccomp;
pub mod support;

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::sync::Arc;

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

use crate::profile::{Network, Profile};
use plan::{Bind, ChildPlan, MountOp, PlanError, SandboxTarget};
pub use support::{Layer, LayerState, Support, layers, support};

/// Why a sandbox cannot be set up or a sandboxed server did not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(
        "the sandbox cannot be fully enforced on this kernel ({0}); set sandbox.required = false to run with what is available, or sandbox = \"off\""
    )]
    Unenforceable(String),
    #[error("the seccomp filter could not be compiled: {0}")]
    Seccomp(String),
    #[error("could not prepare the launch: {0}")]
    Io(#[from] io::Error),
    #[error("the sandbox failed while {step}{what}: {error}")]
    Setup {
        step: &'static str,
        what: String,
        error: io::Error,
    },
}

/// A profile turned into a plan for one command.
#[derive(Debug)]
pub struct Sandbox {
    profile: Profile,
    binds: Vec<Bind>,
    layers: Vec<Layer>,
    plan: Arc<ChildPlan>,
}

impl Sandbox {
    /// Plans the sandbox. With `required`, a layer this kernel cannot enforce is an error;
    /// without, the server runs with the layers there are (and [`Sandbox::layers`] says so).
    pub fn new(
        profile: &Profile,
        target: &SandboxTarget<'_>,
        required: bool,
    ) -> Result<Sandbox, SandboxError> {
        let support = support();
        let layers = layers(profile, support);
        let missing: Vec<String> = layers
            .iter()
            .filter(|l| l.state == LayerState::Missing)
            .map(|l| format!("{}: {}", l.name, l.detail))
            .collect();
        if required && !missing.is_empty() {
            return Err(SandboxError::Unenforceable(missing.join("; ")));
        }
        let namespaces = support.namespaces.is_ok();
        let binds = plan::binds(profile, target)?;
        let (outer_uid, outer_gid) = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        // Inside, never uid 0: exec then drops every capability the namespace gave.
        let inner_uid = if outer_uid == 0 { 1000 } else { outer_uid };
        let inner_gid = if outer_gid == 0 { 1000 } else { outer_gid };
        let cstring = |s: String| CString::new(s).map_err(|_| PlanError::Nul);
        let tmp_bytes = (profile.limits.memory / 4).clamp(16 << 20, 1 << 30);
        let child = ChildPlan {
            gateway_pid: nix::unistd::getpid().as_raw(),
            namespaces,
            isolate_net: namespaces && profile.network != Network::Host,
            proxy: namespaces && matches!(profile.network, Network::Allow(_)),
            uid_map: cstring(format!("{inner_uid} {outer_uid} 1"))?,
            gid_map: cstring(format!("{inner_gid} {outer_gid} 1"))?,
            mounts: if namespaces {
                plan::mounts(&binds, tmp_bytes)?
            } else {
                Vec::new()
            },
            cwd: match target.cwd {
                Some(c) => {
                    let c = std::fs::canonicalize(c).unwrap_or_else(|_| c.to_path_buf());
                    Some(CString::new(c.into_os_string().into_vec()).map_err(|_| PlanError::Nul)?)
                }
                None => None,
            },
            hostname: cstring("sandbox".into())?,
            rlimits: plan::rlimits(&profile.limits),
            landlock: match support.landlock_abi {
                Some(abi) => Some(plan::landlock(abi, &binds, namespaces, &profile.network)?),
                None => None,
            },
            seccomp: if support.seccomp {
                Some(seccomp::compile().map_err(SandboxError::Seccomp)?)
            } else {
                None
            },
        };
        Ok(Sandbox {
            profile: profile.clone(),
            binds,
            layers,
            plan: Arc::new(child),
        })
    }

    /// What is bound into the sandbox, parents first.
    pub fn binds(&self) -> &[Bind] {
        &self.binds
    }

    /// Which layers hold, for `check` and the logs.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Variables the server needs to reach its proxy (empty without an allow list).
    pub fn env(&self) -> Vec<(String, String)> {
        if !self.plan.proxy {
            return Vec::new();
        }
        let url = format!("http://127.0.0.1:{}", plan::PROXY_PORT);
        [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "http_proxy",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ]
        .into_iter()
        .map(|k| (k.to_owned(), url.clone()))
        .chain([
            ("NO_PROXY".to_owned(), String::new()),
            ("no_proxy".to_owned(), String::new()),
        ])
        .collect()
    }

    /// Installs the sandbox on `cmd` (whose program must be the absolute path the plan was
    /// made for). Call [`Armed::finish`] with the outcome of the spawn.
    pub fn arm(&self, cmd: &mut std::process::Command) -> Result<Armed, SandboxError> {
        let (parent_end, child_end) = UnixDatagram::pair()?;
        parent_end.set_nonblocking(true)?;
        let cgroup = match &support().pids_cgroup {
            Some(base) => Some(cgroup::Cgroup::create(base, self.profile.limits.processes)?),
            None => None,
        };
        let procs = cgroup.as_ref().and_then(cgroup::Cgroup::procs);
        let plan = Arc::clone(&self.plan);
        let child_fd = child_end.as_raw_fd();
        // With namespaces the child enters its working directory once inside its new root
        // (a directory entered before would be a way back to the host's filesystem).
        if !self.plan.namespaces
            && let Some(cwd) = &self.plan.cwd
        {
            cmd.current_dir(std::ffi::OsStr::from_bytes(cwd.as_bytes()));
        }
        // SAFETY: the closure runs between fork and exec; `child::run` only makes system
        // calls on data prepared here (see child.rs), as pre_exec requires.
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(move || child::run(&plan, procs.as_deref(), child_fd));
        }
        Ok(Armed {
            status: parent_end,
            child_end: Some(child_end),
            cgroup,
            plan: Arc::clone(&self.plan),
        })
    }
}

/// A command with the sandbox installed, not yet (or just) spawned.
#[derive(Debug)]
pub struct Armed {
    status: UnixDatagram,
    child_end: Option<UnixDatagram>,
    cgroup: Option<cgroup::Cgroup>,
    plan: Arc<ChildPlan>,
}

/// What a running sandboxed server holds; drop it when the server has ended.
#[derive(Debug)]
pub struct Running {
    /// The listening socket inside the server's network namespace, for the proxy.
    pub proxy_listener: Option<std::net::TcpListener>,
    _cgroup: Option<cgroup::Cgroup>,
}

impl Armed {
    /// After the spawn: on failure, the step and path that failed; on success, the proxy's
    /// socket (if any) and the cgroup guard.
    pub fn finish(mut self, spawn: Result<(), &io::Error>) -> Result<Running, SandboxError> {
        drop(self.child_end.take());
        let mut listener = None;
        let mut failure = None;
        loop {
            let mut buf = [0u8; 16];
            let mut iov = [io::IoSliceMut::new(&mut buf)];
            let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
            let msg = match recvmsg::<()>(
                self.status.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(m) => m,
                Err(_) => break,
            };
            let len = msg.bytes;
            let mut fds = Vec::new();
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    if let ControlMessageOwned::ScmRights(r) = c {
                        fds.extend(r);
                    }
                }
            }
            if len == 0 {
                break;
            }
            for fd in fds {
                // SAFETY: the kernel just gave us this descriptor with SCM_RIGHTS; we own it.
                #[allow(unsafe_code)]
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                listener = Some(std::net::TcpListener::from(owned));
            }
            if len == child::RECORD_LEN {
                let word = |i: usize| {
                    let mut w = [0u8; 4];
                    w.copy_from_slice(&buf[i..i + 4]);
                    w
                };
                failure = Some((
                    u32::from_le_bytes(word(0)),
                    u32::from_le_bytes(word(4)),
                    i32::from_le_bytes(word(8)),
                ));
            }
        }
        if let Some((step, index, errno)) = failure {
            return Err(self.describe(step, index, errno));
        }
        if let Err(e) = spawn {
            return Err(SandboxError::Setup {
                step: "starting the server",
                what: String::new(),
                error: io::Error::new(e.kind(), e.to_string()),
            });
        }
        if self.plan.proxy && listener.is_none() {
            return Err(SandboxError::Setup {
                step: Step::ProxyListener.describe(),
                what: String::new(),
                error: io::Error::other("the child sent no socket"),
            });
        }
        if let Some(l) = &listener {
            l.set_nonblocking(true)?;
        }
        Ok(Running {
            proxy_listener: listener,
            _cgroup: self.cgroup.take(),
        })
    }

    fn describe(&self, step: u32, index: u32, errno: i32) -> SandboxError {
        let step = child::Step::from_code(step).unwrap_or(child::Step::Mount);
        let index = usize::try_from(index).unwrap_or(usize::MAX);
        let what = match step {
            child::Step::Mount => self.plan.mounts.get(index).map(describe_mount),
            child::Step::Landlock => self
                .plan
                .landlock
                .as_ref()
                .and_then(|l| l.paths.get(index))
                .map(|(p, _, _)| format!(" ({})", p.to_string_lossy())),
            _ => None,
        };
        SandboxError::Setup {
            step: step.describe(),
            what: what.unwrap_or_default(),
            error: io::Error::from_raw_os_error(errno),
        }
    }
}

use child::Step;

fn describe_mount(op: &MountOp) -> String {
    match op {
        MountOp::Dir(p) | MountOp::File(p) => format!(" (creating {})", p.to_string_lossy()),
        MountOp::Symlink { link, .. } => format!(" (linking {})", link.to_string_lossy()),
        MountOp::Bind { dst, .. } => format!(" (binding {})", dst.to_string_lossy()),
        MountOp::Tmpfs { dst, .. } => format!(" (a tmpfs on {})", dst.to_string_lossy()),
        MountOp::Proc { dst } => format!(" (/proc on {})", dst.to_string_lossy()),
    }
}
