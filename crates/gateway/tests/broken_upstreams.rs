//! Broken upstreams: a server that dies mid-call, writes garbage or unsolicited responses to
//! stdout, never answers, answers with more than the message limit, cannot be started, or
//! is an HTTP server that is down. Each time the client gets a clear JSON-RPC error (or the
//! real answer) and the gateway keeps serving.

mod support;

use serde_json::{Value, json};
use support::{FixtureHttp, Gateway, RawHttp, StdioGateway, tap_messages, wait_until};

const UPSTREAM_UNAVAILABLE: i64 = -32010;
const REQUEST_TIMEOUT: i64 = -32001;

/// The fixture as `demo` with a 1 s timeout, every adversarial tool allowed.
fn config() -> String {
    format!(
        "[gateway]\nmax_message_bytes = \"64KiB\"\n\n{}timeout = \"1s\"\n\n[[rules]]\nserver = \"demo\"\ntools = [\"echo\", \"crash\", \"garbage\", \"unsolicited\", \"hang\", \"large\"]\neffect = \"allow\"\n",
        support::fixture_stdio_server("demo")
    )
}

async fn session(gw: &Gateway) -> RawHttp {
    let mut c = RawHttp::new(&gw.url("demo"));
    c.initialize(json!({})).await;
    c
}

async fn echo_ok(c: &RawHttp, id: i64, message: &str) {
    let r = c.call_tool(id, "echo", json!({"message": message})).await;
    assert_eq!(r["result"]["content"][0]["text"], message, "{r}");
}

fn error_of(r: &Value) -> (i64, String) {
    let code = r["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {r}"));
    (
        code,
        r["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn an_upstream_that_dies_mid_call_fails_the_call_and_is_restarted() {
    let gw = Gateway::start(&config());
    let c = session(&gw).await;
    echo_ok(&c, 1, "before").await;
    let r = c.call_tool(2, "crash", json!({})).await;
    let (code, message) = error_of(&r);
    assert_eq!(code, UPSTREAM_UNAVAILABLE, "{r}");
    assert!(
        message.contains("demo"),
        "the error names the server: {message}"
    );
    // The next call starts a new process and succeeds; so does the one after a second crash.
    echo_ok(&c, 3, "after").await;
    let r = c.call_tool(4, "crash", json!({})).await;
    assert_eq!(error_of(&r).0, UPSTREAM_UNAVAILABLE, "{r}");
    let mut answered = false;
    for id in 5..60 {
        // The second restart may back off briefly: retry (bounded) until it is back.
        let r = c.call_tool(id, "echo", json!({"message": "back"})).await;
        if r["result"]["content"][0]["text"] == "back" {
            answered = true;
            break;
        }
        assert_eq!(error_of(&r).0, UPSTREAM_UNAVAILABLE, "{r}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        answered,
        "the server never came back; stderr:\n{}",
        gw.proc.stderr()
    );
}

#[tokio::test]
async fn garbage_on_stdout_is_skipped_and_the_call_succeeds() {
    let gw = Gateway::start(&config());
    let c = session(&gw).await;
    for id in 1..=3 {
        let r = c.call_tool(id, "garbage", json!({})).await;
        assert_eq!(r["result"]["content"][0]["text"], "ok", "{r}");
    }
    echo_ok(&c, 4, "still serving").await;
    // Log lines reach stderr within the logger's flush interval (100 ms).
    assert!(
        support::wait_until(support::WAIT, || gw
            .proc
            .stderr()
            .contains("not a JSON-RPC message")),
        "the garbage is logged"
    );
}

#[tokio::test]
async fn a_response_nobody_asked_for_is_dropped_and_the_real_answer_arrives() {
    let gw = Gateway::start(&config());
    let c = session(&gw).await;
    let a = c
        .post(json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"unsolicited","arguments":{}}}).to_string())
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.response()["id"], 1);
    assert_eq!(
        a.response()["result"]["content"][0]["text"],
        "ok",
        "{}",
        a.body
    );
    assert!(
        !a.body.contains("nobody-asked-987"),
        "the stray response leaked: {}",
        a.body
    );
    echo_ok(&c, 2, "still serving").await;
    assert!(
        wait_until(support::WAIT, || gw
            .proc
            .stderr()
            .contains("nobody asked for")),
        "the stray response is logged"
    );
}

#[tokio::test]
async fn an_upstream_that_never_answers_times_out_with_32001() {
    let dir = tempfile::tempdir().unwrap();
    let tap = dir.path().join("tap.ndjson");
    let cfg = config().replace(
        &support::fixture_stdio_server("demo"),
        &support::tapped_fixture_server("demo", &tap),
    );
    let gw = Gateway::start(&cfg);
    let c = session(&gw).await;
    let r = c.call_tool(1, "hang", json!({})).await;
    let (code, message) = error_of(&r);
    assert_eq!(code, REQUEST_TIMEOUT, "{r}");
    assert!(message.contains("demo"), "{message}");
    // The upstream was told to stop the abandoned call.
    let hang_id = tap_messages(&tap)
        .into_iter()
        .find(|m| m["params"]["name"] == "hang")
        .map(|m| m["id"].clone())
        .expect("the call reached the upstream");
    assert!(
        wait_until(support::WAIT, || tap_messages(&tap).iter().any(
            |m| m["method"] == "notifications/cancelled" && m["params"]["requestId"] == hang_id
        )),
        "no notifications/cancelled upstream"
    );
    echo_ok(&c, 2, "still serving").await;
    // Several hung calls at once each time out; the connection survives them all.
    let calls = (10..13).map(|id| c.call_tool(id, "hang", json!({})));
    for r in futures::future::join_all(calls).await {
        assert_eq!(error_of(&r).0, REQUEST_TIMEOUT, "{r}");
    }
    echo_ok(&c, 20, "still serving").await;
}

#[tokio::test]
async fn an_answer_over_the_message_limit_fails_the_call_not_the_gateway() {
    let gw = Gateway::start(&config());
    let c = session(&gw).await;
    let r = c.call_tool(1, "large", json!({"bytes": 100_000})).await;
    assert!(
        r.get("error").is_some(),
        "an over-limit answer must not be delivered: {}",
        &r.to_string()[..200.min(r.to_string().len())]
    );
    let small = c.call_tool(2, "large", json!({"bytes": 1000})).await;
    assert_eq!(
        small["result"]["content"][0]["text"].as_str().map(str::len),
        Some(1000)
    );
}

#[tokio::test]
async fn an_upstream_that_cannot_start_fails_initialize_without_a_session() {
    let cfg = format!(
        "[gateway]\nmax_sessions = 1\n\n[servers.missing]\ncommand = [\"/nonexistent/portcullis-test-server\"]\n\n{}\n[[rules]]\ntools = [\"echo\"]\neffect = \"allow\"\n",
        support::fixture_stdio_server("demo")
    );
    let gw = Gateway::start(&cfg);
    let c = RawHttp::new(&gw.url("missing"));
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}});
    for _ in 0..3 {
        let a = c.post(init.to_string()).await;
        assert!(
            a.header("mcp-session-id").is_none(),
            "no session for a failed initialize: {:?}",
            a.headers
        );
        let r = a.response();
        assert_eq!(r["id"], 0);
        let (code, message) = error_of(r);
        assert_eq!(code, UPSTREAM_UNAVAILABLE, "{r}");
        assert!(
            message.contains("missing") && message.contains("/nonexistent/portcullis-test-server"),
            "the error names the server and the command: {message}"
        );
    }
    // The failures took no place under max_sessions = 1: a working route still initializes.
    let mut ok = RawHttp::new(&gw.url("demo"));
    ok.initialize(json!({})).await;
    echo_ok(&ok, 1, "fine").await;
}

#[test]
fn an_upstream_that_cannot_start_fails_stdio_initialize_and_the_gateway_keeps_answering() {
    let cfg = "[servers.missing]\ncommand = [\"/nonexistent/portcullis-test-server\"]\n\n[[rules]]\neffect = \"allow\"\n";
    let mut gw = StdioGateway::start(cfg, "missing");
    let init = json!({"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}});
    let r = gw.request(0, "initialize", init.clone());
    let (code, message) = error_of(&r);
    assert_eq!(code, UPSTREAM_UNAVAILABLE, "{r}");
    assert!(
        message.contains("/nonexistent/portcullis-test-server"),
        "{message}"
    );
    // No session: a request is refused as uninitialized, and initialize may be retried.
    let list = gw.request(1, "tools/list", json!({}));
    assert_eq!(list["error"]["code"], -32600, "{list}");
    let again = gw.request(2, "initialize", init);
    assert_eq!(error_of(&again).0, UPSTREAM_UNAVAILABLE, "{again}");
}

#[tokio::test]
async fn an_http_upstream_that_is_down_gets_a_clear_error() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = format!(
        "[servers.remote]\nurl = \"http://127.0.0.1:{port}/mcp\"\ntimeout = \"5s\"\n\n[[rules]]\nserver = \"remote\"\neffect = \"allow\"\n"
    );
    let gw = Gateway::start(&cfg);
    let c = RawHttp::new(&gw.url("remote"));
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}});
    let a = c.post(init.to_string()).await;
    assert!(a.header("mcp-session-id").is_none(), "{:?}", a.headers);
    let (code, message) = error_of(a.response());
    assert_eq!(code, UPSTREAM_UNAVAILABLE, "{}", a.body);
    assert!(
        message.contains("remote"),
        "the error names the server: {message}"
    );
}

#[tokio::test]
async fn an_http_upstream_that_goes_down_mid_session_gets_a_clear_error() {
    let mut fixture = FixtureHttp::start(&[]);
    let url = fixture.url.clone();
    let cfg = format!(
        "[servers.remote]\nurl = \"{url}\"\ntimeout = \"5s\"\n\n[[rules]]\nserver = \"remote\"\ntools = [\"echo\"]\neffect = \"allow\"\n"
    );
    let gw = Gateway::start(&cfg);
    let mut c = RawHttp::new(&gw.url("remote"));
    c.initialize(json!({})).await;
    echo_ok(&c, 1, "up").await;
    support::kill_group(fixture.proc.child.id());
    let _ = fixture.proc.child.wait();
    let r = c.call_tool(2, "echo", json!({"message": "down"})).await;
    let (code, message) = error_of(&r);
    assert_eq!(code, UPSTREAM_UNAVAILABLE, "{r}");
    assert!(message.contains("remote"), "{message}");
    // The gateway itself is fine.
    let pong = c.request(3, "ping", json!({})).await;
    assert!(pong.get("result").is_some(), "{pong}");
}
