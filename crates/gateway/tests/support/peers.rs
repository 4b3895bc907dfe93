//! The real MCP peers `scripts/install-peers` puts in `.peers/`: the Python SDK client
//! scripts of `tests/peers/`, `server-everything` over HTTP, and what their runs report.

use super::*;

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
