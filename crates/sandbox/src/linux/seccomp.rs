//! The seccomp filter: system calls an MCP server never needs, refused.
//!
//! A deny list, not an allow list: servers are written in every language and runtime, and
//! an allow list that misses one call a runtime makes breaks the server in ways its author
//! cannot debug. What is refused here is what container escapes and sandbox bypasses are
//! made of: tracing other processes, namespaces and mounts, kernel modules and keyrings,
//! BPF, `userfaultfd`, raw and packet sockets, injecting terminal input.
//!
//! Two filters are compiled in the parent and installed in the child: the first answers
//! `EPERM`; the second answers `ENOSYS` for `clone3` and `io_uring`, so that libc and
//! runtimes fall back to `clone` (whose flags the first filter can inspect, which `clone3`'s
//! struct argument does not allow) and to ordinary I/O.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// The refused calls, by name, for `check` and the docs.
pub const REFUSED: &[&str] = &[
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "clone (with namespace flags)",
    "bpf",
    "keyctl",
    "add_key",
    "request_key",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "perf_event_open",
    "userfaultfd",
    "open_by_handle_at",
    "fsopen/fsmount/move_mount/open_tree",
    "swapon/swapoff",
    "reboot",
    "acct",
    "quotactl",
    "syslog",
    "settimeofday/clock_settime/adjtimex",
    "socket (AF_PACKET, SOCK_RAW)",
    "ioctl (TIOCSTI, TIOCLINUX)",
    "clone3 and io_uring (ENOSYS: callers fall back)",
];

const CLONE_NAMESPACE_FLAGS: [u64; 7] = [
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWCGROUP as u64,
];

/// The two compiled programs, in the order they are installed.
pub struct Filters {
    pub(crate) eperm: BpfProgram,
    pub(crate) enosys: BpfProgram,
}

impl std::fmt::Debug for Filters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Filters({} + {} instructions)",
            self.eperm.len(),
            self.enosys.len()
        )
    }
}

fn arch() -> Result<TargetArch, String> {
    TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|_| format!("no seccomp filter for {}", std::env::consts::ARCH))
}

fn cond(
    arg: u8,
    len: SeccompCmpArgLen,
    op: SeccompCmpOp,
    value: u64,
) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, len, op, value).map_err(|e| e.to_string())
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule, String> {
    SeccompRule::new(conditions).map_err(|e| e.to_string())
}

/// Compiles both filters for this machine's architecture.
pub fn compile() -> Result<Filters, String> {
    let arch = arch()?;
    let mut deny: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for nr in [
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_bpf,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_open_by_handle_at,
        libc::SYS_fsopen,
        libc::SYS_fsmount,
        libc::SYS_fsconfig,
        libc::SYS_fspick,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_mount_setattr,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_reboot,
        libc::SYS_acct,
        libc::SYS_quotactl,
        libc::SYS_syslog,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_adjtimex,
    ] {
        deny.insert(nr, Vec::new());
    }
    #[cfg(target_arch = "x86_64")]
    for nr in [libc::SYS_iopl, libc::SYS_ioperm] {
        deny.insert(nr, Vec::new());
    }
    // clone(flags, ...) with any namespace flag: one rule per flag (rules are OR-ed).
    let clone_rules = CLONE_NAMESPACE_FLAGS
        .iter()
        .map(|&flag| {
            rule(vec![cond(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(flag),
                flag,
            )?])
        })
        .collect::<Result<Vec<_>, _>>()?;
    deny.insert(libc::SYS_clone, clone_rules);
    // socket(AF_PACKET, ...) and socket(..., SOCK_RAW | flags, ...).
    deny.insert(
        libc::SYS_socket,
        vec![
            rule(vec![cond(
                0,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::Eq,
                libc::AF_PACKET as u64,
            )?])?,
            rule(vec![cond(
                1,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::MaskedEq(0xf),
                libc::SOCK_RAW as u64,
            )?])?,
        ],
    );
    // Terminal input injection and console control. (The request type is `c_ulong` on
    // glibc and `c_int` on musl, hence the cast.)
    #[allow(clippy::unnecessary_cast)]
    let (tiocsti, tioclinux) = (libc::TIOCSTI as u64, libc::TIOCLINUX as u64);
    deny.insert(
        libc::SYS_ioctl,
        vec![
            rule(vec![cond(
                1,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::Eq,
                tiocsti,
            )?])?,
            rule(vec![cond(
                1,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::Eq,
                tioclinux,
            )?])?,
        ],
    );
    let eperm = program(deny, libc::EPERM, arch)?;

    let mut fallback: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for nr in [
        libc::SYS_clone3,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
    ] {
        fallback.insert(nr, Vec::new());
    }
    let enosys = program(fallback, libc::ENOSYS, arch)?;
    Ok(Filters { eperm, enosys })
}

fn program(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    errno: i32,
    arch: TargetArch,
) -> Result<BpfProgram, String> {
    let errno = u32::try_from(errno).map_err(|_| "errno out of range".to_owned())?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno),
        arch,
    )
    .map_err(|e| e.to_string())?;
    BpfProgram::try_from(filter).map_err(|e| e.to_string())
}

/// Installs both filters on the calling thread (the child, single-threaded).
pub(crate) fn install(filters: &Filters) -> Result<(), i32> {
    for program in [&filters.eperm, &filters.enosys] {
        seccompiler::apply_filter(program).map_err(|e| match e {
            seccompiler::Error::Prctl(io) | seccompiler::Error::Seccomp(io) => {
                io.raw_os_error().unwrap_or(libc::EINVAL)
            }
            _ => libc::EINVAL,
        })?;
    }
    Ok(())
}

/// Whether this kernel can install a filter that answers with an errno.
pub(crate) fn available() -> bool {
    let action: u32 = 0x0005_0000; // SECCOMP_RET_ERRNO
    // SAFETY: SECCOMP_GET_ACTION_AVAIL reads one u32 we own.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            2, // SECCOMP_GET_ACTION_AVAIL
            0,
            &action as *const u32,
        )
    };
    rc == 0 && arch().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_filters_compile_for_this_machine() {
        let f = compile().expect("compile");
        assert!(!f.eperm.is_empty() && !f.enosys.is_empty());
    }
}
