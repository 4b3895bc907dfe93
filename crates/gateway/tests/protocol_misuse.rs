//! Protocol misuse by a client: a second `initialize`, responses to requests nobody sent (or
//! sent to someone else), duplicate in-flight request ids, and cancellations — of nothing,
//! of another session's work, and of real in-flight work, which must reach the upstream as
//! `notifications/cancelled` (observed on a tapped upstream's stdin).

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Gateway, RawHttp, StdioGateway, tap_messages, wait_until};

const RULES: &str =
    "\n[[rules]]\ntools = [\"echo\", \"slow\", \"hang\", \"elicit\"]\neffect = \"allow\"\n";

fn config() -> String {
    format!("{}{RULES}", support::fixture_stdio_server("demo"))
}

/// The fixture behind a `tee` into `tap`.
fn tapped_config(tap: &std::path::Path) -> String {
    format!("{}{RULES}", support::tapped_fixture_server("demo", tap))
}

async fn session(gw: &Gateway, caps: Value) -> RawHttp {
    let mut c = RawHttp::new(&gw.url("demo"));
    c.initialize(caps).await;
    c
}

fn call(id: i64, name: &str, args: Value) -> String {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":name,"arguments":args}})
        .to_string()
}

fn slow_args() -> Value {
    // Long enough to still be running when the test acts on it, bounded by the fixture.
    json!({"steps": 1000, "delay_ms": 50})
}

/// The upstream id of the tapped upstream's `tools/call` of `tool` (the gateway mints its own).
fn upstream_call_id(tap: &std::path::Path, tool: &str) -> Option<Value> {
    tap_messages(tap)
        .into_iter()
        .find(|m| m["method"] == "tools/call" && m["params"]["name"] == tool)
        .map(|m| m["id"].clone())
}

fn upstream_cancelled(tap: &std::path::Path, upstream_id: &Value) -> bool {
    tap_messages(tap).iter().any(|m| {
        m["method"] == "notifications/cancelled" && m["params"]["requestId"] == *upstream_id
    })
}

#[tokio::test]
async fn a_second_initialize_on_a_live_http_session_is_an_error() {
    let gw = Gateway::start(&config());
    let c = session(&gw, json!({})).await;
    let again = json!({"jsonrpc":"2.0","id":9,"method":"initialize","params":{
        "protocolVersion":"2025-03-26","capabilities":{"sampling":{}},"clientInfo":{"name":"t","version":"0"}}});
    let a = c.post(again.to_string()).await;
    assert!(
        a.header("mcp-session-id").is_none(),
        "no new session: {:?}",
        a.headers
    );
    let r = a.response();
    assert_eq!(r["id"], 9);
    assert_eq!(r["error"]["code"], -32600, "{r}");
    // The session keeps its version and works.
    let echo = c
        .call_tool(10, "echo", json!({"message": "same session"}))
        .await;
    assert_eq!(echo["result"]["content"][0]["text"], "same session");
}

#[test]
fn a_second_initialize_over_stdio_is_an_error() {
    let mut gw = StdioGateway::start(&config(), "demo");
    gw.initialize("2025-11-25", json!({}));
    let r = gw.request(
        5,
        "initialize",
        json!({"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"0"}}),
    );
    assert_eq!(r["error"]["code"], -32600, "{r}");
    // Still 2025-11-25: a batch (2025-03-26 only) is still refused.
    gw.send(r#"[{"jsonrpc":"2.0","id":6,"method":"ping"}]"#);
    assert_eq!(gw.recv()["error"]["code"], -32600);
    let echo = gw.request(
        7,
        "tools/call",
        json!({"name":"echo","arguments":{"message":"ok"}}),
    );
    assert_eq!(echo["result"]["content"][0]["text"], "ok");
}

#[tokio::test]
async fn http_client_responses_answer_only_requests_the_gateway_sent() {
    let gw = Gateway::start(&config());
    let c = session(&gw, json!({"elicitation": {}})).await;
    // Nobody asked: 400 with a JSON-RPC error, whatever the id.
    for id in [json!(1), json!(0), json!("1"), json!(-5)] {
        let stray = json!({"jsonrpc":"2.0","id":id,"result":{"action":"accept"}});
        let a = c.post(stray.to_string()).await;
        assert_eq!(a.status, 400, "stray response id {id}: {}", a.body);
        assert!(a.messages[0]["error"]["code"].is_i64(), "{}", a.body);
    }
    // A real server→client request: the elicitation of the `elicit` tool.
    let mut stream = c
        .post_stream(call(3, "elicit", json!({"message": "proceed?"})), &[])
        .await;
    let ask = stream.next_message().await.expect("an elicitation request");
    assert_eq!(ask["method"], "elicitation/create", "{ask}");
    let ask_id = ask["id"].clone();
    // A response with another id does not answer it...
    let wrong = json!({"jsonrpc":"2.0","id": ask_id.as_i64().unwrap() + 1000,"result":{"action":"decline"}});
    assert_eq!(c.post(wrong.to_string()).await.status, 400);
    // ...the right one is taken (202), and the tool gets exactly that answer.
    let answer = json!({"jsonrpc":"2.0","id":ask_id,"result":{"action":"accept","content":{"answer":"yes"}}});
    let a = c.post(answer.to_string()).await;
    assert_eq!(a.status, 202, "{}", a.body);
    let done = stream.next_message().await.expect("the tool's response");
    assert_eq!(done["id"], 3, "{done}");
    let text = done["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.starts_with("action=accept") && text.contains("yes"),
        "{done}"
    );
    // Answering twice is answering nobody.
    let again = c.post(answer.to_string()).await;
    assert_eq!(
        again.status, 400,
        "a second answer to the same request: {}",
        again.body
    );
}

#[tokio::test]
async fn a_session_cannot_answer_another_sessions_server_request() {
    let gw = Gateway::start(&config());
    let owner = session(&gw, json!({"elicitation": {}})).await;
    let thief = session(&gw, json!({"elicitation": {}})).await;
    let mut stream = owner
        .post_stream(call(1, "elicit", json!({"message": "mine"})), &[])
        .await;
    let ask = stream.next_message().await.expect("an elicitation request");
    let forged = json!({"jsonrpc":"2.0","id":ask["id"],"result":{"action":"accept","content":{"answer":"stolen"}}});
    assert_eq!(
        thief.post(forged.to_string()).await.status,
        400,
        "another session's request"
    );
    let answer = json!({"jsonrpc":"2.0","id":ask["id"],"result":{"action":"accept","content":{"answer":"owner"}}});
    assert_eq!(owner.post(answer.to_string()).await.status, 202);
    let done = stream.next_message().await.expect("the tool's response");
    let text = done["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("owner") && !text.contains("stolen"), "{done}");
}

#[test]
fn stdio_drops_and_logs_a_response_nobody_asked_for() {
    let mut gw = StdioGateway::start(&config(), "demo");
    gw.initialize("2025-11-25", json!({}));
    gw.send(r#"{"jsonrpc":"2.0","id":4242,"result":{}}"#);
    gw.send(r#"{"jsonrpc":"2.0","id":"x","error":{"code":-1,"message":"no"}}"#);
    let pong = gw.request(1, "ping", json!({}));
    assert!(pong.get("result").is_some(), "{pong}");
    assert!(
        gw.skipped.is_empty(),
        "stray responses must not be answered: {:?}",
        gw.skipped
    );
    assert!(
        wait_until(support::WAIT, || gw.stderr().contains("nobody asked for")),
        "the stray response is logged; stderr:\n{}",
        gw.stderr()
    );
}

#[tokio::test]
async fn a_duplicate_in_flight_request_id_over_http_is_refused() {
    let gw = Gateway::start(&config());
    let c = session(&gw, json!({})).await;
    let slow = json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{
        "name":"slow","arguments":{"steps":40,"delay_ms":50},"_meta":{"progressToken":"t7"}}});
    let mut first = c.post_stream(slow.to_string(), &[]).await;
    // The first is in flight once its first progress event arrived.
    let progress = first.next_message().await.expect("progress");
    assert_eq!(progress["method"], "notifications/progress", "{progress}");
    let dup = c.post(call(7, "echo", json!({"message": "dup"}))).await;
    assert_eq!(dup.status, 400, "{}", dup.body);
    assert_eq!(dup.messages[0]["error"]["code"], -32600, "{}", dup.body);
    // The original request is unharmed and still gets its own answer.
    let rest = first.rest().await;
    let last = rest.last().and_then(|e| e.json()).expect("a response");
    assert_eq!(last["id"], 7);
    assert_eq!(last["result"]["content"][0]["text"], "done", "{last}");
    // Once answered, the id may be used again.
    let reuse = c.call_tool(7, "echo", json!({"message": "again"})).await;
    assert_eq!(reuse["result"]["content"][0]["text"], "again");
}

#[test]
fn a_duplicate_in_flight_request_id_over_stdio_is_refused() {
    let mut gw = StdioGateway::start(&config(), "demo");
    gw.initialize("2025-11-25", json!({}));
    gw.send_json(
        &json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{
        "name":"slow","arguments":{"steps":20,"delay_ms":50},"_meta":{"progressToken":"t7"}}}),
    );
    let progress = gw.recv();
    assert_eq!(progress["method"], "notifications/progress", "{progress}");
    gw.send(&call(7, "echo", json!({"message": "dup"})));
    // Exactly two messages with id 7 may follow: a refusal of the duplicate, then the
    // original's answer — never two results.
    let mut answers = Vec::new();
    while answers.len() < 2 {
        let m = gw.recv();
        if m["id"] == 7 {
            answers.push(m);
        }
    }
    assert_eq!(
        answers[0]["error"]["code"], -32600,
        "the duplicate is refused: {answers:?}"
    );
    assert_eq!(
        answers[1]["result"]["content"][0]["text"], "done",
        "the original completes: {answers:?}"
    );
}

#[tokio::test]
async fn cancelling_what_was_never_sent_is_ignored_and_harms_nobody() {
    let gw = Gateway::start(&config());
    let victim = session(&gw, json!({})).await;
    let attacker = session(&gw, json!({})).await;
    let slow = json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{
        "name":"slow","arguments":{"steps":20,"delay_ms":50},"_meta":{"progressToken":5}}});
    let mut running = victim.post_stream(slow.to_string(), &[]).await;
    running.next_message().await.expect("progress");
    // The attacker cancels "5" (the victim's id), its own unknown ids, and garbage.
    for params in [
        json!({"requestId": 5}),
        json!({"requestId": "5"}),
        json!({"requestId": 99999, "reason": "x"}),
        json!({"requestId": {"nested": true}}),
        json!({}),
    ] {
        let n = json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":params});
        let a = attacker.post(n.to_string()).await;
        assert!(
            a.status == 202 || a.status == 400,
            "{params}: {} {}",
            a.status,
            a.body
        );
    }
    // The victim's own session also ignores a cancel of an id it never used.
    let n = json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId": 6}});
    assert_eq!(victim.post(n.to_string()).await.status, 202);
    let last = running
        .rest()
        .await
        .last()
        .and_then(|e| e.json())
        .expect("a response");
    assert_eq!(last["id"], 5);
    assert_eq!(last["result"]["content"][0]["text"], "done", "{last}");
    let echo = attacker
        .call_tool(1, "echo", json!({"message": "fine"}))
        .await;
    assert_eq!(echo["result"]["content"][0]["text"], "fine");
}

#[tokio::test]
async fn cancelling_an_in_flight_http_call_cancels_it_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let tap = dir.path().join("upstream-stdin.ndjson");
    let gw = Gateway::start(&tapped_config(&tap));
    let c = session(&gw, json!({})).await;
    let slow = json!({"jsonrpc":"2.0","id":"s1","method":"tools/call","params":{
        "name":"slow","arguments":slow_args(),"_meta":{"progressToken":"s1"}}});
    let mut running = c.post_stream(slow.to_string(), &[]).await;
    running.next_message().await.expect("progress");
    let upstream_id = upstream_call_id(&tap, "slow").expect("the call reached the upstream");
    let cancel = json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"s1","reason":"user abort"}});
    assert_eq!(c.post(cancel.to_string()).await.status, 202);
    // The upstream is told, under the id the gateway gave it (not the client's).
    assert!(
        wait_until(support::WAIT, || upstream_cancelled(&tap, &upstream_id)),
        "no notifications/cancelled for {upstream_id} upstream; tap:\n{:?}",
        tap_messages(&tap)
    );
    // The call's stream ends without a response.
    let rest = running.rest().await;
    assert!(
        !rest
            .iter()
            .filter_map(|e| e.json())
            .any(|m| m.get("result").is_some() || m.get("error").is_some()),
        "a cancelled call gets no response: {rest:?}"
    );
    let echo = c.call_tool(2, "echo", json!({"message": "next"})).await;
    assert_eq!(echo["result"]["content"][0]["text"], "next");
}

#[test]
fn cancelling_an_in_flight_stdio_call_cancels_it_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let tap = dir.path().join("upstream-stdin.ndjson");
    let mut gw = StdioGateway::start(&tapped_config(&tap), "demo");
    gw.initialize("2025-11-25", json!({}));
    gw.send(&call(11, "hang", json!({})));
    assert!(
        wait_until(support::WAIT, || upstream_call_id(&tap, "hang").is_some()),
        "the call never reached the upstream"
    );
    let upstream_id = upstream_call_id(&tap, "hang").unwrap();
    gw.send(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":11}}"#);
    assert!(
        wait_until(support::WAIT, || upstream_cancelled(&tap, &upstream_id)),
        "no notifications/cancelled upstream; tap:\n{:?}",
        tap_messages(&tap)
    );
    let echo = gw.request(
        12,
        "tools/call",
        json!({"name":"echo","arguments":{"message":"next"}}),
    );
    assert_eq!(echo["result"]["content"][0]["text"], "next");
    // Nothing was ever sent for 11, not even after the next call was answered.
    assert!(gw.try_recv_line(Duration::from_millis(300)).is_none());
    assert!(
        !gw.skipped.iter().any(|m| m["id"] == 11),
        "{:?}",
        gw.skipped
    );
}

#[tokio::test]
async fn server_requests_the_client_did_not_declare_never_reach_it() {
    let gw = Gateway::start(&format!(
        "{}\n[[rules]]\ntools = [\"elicit\", \"echo\"]\neffect = \"allow\"\n",
        support::fixture_stdio_server("demo")
    ));
    // No elicitation capability: the upstream's elicitation/create is refused at the gateway.
    let c = session(&gw, json!({})).await;
    let mut stream = c
        .post_stream(call(1, "elicit", json!({"message": "may I?"})), &[])
        .await;
    let mut messages = Vec::new();
    while let Some(m) = stream.next_message().await {
        messages.push(m);
    }
    assert!(
        !messages.iter().any(|m| m["method"] == "elicitation/create"),
        "an undeclared server→client request reached the client: {messages:?}"
    );
    let last = messages.last().expect("a response");
    assert_eq!(last["id"], 1, "{messages:?}");
    let failed = last.get("error").is_some() || last["result"]["isError"] == true;
    assert!(failed, "the tool cannot have had an answer: {last}");
    let echo = c.call_tool(2, "echo", json!({"message": "ok"})).await;
    assert_eq!(echo["result"]["content"][0]["text"], "ok");
}

#[tokio::test]
async fn delete_ends_the_sessions_in_flight_calls() {
    let gw = Gateway::start(&config());
    let c = session(&gw, json!({})).await;
    let slow = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{
        "name":"slow","arguments":slow_args(),"_meta":{"progressToken":1}}});
    let mut running = c.post_stream(slow.to_string(), &[]).await;
    running.next_message().await.expect("progress");
    let d = c.delete_with(&[]).await;
    assert!((200..300).contains(&d.status), "{} {}", d.status, d.body);
    // The call's stream ends (bounded) instead of running on for a session that is gone.
    let rest = running.rest().await;
    assert!(
        !rest
            .iter()
            .filter_map(|e| e.json())
            .any(|m| m.get("result").is_some()),
        "a call of an ended session completed: {rest:?}"
    );
}

#[test]
fn stdio_exits_when_the_host_hangs_up_even_with_a_call_in_flight() {
    let mut gw = StdioGateway::start(&config(), "demo");
    gw.initialize("2025-11-25", json!({}));
    gw.send(&call(1, "hang", json!({})));
    let echo = gw.request(
        2,
        "tools/call",
        json!({"name":"echo","arguments":{"message":"up"}}),
    );
    assert_eq!(echo["result"]["content"][0]["text"], "up");
    gw.close_stdin();
    let code = gw.wait_exit(support::WAIT);
    assert_eq!(
        code,
        Some(0),
        "the gateway did not exit cleanly on EOF; stderr:\n{}",
        gw.stderr()
    );
}
