//! `portcullis audit tail|query|verify`, the real binary on real SQLite files: the database
//! is found through `PORTCULLIS_STATE` (or the config's `gateway.state`) and opened
//! read-only; records print one per line (or as JSON lines); filters select; `--follow`
//! prints records as they are written and ends on SIGINT/SIGTERM; `verify` says "intact",
//! or names the first record an attacker edited or deleted with rusqlite.
//!
//! `a_real_gateway_writes_what_audit_reads` runs `portcullis serve` with `PORTCULLIS_STATE`
//! and makes calls; the other tests write their database with `portcullis_store::SqliteStore`
//! directly, as the gateway's writer does, to control times, principals and servers.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat};
use portcullis_store::{AuditRecord, SqliteOptions, SqliteStore, Store};
use serde_json::Value;

const MINUTE: i64 = 60_000;

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since.as_millis()).expect("ms fit in i64")
}

fn rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .expect("time in range")
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One record as the gateway writes a decision.
struct Rec {
    ago_min: i64,
    principal: &'static str,
    server: &'static str,
    method: &'static str,
    name: &'static str,
    decision: &'static str,
    rule: Option<&'static str>,
    reason: &'static str,
}

const RECORDS: [Rec; 6] = [
    Rec {
        ago_min: 300,
        principal: "local:alice",
        server: "files",
        method: "tools/call",
        name: "read_file",
        decision: "allow",
        rule: Some("rule 1 (p.toml:3)"),
        reason: "rule 1 (p.toml:3) allows tool \"read_file\" on server \"files\"",
    },
    Rec {
        ago_min: 240,
        principal: "local:bob",
        server: "files",
        method: "tools/call",
        name: "delete_all",
        decision: "deny",
        rule: Some("rule 2 (p.toml:8)"),
        reason: "rule 2 (p.toml:8) denies tool \"delete_all\" on server \"files\"",
    },
    Rec {
        ago_min: 180,
        principal: "local:alice",
        server: "tickets",
        method: "tools/call",
        name: "create",
        decision: "allow",
        rule: Some("rule 3 (p.toml:13)"),
        reason: "rule 3 (p.toml:13) allows tool \"create\" on server \"tickets\"",
    },
    Rec {
        ago_min: 120,
        principal: "anonymous",
        server: "files",
        method: "prompts/get",
        name: "greeting",
        decision: "deny",
        rule: None,
        reason: "no rule allows prompt \"greeting\" on server \"files\" for anonymous (default deny)",
    },
    Rec {
        ago_min: 40,
        principal: "local:alice",
        server: "files",
        method: "tools/call",
        name: "read_file",
        decision: "allow",
        rule: Some("rule 1 (p.toml:3)"),
        reason: "rule 1 (p.toml:3) allows tool \"read_file\" on server \"files\"",
    },
    Rec {
        ago_min: 10,
        principal: "local:bob",
        server: "tickets",
        method: "resources/read",
        name: "ticket://1",
        decision: "consent",
        rule: Some("rule 4 (p.toml:18)"),
        reason: "rule 4 (p.toml:18) asks consent for resource \"ticket://1\" on server \"tickets\"",
    },
];

fn record(r: &Rec, now: i64) -> AuditRecord {
    AuditRecord {
        time_ms: now - r.ago_min * MINUTE,
        event: "decision".to_owned(),
        principal: r.principal.to_owned(),
        session: "s-1".to_owned(),
        transport: "http".to_owned(),
        server: r.server.to_owned(),
        method: r.method.to_owned(),
        name: r.name.to_owned(),
        args_digest: Some(portcullis_guard::digest(&serde_json::json!({}))),
        args: None,
        decision: r.decision.to_owned(),
        rule: r.rule.map(str::to_owned),
        reason: r.reason.to_owned(),
        latency_us: None,
        trace: None,
    }
}

/// Appends records to the store at `path` (created if needed), as the gateway's writer does.
fn append(path: &Path, records: Vec<AuditRecord>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = SqliteStore::open(path, SqliteOptions::default()).expect("open the store");
        for r in records {
            store.append_audit(r).await.expect("append");
        }
    });
}

/// A temporary directory holding `audit.db` with [`RECORDS`], written `now`.
struct Db {
    dir: tempfile::TempDir,
    path: PathBuf,
    now: i64,
}

impl Db {
    fn new() -> Db {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.db");
        let now = now_ms();
        append(&path, RECORDS.iter().map(|r| record(r, now)).collect());
        Db { dir, path, now }
    }

    fn time(&self, seq: usize) -> String {
        rfc3339(self.now - RECORDS[seq - 1].ago_min * MINUTE)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(support::portcullis_bin());
        cmd.arg("audit").args(args);
        cmd.env(
            "PORTCULLIS_STATE",
            format!("sqlite:{}", self.path.display()),
        );
        cmd
    }

    fn audit(&self, args: &[&str]) -> Run {
        run(self.command(args))
    }

    fn sql(&self, statement: &str) {
        let conn = rusqlite::Connection::open(&self.path).expect("open with rusqlite");
        let changed = conn.execute(statement, []).expect("tamper");
        assert_eq!(changed, 1, "{statement}");
    }
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(cmd: Command) -> Run {
    let (code, stdout, stderr) = support::run_code_with_timeout(cmd, Duration::from_secs(30));
    Run {
        code,
        stdout,
        stderr,
    }
}

impl Run {
    #[track_caller]
    fn ok(&self) -> &Self {
        assert_eq!(
            self.code,
            Some(0),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The sequence numbers of the text lines printed, in order.
    fn seqs(&self) -> Vec<u64> {
        self.stdout.lines().map(seq_of).collect()
    }

    fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

/// `#12` in `<time> #12 …`.
fn seq_of(line: &str) -> u64 {
    line.split(' ')
        .nth(1)
        .and_then(|s| s.strip_prefix('#'))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no #seq in {line:?}"))
}

#[test]
fn tail_prints_the_newest_records_one_line_each_oldest_first() {
    let db = Db::new();
    let all = db.audit(&["tail"]);
    all.ok();
    assert_eq!(all.seqs(), [1, 2, 3, 4, 5, 6]);
    let lines: Vec<&str> = all.stdout.lines().collect();
    assert_eq!(
        lines[1],
        format!(
            "{} #2 deny local:bob files tools/call delete_all [rule 2 (p.toml:8)] rule 2 (p.toml:8) denies tool \"delete_all\" on server \"files\"",
            db.time(2)
        )
    );
    assert_eq!(
        lines[3],
        format!(
            "{} #4 deny anonymous files prompts/get greeting [-] no rule allows prompt \"greeting\" on server \"files\" for anonymous (default deny)",
            db.time(4)
        )
    );

    assert_eq!(db.audit(&["tail", "-n", "2"]).ok().seqs(), [5, 6]);
    assert_eq!(
        db.audit(&["tail", "-n", "1", "--decision", "deny"])
            .ok()
            .seqs(),
        [4]
    );

    let json = db.audit(&["tail", "-n", "3", "--json"]);
    json.ok();
    let records = json.json_lines();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["seq"], 4);
    assert_eq!(records[2]["record"]["principal"], "local:bob");
    assert_eq!(records[2]["record"]["decision"], "consent");
    assert_eq!(records[1]["prev_hash"], records[0]["hash"]);
}

#[test]
fn query_filters_by_principal_server_decision_and_time() {
    let db = Db::new();
    let q = |args: &[&str]| db.audit(&[&["query"][..], args].concat()).ok().seqs();
    assert_eq!(q(&[]), [1, 2, 3, 4, 5, 6]);
    assert_eq!(q(&["--principal", "local:alice"]), [1, 3, 5]);
    assert_eq!(q(&["--server", "tickets"]), [3, 6]);
    assert_eq!(q(&["--decision", "deny"]), [2, 4]);
    assert_eq!(
        q(&["--principal", "local:alice", "--server", "files"]),
        [1, 5]
    );
    assert_eq!(q(&["--since", "1h"]), [5, 6]);
    assert_eq!(q(&["--since", "150m", "--until", "30m"]), [4, 5]);
    // Absolute times: [since, until).
    assert_eq!(q(&["--since", &db.time(3), "--until", &db.time(5)]), [3, 4]);
    assert_eq!(q(&["--since", "2000-01-01", "--decision", "consent"]), [6]);
    assert!(q(&["--principal", "nobody"]).is_empty());

    let json = db.audit(&["query", "--server", "tickets", "--json"]);
    json.ok();
    let records = json.json_lines();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["record"]["name"], "create");
    assert_eq!(records[1]["record"]["method"], "resources/read");
}

#[test]
fn query_pages_with_limit_and_after() {
    let db = Db::new();
    let first = db.audit(&["query", "--limit", "2"]);
    assert_eq!(first.ok().seqs(), [1, 2]);
    assert!(
        first.stderr.contains("more may match: add --after 2"),
        "{}",
        first.stderr
    );
    let next = db.audit(&["query", "--limit", "2", "--after", "2"]);
    assert_eq!(next.ok().seqs(), [3, 4]);
    let bad = db.audit(&["query", "--limit", "0"]);
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    let bad = db.audit(&["query", "--since", "yesterday"]);
    assert_eq!(bad.code, Some(2));
    assert!(
        bad.stderr.contains("--since: \"yesterday\" is not a time"),
        "{}",
        bad.stderr
    );
}

#[test]
fn verify_reports_an_intact_chain_and_its_head() {
    let db = Db::new();
    let last = db.audit(&["tail", "-n", "1", "--json"]);
    let head = last.ok().json_lines()[0]["hash"]
        .as_str()
        .expect("hash")
        .to_owned();
    let v = db.audit(&["verify"]);
    v.ok();
    assert_eq!(v.stdout, format!("intact: 6 records, head {head}\n"));
    let j = db.audit(&["verify", "--json"]);
    let outcome: Value = serde_json::from_str(&j.ok().stdout).expect("JSON");
    assert_eq!(outcome["status"], "intact");
    assert_eq!(outcome["records"], 6);
    assert_eq!(outcome["head"], head.as_str());
}

#[test]
fn an_edited_field_is_found_and_named() {
    let db = Db::new();
    db.sql(
        r#"UPDATE audit SET body = replace(body, '"decision":"deny"', '"decision":"allow"') WHERE seq = 2"#,
    );
    let v = db.audit(&["verify"]);
    assert_eq!(
        v.code,
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        v.stdout,
        v.stderr
    );
    assert!(
        v.stdout.starts_with("broken at record 2 (edited)"),
        "{}",
        v.stdout
    );
    let j = db.audit(&["verify", "--json"]);
    assert_eq!(j.code, Some(1));
    let outcome: Value = serde_json::from_str(&j.stdout).expect("JSON");
    assert_eq!(outcome["status"], "broken");
    assert_eq!(outcome["seq"], 2);
    assert_eq!(outcome["problem"], "edited");
}

#[test]
fn a_deleted_record_is_found_and_named() {
    let db = Db::new();
    db.sql("DELETE FROM audit WHERE seq = 4");
    let v = db.audit(&["verify"]);
    assert_eq!(
        v.code,
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        v.stdout,
        v.stderr
    );
    assert!(
        v.stdout
            .starts_with("broken at record 4 (missing record 4): record 4 is missing"),
        "{}",
        v.stdout
    );
    // What is left still reads.
    assert_eq!(db.audit(&["tail"]).ok().seqs(), [1, 2, 3, 5, 6]);
}

#[test]
fn a_missing_or_foreign_database_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("none.db");
    for sub in [
        &["verify"][..],
        &["tail"],
        &["query"],
        &["tail", "--follow"],
    ] {
        let mut cmd = Command::new(support::portcullis_bin());
        cmd.arg("audit").args(sub);
        cmd.env("PORTCULLIS_STATE", format!("sqlite:{}", missing.display()));
        let r = run(cmd);
        assert_eq!(r.code, Some(2), "{sub:?}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!(
                "no audit log at {} (from PORTCULLIS_STATE): the database does not exist",
                missing.display()
            )),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
    assert!(!missing.exists(), "reading must not create the database");

    let foreign = dir.path().join("notes.txt");
    std::fs::write(
        &foreign,
        "not a database at all, just some text\n".repeat(200),
    )
    .expect("write");
    let mut cmd = Command::new(support::portcullis_bin());
    cmd.args(["audit", "verify"]);
    cmd.env("PORTCULLIS_STATE", format!("sqlite:{}", foreign.display()));
    let r = run(cmd);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "cannot read the audit log at {}",
            foreign.display()
        )),
        "{}",
        r.stderr
    );

    let mut cmd = Command::new(support::portcullis_bin());
    cmd.args(["audit", "verify"]);
    cmd.env("PORTCULLIS_STATE", "redis://cache:6379");
    let r = run(cmd);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("PORTCULLIS_STATE: \"redis://cache:6379\": Redis state is not yet supported"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_config_names_the_database_unless_portcullis_state_does() {
    let db = Db::new();
    // gateway.state relative to the config file's directory.
    let config = db.dir.path().join("portcullis.toml");
    std::fs::write(&config, "[gateway]\nstate = \"sqlite:audit.db\"\n").expect("config");
    let mut cmd = Command::new(support::portcullis_bin());
    cmd.args(["audit", "verify", "--config"]).arg(&config);
    cmd.env_remove("PORTCULLIS_STATE");
    let r = run(cmd);
    assert!(
        r.ok().stdout.starts_with("intact: 6 records, head "),
        "{}",
        r.stdout
    );

    // The variable wins over the config.
    let other = tempfile::tempdir().expect("tempdir");
    let elsewhere = other.path().join("elsewhere.db");
    append(&elsewhere, vec![record(&RECORDS[0], db.now)]);
    let mut cmd = Command::new(support::portcullis_bin());
    cmd.args(["audit", "verify", "--config"]).arg(&config);
    cmd.env(
        "PORTCULLIS_STATE",
        format!("sqlite:{}", elsewhere.display()),
    );
    let r = run(cmd);
    assert!(
        r.ok().stdout.starts_with("intact: 1 records, head "),
        "{}",
        r.stdout
    );

    // A config error names file:line:col and exits 2.
    std::fs::write(&config, "[gateway]\nstate = \"postgres://x\"\n").expect("config");
    let mut cmd = Command::new(support::portcullis_bin());
    cmd.args(["audit", "tail", "--config"]).arg(&config);
    cmd.env_remove("PORTCULLIS_STATE");
    let r = run(cmd);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("{}:2:9: gateway.state must be", config.display())),
        "{}",
        r.stderr
    );
}

/// `audit tail --follow` as a child in its own process group (killed on drop), its stdout
/// lines on a channel.
struct Follower {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Follower {
    fn start(mut cmd: Command) -> Follower {
        use std::os::unix::process::CommandExt;
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .process_group(0);
        let mut child = cmd.spawn().expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Follower { child, lines }
    }

    fn next(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(10))
            .expect("a line within 10 s")
    }

    /// Sends `signal` to the follower (its own pid, never a group or -1) and waits for it
    /// to exit; its exit code.
    fn stop(&mut self, signal: nix::sys::signal::Signal) -> Option<i32> {
        let pid = i32::try_from(self.child.id()).expect("pid");
        assert!(pid > 1);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).expect("signal");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the follower did not stop on {signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        support::kill_group(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn follow_prints_new_records_as_they_are_written_and_ends_on_a_signal() {
    use nix::sys::signal::Signal;
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let db = Db::new();
        let mut follower = Follower::start(db.command(&["tail", "--follow", "-n", "2"]));
        assert_eq!(seq_of(&follower.next()), 5);
        assert_eq!(seq_of(&follower.next()), 6);
        // Written while the follower reads (the writer and the reader share the file).
        append(&db.path, vec![record(&RECORDS[1], now_ms())]);
        let line = follower.next();
        assert_eq!(seq_of(&line), 7, "{line}");
        assert!(
            line.contains(" deny local:bob files tools/call delete_all "),
            "{line}"
        );
        append(
            &db.path,
            vec![record(&RECORDS[2], now_ms()), record(&RECORDS[3], now_ms())],
        );
        assert_eq!(seq_of(&follower.next()), 8);
        assert_eq!(seq_of(&follower.next()), 9);
        assert_eq!(follower.stop(signal), Some(0), "{signal}");
    }
}

#[test]
fn follow_with_a_filter_prints_only_matching_new_records() {
    let db = Db::new();
    let follower =
        Follower::start(db.command(&["tail", "--follow", "-n", "5", "--principal", "nobody"]));
    append(
        &db.path,
        vec![
            record(&RECORDS[0], now_ms()),
            AuditRecord {
                principal: "nobody".to_owned(),
                ..record(&RECORDS[1], now_ms())
            },
        ],
    );
    let line = follower.next();
    assert_eq!(seq_of(&line), 8, "{line}");
    assert!(line.contains(" nobody "), "{line}");
}

/// The database written by a real `portcullis serve` (PORTCULLIS_STATE names it) while
/// `audit tail --follow` reads it; then filters, verify, and tampering on what it wrote.
#[tokio::test]
async fn a_real_gateway_writes_what_audit_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.db");
    let value = format!("sqlite:{}", state.display());
    let config = format!(
        "{}\n[[rules]]\nserver = \"demo\"\ntools = [\"echo\"]\neffect = \"allow\"\n",
        support::fixture_stdio_server("demo")
    );
    let gateway = support::Gateway::start_with_env(
        &config,
        &[("PORTCULLIS_STATE", std::ffi::OsStr::new(&value))],
    );
    assert!(
        state.exists(),
        "the gateway creates its state database at start"
    );
    let audit_cmd = |args: &[&str]| {
        let mut cmd = Command::new(support::portcullis_bin());
        cmd.arg("audit").args(args);
        cmd.env("PORTCULLIS_STATE", &value);
        cmd
    };
    let audit = |args: &[&str]| run(audit_cmd(args));
    let follower = Follower::start(audit_cmd(&["tail", "--follow", "--decision", "deny"]));

    let mut client = support::RawHttp::new(&gateway.url("demo"));
    client.initialize(serde_json::json!({})).await;
    let echoed = client
        .call_tool(1, "echo", serde_json::json!({"message": "hi"}))
        .await;
    assert!(echoed.get("result").is_some(), "{echoed}");
    let refused = client
        .call_tool(2, "add", serde_json::json!({"a": 1, "b": 2}))
        .await;
    assert!(refused.get("error").is_some(), "{refused}");

    // The follower, started on an empty log, sees the refusal as it is written.
    let denied = follower.next();
    assert!(
        denied.contains(" deny anonymous demo tools/call add "),
        "{denied}"
    );
    drop(follower);

    let records = audit(&["query", "--server", "demo", "--json"]).json_lines();
    let seq_where = |name: &str, decision: &str| {
        records
            .iter()
            .find(|r| r["record"]["name"] == name && r["record"]["decision"] == decision)
            .and_then(|r| r["seq"].as_u64())
            .unwrap_or_else(|| panic!("no {decision} record for {name}: {records:?}"))
    };
    let allowed = seq_where("echo", "allow");
    let refused = seq_where("add", "deny");
    let tail = audit(&["tail"]);
    let echo_line = tail
        .ok()
        .stdout
        .lines()
        .find(|l| seq_of(l) == allowed)
        .expect("the allow record in the tail")
        .to_owned();
    let config_path = gateway.config_path().display().to_string();
    assert!(
        echo_line.contains(&format!(
            " allow anonymous demo tools/call echo [rule 1 ({config_path}:4)] rule 1 ({config_path}:4) allows tool \"echo\" on server \"demo\""
        )),
        "{echo_line}"
    );
    assert_eq!(
        audit(&["query", "--decision", "deny"]).ok().seqs(),
        [refused]
    );
    assert!(
        audit(&["query", "--principal", "anonymous", "--since", "10m"])
            .ok()
            .seqs()
            .contains(&allowed)
    );
    assert!(
        audit(&["query", "--principal", "local:someone"])
            .ok()
            .seqs()
            .is_empty()
    );
    let intact = audit(&["verify"]);
    assert!(
        intact
            .ok()
            .stdout
            .starts_with(&format!("intact: {} records, head ", records.len())),
        "{}",
        intact.stdout
    );
    drop(gateway);

    // Tampering with what the gateway wrote: an edited field, then a deleted record.
    let conn = rusqlite::Connection::open(&state).expect("open with rusqlite");
    let edit = |from: &str, to: &str| {
        let sql = format!(
            "UPDATE audit SET body = replace(body, '\"decision\":\"{from}\"', '\"decision\":\"{to}\"') WHERE seq = {refused}"
        );
        assert_eq!(conn.execute(&sql, []).expect("update"), 1);
    };
    edit("deny", "allow");
    let v = audit(&["verify"]);
    assert_eq!(v.code, Some(1), "{}", v.stdout);
    assert!(
        v.stdout
            .starts_with(&format!("broken at record {refused} (edited)")),
        "{}",
        v.stdout
    );
    edit("allow", "deny");
    audit(&["verify"]).ok();
    let deleted = conn
        .execute(&format!("DELETE FROM audit WHERE seq = {allowed}"), [])
        .expect("delete");
    assert_eq!(deleted, 1);
    let v = audit(&["verify"]);
    assert_eq!(v.code, Some(1), "{}", v.stdout);
    assert!(
        v.stdout.starts_with(&format!(
            "broken at record {allowed} (missing record {allowed})"
        )),
        "{}",
        v.stdout
    );
}
