//! Shared test support: the real `portcullis` binary, the bundled fixture server, and the
//! real MCP peers installed by `scripts/install-peers` (Node 22, npm packages, a Python venv).
//! [`browser`] drives headless Chromium (Debian's `chromium`, which `scripts/install-peers`
//! installs as root) over the DevTools protocol, for the gateway's browser pages.
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

/// One HTTP answer from an MCP endpoint, with the JSON-RPC messages it carried (a JSON body,
/// or every `data:` of an SSE body).
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
    pub messages: Vec<serde_json::Value>,
}

impl HttpAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The JSON-RPC response (the message with an id and a result or error).
    pub fn response(&self) -> &serde_json::Value {
        self.messages
            .iter()
            .find(|m| {
                m.get("id").is_some() && (m.get("result").is_some() || m.get("error").is_some())
            })
            .unwrap_or_else(|| panic!("no JSON-RPC response in: {}", self.body))
    }
}

/// A raw Streamable HTTP client: it sends exactly the bytes and headers a test gives it.
pub struct RawHttp {
    pub client: reqwest::Client,
    pub url: String,
    pub session: Option<String>,
    pub version: Option<String>,
}

impl RawHttp {
    pub fn new(url: &str) -> RawHttp {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        RawHttp {
            client,
            url: url.to_owned(),
            session: None,
            version: None,
        }
    }

    /// POSTs `body` with the usual headers; `extra` adds headers and replaces any usual one
    /// of the same name.
    pub async fn post_with(&self, body: impl Into<String>, extra: &[(&str, &str)]) -> HttpAnswer {
        use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert(
            "accept",
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        if let Some(s) = &self.session {
            headers.insert(
                "mcp-session-id",
                HeaderValue::from_str(s).expect("session id"),
            );
        }
        if let Some(v) = &self.version {
            headers.insert(
                "mcp-protocol-version",
                HeaderValue::from_str(v).expect("version"),
            );
        }
        for (k, v) in extra {
            let name = HeaderName::from_bytes(k.as_bytes()).expect("header name");
            headers.insert(name, HeaderValue::from_str(v).expect("header value"));
        }
        let resp = self
            .client
            .post(&self.url)
            .headers(headers)
            .body(body.into())
            .send()
            .await
            .expect("POST");
        answer(resp).await
    }

    pub async fn post(&self, body: impl Into<String>) -> HttpAnswer {
        self.post_with(body, &[]).await
    }

    /// initialize + notifications/initialized; remembers the session id and version.
    pub async fn initialize(&mut self, capabilities: serde_json::Value) -> serde_json::Value {
        let body = serde_json::json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": { "protocolVersion": "2025-11-25", "capabilities": capabilities,
                        "clientInfo": { "name": "portcullis-tests", "version": "0" } }
        });
        let a = self.post(body.to_string()).await;
        assert_eq!(a.status, 200, "initialize failed: {}", a.body);
        self.session = a.header("mcp-session-id").map(str::to_owned);
        assert!(self.session.is_some(), "no session id in {:?}", a.headers);
        let result = a.response()["result"].clone();
        self.version = result["protocolVersion"].as_str().map(str::to_owned);
        let n = self
            .post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await;
        assert_eq!(n.status, 202, "initialized: {}", n.body);
        result
    }

    /// Sends a request and returns its JSON-RPC response message.
    pub async fn request(
        &self,
        id: i64,
        method: &str,
        params: serde_json::Value,
    ) -> serde_json::Value {
        let body =
            serde_json::json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let a = self.post(body.to_string()).await;
        assert_eq!(a.status, 200, "{method} failed: {}", a.body);
        a.response().clone()
    }
}

pub async fn answer(resp: reqwest::Response) -> HttpAnswer {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().await.unwrap_or_default();
    let is_sse = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let messages = if is_sse {
        body.split("\n\n")
            .filter_map(|event| {
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:").map(str::trim_start))
                    .collect();
                (!data.is_empty()).then(|| data.join("\n"))
            })
            .filter(|d| !d.is_empty())
            .filter_map(|d| serde_json::from_str(&d).ok())
            .collect()
    } else {
        serde_json::from_str::<serde_json::Value>(&body)
            .map(|v| vec![v])
            .unwrap_or_default()
    };
    HttpAnswer {
        status,
        headers,
        body,
        messages,
    }
}

// ---------------------------------------------------------------------------------------------
// Additions for the adversarial and policy suites (additive: nothing above depends on them).
// ---------------------------------------------------------------------------------------------

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

/// `portcullis stdio <route> --config F` with piped stdin and stdout: a test writes lines
/// and reads NDJSON lines back, each read bounded by [`WAIT`].
pub struct StdioGateway {
    stdin: Option<std::process::ChildStdin>,
    lines: mpsc::Receiver<String>,
    /// Messages read while looking for something else (see [`StdioGateway::response`]).
    pub skipped: Vec<serde_json::Value>,
    pub proc: Proc,
    pub dir: tempfile::TempDir,
}

impl StdioGateway {
    pub fn start(config: &str, route: &str) -> StdioGateway {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("portcullis.toml");
        std::fs::write(&path, with_loopback_egress(config)).expect("write config");
        let log = dir.path().join("stderr.log");
        let err = std::fs::File::create(&log).expect("stderr log");
        let mut cmd = Command::new(portcullis_bin());
        isolate_state(&mut cmd);
        cmd.args(["stdio", route, "--config"])
            .arg(&path)
            .env(
                "PORTCULLIS_LOG",
                std::env::var("PORTCULLIS_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err)
            .process_group(0);
        let mut child = cmd.spawn().expect("spawn portcullis stdio");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        StdioGateway {
            stdin,
            lines: rx,
            skipped: Vec::new(),
            proc: Proc {
                child,
                stderr_log: log,
            },
            dir,
        }
    }

    pub fn stderr(&self) -> String {
        self.proc.stderr()
    }

    /// Writes raw bytes (the caller includes the newline).
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        stdin
            .write_all(bytes)
            .expect("write to the gateway's stdin");
        stdin.flush().expect("flush the gateway's stdin");
    }

    /// Writes one line.
    pub fn send(&mut self, line: &str) {
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        self.send_bytes(&bytes);
    }

    pub fn send_json(&mut self, msg: &serde_json::Value) {
        self.send(&msg.to_string());
    }

    /// The next line, or None if nothing comes within `wait` (or stdout closed).
    pub fn try_recv_line(&self, wait: Duration) -> Option<String> {
        self.lines.recv_timeout(wait).ok()
    }

    /// The next line; fails the test (with the gateway's stderr) if none comes in time.
    pub fn recv_line(&self) -> String {
        match self.lines.recv_timeout(WAIT) {
            Ok(line) => line,
            Err(e) => panic!(
                "no line from portcullis stdio within {WAIT:?} ({e}); stderr:\n{}",
                self.stderr()
            ),
        }
    }

    /// The next line, parsed as JSON.
    pub fn recv(&self) -> serde_json::Value {
        let line = self.recv_line();
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"))
    }

    /// Reads until the response with this id (other messages go to `skipped`).
    pub fn response(&mut self, id: &serde_json::Value) -> serde_json::Value {
        loop {
            let msg = self.recv();
            let is_response = msg.get("result").is_some() || msg.get("error").is_some();
            if is_response && msg.get("id") == Some(id) {
                return msg;
            }
            self.skipped.push(msg);
        }
    }

    /// Sends a request and returns its response.
    pub fn request(
        &mut self,
        id: i64,
        method: &str,
        params: serde_json::Value,
    ) -> serde_json::Value {
        self.send_json(
            &serde_json::json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }),
        );
        self.response(&serde_json::json!(id))
    }

    /// initialize (at `version`) + notifications/initialized; returns the initialize result.
    pub fn initialize(
        &mut self,
        version: &str,
        capabilities: serde_json::Value,
    ) -> serde_json::Value {
        let r = self.request(
            0,
            "initialize",
            serde_json::json!({ "protocolVersion": version, "capabilities": capabilities,
                                "clientInfo": { "name": "portcullis-tests", "version": "0" } }),
        );
        assert!(r.get("result").is_some(), "initialize failed: {r}");
        self.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        r["result"].clone()
    }

    /// Closes stdin (the host hangs up).
    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Waits (bounded) for the process to exit after stdin closed; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.proc.child.try_wait() {
                return status.code();
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for StdioGateway {
    fn drop(&mut self) {
        // Hang up first so the gateway stops its upstream children itself; then `proc`'s own
        // drop kills whatever is left of the group.
        self.stdin.take();
        let _ = self.wait_exit(Duration::from_secs(3));
    }
}

/// One event of an SSE response.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: Option<String>,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.data).ok()
    }
}

/// An SSE response read incrementally, each wait bounded (for streams that stay open).
pub struct SseReader {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    resp: reqwest::Response,
    buf: String,
    ended: bool,
}

impl SseReader {
    pub fn new(resp: reqwest::Response) -> SseReader {
        SseReader {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            resp,
            buf: String::new(),
            ended: false,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The next event with data or an id (comments and keep-alives skipped): Ok(None) at the
    /// end of the stream, Err(()) if nothing came within `wait`. A JSON (not SSE) answer is
    /// returned as one event holding the whole body.
    pub async fn next_within(&mut self, wait: Duration) -> Result<Option<Event>, ()> {
        let deadline = tokio::time::Instant::now() + wait;
        let is_sse = self
            .header("content-type")
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_sse {
            while !self.ended {
                match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                    Err(_) => return Err(()),
                    Ok(Ok(Some(chunk))) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                    Ok(Ok(None)) | Ok(Err(_)) => self.ended = true,
                }
            }
            let body = std::mem::take(&mut self.buf);
            return Ok((!body.is_empty()).then_some(Event {
                id: None,
                data: body,
            }));
        }
        loop {
            let normalized = self.buf.replace("\r\n", "\n");
            if let Some(end) = normalized.find("\n\n") {
                let block = normalized[..end].to_owned();
                self.buf = normalized[end + 2..].to_owned();
                let mut id = None;
                let mut data: Vec<&str> = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim_start().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if id.is_none() && data.is_empty() {
                    continue;
                }
                return Ok(Some(Event {
                    id,
                    data: data.join("\n"),
                }));
            }
            if self.ended {
                return Ok(None);
            }
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Err(_) => return Err(()),
                Ok(Ok(Some(chunk))) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(Ok(None)) | Ok(Err(_)) => self.ended = true,
            }
        }
    }

    /// The next event; fails the test if none comes within [`WAIT`].
    pub async fn next(&mut self) -> Option<Event> {
        self.next_within(WAIT)
            .await
            .unwrap_or_else(|()| panic!("no SSE event within {WAIT:?}"))
    }

    /// The next JSON-RPC message (events without data are skipped).
    pub async fn next_message(&mut self) -> Option<serde_json::Value> {
        loop {
            let event = self.next().await?;
            if event.data.is_empty() {
                continue;
            }
            return Some(
                event
                    .json()
                    .unwrap_or_else(|| panic!("SSE data is not JSON: {}", event.data)),
            );
        }
    }

    /// Every remaining event until the stream ends (bounded by [`WAIT`] per event).
    pub async fn rest(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(e) = self.next().await {
            out.push(e);
        }
        out
    }
}

impl RawHttp {
    /// A request with the session and version headers (when set), then `extra`, each of
    /// which *replaces* any header of the same name (reqwest's `header` would append a
    /// second one instead).
    fn with_headers(
        &self,
        mut req: reqwest::RequestBuilder,
        extra: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        if let Some(v) = &self.version {
            req = req.header("mcp-protocol-version", v);
        }
        let mut map = reqwest::header::HeaderMap::new();
        for (k, v) in extra {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes()).expect("header name");
            let value = reqwest::header::HeaderValue::from_str(v).expect("header value");
            map.insert(name, value);
        }
        req.headers(map)
    }

    /// POSTs `body` with the usual headers, each header of `extra` replacing the usual one
    /// of its name (unlike [`RawHttp::post_with`], which sends both).
    pub async fn post_exact(&self, body: impl Into<String>, extra: &[(&str, &str)]) -> HttpAnswer {
        self.post_bytes(body.into().into_bytes(), extra).await
    }

    /// POSTs raw bytes (which need not be UTF-8) with the usual headers, `extra` replacing.
    pub async fn post_bytes(&self, body: Vec<u8>, extra: &[(&str, &str)]) -> HttpAnswer {
        let req = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        let resp = self
            .with_headers(req, extra)
            .body(body)
            .send()
            .await
            .expect("POST");
        answer(resp).await
    }

    /// POSTs `body` and returns the answer unread, for streams read event by event.
    pub async fn post_stream(&self, body: impl Into<String>, extra: &[(&str, &str)]) -> SseReader {
        let req = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        let resp = self
            .with_headers(req, extra)
            .body(body.into())
            .send()
            .await
            .expect("POST");
        SseReader::new(resp)
    }

    /// GET with `Accept: text/event-stream` (unless `extra` overrides it), unread.
    pub async fn get_stream(&self, extra: &[(&str, &str)]) -> SseReader {
        let req = self
            .client
            .get(&self.url)
            .header("accept", "text/event-stream");
        let resp = self.with_headers(req, extra).send().await.expect("GET");
        SseReader::new(resp)
    }

    /// GET, read to the end (for answers that end: errors, resumption of finished streams).
    pub async fn get_with(&self, extra: &[(&str, &str)]) -> HttpAnswer {
        let req = self
            .client
            .get(&self.url)
            .header("accept", "text/event-stream");
        let resp = self.with_headers(req, extra).send().await.expect("GET");
        answer(resp).await
    }

    pub async fn delete_with(&self, extra: &[(&str, &str)]) -> HttpAnswer {
        let req = self.client.delete(&self.url);
        let resp = self.with_headers(req, extra).send().await.expect("DELETE");
        answer(resp).await
    }

    /// Sends a request and returns the whole HTTP answer (status not checked).
    pub async fn request_answer(
        &self,
        id: i64,
        method: &str,
        params: serde_json::Value,
    ) -> HttpAnswer {
        let body =
            serde_json::json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        self.post(body.to_string()).await
    }

    /// `tools/call` and its JSON-RPC response.
    pub async fn call_tool(
        &self,
        id: i64,
        name: &str,
        args: serde_json::Value,
    ) -> serde_json::Value {
        self.request(
            id,
            "tools/call",
            serde_json::json!({ "name": name, "arguments": args }),
        )
        .await
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

// ---------------------------------------------------------------------------------------------
// Additions for the real-peer suites (python_sdk.rs, server_everything.rs); additive only.
// ---------------------------------------------------------------------------------------------

/// A file under `crates/gateway/tests/peers/` (the peer client scripts and their helpers).
pub fn peer_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers")
        .join(name)
}

/// The entry point of `@modelcontextprotocol/server-everything` (`… stdio` or
/// `… streamableHttp`), run with [`node22`].
pub fn server_everything_js() -> PathBuf {
    node_module("@modelcontextprotocol/server-everything/dist/index.js")
}

/// `@modelcontextprotocol/server-everything` serving Streamable HTTP on a free loopback port.
///
/// The server itself calls `app.listen(PORT)` (every interface); `tests/peers/loopback-listen.cjs`
/// is preloaded to bind 127.0.0.1 instead and to print the port it got for `PORT=0`.
pub struct EverythingHttp {
    pub proc: Proc,
    /// `http://127.0.0.1:PORT/mcp`
    pub url: String,
    pub dir: tempfile::TempDir,
}

impl EverythingHttp {
    pub fn start() -> EverythingHttp {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new(node22());
        cmd.arg("--require")
            .arg(peer_script("loopback-listen.cjs"))
            .arg(server_everything_js())
            .arg("streamableHttp")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("PORT", "0");
        let (proc, line) = spawn_until(cmd, "portcullis-e2e: listening on http://", dir.path());
        let base = line
            .split("listening on ")
            .nth(1)
            .expect("address")
            .trim()
            .to_owned();
        EverythingHttp {
            proc,
            url: format!("{base}/mcp"),
            dir,
        }
    }
}

/// Where a peer client connects: a Streamable HTTP URL, or a command it launches and talks to
/// over stdio (e.g. `portcullis stdio <route> --config F`).
pub enum PeerTarget {
    Url(String),
    Stdio(Vec<std::ffi::OsString>),
}

impl PeerTarget {
    /// `portcullis stdio <route> --config <config>`.
    pub fn portcullis_stdio(route: &str, config: &Path) -> PeerTarget {
        PeerTarget::Stdio(vec![
            portcullis_bin().into(),
            "stdio".into(),
            route.into(),
            "--config".into(),
            config.into(),
        ])
    }
}

/// The longest a Python peer run may take, end to end (its own steps have 30 s deadlines and
/// the whole run 150 s, so this only fires if the interpreter itself wedges).
pub const PYTHON_PEER_TIMEOUT: Duration = Duration::from_secs(180);

/// Runs `tests/peers/mcp_client.py` (the official Python SDK client) against `target` and
/// returns the JSON summary it prints. `extra` goes to the script as is.
pub fn run_python_client(
    scenario: &str,
    mode: &str,
    target: &PeerTarget,
    extra: &[&str],
) -> serde_json::Value {
    let mut args = vec![
        "--scenario",
        scenario,
        "--mode",
        mode,
        "--total-timeout",
        "150",
    ];
    args.extend_from_slice(extra);
    run_python_peer("mcp_client.py", &args, target)
}

/// Runs a Python peer script of `tests/peers/` with `args` against `target` and returns the
/// JSON summary it prints as its last line of stdout (with its stderr's tail added as
/// `peer_stderr`).
pub fn run_python_peer(script: &str, args: &[&str], target: &PeerTarget) -> serde_json::Value {
    let mut cmd = Command::new(python());
    isolate_state(&mut cmd);
    cmd.arg(peer_script(script))
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    match target {
        PeerTarget::Url(url) => {
            cmd.args(["--url", url]);
        }
        PeerTarget::Stdio(argv) => {
            cmd.arg("--stdio").args(argv);
        }
    }
    let (_, stdout, stderr) = run_with_timeout(cmd, PYTHON_PEER_TIMEOUT);
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty());
    match last.map(serde_json::from_str::<serde_json::Value>) {
        Some(Ok(mut summary)) => {
            // Its stderr (and that of a `portcullis stdio` it launched), for failure messages.
            let tail = stderr
                .char_indices()
                .rev()
                .nth(8000)
                .map_or(&stderr[..], |(i, _)| &stderr[i..]);
            summary["peer_stderr"] = serde_json::Value::String(tail.to_owned());
            summary
        }
        _ => panic!(
            "the Python peer printed no JSON summary\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        ),
    }
}

/// What a Python peer run reported (see `tests/peers/mcp_client.py`): each step is
/// `{"ok": result}`, `{"error": {code, message, data}}`, `{"exception": text}` or
/// `{"timeout": seconds}`. The accessors panic with the step and the peer's stderr.
pub struct PeerSummary(pub serde_json::Value);

impl PeerSummary {
    /// Why an accessor failed: the step as recorded, and the tail of the peer's stderr.
    pub fn explain(&self, step: &str, what: &str) -> String {
        let record = self.0["steps"].get(step).map(|r| {
            let s = r.to_string();
            if s.len() > 4000 {
                format!("{}…", &s[..s.floor_char_boundary(4000)])
            } else {
                s
            }
        });
        let mut failures = String::new();
        for key in ["connect", "run", "close", "transport_errors"] {
            if let Some(v) = self.0.get(key) {
                failures.push_str(&format!("{key}: {v}\n"));
            }
        }
        format!(
            "{what}\nstep {step:?}: {}\nprotocol_version: {}\n{failures}--- peer stderr (tail)\n{}",
            record.unwrap_or_else(|| "<never ran>".into()),
            self.0["protocol_version"],
            self.0["peer_stderr"].as_str().unwrap_or_default(),
        )
    }

    #[track_caller]
    pub fn step(&self, step: &str) -> &serde_json::Value {
        let Some(record) = self.0["steps"].get(step) else {
            panic!("{}", self.explain(step, "the step never ran"))
        };
        record
    }

    /// The result of a step that must have succeeded (no JSON-RPC error, no exception).
    #[track_caller]
    pub fn ok(&self, step: &str) -> &serde_json::Value {
        let Some(result) = self.step(step).get("ok") else {
            panic!("{}", self.explain(step, "the step did not succeed"))
        };
        result
    }

    /// The JSON-RPC error of a step that must have failed with one.
    #[track_caller]
    pub fn error(&self, step: &str) -> &serde_json::Value {
        let Some(error) = self.step(step).get("error") else {
            panic!("{}", self.explain(step, "the step got no JSON-RPC error"))
        };
        error
    }

    /// The text blocks of a successful step's `content`, joined with newlines.
    #[track_caller]
    pub fn text(&self, step: &str) -> String {
        let Some(content) = self.ok(step)["content"].as_array() else {
            panic!("{}", self.explain(step, "the result has no content"))
        };
        content
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A successful tool call that is not a tool error (`isError` absent or false).
    #[track_caller]
    pub fn tool_ok(&self, step: &str) -> &serde_json::Value {
        let result = self.ok(step);
        assert!(
            !result["isError"].as_bool().unwrap_or(false),
            "{}",
            self.explain(step, "the tool reported isError")
        );
        result
    }

    /// The session opened, ran and closed without a transport failure.
    #[track_caller]
    pub fn assert_clean_run(&self) {
        for key in ["connect", "run", "close"] {
            assert!(
                self.0.get(key).is_none(),
                "{}",
                self.explain(key, &format!("the peer failed to {key}: {}", self.0[key]))
            );
        }
        assert_eq!(
            self.0["transport_errors"],
            serde_json::json!([]),
            "{}",
            self.explain("-", "the peer saw transport errors")
        );
    }

    /// The names (or URIs) of the items of a successful list step.
    #[track_caller]
    pub fn names(&self, step: &str, items: &str, key: &str) -> Vec<String> {
        item_names(self.ok(step), items, key)
    }

    /// A top-level list the peer recorded (`logs`, `notifications`, `sampling_requests`, …).
    pub fn seen(&self, key: &str) -> &[serde_json::Value] {
        self.0[key]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}
