//! A kernel that refuses user namespaces: the sandbox degrades explicitly. Under
//! `sandbox.required = true` the server does not start and every call says why; without it
//! the server runs with the layers that remain (Landlock, seccomp, rlimits), which still keep
//! it from the host's files and network.
//!
//! The kernel's refusal is real, not simulated: the gateway runs inside a user namespace the
//! test makes (`unshare --user --map-root-user`) whose `user.max_user_namespaces` is 0, so
//! the sandbox's own `unshare(CLONE_NEWUSER)` fails exactly as on a hardened host.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Proc, portcullis_bin};

const WAIT: Duration = Duration::from_secs(20);

/// `portcullis stdio probe` in a user namespace that may create no more user namespaces.
struct NoUserns {
    stdin: std::process::ChildStdin,
    lines: mpsc::Receiver<String>,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

impl NoUserns {
    /// Starts it and sends `initialize` (which starts the server); returns its answer too.
    fn start(sandbox: &str) -> (NoUserns, Value) {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("portcullis.toml");
        std::fs::write(
            &config,
            format!(
                "[servers.probe]\ncommand = [\"portcullis\", \"fixture\", \"stdio\", \"--probes\"]\nsandbox = {sandbox}\n\n[[rules]]\nserver = \"probe\"\neffect = \"allow\"\n"
            ),
        )
        .expect("config");
        let log = dir.path().join("stderr.log");
        let mut cmd = Command::new("unshare");
        cmd.args(["--user", "--map-root-user", "sh", "-c"])
            .arg("echo 0 > /proc/sys/user/max_user_namespaces && exec \"$0\" \"$@\"")
            .arg(portcullis_bin())
            .args(["stdio", "probe", "--config"])
            .arg(&config)
            .env(
                "PORTCULLIS_STATE",
                format!("sqlite:{}", dir.path().join("state.db").display()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log"))
            .process_group(0);
        let mut child = cmd.spawn().expect("unshare (util-linux) runs");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut gw = NoUserns {
            stdin,
            lines,
            _proc: Proc {
                child,
                stderr_log: log,
            },
            _dir: dir,
        };
        let init = gw.request(
            1,
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
        );
        gw.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        (gw, init)
    }

    fn send(&mut self, msg: Value) {
        writeln!(self.stdin, "{msg}").expect("write");
    }

    fn request(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let line = self
                .lines
                .recv_timeout(WAIT)
                .unwrap_or_else(|_| panic!("no answer to {method}: {}", self._proc.stderr()));
            let msg: Value = serde_json::from_str(&line).expect("JSON");
            if msg["id"] == json!(id) {
                return msg;
            }
        }
    }

    fn probe(&mut self, id: u64, tool: &str, args: Value) -> String {
        let r = self.request(id, "tools/call", json!({"name": tool, "arguments": args}));
        r["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("{tool}: {r}"))
            .to_owned()
    }
}

#[test]
fn a_required_sandbox_that_cannot_be_enforced_refuses_to_start_the_server() {
    let (_gw, init) = NoUserns::start("{ required = true }");
    let message = init["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("the server started: {init}"));
    assert!(
        message.contains("cannot be fully enforced") && message.contains("namespaces"),
        "{message}"
    );
}

#[test]
fn without_namespaces_landlock_and_seccomp_still_hold() {
    let secret_dir = tempfile::tempdir().expect("tempdir");
    let secret = secret_dir.path().join("id_rsa");
    std::fs::write(&secret, "PRIVATE KEY").expect("write");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();

    let (mut gw, init) = NoUserns::start("{ required = false }");
    assert!(init.get("result").is_some(), "{init}");
    let pids = gw.probe(2, "probe_pids", json!({}));
    assert!(
        pids.starts_with("OK") && !pids.contains("pid 1 "),
        "a PID namespace appeared: {pids}"
    );
    let read = gw.probe(
        3,
        "probe_read",
        json!({"path": secret.display().to_string()}),
    );
    assert!(read.starts_with("DENIED EACCES"), "{read}");
    let write = gw.probe(
        4,
        "probe_write",
        json!({"path": secret_dir.path().join("dropped").display().to_string()}),
    );
    assert!(write.starts_with("DENIED"), "{write}");
    assert!(!secret_dir.path().join("dropped").exists());
    let connect = gw.probe(
        5,
        "probe_connect",
        json!({"host": "127.0.0.1", "port": port, "timeout_ms": 1000}),
    );
    assert!(connect.starts_with("DENIED EACCES"), "{connect}");
    assert!(
        listener.accept().is_err(),
        "the server reached the host's listener"
    );
    let ptrace = gw.probe(6, "probe_ptrace", json!({}));
    assert!(ptrace.starts_with("DENIED EPERM"), "{ptrace}");
}
