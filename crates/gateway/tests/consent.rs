//! Consent end to end: a rule with `effect = "consent"` holds a call until a person decides,
//! through the real binary, the bundled fixture server (its stdin tapped, so a test sees
//! exactly which calls reached it) and the official Python SDK client answering the
//! gateway's questions — by elicitation (2025-11-25, over stdio and HTTP), by
//! `input_required` (2026-07-28), and on the gateway's terminal (`tests/peers/tty_client.py`
//! gives `portcullis stdio` a pseudo-terminal of its own).

mod support;

use std::path::PathBuf;

use portcullis_store::{AuditQuery, SqliteStore, Store, StoredRecord};
use serde_json::{Value, json};
use support::{Gateway, PeerTarget};

const POLICY_DENIED: i64 = -32011;
const INVALID_PARAMS: i64 = -32602;

/// A config directory with the state database and the tapped fixture's transcript.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("state.db")
    }

    fn tap(&self) -> PathBuf {
        self.dir.path().join("upstream-stdin.jsonl")
    }

    /// The fixture as `fx`, `echo` held by a consent rule that trusts the client's answer,
    /// `add` by one that does not, everything else allowed.
    fn config(&self, echo_consent: &str) -> String {
        format!(
            "[gateway]\nstate = \"sqlite:{}\"\n\n{}\n[[rules]]\nserver = \"fx\"\ntools = [\"echo\"]\neffect = \"consent\"\nconsent = {echo_consent}\n\n[[rules]]\nserver = \"fx\"\ntools = [\"add\"]\neffect = \"consent\"\nconsent = {{ channels = [\"elicitation\", \"input_required\"], timeout = \"5s\" }}\n\n[[rules]]\nserver = \"fx\"\neffect = \"allow\"\n",
            self.db().display(),
            support::tapped_fixture_server("fx", &self.tap()),
        )
    }

    fn write_config(&self, text: &str) -> PathBuf {
        let path = self.dir.path().join("portcullis.toml");
        std::fs::write(&path, support::with_loopback_egress(text)).expect("write config");
        path
    }

    /// The `message` of every `echo` call the upstream received.
    fn echoed(&self) -> Vec<String> {
        support::tap_messages(&self.tap())
            .iter()
            .filter(|m| m["method"] == "tools/call" && m["params"]["name"] == "echo")
            .map(|m| {
                m["params"]["arguments"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect()
    }

    fn upstream_calls(&self, tool: &str) -> Vec<Value> {
        support::tap_messages(&self.tap())
            .into_iter()
            .filter(|m| m["method"] == "tools/call" && m["params"]["name"] == tool)
            .collect()
    }

    fn records(&self) -> Vec<StoredRecord> {
        let store = SqliteStore::open_read_only(&self.db()).expect("open the audit log");
        store
            .query_audit(&AuditQuery::default())
            .expect("query the audit log")
    }

    /// The `consent` records, as `decision: reason`, once `n` of them are in.
    fn consent_records(&self, n: usize) -> Vec<String> {
        let list = || {
            self.records()
                .into_iter()
                .filter(|r| r.record.event == "consent")
                .map(|r| format!("{}: {}", r.record.decision, r.record.reason))
                .collect::<Vec<_>>()
        };
        support::wait_until(support::WAIT, || self.db().exists() && list().len() >= n);
        list()
    }
}

const TRUSTED: &str = "{ channels = [\"elicitation\", \"input_required\"], timeout = \"3s\", trust_elicitation = true, remember = [\"once\", \"session\"] }";

fn approve(remember: &str) -> Value {
    json!({ "action": "accept", "content": { "decision": "approve", "remember": remember } })
}

fn run_consent_peer(mode: &str, steps: &Value, target: &PeerTarget) -> Value {
    let steps = steps.to_string();
    support::run_python_peer(
        "consent_client.py",
        &["--mode", mode, "--steps", &steps],
        target,
    )
}

fn step<'a>(summary: &'a Value, name: &str) -> &'a Value {
    let s = &summary["steps"][name];
    assert!(!s.is_null(), "no step {name:?} in {summary:#}");
    s
}

fn text_of(summary: &Value, name: &str) -> String {
    let s = step(summary, name);
    assert!(
        s["ok"]["isError"] != json!(true),
        "{name}: tool error {s:#}\n{summary:#}"
    );
    s["ok"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: no text in {s:#}\n{summary:#}"))
        .to_owned()
}

fn error_of(summary: &Value, name: &str) -> (i64, String) {
    let s = step(summary, name);
    let e = &s["error"];
    assert!(
        e.is_object(),
        "{name}: expected an error, got {s:#}\n{summary:#}"
    );
    (
        e["code"].as_i64().unwrap_or(0),
        e["message"].as_str().unwrap_or("").to_owned(),
    )
}

fn forms_in(summary: &Value, name: &str) -> Vec<Value> {
    summary["elicitations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["step"] == name)
        .map(|e| e["params"].clone())
        .collect()
}

#[test]
fn elicitation_consent_approves_denies_times_out_and_remembers_for_the_session_only() {
    let s = Setup::new();
    let config = s.write_config(&s.config(TRUSTED));
    let steps = json!([
        { "step": "approve once", "tool": "echo", "args": { "message": "one" }, "answer": approve("once") },
        { "step": "once is not remembered", "tool": "echo", "args": { "message": "one" }, "answer": { "action": "decline" } },
        { "step": "approve for the session", "tool": "echo", "args": { "message": "two" }, "answer": approve("session") },
        { "step": "the identical call is covered", "tool": "echo", "args": { "message": "two" }, "answer": null },
        { "step": "other arguments are asked again", "tool": "echo", "args": { "message": "three" }, "answer": { "action": "decline" } },
        { "step": "denied in the form", "tool": "echo", "args": { "message": "four" }, "answer": { "action": "accept", "content": { "decision": "deny" } } },
        { "step": "no answer", "tool": "echo", "args": { "message": "five" }, "answer": "hang" },
        { "step": "untrusted approval", "tool": "add", "args": { "a": 1, "b": 2 }, "answer": approve("once") },
        { "step": "cancelled by the client", "tool": "echo", "args": { "message": "six" }, "answer": "hang", "timeout": 1, "pause": 1 },
    ]);
    let summary = run_consent_peer(
        "legacy",
        &steps,
        &PeerTarget::portcullis_stdio("fx", &config),
    );

    assert_eq!(text_of(&summary, "approve once"), "one");
    let form = &forms_in(&summary, "approve once")[0];
    let message = form["message"].as_str().unwrap_or("");
    assert!(message.contains("Server: fx"), "{message}");
    assert!(message.contains("Tool: echo"), "{message}");
    assert!(message.contains("\"message\": \"one\""), "{message}");
    assert!(message.contains("rule 1 ("), "{message}");
    let schema = &form["requestedSchema"];
    assert_eq!(
        schema["properties"]["decision"]["enum"],
        json!(["approve", "deny"])
    );
    assert_eq!(
        schema["properties"]["remember"]["enum"],
        json!(["once", "session"])
    );
    assert_eq!(schema["required"], json!(["decision"]));

    let (code, msg) = error_of(&summary, "once is not remembered");
    assert_eq!(code, POLICY_DENIED);
    assert!(msg.contains("declined in the client"), "{msg}");

    assert_eq!(text_of(&summary, "approve for the session"), "two");
    assert_eq!(text_of(&summary, "the identical call is covered"), "two");
    assert!(forms_in(&summary, "the identical call is covered").is_empty());

    let (code, msg) = error_of(&summary, "other arguments are asked again");
    assert_eq!(code, POLICY_DENIED);
    assert_eq!(
        forms_in(&summary, "other arguments are asked again").len(),
        1
    );
    assert!(msg.contains("declined"), "{msg}");

    let (code, msg) = error_of(&summary, "denied in the form");
    assert_eq!(code, POLICY_DENIED);
    assert!(msg.contains("denied in the client"), "{msg}");

    let (code, msg) = error_of(&summary, "no answer");
    assert_eq!(code, POLICY_DENIED);
    assert!(msg.contains("no decision within 3s"), "{msg}");

    let (code, msg) = error_of(&summary, "untrusted approval");
    assert_eq!(code, POLICY_DENIED);
    assert!(
        msg.contains("does not count a client's own approval"),
        "{msg}"
    );

    assert_eq!(step(&summary, "cancelled by the client")["timeout"], 1);

    // Only what a person approved reached the server.
    assert_eq!(s.echoed(), ["one", "two", "two"]);
    assert!(s.upstream_calls("add").is_empty());

    let records = s.consent_records(23);
    let has = |prefix: &str| records.iter().filter(|r| r.starts_with(prefix)).count();
    assert_eq!(has("requested:"), 9, "{records:#?}");
    assert_eq!(
        has("cancelled: the client cancelled the call"),
        1,
        "{records:#?}"
    );
    assert_eq!(has("approved: elicitation: once"), 1, "{records:#?}");
    assert_eq!(
        has("approved: elicitation: for this session"),
        1,
        "{records:#?}"
    );
    assert_eq!(
        has("remembered: elicitation, for this session"),
        1,
        "{records:#?}"
    );
    assert_eq!(has("denied: elicitation:"), 3, "{records:#?}");
    assert_eq!(has("timeout: no decision within 3s"), 1, "{records:#?}");
    assert_eq!(has("untrusted: elicitation:"), 1, "{records:#?}");
    assert!(
        records
            .iter()
            .any(|r| r.starts_with("skipped: input_required:")),
        "{records:#?}"
    );
    // The calls' own decision records.
    let decisions: Vec<StoredRecord> = s
        .records()
        .into_iter()
        .filter(|r| r.record.event == "decision" && r.record.name == "echo")
        .collect();
    assert_eq!(
        decisions
            .iter()
            .filter(|r| r.record.decision == "allow")
            .count(),
        3
    );
    assert!(decisions.iter().any(|r| {
        r.record.decision == "allow"
            && r.record
                .reason
                .contains("approved by a person through elicitation")
    }));
    assert_eq!(
        decisions
            .iter()
            .filter(|r| r.record.decision == "consent")
            .count(),
        4
    );
}

#[tokio::test]
async fn over_http_an_approval_for_the_session_does_not_reach_another_session() {
    let s = Setup::new();
    let gw = Gateway::start(&s.config(TRUSTED));
    let target = PeerTarget::Url(gw.url("fx"));
    let first = run_consent_peer(
        "legacy",
        &json!([
            { "step": "approve for the session", "tool": "echo", "args": { "message": "hi" }, "answer": approve("session") },
            { "step": "covered", "tool": "echo", "args": { "message": "hi" }, "answer": null },
        ]),
        &target,
    );
    assert_eq!(text_of(&first, "approve for the session"), "hi");
    assert_eq!(text_of(&first, "covered"), "hi");
    let second = run_consent_peer(
        "legacy",
        &json!([
            { "step": "another session is asked", "tool": "echo", "args": { "message": "hi" }, "answer": { "action": "decline" } },
        ]),
        &target,
    );
    let (code, _) = error_of(&second, "another session is asked");
    assert_eq!(code, POLICY_DENIED);
    assert_eq!(forms_in(&second, "another session is asked").len(), 1);
    assert_eq!(s.echoed(), ["hi", "hi"]);
}

#[tokio::test]
async fn input_required_consent_for_stateless_clients_binds_the_call_and_is_single_use() {
    let s = Setup::new();
    let gw = Gateway::start(&s.config(TRUSTED));
    let steps = json!([
        { "step": "approve", "tool": "echo", "args": { "message": "one" }, "answer": approve("once") },
        { "step": "decline", "tool": "echo", "args": { "message": "two" }, "answer": { "action": "decline" } },
        { "step": "other arguments", "manual": true, "tool": "echo", "args": { "message": "three" },
          "retry_args": { "message": "rm -rf /" }, "answer": approve("once") },
        { "step": "tampered", "manual": true, "tool": "echo", "args": { "message": "three" },
          "tamper": true, "answer": approve("once") },
        { "step": "replayed", "manual": true, "tool": "echo", "args": { "message": "four" },
          "replay": true, "answer": approve("once") },
    ]);
    let summary = run_consent_peer("2026-07-28", &steps, &PeerTarget::Url(gw.url("fx")));

    // The SDK answered the input_required round with its elicitation callback and retried.
    assert_eq!(text_of(&summary, "approve"), "one");
    let form = &forms_in(&summary, "approve")[0];
    assert!(
        form["message"]
            .as_str()
            .is_some_and(|m| m.contains("Tool: echo")),
        "{form:#}"
    );
    // No session to remember for: only this call is offered.
    assert!(
        form["requestedSchema"]["properties"]
            .get("remember")
            .is_none()
    );
    let (code, _) = error_of(&summary, "decline");
    assert_eq!(code, POLICY_DENIED);

    let first = &step(&summary, "other arguments: first")["ok"];
    assert_eq!(first["resultType"], "input_required", "{first:#}");
    assert!(
        first["requestState"]
            .as_str()
            .is_some_and(|s| s.starts_with("portcullis-consent."))
    );
    for name in [
        "other arguments: retry",
        "tampered: retry",
        "replayed: replay",
    ] {
        let s = step(&summary, name);
        assert_eq!(s["error"]["code"], INVALID_PARAMS, "{name}: {s:#}");
        assert_eq!(
            s["error"]["data"]["reason"], "invalid_request_state",
            "{name}: {s:#}"
        );
    }
    let retried = &step(&summary, "replayed: retry")["ok"];
    assert_eq!(retried["content"][0]["text"], "four", "{summary:#}");

    // Approved calls reached the server once each, without the gateway's consent state.
    assert_eq!(s.echoed(), ["one", "four"]);
    for call in s.upstream_calls("echo") {
        assert!(call["params"].get("requestState").is_none(), "{call}");
        assert!(call["params"].get("inputResponses").is_none(), "{call}");
    }
    let records = s.consent_records(12);
    assert!(
        records
            .iter()
            .any(|r| r.starts_with("asked: input_required: request ")),
        "{records:#?}"
    );
    assert_eq!(
        records
            .iter()
            .filter(|r| r.starts_with("refused: input_required:"))
            .count(),
        3,
        "{records:#?}"
    );
    assert!(
        records
            .iter()
            .any(|r| r.contains("issued for another principal or another call")),
        "{records:#?}"
    );
    assert!(
        records.iter().any(|r| r.contains("used already")),
        "{records:#?}"
    );
}

#[test]
fn the_gateways_terminal_asks_a_person_when_stdio_runs_in_one() {
    let s = Setup::new();
    let config =
        s.write_config(&s.config(
            "{ channels = [\"tty\"], timeout = \"20s\", remember = [\"once\", \"session\"] }",
        ));
    let calls = json!([
        { "step": "approved on the terminal", "args": { "message": "hi\u{1b}[2J\u{202e}" } },
        { "step": "covered for the session", "args": { "message": "hi\u{1b}[2J\u{202e}" } },
        { "step": "denied on the terminal", "args": { "message": "other" } },
    ])
    .to_string();
    let summary = support::run_python_peer(
        "tty_client.py",
        &["--answers", "s,n", "--calls", &calls],
        &PeerTarget::portcullis_stdio("fx", &config),
    );
    let steps = &summary["steps"];
    // (The result itself is the echo, cleaned on its way back: see `[content]`.)
    for name in ["approved on the terminal", "covered for the session"] {
        assert!(
            steps[name]["ok"]["content"][0]["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("hi")),
            "{name}: {summary:#}"
        );
    }
    assert_eq!(
        steps["denied on the terminal"]["error"]["code"], POLICY_DENIED,
        "{summary:#}"
    );
    let transcript = summary["tty"].as_str().unwrap_or_default();
    assert_eq!(
        transcript.matches("Your answer:").count(),
        2,
        "{transcript}"
    );
    assert!(transcript.contains("Tool: echo"), "{transcript}");
    // What the model wrote is shown, but cannot act on the terminal: the escape as JSON
    // writes it, the invisible override as its code point.
    assert!(transcript.contains("hi\\u001b[2J\\u{202E}"), "{transcript}");
    assert!(!transcript.contains('\u{1b}'), "{transcript}");
    assert!(!transcript.contains('\u{202e}'), "{transcript}");
    assert_eq!(s.echoed().len(), 2);
    let records = s.consent_records(7);
    assert!(
        records
            .iter()
            .any(|r| r == "approved: tty: for this session, these arguments"),
        "{records:#?}"
    );
    assert!(
        records
            .iter()
            .any(|r| r.starts_with("denied: tty: denied on the terminal")),
        "{records:#?}"
    );
}

/// The admin token of the approvals tests (random enough for a test, 32+ characters).
const ADMIN_TOKEN: &str = "consent-test-admin-token-0123456789abcdef";

#[tokio::test]
async fn a_call_waiting_on_the_approvals_page_hears_where_and_gets_progress_until_approved() {
    let s = Setup::new();
    let config = format!(
        "{}\n[approvals]\nadmin_token = {{ env = \"CONSENT_TEST_ADMIN\" }}\n",
        s.config("{ channels = [\"elicitation\", \"approvals\"], timeout = \"30s\" }")
    );
    let gw = Gateway::start_with_env(
        &config,
        &[("CONSENT_TEST_ADMIN", std::ffi::OsStr::new(ADMIN_TOKEN))],
    );
    let target = PeerTarget::Url(gw.url("fx"));
    // The client's own approval does not count here (no trust_elicitation): the page decides.
    let peer = tokio::task::spawn_blocking(move || {
        run_consent_peer(
            "legacy",
            &json!([{ "step": "approved on the page", "tool": "echo", "args": { "message": "held" },
                      "answer": approve("once"), "progress": true }]),
            &target,
        )
    });
    let http = reqwest::Client::new();
    let pending_url = format!("{}/approvals/api/pending", gw.base);
    let mut pending = Value::Null;
    for _ in 0..200 {
        let list: Value = http
            .get(&pending_url)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("pending list")
            .json()
            .await
            .expect("json");
        if let Some(first) = list["pending"].get(0) {
            pending = first.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(pending["tool"], "echo", "nothing became pending");
    assert_eq!(pending["arguments"], json!({ "message": "held" }));
    let id = pending["id"].as_str().unwrap_or_default().to_owned();
    // Let the caller hear about the wait before it ends.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let decided = http
        .post(format!("{}/approvals/api/{id}", gw.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "decision": "approve", "remember": "once" }))
        .send()
        .await
        .expect("decide");
    assert!(decided.status().is_success(), "{decided:?}");
    let summary = peer.await.expect("peer");

    assert_eq!(text_of(&summary, "approved on the page"), "held");
    let progress = summary["progress"]["approved on the page"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        progress.iter().any(|p| p["message"]
            .as_str()
            .is_some_and(|m| m.contains("waiting for a person's approval"))),
        "{summary:#}"
    );
    let logs = summary["logs"].as_array().cloned().unwrap_or_default();
    assert!(
        logs.iter()
            .any(|l| l["params"]["data"].as_str().is_some_and(|d| {
                d.contains(&format!("/approvals#{id}"))
                    && d.contains(&format!("portcullis approvals approve {id}"))
            })),
        "{summary:#}"
    );
    assert_eq!(s.echoed(), ["held"]);
    let records = s.consent_records(6);
    for expected in [
        "untrusted: elicitation:".to_owned(),
        format!("asked: approvals: request {id} pending at "),
        format!("decided: approvals: request {id} decided by portcullis approvals (admin token)"),
        "approved: approvals: once, these arguments".to_owned(),
    ] {
        assert!(
            records.iter().any(|r| r.starts_with(&expected)),
            "{expected}: {records:#?}"
        );
    }
}
