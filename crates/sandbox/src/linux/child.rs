//! What the child does between `fork` and `exec`.
//!
//! This runs in a copy of a multi-threaded process, so it may only make system calls: no
//! allocation, no locks, no formatting. Everything it needs was prepared by the parent
//! ([`ChildPlan`]). A failure is reported twice: as a fixed-size record on the status socket
//! (so the parent can name the step and the path), and as the `io::Error` the standard
//! library hands back from `spawn`.
//!
//! The order matters:
//! 1. parent-death signal, pids cgroup;
//! 2. a user namespace (the only one an unprivileged process may create), its id maps;
//! 3. mount, PID, IPC, UTS (and network) namespaces owned by it; loopback up, and the proxy's
//!    listening socket made inside the new network and sent to the gateway;
//! 4. `fork`: the new process is PID 1 of the new PID namespace; the old one stays outside
//!    as its keeper, waits for it and exits with its status (the gateway watches the
//!    keeper; when either dies, the other is killed and the kernel kills the namespace);
//! 5. the new root: a tmpfs, `pivot_root` into it, binds, `/tmp`, `/dev`, `/proc`, the host
//!    detached, the root made read-only;
//! 6. rlimits, `no_new_privs`, Landlock, seccomp (last: it refuses `mount` and friends).

use std::ffi::CStr;
use std::io;
use std::os::fd::RawFd;

use super::landlock;
use super::plan::{ChildPlan, MountOp, PROXY_PORT};
use super::seccomp;

/// The steps, as reported in a failure record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Step {
    ParentDeathSignal = 1,
    Cgroup,
    UserNamespace,
    IdMaps,
    Namespaces,
    Loopback,
    ProxyListener,
    Fork,
    PrivateMounts,
    NewRoot,
    PivotRoot,
    Mount,
    DetachHost,
    ReadOnlyRoot,
    WorkingDirectory,
    Hostname,
    Rlimit,
    NoNewPrivs,
    Landlock,
    Seccomp,
}

impl Step {
    const ALL: [Step; 20] = [
        Step::ParentDeathSignal,
        Step::Cgroup,
        Step::UserNamespace,
        Step::IdMaps,
        Step::Namespaces,
        Step::Loopback,
        Step::ProxyListener,
        Step::Fork,
        Step::PrivateMounts,
        Step::NewRoot,
        Step::PivotRoot,
        Step::Mount,
        Step::DetachHost,
        Step::ReadOnlyRoot,
        Step::WorkingDirectory,
        Step::Hostname,
        Step::Rlimit,
        Step::NoNewPrivs,
        Step::Landlock,
        Step::Seccomp,
    ];

    pub(crate) fn from_code(code: u32) -> Option<Step> {
        Step::ALL.into_iter().find(|s| *s as u32 == code)
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Step::ParentDeathSignal => "setting the parent-death signal (is the gateway exiting?)",
            Step::Cgroup => "joining the pids cgroup",
            Step::UserNamespace => "creating a user namespace",
            Step::IdMaps => "writing the user namespace's id maps",
            Step::Namespaces => "creating mount, PID, IPC, UTS and network namespaces",
            Step::Loopback => "bringing up the sandbox's loopback interface",
            Step::ProxyListener => "opening the proxy's socket inside the sandbox",
            Step::Fork => "starting PID 1 of the sandbox",
            Step::PrivateMounts => "making mounts private",
            Step::NewRoot => "creating the new root",
            Step::PivotRoot => "switching to the new root",
            Step::Mount => "building the new root",
            Step::DetachHost => "detaching the host's filesystem",
            Step::ReadOnlyRoot => "making the new root read-only",
            Step::WorkingDirectory => "entering the working directory",
            Step::Hostname => "setting the hostname",
            Step::Rlimit => "setting resource limits",
            Step::NoNewPrivs => "setting no_new_privs",
            Step::Landlock => "applying Landlock rules",
            Step::Seccomp => "installing the seccomp filter",
        }
    }
}

/// Size of a failure record: step, index (of the mount or Landlock rule), errno.
pub(crate) const RECORD_LEN: usize = 12;

fn errno() -> i32 {
    landlock::errno()
}

/// Sends the failure record and turns it into the error `spawn` will return.
fn fail(status: RawFd, step: Step, index: usize, errno: i32) -> io::Error {
    let mut rec = [0u8; RECORD_LEN];
    rec[0..4].copy_from_slice(&(step as u32).to_le_bytes());
    rec[4..8].copy_from_slice(&u32::try_from(index).unwrap_or(u32::MAX).to_le_bytes());
    rec[8..12].copy_from_slice(&errno.to_le_bytes());
    // SAFETY: a send(2) of a buffer we own; nothing to do if it fails.
    #[allow(unsafe_code)]
    unsafe {
        libc::send(status, rec.as_ptr().cast(), rec.len(), libc::MSG_DONTWAIT);
    }
    io::Error::from_raw_os_error(errno)
}

/// Turns a libc return value into the failure of `step`.
fn check(rc: libc::c_int, status: RawFd, step: Step, index: usize) -> io::Result<()> {
    if rc < 0 {
        Err(fail(status, step, index, errno()))
    } else {
        Ok(())
    }
}

pub(crate) fn write_file(path: &CStr, data: &[u8]) -> Result<(), i32> {
    // SAFETY: open/write/close on a NUL-terminated path and a buffer we own.
    #[allow(unsafe_code)]
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(errno());
        }
        let n = libc::write(fd, data.as_ptr().cast(), data.len());
        let e = errno();
        libc::close(fd);
        if n < 0 || n as usize != data.len() {
            return Err(if n < 0 { e } else { libc::EIO });
        }
    }
    Ok(())
}

fn exists(path: &CStr) -> bool {
    // SAFETY: access(2) on a NUL-terminated path.
    #[allow(unsafe_code)]
    unsafe {
        libc::access(path.as_ptr(), libc::F_OK) == 0
    }
}

/// The whole sequence; returns in the process that goes on to `exec` the server.
pub(crate) fn run(plan: &ChildPlan, cgroup_procs: Option<&CStr>, status: RawFd) -> io::Result<()> {
    // SAFETY (for every block in this function): system calls on values prepared by the
    // parent; no allocation, as required between fork and exec.
    #[allow(unsafe_code)]
    unsafe {
        check(
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0),
            status,
            Step::ParentDeathSignal,
            0,
        )?;
        // The gateway may have died between fork and prctl: then nobody would kill us.
        if libc::getppid() != plan.gateway_pid {
            return Err(fail(status, Step::ParentDeathSignal, 0, libc::ESRCH));
        }
    }
    if let Some(procs) = cgroup_procs {
        write_file(procs, b"0").map_err(|e| fail(status, Step::Cgroup, 0, e))?;
    }
    if plan.namespaces {
        enter_namespaces(plan, status)?;
    }
    confine(plan, status)
}

fn enter_namespaces(plan: &ChildPlan, status: RawFd) -> io::Result<()> {
    #[allow(unsafe_code)]
    unsafe {
        check(
            libc::unshare(libc::CLONE_NEWUSER),
            status,
            Step::UserNamespace,
            0,
        )?;
    }
    for (i, (file, data)) in [
        (c"/proc/self/setgroups", &b"deny"[..]),
        (c"/proc/self/uid_map", plan.uid_map.as_bytes()),
        (c"/proc/self/gid_map", plan.gid_map.as_bytes()),
    ]
    .into_iter()
    .enumerate()
    {
        write_file(file, data).map_err(|e| fail(status, Step::IdMaps, i, e))?;
    }
    let mut flags =
        libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
    if plan.isolate_net {
        flags |= libc::CLONE_NEWNET;
    }
    #[allow(unsafe_code)]
    unsafe {
        check(libc::unshare(flags), status, Step::Namespaces, 0)?;
    }
    if plan.isolate_net {
        loopback_up().map_err(|e| fail(status, Step::Loopback, 0, e))?;
    }
    if plan.proxy {
        proxy_listener(status).map_err(|e| fail(status, Step::ProxyListener, 0, e))?;
    }
    #[allow(unsafe_code)]
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(fail(status, Step::Fork, 0, errno()));
    }
    if pid > 0 {
        keep(pid);
    }
    // PID 1 of the new namespace.
    #[allow(unsafe_code)]
    unsafe {
        check(
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0),
            status,
            Step::ParentDeathSignal,
            0,
        )?;
    }
    build_root(plan, status)
}

/// The keeper: outside the PID namespace, holding nothing open, it waits for PID 1 and
/// exits with its status. Never returns.
fn keep(pid: libc::pid_t) -> ! {
    // SAFETY: close_range, waitpid and _exit on our own state.
    #[allow(unsafe_code)]
    unsafe {
        // The standard library's exec-error pipe is among these: `spawn` must not wait for
        // the keeper, which never execs.
        libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
        let mut st: libc::c_int = 0;
        loop {
            let r = libc::waitpid(pid, &mut st, 0);
            if r == pid {
                break;
            }
            if r < 0 && errno() != libc::EINTR {
                libc::_exit(125);
            }
        }
        let code = if libc::WIFEXITED(st) {
            libc::WEXITSTATUS(st)
        } else if libc::WIFSIGNALED(st) {
            128 + libc::WTERMSIG(st)
        } else {
            125
        };
        libc::_exit(code)
    }
}

fn loopback_up() -> Result<(), i32> {
    // SAFETY: ioctl(SIOCGIFFLAGS/SIOCSIFFLAGS) on an ifreq we own, naming "lo".
    #[allow(unsafe_code)]
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return Err(errno());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        let mut rc = libc::ioctl(s, libc::SIOCGIFFLAGS, &mut req);
        if rc == 0 {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            rc = libc::ioctl(s, libc::SIOCSIFFLAGS, &req);
        }
        let e = errno();
        libc::close(s);
        if rc < 0 { Err(e) } else { Ok(()) }
    }
}

/// Listens on 127.0.0.1:PROXY_PORT inside the new network namespace and sends the socket
/// to the gateway, which serves the proxy on it: a socket keeps the namespace it was made
/// in, so the gateway never has to enter the sandbox.
fn proxy_listener(status: RawFd) -> Result<(), i32> {
    // SAFETY: socket/bind/listen/sendmsg on structures we own; the descriptor is closed
    // here after being sent (the gateway holds its own copy).
    #[allow(unsafe_code)]
    unsafe {
        let l = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if l < 0 {
            return Err(errno());
        }
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_port = PROXY_PORT.to_be();
        addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let mut rc = libc::bind(l, (&addr as *const libc::sockaddr_in).cast(), len);
        if rc == 0 {
            rc = libc::listen(l, 128);
        }
        if rc == 0 {
            let mut byte = [b'L'];
            let mut iov = libc::iovec {
                iov_base: byte.as_mut_ptr().cast(),
                iov_len: 1,
            };
            let mut control = [0u64; 4];
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(4) as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            if cmsg.is_null() {
                libc::close(l);
                return Err(libc::EINVAL);
            }
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(4) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), l);
            if libc::sendmsg(status, &msg, libc::MSG_DONTWAIT) < 0 {
                rc = -1;
            }
        }
        let e = errno();
        libc::close(l);
        if rc < 0 { Err(e) } else { Ok(()) }
    }
}

fn build_root(plan: &ChildPlan, status: RawFd) -> io::Result<()> {
    #[allow(unsafe_code)]
    unsafe {
        let null = std::ptr::null::<libc::c_char>();
        check(
            libc::mount(
                null,
                c"/".as_ptr(),
                null,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ),
            status,
            Step::PrivateMounts,
            0,
        )?;
        // The new root is a tmpfs mounted over /tmp; after pivot_root the host's /tmp shows
        // through again under /oldroot/tmp, so a path under /tmp can still be bound.
        check(
            libc::mount(
                c"tmpfs".as_ptr(),
                c"/tmp".as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                c"mode=0755,size=1m".as_ptr().cast(),
            ),
            status,
            Step::NewRoot,
            0,
        )?;
        check(
            libc::mkdir(c"/tmp/oldroot".as_ptr(), 0o700),
            status,
            Step::NewRoot,
            1,
        )?;
        check(libc::chdir(c"/tmp".as_ptr()), status, Step::PivotRoot, 0)?;
        let rc = libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c"oldroot".as_ptr());
        if rc < 0 {
            return Err(fail(status, Step::PivotRoot, 0, errno()));
        }
        check(libc::chdir(c"/".as_ptr()), status, Step::PivotRoot, 1)?;
        for (i, op) in plan.mounts.iter().enumerate() {
            mount_op(op).map_err(|e| fail(status, Step::Mount, i, e))?;
        }
        check(
            libc::umount2(c"/oldroot".as_ptr(), libc::MNT_DETACH),
            status,
            Step::DetachHost,
            0,
        )?;
        check(
            libc::rmdir(c"/oldroot".as_ptr()),
            status,
            Step::DetachHost,
            1,
        )?;
        check(
            libc::mount(
                null,
                c"/".as_ptr(),
                null,
                libc::MS_REMOUNT
                    | libc::MS_BIND
                    | libc::MS_RDONLY
                    | libc::MS_NOSUID
                    | libc::MS_NODEV,
                std::ptr::null(),
            ),
            status,
            Step::ReadOnlyRoot,
            0,
        )?;
        let cwd = plan.cwd.as_deref().unwrap_or(c"/tmp");
        check(libc::chdir(cwd.as_ptr()), status, Step::WorkingDirectory, 0)?;
        check(
            libc::sethostname(plan.hostname.as_ptr(), plan.hostname.as_bytes().len()),
            status,
            Step::Hostname,
            0,
        )?;
    }
    Ok(())
}

fn mount_op(op: &MountOp) -> Result<(), i32> {
    let null = std::ptr::null::<libc::c_char>();
    // SAFETY: mount/mkdir/open/symlink on NUL-terminated paths the parent prepared.
    #[allow(unsafe_code)]
    unsafe {
        match op {
            MountOp::Dir(path) => {
                if libc::mkdir(path.as_ptr(), 0o755) < 0 && !exists(path) {
                    return Err(errno());
                }
            }
            MountOp::File(path) => {
                if !exists(path) {
                    let fd = libc::open(
                        path.as_ptr(),
                        libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                        0o644,
                    );
                    if fd < 0 {
                        return Err(errno());
                    }
                    libc::close(fd);
                }
            }
            MountOp::Symlink { target, link } => {
                if libc::symlink(target.as_ptr(), link.as_ptr()) < 0 && errno() != libc::EEXIST {
                    return Err(errno());
                }
            }
            MountOp::Bind { src, dst, remount } => {
                if libc::mount(
                    src.as_ptr(),
                    dst.as_ptr(),
                    null,
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ) < 0
                {
                    return Err(errno());
                }
                if let Some(flags) = remount
                    && libc::mount(null, dst.as_ptr(), null, *flags, std::ptr::null()) < 0
                {
                    return Err(errno());
                }
            }
            MountOp::Tmpfs { dst, data } => {
                if libc::mount(
                    c"tmpfs".as_ptr(),
                    dst.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    data.as_ptr().cast(),
                ) < 0
                {
                    return Err(errno());
                }
            }
            MountOp::Proc { dst } => {
                if libc::mount(
                    c"proc".as_ptr(),
                    dst.as_ptr(),
                    c"proc".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    std::ptr::null(),
                ) < 0
                {
                    return Err(errno());
                }
            }
        }
    }
    Ok(())
}

/// The layers that hold with or without namespaces: rlimits, no_new_privs, Landlock,
/// seccomp. Seccomp comes last because it refuses calls the steps before it make.
fn confine(plan: &ChildPlan, status: RawFd) -> io::Result<()> {
    for (i, (resource, value)) in plan.rlimits.iter().enumerate() {
        nix::sys::resource::setrlimit(*resource, *value, *value)
            .map_err(|e| fail(status, Step::Rlimit, i, e as i32))?;
    }
    #[allow(unsafe_code)]
    unsafe {
        check(
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
            status,
            Step::NoNewPrivs,
            0,
        )?;
    }
    if let Some(ll) = &plan.landlock {
        let ruleset = landlock::create(ll.handled_fs, ll.handled_net, ll.scoped)
            .map_err(|e| fail(status, Step::Landlock, usize::MAX, e))?;
        for (i, (path, access, required)) in ll.paths.iter().enumerate() {
            match ruleset.allow_path(path, *access) {
                Ok(()) => {}
                Err(libc::ENOENT) if !required => {}
                Err(e) => return Err(fail(status, Step::Landlock, i, e)),
            }
        }
        for (port, access) in &ll.ports {
            ruleset
                .allow_port(*port, *access)
                .map_err(|e| fail(status, Step::Landlock, ll.paths.len(), e))?;
        }
        ruleset
            .restrict_self()
            .map_err(|e| fail(status, Step::Landlock, usize::MAX, e))?;
    }
    if let Some(filters) = &plan.seccomp {
        seccomp::install(filters).map_err(|e| fail(status, Step::Seccomp, 0, e))?;
    }
    Ok(())
}
