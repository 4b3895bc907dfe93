//! Rate limits per principal × server × tool: a rule's own `rate`, the `[limits]` default,
//! the JSON-RPC error and HTTP 429 with `Retry-After`, for both protocol eras and the official
//! Python SDK client; and every refusal is in the audit log.

mod support;

use portcullis_store::{AuditQuery, SqliteStore, Store};
use serde_json::{Value, json};
use support::{Gateway, HttpAnswer, PeerSummary, PeerTarget, RawHttp};

const RATE_LIMITED: i64 = -32012;

fn config(state: &std::path::Path, tap: &std::path::Path) -> String {
    format!(
        r#"[gateway]
state = "sqlite:{}"

[limits]
rate = "1/hour"

{}
[[rules]]
server = "fx"
tools = ["echo"]
effect = "allow"
rate = "2/minute"

[[rules]]
server = "fx"
tools = ["add"]
effect = "allow"
"#,
        state.display(),
        support::tapped_fixture_server("fx", tap),
    )
}

fn call(id: i64, name: &str, args: Value) -> String {
    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": { "name": name, "arguments": args } })
    .to_string()
}

#[track_caller]
fn assert_limited(a: &HttpAnswer, whose: &str) {
    assert_eq!(a.status, 429, "{}", a.body);
    let wait: u64 = a
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After in {:?}", a.headers));
    assert!((1..=3600).contains(&wait), "Retry-After {wait}");
    let err = &a.response()["error"];
    assert_eq!(err["code"], RATE_LIMITED, "{err}");
    assert!(err["data"]["retryAfterMs"].as_u64() > Some(0), "{err}");
    let message = err["message"].as_str().unwrap_or_default();
    assert!(message.contains(whose), "{err}");
}

#[tokio::test]
async fn calls_over_the_limit_are_refused_with_429_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let (db, tap) = (dir.path().join("state.db"), dir.path().join("tap.jsonl"));
    let gw = Gateway::start(&config(&db, &tap));
    let mut c = RawHttp::new(&gw.url("fx"));
    c.initialize(json!({})).await;

    // The rule's own rate: 2 per minute, burst 2.
    for id in 1..=2 {
        let a = c.post(call(id, "echo", json!({ "message": "x" }))).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.response()["result"]["content"][0]["text"], "x");
    }
    let over = c.post(call(3, "echo", json!({ "message": "x" }))).await;
    assert_limited(&over, "rule 1");

    // Another tool has its own budget: here the gateway default of 1 per hour.
    let a = c.post(call(4, "add", json!({ "a": 1, "b": 2 }))).await;
    assert_eq!(
        a.response()["result"]["content"][0]["text"],
        "3",
        "{}",
        a.body
    );
    let over = c.post(call(5, "add", json!({ "a": 1, "b": 2 }))).await;
    assert_limited(&over, "limits.rate");

    // The budget is the principal's, not the session's: a 2026-07-28 client (stateless, same
    // anonymous principal) is over it too.
    let modern = RawHttp::new(&gw.url("fx"));
    let body = json!({ "jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {
        "name": "echo", "arguments": { "message": "x" },
        "_meta": { "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                   "io.modelcontextprotocol/clientCapabilities": {} } } });
    let headers = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "echo"),
    ];
    let over = modern.post_with(body.to_string(), &headers).await;
    assert_limited(&over, "rule 1");

    // None of the refused calls reached the server.
    let calls = support::tap_messages(&tap)
        .iter()
        .filter(|m| m["method"] == "tools/call")
        .count();
    assert_eq!(calls, 3);

    let store = SqliteStore::open_read_only(&db).unwrap();
    let limited = AuditQuery {
        decision: Some("rate_limited".into()),
        ..AuditQuery::default()
    };
    assert!(support::wait_until(support::WAIT, || store
        .query_audit(&limited)
        .unwrap()
        .len()
        == 3));
    let records = store.query_audit(&limited).unwrap();
    assert!(
        records[0].record.reason.contains("2 calls per minute"),
        "{:?}",
        records[0]
    );
    assert!(
        records[1].record.reason.contains("1 calls per hour"),
        "{:?}",
        records[1]
    );
}

/// The official Python SDK client reads the JSON-RPC error out of the 429.
#[test]
fn the_python_sdk_sees_the_rate_limit_error() {
    let dir = tempfile::tempdir().unwrap();
    let (db, tap) = (dir.path().join("state.db"), dir.path().join("tap.jsonl"));
    let gw = Gateway::start(&config(&db, &tap));
    let calls = json!([
        { "step": "1", "tool": "echo", "args": { "message": "a" } },
        { "step": "2", "tool": "echo", "args": { "message": "b" } },
        { "step": "3", "tool": "echo", "args": { "message": "c" } },
    ]);
    for mode in ["legacy", "2026-07-28"] {
        let s = PeerSummary(support::run_python_client(
            "calls",
            mode,
            &PeerTarget::Url(gw.url("fx")),
            &["--calls", &calls.to_string()],
        ));
        if mode == "legacy" {
            assert_eq!(s.text("1"), "a");
            assert_eq!(s.text("2"), "b");
        }
        let err = s.error("3");
        assert_eq!(err["code"], RATE_LIMITED, "{mode}: {err}");
        assert!(
            err["message"].as_str().unwrap().contains("try again"),
            "{err}"
        );
    }
}
