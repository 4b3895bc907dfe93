//! What joining a pids cgroup costs, alone: the sandbox makes every server join one of its
//! own when the gateway runs as root (the kernel never holds root's processes to
//! `RLIMIT_NPROC`, so that limit cannot cap them). On a cgroup v1 hierarchy, moving a
//! process takes the kernel's thread-group lock for writing, which first waits for an RCU
//! grace period: milliseconds, more on a busy machine.
//!
//! Measured where the sandbox makes its cgroups, each time in a fresh one of the
//! benchmark's own (`bench-<pid>-<n>`, with `pids.max` set, as the sandbox makes one per
//! server): a `sleep` process is started, moved in by writing its pid to `cgroup.procs`
//! (the time of that write is the figure), and stopped, and the cgroup removed. Nothing is
//! measured where the sandbox uses no cgroup.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::procs::Proc;
use crate::stats::Spread;

/// Untimed moves before the timed ones.
const WARMUP_RUNS: usize = 2;
/// The pause between moves: back to back, a move finds the grace period already passed
/// and is cheap, which a server's start (seconds apart, in real use) does not.
const SETTLE: Duration = Duration::from_millis(50);
/// How long the emptied cgroup may stay busy before it is left in place.
const REMOVE_TRIES: usize = 40;

/// Removes a cgroup of the benchmark's if a run ends early (one try: its process may still
/// be dying; the normal path waits for it in [`remove`]).
struct Guard(PathBuf);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// `runs` timed moves, each into a fresh pids cgroup as the sandbox makes one per server;
/// `None` where the sandbox uses none.
pub async fn run(runs: usize) -> anyhow::Result<Option<Spread>> {
    let Some(base) = portcullis_sandbox::support().pids_cgroup.clone() else {
        return Ok(None);
    };
    std::fs::create_dir_all(&base).with_context(|| format!("cannot create {}", base.display()))?;
    let mut times = Vec::with_capacity(runs);
    for round in 0..WARMUP_RUNS + runs {
        let dir = base.join(format!("bench-{}-{round}", std::process::id()));
        std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let guard = Guard(dir.clone());
        std::fs::write(dir.join("pids.max"), "256")
            .with_context(|| format!("cannot limit {}", dir.display()))?;
        let took = move_one(&dir.join("cgroup.procs")).await?;
        remove(&dir).await;
        drop(guard);
        if round >= WARMUP_RUNS {
            times.push(took);
        }
        tokio::time::sleep(SETTLE).await;
    }
    Ok(Some(Spread::from_samples(times)))
}

/// Starts a `sleep`, times moving it into the cgroup, and stops it.
async fn move_one(procs: &Path) -> anyhow::Result<Duration> {
    let child = tokio::process::Command::new("sleep")
        .arg("60")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .context("cannot start sleep")?;
    let proc = Proc::adopt("sleep", child)?;
    let start = Instant::now();
    std::fs::write(procs, proc.pid().to_string())
        .with_context(|| format!("cannot write {}", procs.display()))?;
    let took = start.elapsed();
    if !proc.terminate().await {
        eprintln!("portcullis-bench: a sleep process did not stop on SIGTERM in time; killed");
    }
    Ok(took)
}

/// Removes the emptied cgroup, waiting (bounded) for the kernel to let go of it.
async fn remove(dir: &Path) {
    for _ in 0..REMOVE_TRIES {
        match std::fs::remove_dir(dir) {
            Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) => {
                tokio::time::sleep(SETTLE).await;
            }
            _ => return,
        }
    }
    eprintln!(
        "portcullis-bench: {} is still busy; left in place",
        dir.display()
    );
}
