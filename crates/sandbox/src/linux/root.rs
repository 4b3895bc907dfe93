//! The new root, as a list of steps the child takes after `pivot_root`: directories and
//! empty files to bind over, symbolic links, read-only (or read-write) binds of host paths,
//! a private `/tmp`, a minimal `/dev` and the PID namespace's own `/proc`.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::path::{Path, PathBuf};

use nix::sys::statvfs::{FsFlags, statvfs};

use super::plan::{Bind, DEVICES, ETC_ENTRIES, PlanError, SYSTEM_DIRS, cstr, cstring};

/// One step of building the new root, after `pivot_root` (host paths are then under
/// [`OLD_ROOT`]).
#[derive(Debug)]
pub(crate) enum MountOp {
    /// `mkdir`; an existing directory is fine.
    Dir(CString),
    /// An empty file to bind a file over; an existing one is fine.
    File(CString),
    Symlink {
        target: CString,
        link: CString,
    },
    /// Bind `src` (under the old root) at `dst`, then remount it with `remount` flags.
    Bind {
        src: CString,
        dst: CString,
        remount: Option<libc::c_ulong>,
    },
    Tmpfs {
        dst: CString,
        data: CString,
    },
    Proc {
        dst: CString,
    },
}

/// Where the host's root is while the new one is built.
pub(crate) const OLD_ROOT: &str = "/oldroot";

/// Mount flags that a bind must keep when remounted (the kernel refuses to drop them inside
/// a user namespace), plus the ones the sandbox adds.
fn remount_flags(path: &Path, writable: bool) -> libc::c_ulong {
    let mut flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_NOSUID | libc::MS_NODEV;
    if !writable {
        flags |= libc::MS_RDONLY;
    }
    if let Ok(st) = statvfs(path) {
        let f = st.flags();
        for (fs, ms) in [
            (FsFlags::ST_RDONLY, libc::MS_RDONLY),
            (FsFlags::ST_NOEXEC, libc::MS_NOEXEC),
            (FsFlags::ST_NOATIME, libc::MS_NOATIME),
            (FsFlags::ST_NODIRATIME, libc::MS_NODIRATIME),
            (FsFlags::ST_RELATIME, libc::MS_RELATIME),
        ] {
            if f.contains(fs) {
                flags |= ms;
            }
        }
    }
    flags
}

/// Adds `mkdir` steps for `path` and every missing ancestor.
fn dirs(
    path: &Path,
    made: &mut BTreeSet<PathBuf>,
    ops: &mut Vec<MountOp>,
) -> Result<(), PlanError> {
    let mut acc = PathBuf::from("/");
    for c in path.components().skip(1) {
        acc.push(c);
        if made.insert(acc.clone()) {
            ops.push(MountOp::Dir(cstr(&acc)?));
        }
    }
    Ok(())
}

/// The new root's construction.
pub(crate) fn mounts(binds: &[Bind], tmp_bytes: u64) -> Result<Vec<MountOp>, PlanError> {
    let mut ops = Vec::new();
    let mut made = BTreeSet::new();
    for entry in SYSTEM_DIRS.iter().chain(ETC_ENTRIES) {
        let p = Path::new(entry);
        if let Ok(target) = std::fs::read_link(p) {
            if let Some(parent) = p.parent() {
                dirs(parent, &mut made, &mut ops)?;
            }
            made.insert(p.to_path_buf());
            ops.push(MountOp::Symlink {
                target: cstr(&target)?,
                link: cstr(p)?,
            });
        }
    }
    // The private /tmp first: a configured path under the host's /tmp is bound on top of it.
    dirs(Path::new("/tmp"), &mut made, &mut ops)?;
    ops.push(MountOp::Tmpfs {
        dst: cstring("/tmp")?,
        data: cstring(&format!("mode=1777,size={tmp_bytes}"))?,
    });
    for b in binds {
        let is_dir = b.path.is_dir();
        if is_dir {
            dirs(&b.path, &mut made, &mut ops)?;
        } else {
            if let Some(parent) = b.path.parent() {
                dirs(parent, &mut made, &mut ops)?;
            }
            ops.push(MountOp::File(cstr(&b.path)?));
        }
        let src = Path::new(OLD_ROOT).join(b.path.strip_prefix("/").unwrap_or(&b.path));
        ops.push(MountOp::Bind {
            src: cstr(&src)?,
            dst: cstr(&b.path)?,
            remount: Some(remount_flags(&b.path, b.writable)),
        });
    }
    // A minimal /dev, and the PID namespace's own /proc.
    dirs(Path::new("/dev"), &mut made, &mut ops)?;
    ops.push(MountOp::Tmpfs {
        dst: cstring("/dev")?,
        data: cstring("mode=0755,size=65536")?,
    });
    for dev in DEVICES {
        let host = Path::new("/dev").join(dev);
        if !host.exists() {
            continue;
        }
        ops.push(MountOp::File(cstr(&host)?));
        ops.push(MountOp::Bind {
            src: cstr(&Path::new(OLD_ROOT).join("dev").join(dev))?,
            dst: cstr(&host)?,
            remount: None,
        });
    }
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        ops.push(MountOp::Symlink {
            target: cstring(target)?,
            link: cstring(link)?,
        });
    }
    ops.push(MountOp::Dir(cstring("/dev/shm")?));
    ops.push(MountOp::Tmpfs {
        dst: cstring("/dev/shm")?,
        data: cstring(&format!("mode=1777,size={tmp_bytes}"))?,
    });
    dirs(Path::new("/proc"), &mut made, &mut ops)?;
    ops.push(MountOp::Proc {
        dst: cstring("/proc")?,
    });
    Ok(ops)
}
