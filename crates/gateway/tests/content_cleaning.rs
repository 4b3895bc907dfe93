//! Output sanitizing and secret redaction through the real binary: the bundled fixture with
//! `--hostile-content` returns ANSI escapes, tag characters, bidi overrides, zero-width
//! characters, controls and fake credentials in a tool's text and structured content, a
//! resource, a prompt and a log message; the official Python SDK client must receive them
//! sanitized and redacted, an allow-listed value must pass, and an open-world tool called with
//! a credential in its arguments must be refused before the upstream sees it. The audit log
//! counts what was redacted and never holds a value.

mod support;

use std::path::{Path, PathBuf};

use portcullis_fixtures::hostile::{
    self, HOSTILE_PROMPT, HOSTILE_TOOL, HOSTILE_URI, LOCAL_TOOL, OPEN_WORLD_TOOL,
};
use portcullis_store::{AuditQuery, SqliteStore, Store, StoredRecord};
use serde_json::{Value, json};
use support::{Gateway, PeerSummary, PeerTarget};

/// A gateway in front of the hostile fixture (its stdin tapped), with its own state.
struct Setup {
    dir: tempfile::TempDir,
    gw: Gateway,
}

impl Setup {
    fn start(content: &str) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = format!(
            "[gateway]\nstate = \"sqlite:{}\"\n\n{content}\n\n{}\n[[rules]]\nserver = \"fx\"\neffect = \"allow\"\n",
            dir.path().join("state.db").display(),
            hostile_fixture("fx", &dir.path().join("tap.jsonl")),
        );
        let gw = Gateway::start(&config);
        Setup { dir, gw }
    }

    fn run(&self, mode: &str, calls: &Value) -> PeerSummary {
        PeerSummary(support::run_python_client(
            "calls",
            mode,
            &PeerTarget::Url(self.gw.url("fx")),
            &["--calls", &calls.to_string()],
        ))
    }

    fn tap(&self) -> PathBuf {
        self.dir.path().join("tap.jsonl")
    }

    /// The audit records, once at least `n` are written.
    fn records(&self, n: usize) -> Vec<StoredRecord> {
        let db = self.dir.path().join("state.db");
        let read = || {
            SqliteStore::open_read_only(&db)
                .and_then(|s| s.query_audit(&AuditQuery::default()))
                .unwrap_or_default()
        };
        support::wait_until(support::WAIT, || db.exists() && read().len() >= n);
        read()
    }
}

/// The fixture over stdio with `--hostile-content`, what it receives appended to `tap`.
fn hostile_fixture(name: &str, tap: &Path) -> String {
    format!(
        "[servers.{name}]\ncommand = ['/bin/sh', '-c', 'tee -a \"$0\" | exec \"$1\" fixture stdio --hostile-content', '{}', '{}']\npinning = 'off'\nsandbox = {{ write = ['{}'] }}\n",
        tap.display(),
        support::portcullis_bin().display(),
        tap.parent().unwrap_or(Path::new("/")).display(),
    )
}

/// Every fake credential of the fixture that occurs in `text`.
fn leaked(text: &str) -> Vec<&'static str> {
    hostile::fake_credentials()
        .into_iter()
        .filter(|(_, value)| text.contains(value.as_str()))
        .map(|(kind, _)| kind)
        .collect()
}

/// Characters no cleaned text may hold: escapes, C0/C1 controls but `\n`/`\t`, tags, bidi
/// controls, zero-width characters.
fn hazards(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| {
            matches!(c, '\0'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{e0000}'..='\u{e007f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200b}'..='\u{200f}' | '\u{2060}' | '\u{feff}')
        })
        .collect()
}

fn hostile_calls() -> Value {
    json!([
        { "step": "tool", "tool": HOSTILE_TOOL, "args": {} },
        { "step": "prompt", "prompt": HOSTILE_PROMPT },
        { "step": "resource", "resource": HOSTILE_URI },
    ])
}

#[test]
fn results_prompts_resources_and_log_messages_reach_the_client_sanitized_and_redacted() {
    let setup = Setup::start("");
    for mode in ["legacy", "2026-07-28"] {
        let s = setup.run(mode, &hostile_calls());
        let expected = hostile::expected_clean_text(false);

        // The tool's text, its structured content, and the image left alone.
        let tool = s.tool_ok("tool");
        assert_eq!(tool["content"][0]["text"], expected, "{mode}");
        assert_eq!(
            tool["structuredContent"],
            json!({
                "summary": "ok",
                "credentials": {
                    "api_key": "[REDACTED:generic-secret]",
                    "note": "token [REDACTED:github-token]",
                },
                "count": 3
            }),
            "{mode}"
        );
        assert_eq!(tool["content"][1]["type"], "image");
        assert!(
            tool["content"][1]["data"]
                .as_str()
                .is_some_and(|d| d.starts_with("iVBORw0KGgo")),
            "{mode}: base64 image data is not text and passes unchanged"
        );

        // The prompt and the resource: the same text, the same treatment.
        assert_eq!(
            s.ok("prompt")["messages"][0]["content"]["text"],
            expected,
            "{mode}"
        );
        assert_eq!(s.ok("resource")["contents"][0]["text"], expected, "{mode}");

        // Nothing hostile anywhere in what the client saw, logs included.
        let everything = s.0.to_string();
        let seen: String = serde_json::from_str::<Value>(&everything)
            .map(|v| collect_strings(&v))
            .unwrap_or_default();
        assert!(
            leaked(&everything).is_empty(),
            "{mode}: {:?}",
            leaked(&everything)
        );
        assert!(hazards(&seen).is_empty(), "{mode}: {:?}", hazards(&seen));
    }

    // A stateful client gets the fixture's log message (a stateless one asked for none).
    let s = setup.run("legacy", &hostile_calls());
    let logs = s.0["logs"].as_array().cloned().unwrap_or_default();
    let log = logs
        .iter()
        .find(|l| l["data"]["event"].is_string())
        .unwrap_or_else(|| panic!("no log message from the hostile tool: {logs:?}"));
    assert_eq!(
        log["data"],
        json!({
            "event": "deploy done",
            "db": "postgres://app:[REDACTED:database-url-password]@db.internal/app"
        })
    );

    // The call's outcome record counts what was redacted and sanitized, and no record holds
    // a value.
    let records = setup.records(6);
    let outcome = records
        .iter()
        .find(|r| r.record.event == "completed" && r.record.name == HOSTILE_TOOL)
        .expect("an outcome record for the hostile tool");
    let reason = &outcome.record.reason;
    for kind in [
        "github-token 2",
        "aws-access-key-id 1",
        "jwt 1",
        "private-key 1",
        "generic-secret 2",
        "stripe-secret-key 1",
        "sanitized ansi",
        "tag",
        "bidi",
        "zero-width",
        "control",
    ] {
        assert!(reason.contains(kind), "{kind} missing from {reason:?}");
    }
    let all: Vec<_> = records.iter().map(|r| &r.record).collect();
    let text = serde_json::to_string(&all).unwrap_or_default();
    assert!(
        leaked(&text).is_empty(),
        "the audit log holds {:?}",
        leaked(&text)
    );
}

/// All string values of a JSON value, joined (what a person or a model reads).
fn collect_strings(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s}\n"),
        Value::Array(items) => items.iter().map(collect_strings).collect(),
        Value::Object(map) => map
            .iter()
            // The peer's own stderr is not what it received.
            .filter(|(k, _)| k.as_str() != "peer_stderr")
            .map(|(_, v)| collect_strings(v))
            .collect(),
        _ => String::new(),
    }
}

#[test]
fn an_allowlisted_value_passes_for_its_tool_and_nowhere_else() {
    let stripe = hostile::fake("stripe-secret-key");
    let setup = Setup::start(&format!(
        "[[content.allow]]\nserver = \"fx\"\ntools = [\"{HOSTILE_TOOL}\"]\nvalues = [\"{stripe}\"]\n"
    ));
    let s = setup.run("legacy", &hostile_calls());
    assert_eq!(
        s.tool_ok("tool")["content"][0]["text"],
        hostile::expected_clean_text(true),
        "the allow-listed test key passes; everything else is still redacted"
    );
    // The entry names the tool: the resource with the same text gets no exception.
    assert_eq!(
        s.ok("resource")["contents"][0]["text"],
        hostile::expected_clean_text(false)
    );
}

#[test]
fn escape_mode_shows_the_hidden_characters_as_text() {
    let setup = Setup::start("[content]\nsanitize = \"escape\"\n");
    let s = setup.run("legacy", &hostile_calls());
    let text = s.tool_ok("tool")["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for shown in [
        "\\x1b[1;31mBuild failed\\x1b[0m",
        "\\x1b]8;;https://evil.example/\\x1b\\details",
        "\\u{e0049}\\u{e0067}\\u{e006e}",
        "100\\u{202e}0001\\u{202c}",
        "pass\\u{200b}word reset\\x07",
        "GITHUB_TOKEN=[REDACTED:github-token]",
    ] {
        assert!(text.contains(shown), "{shown} missing from {text:?}");
    }
    assert!(hazards(&text).is_empty(), "{:?}", hazards(&text));
    assert!(leaked(&text).is_empty());
}

#[test]
fn an_open_world_tool_called_with_a_credential_is_refused_before_the_upstream_sees_it() {
    let setup = Setup::start("");
    let token = hostile::fake("github-token");
    let calls = json!([
        { "step": "secret", "tool": OPEN_WORLD_TOOL,
          "args": { "url": "https://api.example.com/", "headers": { "Authorization": format!("token {token}") } } },
        { "step": "secret in a url", "tool": OPEN_WORLD_TOOL,
          "args": { "url": format!("https://x-access-token:{token}@github.com/acme/repo.git") } },
        { "step": "clean", "tool": OPEN_WORLD_TOOL, "args": { "url": "https://api.example.com/" } },
        { "step": "local", "tool": LOCAL_TOOL, "args": { "text": format!("GITHUB_TOKEN={token}") } },
    ]);
    for mode in ["legacy", "2026-07-28"] {
        let s = setup.run(mode, &calls);
        for step in ["secret", "secret in a url"] {
            let error = s.error(step);
            let message = error["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("github-token") && message.contains("open-world"),
                "{mode} {step}: {message}"
            );
            assert!(
                !message.contains(&token),
                "{mode} {step}: the refusal repeats the value"
            );
        }
        assert_eq!(s.text("clean"), "fetched https://api.example.com/");
        // Not open-world (`openWorldHint: false`): the same value may go to a local tool.
        assert!(s.text("local").starts_with("saved "), "{mode}");
    }
    // The upstream never received the credential for its open-world tool.
    let upstream: Vec<Value> = support::tap_messages(&setup.tap())
        .into_iter()
        .filter(|m| m["method"] == "tools/call" && m["params"]["name"] == OPEN_WORLD_TOOL)
        .collect();
    assert_eq!(upstream.len(), 2, "only the clean calls: {upstream:?}");
    assert!(
        !serde_json::to_string(&upstream)
            .unwrap_or_default()
            .contains(&token)
    );
    // Each refusal is audited with the kind, never the value.
    let records = setup.records(8);
    let refusals: Vec<_> = records
        .iter()
        .filter(|r| r.record.name == OPEN_WORLD_TOOL && r.record.decision == "deny")
        .collect();
    assert_eq!(refusals.len(), 4, "two refusals per run");
    for r in refusals {
        assert!(r.record.reason.contains("github-token"), "{:?}", r.record);
        assert!(!r.record.reason.contains(&token));
    }
}

#[test]
fn secrets_in_arguments_can_be_allowed_for_a_tool() {
    let token = hostile::fake("github-token");
    let setup = Setup::start(&format!(
        "[[content.allow]]\nserver = \"fx\"\ntools = [\"{OPEN_WORLD_TOOL}\"]\nkinds = [\"github-token\"]\n"
    ));
    let s = setup.run(
        "legacy",
        &json!([{ "step": "allowed", "tool": OPEN_WORLD_TOOL,
                  "args": { "url": format!("https://x-access-token:{token}@github.com/") } }]),
    );
    assert!(s.text("allowed").starts_with("fetched "));
}

#[test]
fn with_consent_configured_a_credential_in_open_world_arguments_asks_a_person() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tap = dir.path().join("tap.jsonl");
    let config = format!(
        "[gateway]\nstate = \"sqlite:{}\"\n\n[content]\nsecrets_in_arguments = \"consent\"\n\n{}consent = {{ channels = [\"elicitation\"], timeout = \"5s\", trust_elicitation = true }}\n\n[[rules]]\nserver = \"fx\"\neffect = \"allow\"\n",
        dir.path().join("state.db").display(),
        hostile_fixture("fx", &tap),
    );
    let path = dir.path().join("portcullis.toml");
    std::fs::write(&path, &config).expect("write config");
    let token = hostile::fake("github-token");
    let url = format!("https://x-access-token:{token}@github.com/acme/repo.git");
    let steps = json!([
        { "step": "approved", "tool": OPEN_WORLD_TOOL, "args": { "url": url },
          "answer": { "action": "accept", "content": { "decision": "approve", "remember": "once" } } },
        { "step": "denied", "tool": OPEN_WORLD_TOOL, "args": { "url": url },
          "answer": { "action": "accept", "content": { "decision": "deny" } } },
        { "step": "clean, not asked", "tool": OPEN_WORLD_TOOL, "args": { "url": "https://example.com/" },
          "answer": null },
    ]);
    let summary = support::run_python_peer(
        "consent_client.py",
        &["--mode", "legacy", "--steps", &steps.to_string()],
        &PeerTarget::portcullis_stdio("fx", &path),
    );
    let step = |name: &str| summary["steps"][name].clone();
    // Approved, the call goes with its arguments as they were; the answer, which repeats the
    // URL, is redacted on its way back like any other.
    assert_eq!(
        step("approved")["ok"]["content"][0]["text"],
        "fetched https://x-access-token:[REDACTED:github-token]@github.com/acme/repo.git",
        "{summary:#}"
    );
    assert!(step("denied")["error"].is_object(), "{summary:#}");
    assert_eq!(
        step("clean, not asked")["ok"]["content"][0]["text"],
        "fetched https://example.com/"
    );
    // The person was told why: the kind, not the value (the form shows the arguments).
    let forms: Vec<&Value> = summary["elicitations"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(forms.len(), 2, "{summary:#}");
    let message = forms[0]["params"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("github-token") && message.contains("open-world"),
        "{message}"
    );
    // Only the approved call reached the upstream, unchanged.
    let upstream: Vec<Value> = support::tap_messages(&tap)
        .into_iter()
        .filter(|m| m["method"] == "tools/call" && m["params"]["name"] == OPEN_WORLD_TOOL)
        .collect();
    assert_eq!(upstream.len(), 2, "the approved call and the clean one");
    assert_eq!(upstream[0]["params"]["arguments"]["url"], url);
}
