//! Shared test support: the real `portcullis` binary, the bundled fixture server, and the
//! real MCP peers installed by `scripts/install-peers` (Node 22, npm packages, a Python venv).
//!
//! Every process started here is killed (with its process group) when its handle drops, and
//! every wait is bounded, so a broken gateway fails a test instead of hanging CI.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

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
    let proc = Proc {
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
        assert!(
            std::time::Instant::now() < deadline,
            "process did not print {marker:?} in time; stderr:\n{}",
            proc.stderr()
        );
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
        std::fs::write(&path, config).expect("write config");
        let mut cmd = Command::new(portcullis_bin());
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

/// A config fragment for the bundled fixture over stdio.
pub fn fixture_stdio_server(name: &str) -> String {
    format!(
        "[servers.{name}]\ncommand = [\"{}\", \"fixture\", \"stdio\"]\n",
        portcullis_bin().display()
    )
}

/// Runs a command to completion with a deadline; returns (status ok, stdout, stderr).
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> (bool, String, String) {
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
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
        _ => {
            kill_group(pid);
            panic!("command timed out after {timeout:?}");
        }
    }
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

    /// POSTs `body` with the usual headers plus `extra` (which may override them).
    pub async fn post_with(&self, body: impl Into<String>, extra: &[(&str, &str)]) -> HttpAnswer {
        let mut req = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        if let Some(v) = &self.version {
            req = req.header("mcp-protocol-version", v);
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let resp = req.body(body.into()).send().await.expect("POST");
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
