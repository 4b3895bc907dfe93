//! Spawn-to-ready of a stdio server, with and without the sandbox (issue 5's benchmark).
//!
//! In the benchmark's own process, `portcullis fixture stdio` is started the way the
//! gateway starts a stdio server (a `std::process::Command` with a cleared environment, in
//! a process group of its own, turned into a tokio command and spawned) and timed from just
//! before the spawn to its answer to `initialize`:
//! - **direct**, as the gateway does with `sandbox = "off"`;
//! - **sandboxed**, through [`Sandbox`] with the default profile: armed on the command
//!   before the spawn and finished after it, as the gateway does. The plan
//!   ([`Sandbox::new`]) is made once, as the gateway makes it when it loads its config, and
//!   timed apart.
//!
//! Two more ways say where a sandboxed start's time goes: **direct through `fork`** (code
//! between fork and exec, which the sandbox needs, keeps the standard library from using
//! `posix_spawn`, a vfork: the whole parent's page tables are copied instead), and the
//! sandbox with **`network = "host"`** (no network namespace).
//!
//! The ways take turns run by run (the order rotating by one each round), after a few
//! untimed runs of each, so that load from elsewhere on the machine falls on all of them
//! alike. Every run is checked: the server that answered a sandboxed run must be in user,
//! mount and PID namespaces (and, unless the network is the host's, a network namespace)
//! other than the benchmark's, and a direct one in the benchmark's own.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use portcullis_sandbox::{Layer, Network, Profile, Sandbox, SandboxTarget};

use crate::cgroup_join;
use crate::measure;
use crate::procs::{self, Proc};
use crate::scenarios::{Env, Settings};
use crate::stats::Spread;
use crate::stdio_client::StdioClient;

/// Untimed runs of each way before the timed ones (page cache, the kernel's slab caches).
const WARMUP_RUNS: usize = 3;
/// The pause after each run: a sandbox's namespaces are torn down by the kernel after
/// the server has exited (the network namespace's in a worker thread, after RCU grace
/// periods); without it, that work would land on whichever start came next.
const SETTLE: Duration = Duration::from_millis(50);
/// The most timed runs of each way `--spawn-runs` may ask for.
pub const MAX_RUNS: usize = 1000;
/// The child's whole environment: the gateway passes only what a server's config names.
const CHILD_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// The namespaces compared with the benchmark's own.
const NAMESPACES: [&str; 6] = ["user", "mnt", "pid", "net", "ipc", "uts"];

/// One way of starting the fixture.
struct Way<'a> {
    name: &'static str,
    sandbox: Option<&'a Sandbox>,
    /// Force `fork` (and the child-side code of the standard library) without a sandbox.
    fork: bool,
}

/// One way's figures over all its runs.
#[derive(Debug, Clone)]
pub struct WayFigures {
    /// From just before the spawn to the `initialize` answer.
    pub ready: Spread,
    /// From just before the spawn until `spawn` returned (the child has called `exec`; for
    /// a sandboxed one, after every namespace, mount, Landlock rule and the seccomp filter).
    pub spawned: Spread,
    /// [`Sandbox::arm`] alone (its pids cgroup made, where it uses one); zero without a
    /// sandbox. Part of `spawned`.
    pub arm: Spread,
    /// From closing the server's stdin until it has exited and its sandbox is released.
    pub teardown: Spread,
    /// The namespaces of the answering server that are not the benchmark's.
    pub isolated: Vec<&'static str>,
}

/// Spawn-to-ready, four ways.
#[derive(Debug, Clone)]
pub struct SpawnToReady {
    pub runs: usize,
    /// [`portcullis_sandbox::support`]: what this kernel supports, probed once per process
    /// (a child forked into new namespaces).
    pub probe: Duration,
    /// [`Sandbox::new`] for the fixture and the default profile, once.
    pub plan: Duration,
    /// The layers the default profile gets on this kernel.
    pub layers: Vec<Layer>,
    pub direct: WayFigures,
    pub sandboxed: WayFigures,
    pub forked: WayFigures,
    pub host_network: WayFigures,
    /// Moving a process into a pids cgroup, where the sandbox makes each server join one
    /// (a gateway running as root).
    pub cgroup_join: Option<Spread>,
}

impl SpawnToReady {
    /// Sandboxed p50 over direct p50.
    pub fn ratio(&self) -> f64 {
        if self.direct.ready.p50_us > 0.0 {
            self.sandboxed.ready.p50_us / self.direct.ready.p50_us
        } else {
            0.0
        }
    }

    /// Sandboxed p50 minus direct p50, in ms.
    pub fn added_ms(&self) -> f64 {
        (self.sandboxed.ready.p50_us - self.direct.ready.p50_us) / 1000.0
    }
}

/// What one run measured.
struct Run {
    ready: Duration,
    spawned: Duration,
    arm: Duration,
    teardown: Duration,
    isolated: Vec<&'static str>,
}

pub async fn run(env: &Env, s: &Settings) -> anyhow::Result<SpawnToReady> {
    let bin = std::fs::canonicalize(&env.bin)
        .with_context(|| format!("cannot resolve {}", env.bin.display()))?;
    let args = vec!["fixture".to_owned(), "stdio".to_owned()];
    let target = SandboxTarget {
        program: &bin,
        args: &args,
        cwd: None,
        roots: &[],
    };
    let default = Profile::default();
    // The kernel probe runs on first use, once per process (the gateway's too).
    let started = Instant::now();
    let namespaces = portcullis_sandbox::support().namespaces.is_ok();
    let probe = started.elapsed();
    let started = Instant::now();
    let sandbox = Sandbox::new(&default, &target, false).context("planning the sandbox")?;
    let plan = started.elapsed();
    let host = Profile {
        network: Network::Host,
        ..Profile::default()
    };
    let host_sandbox =
        Sandbox::new(&host, &target, false).context("planning the host-network sandbox")?;
    let ways = [
        Way {
            name: "direct",
            sandbox: None,
            fork: false,
        },
        Way {
            name: "sandboxed",
            sandbox: Some(&sandbox),
            fork: false,
        },
        Way {
            name: "direct through fork",
            sandbox: None,
            fork: true,
        },
        Way {
            name: "sandboxed, host network",
            sandbox: Some(&host_sandbox),
            fork: false,
        },
    ];
    let mut results: Vec<Vec<Run>> = ways.iter().map(|_| Vec::new()).collect();
    for round in 0..WARMUP_RUNS + s.spawn_runs {
        for i in measure::round_order(round, ways.len()) {
            let way = &ways[i];
            let run = once(&bin, way, s.timeout)
                .await
                .with_context(|| format!("the fixture started {}", way.name))?;
            check_isolation(way, namespaces, &run.isolated)?;
            tokio::time::sleep(SETTLE).await;
            if round >= WARMUP_RUNS {
                results[i].push(run);
            }
        }
    }
    let cgroup_join = cgroup_join::run(s.spawn_runs)
        .await
        .context("joining a pids cgroup")?;
    let mut figures = results.into_iter().map(summarize);
    let mut next = || figures.next().context("a way without figures");
    Ok(SpawnToReady {
        cgroup_join,
        runs: s.spawn_runs,
        probe,
        plan,
        layers: sandbox.layers().to_vec(),
        direct: next()?,
        sandboxed: next()?,
        forked: next()?,
        host_network: next()?,
    })
}

fn summarize(runs: Vec<Run>) -> WayFigures {
    let pick = |f: fn(&Run) -> Duration| Spread::from_samples(runs.iter().map(f).collect());
    WayFigures {
        ready: pick(|r| r.ready),
        spawned: pick(|r| r.spawned),
        arm: pick(|r| r.arm),
        teardown: pick(|r| r.teardown),
        isolated: runs.first().map(|r| r.isolated.clone()).unwrap_or_default(),
    }
}

/// A sandboxed run must really be one, and a direct one must not (else the comparison is
/// of nothing).
fn check_isolation(way: &Way<'_>, namespaces: bool, isolated: &[&str]) -> anyhow::Result<()> {
    let Some(sandbox) = way.sandbox else {
        if !isolated.is_empty() {
            bail!(
                "the fixture started {} is in namespaces of its own ({})",
                way.name,
                isolated.join(", ")
            );
        }
        return Ok(());
    };
    if !namespaces {
        return Ok(());
    }
    let mut wanted = vec!["user", "mnt", "pid"];
    if sandbox.profile().network != Network::Host {
        wanted.push("net");
    }
    let shared: Vec<&str> = wanted
        .into_iter()
        .filter(|ns| !isolated.contains(ns))
        .collect();
    if !shared.is_empty() {
        bail!(
            "the fixture started {} shares the benchmark's {} namespace(s): it is not sandboxed",
            way.name,
            shared.join(", ")
        );
    }
    Ok(())
}

/// Starts the fixture one way, times it to its `initialize` answer, checks where it runs,
/// and stops it.
async fn once(bin: &Path, way: &Way<'_>, timeout: Duration) -> anyhow::Result<Run> {
    let mut cmd = std::process::Command::new(bin);
    cmd.args(["fixture", "stdio"])
        .env_clear()
        .env("PATH", CHILD_PATH)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0);
    if way.fork {
        // Any uid forces the fork path of the standard library; our own changes nothing.
        cmd.uid(nix::unistd::getuid().as_raw());
    }
    let start = Instant::now();
    let armed = match way.sandbox {
        Some(sandbox) => Some(sandbox.arm(&mut cmd).context("arming the sandbox")?),
        None => None,
    };
    let armed_at = start.elapsed();
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    let spawned = cmd.spawn();
    let spawned_at = start.elapsed();
    let running = match armed {
        Some(armed) => Some(
            armed
                .finish(spawned.as_ref().map(|_| ()))
                .context("the sandboxed fixture did not start")?,
        ),
        None => None,
    };
    let mut proc = Proc::adopt(
        "fixture (stdio)",
        spawned.with_context(|| format!("cannot start {}", bin.display()))?,
    )?;
    let (stdin, stdout) = (proc.stdin()?, proc.stdout()?);
    let mut client = StdioClient::new(proc.name(), stdin, stdout, timeout);
    client.initialize().await?;
    let ready = start.elapsed();
    // The process that answered: the fixture itself, or under a sandbox the keeper's child.
    let server = procs::descendants(proc.pid())
        .last()
        .copied()
        .unwrap_or(proc.pid());
    let isolated = isolated_namespaces(server)?;
    let stop = Instant::now();
    client.close().await?;
    proc.wait_exit().await?;
    drop(running);
    Ok(Run {
        ready,
        spawned: spawned_at,
        arm: armed_at,
        teardown: stop.elapsed(),
        isolated,
    })
}

/// The namespaces of `pid` that differ from the benchmark's own.
fn isolated_namespaces(pid: u32) -> anyhow::Result<Vec<&'static str>> {
    let link = |path: PathBuf| {
        std::fs::read_link(&path).with_context(|| format!("cannot read {}", path.display()))
    };
    let mut out = Vec::new();
    for ns in NAMESPACES {
        let ours = link(PathBuf::from(format!("/proc/self/ns/{ns}")))?;
        let theirs = link(PathBuf::from(format!("/proc/{pid}/ns/{ns}")))?;
        if ours != theirs {
            out.push(ns);
        }
    }
    Ok(out)
}

/// The namespaces of a gateway's stdio server (its deepest descendant) that differ from
/// the benchmark's own; empty if it has none running.
pub fn server_isolation(gateway: u32) -> anyhow::Result<Vec<&'static str>> {
    match procs::descendants(gateway).last() {
        Some(pid) => isolated_namespaces(*pid),
        None => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_benchmark_shares_its_own_namespaces() -> anyhow::Result<()> {
        assert!(isolated_namespaces(std::process::id())?.is_empty());
        Ok(())
    }

    #[test]
    fn a_sandboxed_run_sharing_namespaces_is_refused() -> anyhow::Result<()> {
        let bin = std::fs::canonicalize("/bin/sh")?;
        let target = SandboxTarget {
            program: &bin,
            args: &[],
            cwd: None,
            roots: &[],
        };
        let sandbox = Sandbox::new(&Profile::default(), &target, false)?;
        let way = Way {
            name: "sandboxed",
            sandbox: Some(&sandbox),
            fork: false,
        };
        assert!(check_isolation(&way, true, &["user", "mnt", "pid"]).is_err());
        assert!(check_isolation(&way, true, &["user", "mnt", "pid", "net"]).is_ok());
        let direct = Way {
            name: "direct",
            sandbox: None,
            fork: false,
        };
        assert!(check_isolation(&direct, true, &[]).is_ok());
        assert!(check_isolation(&direct, true, &["user"]).is_err());
        Ok(())
    }
}
