//! Landlock, through its three system calls.
//!
//! The `landlock` crate builds rulesets with allocations and path conversions; the sandbox
//! builds its ruleset in the child between `fork` and `exec` (the private `/tmp`, `/dev` and
//! `/proc` exist only there), where allocating is not allowed. The kernel interface is small
//! and stable, so it is used directly: every function here is a system call on values the
//! parent prepared.

use std::ffi::CStr;

/// Access rights on files and directories, by the ABI that introduced them (the kernel's
/// whole table, so that the masks below read against it).
#[allow(dead_code)]
pub(crate) mod fs {
    pub const EXECUTE: u64 = 1 << 0;
    pub const WRITE_FILE: u64 = 1 << 1;
    pub const READ_FILE: u64 = 1 << 2;
    pub const READ_DIR: u64 = 1 << 3;
    pub const REMOVE_DIR: u64 = 1 << 4;
    pub const REMOVE_FILE: u64 = 1 << 5;
    pub const MAKE_CHAR: u64 = 1 << 6;
    pub const MAKE_DIR: u64 = 1 << 7;
    pub const MAKE_REG: u64 = 1 << 8;
    pub const MAKE_SOCK: u64 = 1 << 9;
    pub const MAKE_FIFO: u64 = 1 << 10;
    pub const MAKE_BLOCK: u64 = 1 << 11;
    pub const MAKE_SYM: u64 = 1 << 12;
    /// ABI 2.
    pub const REFER: u64 = 1 << 13;
    /// ABI 3.
    pub const TRUNCATE: u64 = 1 << 14;
    /// ABI 5.
    pub const IOCTL_DEV: u64 = 1 << 15;

    /// Every right the given ABI knows.
    pub fn all(abi: u32) -> u64 {
        let mut all = (1 << 13) - 1;
        if abi >= 2 {
            all |= REFER;
        }
        if abi >= 3 {
            all |= TRUNCATE;
        }
        if abi >= 5 {
            all |= IOCTL_DEV;
        }
        all
    }

    /// Read and execute: the system directories, the server's installation, `read`.
    pub const READ: u64 = EXECUTE | READ_FILE | READ_DIR;
    /// Everything but creating device nodes: `write` paths and the private `/tmp`.
    pub const WRITE: u64 = !(MAKE_CHAR | MAKE_BLOCK);
    /// A device file such as `/dev/null`.
    pub const DEVICE: u64 = READ_FILE | WRITE_FILE | TRUNCATE | IOCTL_DEV;
}

/// TCP rights (ABI 4).
pub(crate) mod net {
    pub const BIND_TCP: u64 = 1 << 0;
    pub const CONNECT_TCP: u64 = 1 << 1;
}

/// IPC scopes (ABI 6): no connecting to abstract Unix sockets, no signals, outside the domain.
pub(crate) mod scope {
    pub const ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
    pub const SIGNAL: u64 = 1 << 1;
}

const CREATE_RULESET_VERSION: libc::c_uint = 1;
const RULE_PATH_BENEATH: libc::c_int = 1;
const RULE_NET_PORT: libc::c_int = 2;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

#[repr(C)]
struct NetPortAttr {
    allowed_access: u64,
    port: u64,
}

/// The Landlock ABI this kernel offers; `None` when Landlock is absent or disabled.
pub(crate) fn abi_version() -> Option<u32> {
    // SAFETY: LANDLOCK_CREATE_RULESET_VERSION takes a null attribute and size 0 and only
    // returns a number.
    #[allow(unsafe_code)]
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    u32::try_from(v).ok().filter(|v| *v >= 1)
}

/// A ruleset the child is building: a file descriptor, closed by [`restrict_self`] or
/// when the child execs (it is close-on-exec).
pub(crate) struct Ruleset(libc::c_int);

/// The `errno` of the last failed call.
pub(crate) fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Creates a ruleset that handles the given rights (already masked to the ABI).
pub(crate) fn create(handled_fs: u64, handled_net: u64, scoped: u64) -> Result<Ruleset, i32> {
    let attr = RulesetAttr {
        handled_access_fs: handled_fs,
        handled_access_net: handled_net,
        scoped,
    };
    // Older kernels accept a larger attribute as long as the fields they do not know are 0,
    // which the caller guarantees by masking to the ABI.
    // SAFETY: attr lives across the call and its size is passed.
    #[allow(unsafe_code)]
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            std::mem::size_of::<RulesetAttr>(),
            0,
        )
    };
    match libc::c_int::try_from(fd) {
        Ok(fd) if fd >= 0 => Ok(Ruleset(fd)),
        _ => Err(errno()),
    }
}

impl Ruleset {
    /// Allows `access` beneath `path`. `ENOENT` is reported to the caller, which decides
    /// whether the path was optional.
    pub(crate) fn allow_path(&self, path: &CStr, access: u64) -> Result<(), i32> {
        // SAFETY: path is NUL-terminated; O_PATH opens nothing for reading.
        #[allow(unsafe_code)]
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(errno());
        }
        let attr = PathBeneathAttr {
            allowed_access: access,
            parent_fd: fd,
        };
        // SAFETY: attr lives across the call; fd is ours and closed right after.
        #[allow(unsafe_code)]
        let rc = unsafe {
            let rc = libc::syscall(
                libc::SYS_landlock_add_rule,
                self.0,
                RULE_PATH_BENEATH,
                &attr as *const PathBeneathAttr,
                0,
            );
            let e = errno();
            libc::close(fd);
            if rc == 0 { 0 } else { e }
        };
        if rc == 0 { Ok(()) } else { Err(rc) }
    }

    /// Allows `access` (bind/connect) on one TCP port.
    pub(crate) fn allow_port(&self, port: u16, access: u64) -> Result<(), i32> {
        let attr = NetPortAttr {
            allowed_access: access,
            port: u64::from(port),
        };
        // SAFETY: attr lives across the call.
        #[allow(unsafe_code)]
        let rc = unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                self.0,
                RULE_NET_PORT,
                &attr as *const NetPortAttr,
                0,
            )
        };
        if rc == 0 { Ok(()) } else { Err(errno()) }
    }

    /// Enforces the ruleset on the calling process and everything it will start.
    /// `no_new_privs` must already be set.
    pub(crate) fn restrict_self(self) -> Result<(), i32> {
        // SAFETY: a plain system call on our own descriptor.
        #[allow(unsafe_code)]
        let rc = unsafe {
            let rc = libc::syscall(libc::SYS_landlock_restrict_self, self.0, 0);
            let e = errno();
            libc::close(self.0);
            if rc == 0 { 0 } else { e }
        };
        if rc == 0 { Ok(()) } else { Err(rc) }
    }
}
