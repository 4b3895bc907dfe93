//! Shared test support: the real `portcullis` binary, the bundled fixture server, and the
//! real MCP peers installed by `scripts/install-peers` (Node 22, npm packages, a Python venv).
//! [`browser`] drives headless Chromium (Debian's `chromium`, which `scripts/install-peers`
//! installs as root) over the DevTools protocol, for the gateway's browser pages.
//! `http`: raw HTTP and SSE to an MCP endpoint; `stdio`: `portcullis stdio` line by line;
//! `peers`: the official SDK peers and server-everything; `steps`: scripted Python SDK
//! sessions; `oauth`: a real authorization server; `sandbox`: namespaces and traps.
//!
//! Every process started here is killed (with its process group) when its handle drops, and
//! every wait is bounded, so a broken gateway fails a test instead of hanging CI.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub mod browser;
pub mod oauth;
pub mod sandbox;
pub mod steps;

mod http;
mod peers;
mod stdio;
// Not every test binary uses every part.
#[allow(unused_imports)]
pub use http::*;
#[allow(unused_imports)]
pub use peers::*;
#[allow(unused_imports)]
pub use stdio::*;

/// How long a process may take to print its address.
const STARTUP: Duration = Duration::from_secs(30);

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// Where `scripts/install-peers` put the real peers. Tests that need them fail with a clear
/// message when they are missing: the README's test command installs them.
pub fn peers() -> PathBuf {
    let dir = std::env::var_os("PORTCULLIS_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".peers"));
    assert!(
        dir.join("stamp").exists(),
        "the MCP test peers are not installed in {}: run scripts/install-peers (scripts/test does)",
        dir.display()
    );
    dir
}

pub fn python() -> PathBuf {
    peers().join("venv/bin/python")
}

pub fn node22() -> PathBuf {
    peers().join("node22/node_modules/.bin/node")
}

/// A file inside the installed npm packages, e.g. `@modelcontextprotocol/server-everything/dist/index.js`.
pub fn node_module(rel: &str) -> PathBuf {
    peers().join("npm/node_modules").join(rel)
}

pub fn portcullis_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_portcullis"))
}

/// A child process killed with its whole process group on drop.
pub struct Proc {
    pub child: Child,
    pub stderr_log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        // The child leads its own group (process_group(0)): kill the group, then reap.
        // (Never shell out to kill(1) for this: procps-ng 4.0.2 reads `kill -KILL -19870` as
        // kill(-1), which is every process on the machine.)
        kill_group(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// The process's stderr so far (it is written to a file), for failure messages.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }
}

/// SIGKILL to the process group led by `pid` (never to anything else: a pid that does not
/// fit, or is 0 or 1, is ignored).
pub fn kill_group(pid: u32) {
    match i32::try_from(pid) {
        Ok(p) if p > 1 => {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        _ => {}
    }
}

/// Spawns `cmd` in its own process group (stdout piped, stderr to a file) and waits for the
/// first line on either stream that contains `marker`.
fn spawn_until(mut cmd: Command, marker: &str, dir: &Path) -> (Proc, String) {
    use std::os::unix::process::CommandExt;
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let log = dir.join(format!("stderr-{n}.log"));
    let err = std::fs::File::create(&log).expect("stderr log");
    cmd.stdout(Stdio::piped())
        .stderr(err)
        .stdin(Stdio::null())
        .process_group(0);
    let mut child = cmd.spawn().expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let wanted = marker.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(&wanted) {
                let _ = tx.send(line);
            }
        }
    });
    let mut proc = Proc {
        child,
        stderr_log: log,
    };
    let deadline = std::time::Instant::now() + STARTUP;
    loop {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(50)) {
            return (proc, line);
        }
        if let Some(line) = proc.stderr().lines().find(|l| l.contains(marker)) {
            return (proc, line.to_owned());
        }
        if let Ok(Some(status)) = proc.child.try_wait() {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                return (proc, line);
            }
            panic!(
                "process exited ({status}) before printing {marker:?}; stderr:\n{}",
                proc.stderr()
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "process did not print {marker:?} in time; stderr:\n{}",
            proc.stderr()
        );
    }
}

/// Points a command's default state store (`gateway.state` when a config does not set it)
/// at the test target's scratch directory instead of the user's `~/.local/state`. Every
/// gateway a test starts, directly or through a peer that launches it, goes through this.
pub fn isolate_state(cmd: &mut Command) -> &mut Command {
    cmd.env("XDG_STATE_HOME", test_state_home())
}

/// The default state directory of this test process, `<tmp>/state-runs/<pid>`: one per
/// process, because the definitions one test binary's servers get pinned under a name (the
/// gateway pins tool definitions on first sight) must not meet another binary's server of
/// the same name, nor a later run's after a server changed. Directories of test processes
/// that are gone are removed the first time.
fn test_state_home() -> &'static Path {
    static HOME: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    HOME.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("state-runs");
        for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let gone = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<u32>().ok())
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
            if gone {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        root.join(std::process::id().to_string())
    })
}

/// The `[egress]` section the test gateways get when their config has none: the loopback
/// servers that stand in for the internet here (fixture servers, the local authorization
/// server, oidc-provider) are reached over plain http on 127.0.0.1, which the egress guard
/// refuses by default. Opening loopback explicitly, in the config text, keeps the gateway
/// under test the production binary with its production defaults: nothing in the gateway
/// knows it is being tested. A test about the guard itself writes its own `[egress]` (even an
/// empty one) and gets exactly that.
pub const LOOPBACK_EGRESS: &str = "[egress]\nallow = [\"127.0.0.0/8\", \"::1/128\"]\nhttp = [\"127.0.0.1\", \"localhost\", \"::1\"]\n";

/// `config` with [`LOOPBACK_EGRESS`] appended, unless it has an `[egress]` section already.
pub fn with_loopback_egress(config: &str) -> String {
    let has_egress = config
        .lines()
        .any(|l| l.trim_start().starts_with("[egress]"));
    if has_egress {
        config.to_owned()
    } else {
        format!("{config}\n{LOOPBACK_EGRESS}")
    }
}

/// A running `portcullis serve` with a config written to a temporary directory.
pub struct Gateway {
    pub proc: Proc,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub dir: tempfile::TempDir,
}

impl Gateway {
    /// Starts `portcullis serve` on a free loopback port with this config text.
    pub fn start(config: &str) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("portcullis.toml");
        std::fs::write(&path, with_loopback_egress(config)).expect("write config");
        let mut cmd = Command::new(portcullis_bin());
        isolate_state(&mut cmd);
        cmd.args(["serve", "--config"])
            .arg(&path)
            .args(["--listen", "127.0.0.1:0"]);
        cmd.env(
            "PORTCULLIS_LOG",
            std::env::var("PORTCULLIS_LOG").unwrap_or_else(|_| "info".into()),
        );
        let (proc, line) = spawn_until(cmd, "Portcullis is listening on", dir.path());
        let base = line.rsplit(' ').next().expect("address").trim().to_owned();
        Gateway { proc, base, dir }
    }

    /// [`Gateway::start`] with extra environment variables for the gateway process (e.g.
    /// `PORTCULLIS_STATE`).
    pub fn start_with_env(config: &str, env: &[(&str, &std::ffi::OsStr)]) -> Gateway {
        Self::start_on(config, 0, env)
    }

    /// [`Gateway::start_with_env`] on a chosen loopback port (0: a free one), for a test
    /// that must register the gateway's URLs somewhere before it starts.
    pub fn start_on(config: &str, port: u16, env: &[(&str, &std::ffi::OsStr)]) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("portcullis.toml");
        std::fs::write(&path, with_loopback_egress(config)).expect("write config");
        let mut cmd = Command::new(portcullis_bin());
        cmd.args(["serve", "--config"])
            .arg(&path)
            .args(["--listen", &format!("127.0.0.1:{port}")]);
        cmd.env(
            "PORTCULLIS_LOG",
            std::env::var("PORTCULLIS_LOG").unwrap_or_else(|_| "info".into()),
        );
        for (k, v) in env {
            cmd.env(k, v);
        }
        let (proc, line) = spawn_until(cmd, "Portcullis is listening on", dir.path());
        let base = line.rsplit(' ').next().expect("address").trim().to_owned();
        Gateway { proc, base, dir }
    }

    pub fn url(&self, route: &str) -> String {
        format!("{}/mcp/{route}", self.base)
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("portcullis.toml")
    }
}

/// A running fixture server over HTTP (`portcullis fixture http`).
pub struct FixtureHttp {
    pub proc: Proc,
    /// `http://127.0.0.1:PORT/mcp`
    pub url: String,
    pub dir: tempfile::TempDir,
}

impl FixtureHttp {
    pub fn start(extra: &[&str]) -> FixtureHttp {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new(portcullis_bin());
        cmd.args(["fixture", "http", "--listen", "127.0.0.1:0"])
            .args(extra);
        let (proc, line) = spawn_until(cmd, "listening on http://", dir.path());
        let url = line
            .split("listening on ")
            .nth(1)
            .expect("url")
            .trim()
            .to_owned();
        FixtureHttp { proc, url, dir }
    }
}

/// A private directory for one test's state database, which outlives the gateways and
/// commands the test runs on it (pins, grants and the audit log are state).
pub struct StateDir {
    pub dir: tempfile::TempDir,
}

impl StateDir {
    pub fn new() -> StateDir {
        StateDir {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// The database file.
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("state.db")
    }

    /// `[gateway]` with `state` set to [`StateDir::db`], for the top of a config.
    pub fn gateway_section(&self) -> String {
        format!("[gateway]\nstate = \"sqlite:{}\"\n\n", self.db().display())
    }
}

/// A config fragment for the bundled fixture over stdio.
pub fn fixture_stdio_server(name: &str) -> String {
    format!(
        "[servers.{name}]\ncommand = [\"{}\", \"fixture\", \"stdio\"]\n",
        portcullis_bin().display()
    )
}

/// Runs a command to completion with a deadline; returns (status ok, stdout, stderr).
pub fn run_with_timeout(cmd: Command, timeout: Duration) -> (bool, String, String) {
    let (code, stdout, stderr) = run_code_with_timeout(cmd, timeout);
    (code == Some(0), stdout, stderr)
}

/// How long a test waits for one message, one HTTP answer or one process exit.
pub const WAIT: Duration = Duration::from_secs(20);

/// A config fragment for the bundled fixture over stdio whose stdin is also appended to
/// `tap` (through `tee`), so a test can see exactly what the gateway sent upstream. The
/// tap's directory is the sandbox's one writable path.
pub fn tapped_fixture_server(name: &str, tap: &Path) -> String {
    format!(
        "[servers.{name}]\ncommand = ['/bin/sh', '-c', 'tee -a \"$0\" | exec \"$1\" fixture stdio', '{}', '{}']\npinning = 'off'\nsandbox = {{ write = ['{}'] }}\n",
        tap.display(),
        portcullis_bin().display(),
        tap.parent().unwrap_or(Path::new("/")).display(),
    )
}

/// The JSON-RPC messages a tapped upstream received so far (see [`tapped_fixture_server`]).
pub fn tap_messages(tap: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(tap)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs a command to completion with a deadline; returns (exit code, stdout, stderr).
pub fn run_code_with_timeout(mut cmd: Command, timeout: Duration) -> (Option<i32>, String, String) {
    use std::os::unix::process::CommandExt;
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .process_group(0);
    let child = cmd.spawn().expect("spawn");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(out)) => (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
        _ => {
            kill_group(pid);
            panic!("command timed out after {timeout:?}");
        }
    }
}

/// The names (or URIs) of a list result's items.
pub fn item_names(result: &serde_json::Value, items: &str, key: &str) -> Vec<String> {
    result[items]
        .as_array()
        .unwrap_or_else(|| panic!("no {items} array in {result}"))
        .iter()
        .map(|t| t[key].as_str().expect("item name").to_owned())
        .collect()
}
