//! The audit log through a running gateway: every decision is a record in the state store's
//! hash chain, a call is on record before it reaches its server, a crash leaves a chain that
//! verifies, and a gateway that cannot write its log does not make the call.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use portcullis_store::{AuditQuery, SqliteStore, Store, StoredRecord, VerifyOutcome};
use serde_json::{Value, json};
use support::{Gateway, RawHttp};

const AUDIT_UNAVAILABLE: i64 = -32013;

/// A state directory that outlives the gateways a test starts on it.
struct State {
    dir: tempfile::TempDir,
}

impl State {
    fn new() -> State {
        State {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("state.db")
    }

    fn tap(&self) -> PathBuf {
        self.dir.path().join("upstream-stdin.jsonl")
    }

    fn mirror(&self) -> PathBuf {
        self.dir.path().join("mirror.jsonl")
    }

    fn config(&self, rules: &str) -> String {
        format!(
            "[gateway]\nstate = \"sqlite:{}\"\n\n[audit]\ninclude_args = true\nmirror = \"file:{}\"\n\n{}\n{rules}",
            self.db().display(),
            self.mirror().display(),
            support::tapped_fixture_server("fx", &self.tap()),
        )
    }

    fn records(&self) -> Vec<StoredRecord> {
        let store = SqliteStore::open_read_only(&self.db()).expect("open the audit log");
        store
            .query_audit(&AuditQuery::default())
            .expect("query the audit log")
    }

    /// Waits until the log holds `n` records (outcomes are written without holding the
    /// caller up, so they may land just after the answer).
    fn records_when(&self, n: usize) -> Vec<StoredRecord> {
        support::wait_until(support::WAIT, || {
            self.db().exists() && self.records().len() >= n
        });
        self.records()
    }

    fn verify(&self) -> VerifyOutcome {
        SqliteStore::open_read_only(&self.db())
            .expect("open the audit log")
            .verify_audit()
            .expect("verify")
    }

    /// The `tools/call` requests the upstream received, by tool name.
    fn upstream_calls(&self, tool: &str) -> usize {
        support::tap_messages(&self.tap())
            .iter()
            .filter(|m| m["method"] == "tools/call" && m["params"]["name"] == tool)
            .count()
    }
}

const RULES: &str = r#"
[[rules]]
server = "fx"
tools = ["echo", "slow", "fail"]
effect = "allow"

[[rules]]
server = "fx"
tools = ["add"]
effect = "deny"
when = 'args.a > 100'

[[rules]]
server = "fx"
tools = ["add"]
effect = "allow"
"#;

fn find<'a>(records: &'a [StoredRecord], name: &str, decision: &str) -> &'a StoredRecord {
    records
        .iter()
        .find(|r| r.record.name == name && r.record.decision == decision)
        .unwrap_or_else(|| {
            let all: Vec<_> = records
                .iter()
                .map(|r| (r.seq, &r.record.name, &r.record.decision))
                .collect();
            panic!("no {decision} record for {name}: {all:?}")
        })
}

#[tokio::test]
async fn every_decision_is_an_audit_record_with_its_rule_and_trace() {
    let state = State::new();
    let gw = Gateway::start(&state.config(RULES));
    let mut c = RawHttp::new(&gw.url("fx"));
    c.initialize(json!({})).await;
    let session = c.session.clone().unwrap();

    let echo = c
        .call_tool(
            1,
            "echo",
            json!({ "message": "hi", "api_key": "sk-live-abcdef0123456789" }),
        )
        .await;
    assert_eq!(echo["result"]["content"][0]["text"], "hi", "{echo}");
    let denied = c.call_tool(2, "add", json!({ "a": 500, "b": 1 })).await;
    assert!(
        denied["error"]["message"]
            .as_str()
            .unwrap()
            .contains("denies"),
        "{denied}"
    );
    let invalid = c.call_tool(3, "add", json!({ "a": "x", "b": 1 })).await;
    assert_eq!(invalid["result"]["isError"], true, "{invalid}");
    let unknown = c.call_tool(4, "nope", json!({})).await;
    assert_eq!(
        unknown["error"]["message"], "Unknown tool: nope",
        "{unknown}"
    );

    // echo: decision and outcome; add: deny and invalid; nope: unknown.
    let records = state.records_when(5);
    let allowed = find(&records, "echo", "allow");
    let r = &allowed.record;
    assert_eq!(r.event, "decision");
    assert_eq!(
        (r.principal.as_str(), r.transport.as_str()),
        ("anonymous", "http")
    );
    assert_eq!(r.session, session);
    assert_eq!((r.server.as_str(), r.method.as_str()), ("fx", "tools/call"));
    assert!(
        r.rule.as_deref().unwrap().contains("portcullis.toml:"),
        "{r:?}"
    );
    assert!(r.trace.as_deref().unwrap().contains("rule 1"), "{r:?}");
    assert!(
        r.args_digest.as_deref().is_some_and(|d| d.len() >= 32),
        "{r:?}"
    );
    let args = r.args.as_ref().expect("include_args keeps the arguments");
    assert_eq!(args["message"], "hi");
    assert_ne!(
        args["api_key"], "sk-live-abcdef0123456789",
        "secrets are redacted"
    );
    assert!(
        !serde_json::to_string(&records.iter().map(|r| &r.record).collect::<Vec<_>>())
            .unwrap()
            .contains("sk-live-abcdef0123456789")
    );

    let done = find(&records, "echo", "ok");
    assert_eq!(done.record.event, "completed");
    assert!(done.seq > allowed.seq);
    assert!(done.record.latency_us.is_some());

    let deny = find(&records, "add", "deny");
    assert!(deny.record.reason.contains("denies"), "{:?}", deny.record);
    assert!(
        deny.record.rule.as_deref().unwrap().starts_with("rule 2"),
        "{:?}",
        deny.record
    );
    let bad = find(&records, "add", "invalid");
    assert!(
        bad.record.reason.contains("Invalid arguments"),
        "{:?}",
        bad.record
    );
    find(&records, "nope", "unknown");

    let VerifyOutcome::Intact { records: n, .. } = state.verify() else {
        panic!("the chain must verify: {}", state.verify())
    };
    assert_eq!(n as usize, records.len());

    // The mirror has the same records, as JSON lines, in order.
    let mirrored: Vec<Value> = std::fs::read_to_string(state.mirror())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seqs: Vec<u64> = mirrored
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, records.iter().map(|r| r.seq).collect::<Vec<_>>());
    assert_eq!(mirrored[0]["hash"], records[0].hash);
}

/// SIGKILL while a call is in flight: the call's decision was durable before the server saw
/// it, the chain verifies, and the next gateway continues it.
#[tokio::test]
async fn a_crash_during_a_call_leaves_a_valid_chain() {
    let state = State::new();
    let mut gw = Gateway::start(&state.config(RULES));
    let mut c = RawHttp::new(&gw.url("fx"));
    c.initialize(json!({})).await;
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": "slow", "arguments": { "steps": 100, "delay_ms": 100 },
                    "_meta": { "progressToken": "p1" } } });
    // Progress makes the answer a stream at once, so the POST returns while the call runs.
    let in_flight = c.post_stream(body.to_string(), &[]).await;

    assert!(
        support::wait_until(support::WAIT, || state.upstream_calls("slow") == 1),
        "the call never reached the server"
    );
    // The server has it: its decision must already be on disk.
    let records = state.records();
    let decided = find(&records, "slow", "allow");
    assert_eq!(decided.record.event, "decision");

    support::kill_group(gw.proc.child.id());
    let _ = gw.proc.child.wait();
    drop(in_flight);

    let VerifyOutcome::Intact { records: n, .. } = state.verify() else {
        panic!("the chain must survive the crash: {}", state.verify())
    };
    let after = state.records();
    assert_eq!(n as usize, after.len());
    assert!(
        !after
            .iter()
            .any(|r| r.record.name == "slow" && r.record.event == "completed"),
        "the call never completed: {:?}",
        after.iter().map(|r| &r.record).collect::<Vec<_>>()
    );

    // A new gateway on the same state continues the chain.
    let gw2 = Gateway::start(&state.config(RULES));
    let mut c = RawHttp::new(&gw2.url("fx"));
    c.initialize(json!({})).await;
    c.call_tool(1, "echo", json!({ "message": "after the crash" }))
        .await;
    let records = state.records_when(after.len() + 2);
    let next = records
        .iter()
        .find(|r| r.seq > after.last().unwrap().seq)
        .unwrap();
    assert_eq!(next.prev_hash, after.last().unwrap().hash);
    assert!(
        matches!(state.verify(), VerifyOutcome::Intact { .. }),
        "{}",
        state.verify()
    );
}

/// Holds SQLite's write lock on `db` (another process in the middle of a write) until
/// dropped.
struct WriteLock(std::process::Child);

impl WriteLock {
    fn hold(db: &Path) -> WriteLock {
        let script = "import sqlite3, sys, time\n\
                      c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
                      c.execute('BEGIN EXCLUSIVE')\n\
                      print('locked', flush=True)\n\
                      time.sleep(60)\n";
        let mut child = Command::new(support::python())
            .args(["-c", script])
            .arg(db)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python");
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("the locker's first line");
        assert_eq!(line.trim(), "locked");
        WriteLock(child)
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_call_that_cannot_be_recorded_is_not_made() {
    let state = State::new();
    let gw = Gateway::start(&state.config(RULES));
    let mut c = RawHttp::new(&gw.url("fx"));
    c.initialize(json!({})).await;
    let first = c
        .call_tool(1, "echo", json!({ "message": "recorded" }))
        .await;
    assert_eq!(first["result"]["content"][0]["text"], "recorded");

    let lock = WriteLock::hold(&state.db());
    let started = std::time::Instant::now();
    let refused = c
        .call_tool(2, "echo", json!({ "message": "unrecorded" }))
        .await;
    assert_eq!(refused["error"]["code"], AUDIT_UNAVAILABLE, "{refused}");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(
        state.upstream_calls("echo"),
        1,
        "the unrecorded call must not reach the server"
    );
    drop(lock);

    let again = c
        .call_tool(3, "echo", json!({ "message": "recorded again" }))
        .await;
    assert_eq!(
        again["result"]["content"][0]["text"], "recorded again",
        "{again}"
    );
    assert_eq!(state.upstream_calls("echo"), 2);
    assert!(
        matches!(state.verify(), VerifyOutcome::Intact { .. }),
        "{}",
        state.verify()
    );
    assert!(
        !gw.proc.stderr().contains("unrecorded"),
        "no arguments in the log"
    );
}

/// Over stdio, records name the local user and a session id of this process; the mirror
/// cannot be stdout there (that is the MCP connection), so the gateway refuses to start.
#[test]
fn stdio_calls_are_audited_as_the_local_user() {
    let state = State::new();
    let mut gw = support::StdioGateway::start(&state.config(RULES), "fx");
    gw.initialize("2025-11-25", json!({}));
    let echo = gw.request(
        1,
        "tools/call",
        json!({ "name": "echo", "arguments": { "message": "m" } }),
    );
    assert_eq!(echo["result"]["content"][0]["text"], "m", "{echo}");
    // The host closes stdin right after its last answer: the outcome record written after
    // that answer is not lost when the gateway exits.
    gw.close_stdin();
    assert_eq!(gw.wait_exit(support::WAIT), Some(0), "{}", gw.stderr());
    let records = state.records();
    assert_eq!(records.len(), 2, "{records:?}");
    let me = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name;
    let r = &find(&records, "echo", "allow").record;
    assert_eq!(r.principal, format!("local:{me}"));
    assert_eq!(r.transport, "stdio");
    assert!(
        r.session.starts_with("stdio-") && r.session.len() > 10,
        "{r:?}"
    );

    let to_stdout = state.config(RULES).replace(
        &format!("mirror = \"file:{}\"", state.mirror().display()),
        "mirror = \"stdout\"",
    );
    let mut refused = support::StdioGateway::start(&to_stdout, "fx");
    assert_eq!(refused.wait_exit(support::WAIT), Some(1));
    assert!(
        refused
            .stderr()
            .contains("cannot be used with `portcullis stdio`"),
        "{}",
        refused.stderr()
    );
    assert!(
        refused.try_recv_line(Duration::from_millis(100)).is_none(),
        "nothing on stdout"
    );
}
