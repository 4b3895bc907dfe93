//! `portcullis stdio` driven line by line: a test writes JSON-RPC lines and reads the
//! NDJSON answers back, every read bounded.

use super::*;

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
