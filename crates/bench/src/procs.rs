//! Child processes: the `portcullis` binary, started in a process group of its own, waited
//! on with a timeout, measured (RSS), and killed with its whole group when dropped — on
//! success, on error and on Ctrl-C alike.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

/// How long a server may take to say where it listens.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a stdio process may take to exit once its stdin is closed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `cargo build --release -p portcullis` may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A child process that is the leader of its own process group.
pub struct Proc {
    name: String,
    child: Child,
    pid: u32,
    /// Once the child is reaped its pid may be reused: never signal the group after that.
    reaped: bool,
}

impl Proc {
    /// Starts `bin args…` with piped stdin/stdout, stderr to `stderr_to` (or piped if None).
    pub fn spawn(
        name: &str,
        bin: &Path,
        args: &[&str],
        stderr_to: Option<&Path>,
    ) -> anyhow::Result<Proc> {
        let stderr = match stderr_to {
            Some(path) => Stdio::from(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            ),
            None => Stdio::piped(),
        };
        let child = Command::new(bin)
            .args(args)
            // It would replace every generated config's `gateway.state`.
            .env_remove("PORTCULLIS_STATE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!("cannot start {name}: {} {}", bin.display(), args.join(" "))
            })?;
        let pid = child
            .id()
            .with_context(|| format!("{name} exited before it could be measured"))?;
        Ok(Proc {
            name: name.to_owned(),
            child,
            pid,
            reaped: false,
        })
    }

    /// Takes charge of a child the caller started itself (in a process group of its own,
    /// `kill_on_drop` set), e.g. one a sandbox was installed on.
    pub fn adopt(name: &str, child: Child) -> anyhow::Result<Proc> {
        let pid = child
            .id()
            .with_context(|| format!("{name} exited before it could be measured"))?;
        Ok(Proc {
            name: name.to_owned(),
            child,
            pid,
            reaped: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn stdin(&mut self) -> anyhow::Result<ChildStdin> {
        self.child.stdin.take().context("stdin already taken")
    }

    pub fn stdout(&mut self) -> anyhow::Result<ChildStdout> {
        self.child.stdout.take().context("stdout already taken")
    }

    pub fn stderr(&mut self) -> anyhow::Result<ChildStderr> {
        self.child
            .stderr
            .take()
            .context("stderr not piped or already taken")
    }

    /// Resident set size of the process (VmRSS), in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let path = format!("/proc/{}/status", self.pid);
        let status =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        parse_vm_rss(&status).with_context(|| format!("no VmRSS line in {path}"))
    }

    /// Waits for a process whose stdin was closed to exit; kills its group if it does not.
    pub async fn wait_exit(mut self) -> anyhow::Result<()> {
        match tokio::time::timeout(EXIT_TIMEOUT, self.child.wait()).await {
            Ok(Ok(_)) => {
                self.reaped = true;
                Ok(())
            }
            Ok(Err(e)) => Err(e).with_context(|| format!("waiting for {}", self.name)),
            Err(_) => bail!(
                "{} did not exit within {EXIT_TIMEOUT:?} after its input closed; killed",
                self.name
            ),
        }
    }

    /// Asks the process to stop (SIGTERM to it alone: a server finishes what it was
    /// writing) and waits for it to exit; false if it did not in time (it is then killed,
    /// with its group).
    pub async fn terminate(mut self) -> bool {
        if self.reaped {
            return true;
        }
        if let Ok(pid) = i32::try_from(self.pid)
            && pid > 1
        {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        match tokio::time::timeout(EXIT_TIMEOUT, self.child.wait()).await {
            Ok(Ok(_)) => {
                self.reaped = true;
                true
            }
            _ => false,
        }
    }

    fn kill_group(&mut self) {
        if self.reaped {
            return;
        }
        // The pid is our own child's and it is not reaped yet, so the group id cannot name
        // anyone else's processes. (Never a negative pid through /usr/bin/kill: see README.)
        if let Ok(pid) = i32::try_from(self.pid)
            && pid > 1
        {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.child.start_kill();
        if let Ok(Some(_)) = self.child.try_wait() {
            self.reaped = true;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// CPU time (user + system) a process has used so far, in clock ticks of 10 ms: what
/// `/proc/<pid>/stat` says, which includes threads that have already exited.
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_cpu_ticks(&stat).with_context(|| format!("cannot parse {path}"))
}

/// Length of a clock tick of `/proc/<pid>/stat` (USER_HZ, 100 on Linux).
pub const TICK: Duration = Duration::from_millis(10);

/// CPU time of the benchmark itself (the client), in the same ticks.
pub fn own_cpu_ticks() -> anyhow::Result<u64> {
    cpu_ticks(std::process::id())
}

/// The processes whose parent is `pid` (e.g. the upstream server a gateway started).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| parse_ppid(&stat))
                == Some(pid)
        })
        .collect()
}

/// `pid`'s children, their children and so on, parents first (a sandboxed server is the
/// child of its sandbox's keeper process, itself the gateway's child).
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut out = children(pid);
    let mut i = 0;
    // Bounded: a process tree deeper or wider than this is not one the benchmark started.
    while i < out.len() && out.len() < 1024 {
        let next = children(out[i]);
        out.extend(next);
        i += 1;
    }
    out
}

/// The fields after the command name, which may itself hold spaces and parentheses.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().collect())
}

fn parse_ppid(stat: &str) -> Option<u32> {
    stat_fields(stat)?.get(1)?.parse().ok()
}

fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // After the name: state(0) ppid(1) … utime(11) stime(12).
    let fields = stat_fields(stat)?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Reads lines until `pick` accepts one (returning what it extracted), then keeps draining
/// the stream in the background so the child never blocks on a full pipe.
pub async fn wait_for_line<R, F>(name: &str, stream: R, mut pick: F) -> anyhow::Result<String>
where
    R: AsyncRead + Unpin + Send + 'static,
    F: FnMut(&str) -> Option<String>,
{
    let mut lines = BufReader::new(stream).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(READY_TIMEOUT, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(value) = pick(&line) {
                return Ok(Some(value));
            }
            seen.push(line);
        }
        Ok::<_, std::io::Error>(None)
    })
    .await;
    let value = match found {
        Ok(Ok(Some(value))) => value,
        Ok(Ok(None)) => bail!(
            "{name} exited before it was ready; it said:\n{}",
            seen.join("\n")
        ),
        Ok(Err(e)) => return Err(e).with_context(|| format!("reading from {name}")),
        Err(_) => bail!(
            "{name} was not ready within {READY_TIMEOUT:?}; it said:\n{}",
            seen.join("\n")
        ),
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(value)
}

/// Where the `portcullis` binary is: `--portcullis`, or `portcullis` in the release
/// directory next to this executable. Unless told not to, it is (re)built first with
/// `cargo build --release -p portcullis`, so the benchmark never measures a stale binary.
pub async fn locate_portcullis(explicit: Option<PathBuf>, build: bool) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        if !path.is_file() {
            bail!("--portcullis {}: no such file", path.display());
        }
        return Ok(path);
    }
    let exe = std::env::current_exe().context("cannot locate the benchmark's own executable")?;
    let dir = exe.parent().context("the executable has no directory")?;
    let release = match dir.file_name().and_then(|n| n.to_str()) {
        Some("release") => dir.to_path_buf(),
        _ => dir.parent().unwrap_or(dir).join("release"),
    };
    let path = release.join("portcullis");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if build && workspace.join("Cargo.toml").is_file() {
        cargo_build(&workspace).await?;
    }
    if !path.is_file() {
        bail!(
            "{} not found: build it with `cargo build --release -p portcullis`, or pass --portcullis PATH",
            path.display()
        );
    }
    Ok(path)
}

async fn cargo_build(workspace: &Path) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("portcullis-bench: cargo build --release -p portcullis");
    let mut child = Command::new(cargo)
        .args(["build", "--release", "-p", "portcullis"])
        .current_dir(workspace)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run cargo (pass --no-build and --portcullis PATH to skip building)")?;
    let status = tokio::time::timeout(BUILD_TIMEOUT, child.wait())
        .await
        .with_context(|| format!("cargo build took longer than {BUILD_TIMEOUT:?}"))?
        .context("waiting for cargo")?;
    if !status.success() {
        bail!("cargo build --release -p portcullis failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tportcullis\nVmPeak:\t  9000 kB\nVmRSS:\t    12345 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(12345));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn stat_is_read_past_a_name_with_spaces() {
        let stat = "42 (tokio (rt) w) S 7 42 42 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 3 0";
        assert_eq!(parse_ppid(stat), Some(7));
        assert_eq!(parse_cpu_ticks(stat), Some(281));
    }
}
