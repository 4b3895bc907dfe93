//! A pids cgroup per sandboxed server, where the gateway may create one.
//!
//! `RLIMIT_NPROC` is counted per user namespace, so it limits an unprivileged gateway's
//! servers one by one; but the kernel never applies it to processes of the real root user.
//! A gateway running as root therefore puts each server in its own pids cgroup (cgroup v1
//! `pids` controller, as mounted on this kind of host) with `pids.max` set. The child joins
//! it itself, before it can fork.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const PIDS_ROOT: &str = "/sys/fs/cgroup/pids";

static NEXT: AtomicU64 = AtomicU64::new(0);

/// The directory under which this gateway's cgroups are made, when it may write there.
/// Cgroups left behind by gateways that are gone are removed on the way.
pub(crate) fn pids_root() -> Option<PathBuf> {
    let root = Path::new(PIDS_ROOT);
    let usable = root.join("cgroup.procs").exists()
        && nix::unistd::access(root, nix::unistd::AccessFlags::W_OK).is_ok();
    let base = usable.then(|| root.join("portcullis"))?;
    sweep(&base);
    Some(base)
}

/// Removes the empty cgroups of gateways that no longer run. A gateway that is killed
/// cannot remove its own; left alone they would pile up, and a later gateway with the same
/// process id would collide with them.
fn sweep(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let owner = name
            .to_str()
            .and_then(|n| n.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let gone = owner.is_some_and(|pid| !Path::new("/proc").join(pid.to_string()).exists());
        if gone {
            // Fails (EBUSY) if processes are still in it: then it is not ours to remove.
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

/// One server's pids cgroup; removed once its processes are gone.
#[derive(Debug)]
pub(crate) struct Cgroup {
    dir: PathBuf,
}

impl Cgroup {
    pub(crate) fn create(base: &Path, max: u64) -> std::io::Result<Cgroup> {
        std::fs::create_dir_all(base)?;
        let dir = loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = base.join(format!("{}-{n}", std::process::id()));
            match std::fs::create_dir(&dir) {
                Ok(()) => break dir,
                // One left by an earlier gateway with the same process id: take the next.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        };
        let cg = Cgroup { dir };
        std::fs::write(cg.dir.join("pids.max"), max.to_string())?;
        Ok(cg)
    }

    /// `cgroup.procs`, which the child writes `0` to.
    pub(crate) fn procs(&self) -> Option<CString> {
        CString::new(self.dir.join("cgroup.procs").as_os_str().as_bytes()).ok()
    }
}

impl Drop for Cgroup {
    /// The processes die asynchronously after the kill; the directory can be removed only
    /// once they have, so a short-lived thread keeps trying for a few seconds.
    fn drop(&mut self) {
        let dir = std::mem::take(&mut self.dir);
        let _ = std::thread::Builder::new()
            .name("cgroup-cleanup".into())
            .spawn(move || {
                for _ in 0..100 {
                    match std::fs::remove_dir(&dir) {
                        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                            std::thread::sleep(Duration::from_millis(50))
                        }
                        _ => return,
                    }
                }
                tracing::warn!(cgroup = %dir.display(), "a sandbox's pids cgroup is still busy; left in place");
            });
    }
}
