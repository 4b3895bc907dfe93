//! Ingress: malformed and hostile frames are refused with a JSON-RPC error before anything
//! else sees them, over Streamable HTTP (status + error body) and over stdio (an error line,
//! and the gateway keeps serving the next valid message). Also JSON-RPC batches: refused on
//! a 2025-11-25 session, answered as one array on a 2025-03-26 one.

mod support;

use serde_json::{Value, json};
use support::{Gateway, HttpAnswer, RawHttp, StdioGateway};

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;

/// The fixture as `demo`, `echo` allowed, messages limited to 64 KiB (the fixture's own tools/list is ~9 KiB).
fn config() -> String {
    format!(
        "[gateway]\nmax_message_bytes = \"64KiB\"\n\n{}\n[[rules]]\nserver = \"demo\"\ntools = [\"echo\"]\neffect = \"allow\"\n",
        support::fixture_stdio_server("demo")
    )
}

/// A `ping` whose params nest to exactly `depth` levels (the top-level object is level 1).
fn nested_ping(id: i64, depth: usize) -> String {
    let arrays = depth - 2;
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"ping","params":{{"deep":{}{}}}}}"#,
        "[".repeat(arrays),
        "]".repeat(arrays)
    )
}

/// Every bad frame of this suite: (what it is, its bytes, the expected JSON-RPC code).
fn bad_frames() -> Vec<(&'static str, Vec<u8>, i64)> {
    let mut oversize = br#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"message":""#.to_vec();
    oversize.extend(std::iter::repeat_n(b'x', 70_000));
    oversize.extend(br#""}}}"#);
    vec![
        ("invalid JSON", br#"{"jsonrpc":"2.0","id":1,"method":"ping""#.to_vec(), PARSE_ERROR),
        ("trailing data", br#"{"jsonrpc":"2.0","id":1,"method":"ping"} {}"#.to_vec(), PARSE_ERROR),
        (
            "invalid UTF-8",
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"x\":\"\xff\xfe\"}}".to_vec(),
            PARSE_ERROR,
        ),
        (
            "duplicate top-level key",
            br#"{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/list"}"#.to_vec(),
            INVALID_REQUEST,
        ),
        (
            "duplicate key inside arguments",
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"ok","message":"/etc/shadow"}}}"#.to_vec(),
            INVALID_REQUEST,
        ),
        (
            "duplicate key, second spelt with an escape",
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"ok","\u006dessage":"x"}}}"#.to_vec(),
            INVALID_REQUEST,
        ),
        ("nesting 65 levels", nested_ping(1, 65).into_bytes(), INVALID_REQUEST),
        ("float id", br#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#.to_vec(), INVALID_REQUEST),
        ("bool id", br#"{"jsonrpc":"2.0","id":true,"method":"ping"}"#.to_vec(), INVALID_REQUEST),
        ("object id", br#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#.to_vec(), INVALID_REQUEST),
        ("array id", br#"{"jsonrpc":"2.0","id":[1],"method":"ping"}"#.to_vec(), INVALID_REQUEST),
        ("null id on a request", br#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#.to_vec(), INVALID_REQUEST),
        ("id beyond i64", br#"{"jsonrpc":"2.0","id":9223372036854775808,"method":"ping"}"#.to_vec(), INVALID_REQUEST),
        ("wrong jsonrpc version", br#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#.to_vec(), INVALID_REQUEST),
        ("empty batch", b"[]".to_vec(), INVALID_REQUEST),
        ("frame over max_message_bytes", oversize, INVALID_REQUEST),
    ]
}

fn assert_rpc_error(what: &str, msg: &Value, code: i64) {
    assert_eq!(msg["jsonrpc"], "2.0", "{what}: {msg}");
    assert_eq!(msg["error"]["code"], code, "{what}: {msg}");
    assert!(
        msg["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: {msg}"
    );
    assert!(msg.get("result").is_none(), "{what}: {msg}");
}

fn assert_http_error(what: &str, a: &HttpAnswer, status: u16, code: i64) {
    assert_eq!(a.status, status, "{what}: {}", a.body);
    assert!(
        a.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{what}: {:?}",
        a.headers
    );
    let msg: Value = serde_json::from_str(&a.body)
        .unwrap_or_else(|e| panic!("{what}: body is not JSON ({e}): {}", a.body));
    assert_rpc_error(what, &msg, code);
}

async fn http_session(gw: &Gateway) -> RawHttp {
    let mut c = RawHttp::new(&gw.url("demo"));
    c.initialize(json!({})).await;
    c
}

async fn still_serves(c: &RawHttp, id: i64) {
    let echo = c
        .call_tool(id, "echo", json!({"message": "still here"}))
        .await;
    assert_eq!(echo["result"]["content"][0]["text"], "still here", "{echo}");
}

#[tokio::test]
async fn http_refuses_every_bad_frame_with_400_and_a_jsonrpc_error() {
    let gw = Gateway::start(&config());
    let c = http_session(&gw).await;
    for (what, bytes, code) in bad_frames() {
        let a = c.post_bytes(bytes, &[]).await;
        let status = if what.starts_with("frame over") {
            413
        } else {
            400
        };
        assert_http_error(what, &a, status, code);
    }
    still_serves(&c, 100).await;
}

#[tokio::test]
async fn http_refuses_bad_frames_before_a_session_exists_too() {
    let gw = Gateway::start(&config());
    let c = RawHttp::new(&gw.url("demo"));
    for (what, bytes, code) in bad_frames() {
        let a = c.post_bytes(bytes, &[]).await;
        let status = if what.starts_with("frame over") {
            413
        } else {
            400
        };
        assert_http_error(what, &a, status, code);
        assert!(
            a.header("mcp-session-id").is_none(),
            "{what}: a refused frame must not start a session"
        );
    }
}

#[tokio::test]
async fn http_nesting_of_exactly_64_levels_is_accepted() {
    let gw = Gateway::start(&config());
    let c = http_session(&gw).await;
    let a = c.post(nested_ping(5, 64)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.response()["id"], 5);
    assert!(a.response().get("result").is_some(), "{}", a.body);
}

#[tokio::test]
async fn http_batch_on_a_2025_11_25_session_is_refused() {
    let gw = Gateway::start(&config());
    let c = http_session(&gw).await;
    assert_eq!(c.version.as_deref(), Some("2025-11-25"));
    let a = c
        .post(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]"#)
        .await;
    assert_http_error("batch", &a, 400, INVALID_REQUEST);
    still_serves(&c, 3).await;
}

#[tokio::test]
async fn http_batch_on_a_2025_03_26_session_is_answered_as_an_array() {
    let gw = Gateway::start(&config());
    let mut c = RawHttp::new(&gw.url("demo"));
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"0"}}});
    let a = c.post(init.to_string()).await;
    assert_eq!(
        a.response()["result"]["protocolVersion"],
        "2025-03-26",
        "{}",
        a.body
    );
    c.session = a.header("mcp-session-id").map(str::to_owned);
    c.version = Some("2025-03-26".into());
    let batch = json!([
        {"jsonrpc":"2.0","method":"notifications/initialized"},
        {"jsonrpc":"2.0","id":1,"method":"ping"},
        {"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"in a batch"}}},
        {"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"crash","arguments":{}}}
    ]);
    let a = c.post(batch.to_string()).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let answers = batch_answers(&a);
    assert_eq!(
        answers.len(),
        3,
        "one answer per request, none for the notification: {}",
        a.body
    );
    let by_id = |id: i64| {
        answers
            .iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("no answer {id}: {}", a.body))
    };
    assert!(by_id(1).get("result").is_some());
    assert_eq!(by_id(2)["result"]["content"][0]["text"], "in a batch");
    // Each member is decided on its own: a hidden tool cannot ride in a batch.
    assert_eq!(by_id(3)["error"]["code"], -32602, "{}", a.body);
}

// ---------------------------------------------------------------------------------------------
// stdio
// ---------------------------------------------------------------------------------------------

#[test]
fn stdio_answers_every_bad_frame_with_an_error_line_and_keeps_serving() {
    let mut gw = StdioGateway::start(&config(), "demo");
    gw.initialize("2025-11-25", json!({}));
    for (n, (what, mut bytes, code)) in bad_frames().into_iter().enumerate() {
        bytes.push(b'\n');
        gw.send_bytes(&bytes);
        let msg = gw.recv();
        assert_rpc_error(what, &msg, code);
        // The next valid message is served as usual.
        let id = 100 + n as i64;
        let echo = gw.request(
            id,
            "tools/call",
            json!({"name":"echo","arguments":{"message": what}}),
        );
        assert_eq!(echo["result"]["content"][0]["text"], what, "{what}: {echo}");
    }
    assert!(
        gw.skipped.is_empty(),
        "unexpected extra lines: {:?}",
        gw.skipped
    );
}

#[test]
fn stdio_refuses_bad_frames_before_initialize_and_then_initializes() {
    let mut gw = StdioGateway::start(&config(), "demo");
    for (what, mut bytes, code) in bad_frames() {
        bytes.push(b'\n');
        gw.send_bytes(&bytes);
        assert_rpc_error(what, &gw.recv(), code);
    }
    gw.initialize("2025-11-25", json!({}));
    let echo = gw.request(
        1,
        "tools/call",
        json!({"name":"echo","arguments":{"message":"up"}}),
    );
    assert_eq!(echo["result"]["content"][0]["text"], "up");
}

#[test]
fn stdio_keeps_the_id_of_an_invalid_request_when_it_can_read_it() {
    let mut gw = StdioGateway::start(&config(), "demo");
    gw.initialize("2025-11-25", json!({}));
    // Readable id, but params is a string: the error is addressed to id 42.
    gw.send(r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":"nope"}"#);
    let msg = gw.recv();
    assert_rpc_error("bad params", &msg, INVALID_REQUEST);
    assert_eq!(msg["id"], 42, "{msg}");
}

#[test]
fn stdio_batch_on_a_2025_11_25_session_is_refused() {
    let mut gw = StdioGateway::start(&config(), "demo");
    gw.initialize("2025-11-25", json!({}));
    gw.send(
        r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]"#,
    );
    let msg = gw.recv();
    assert_rpc_error("batch", &msg, INVALID_REQUEST);
    assert!(msg.is_object(), "one error, not an array: {msg}");
    let pong = gw.request(3, "ping", json!({}));
    assert!(pong.get("result").is_some(), "{pong}");
}

#[test]
fn stdio_batch_on_a_2025_03_26_session_gets_one_array_line() {
    let mut gw = StdioGateway::start(&config(), "demo");
    let init = gw.initialize("2025-03-26", json!({}));
    assert_eq!(init["protocolVersion"], "2025-03-26");
    gw.send(
        &json!([
            {"jsonrpc":"2.0","id":"a","method":"ping"},
            {"jsonrpc":"2.0","method":"notifications/roots/list_changed"},
            {"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"message":"batched"}}},
            {"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"hang","arguments":{}}}
        ])
        .to_string(),
    );
    let line = gw.recv();
    let answers = line
        .as_array()
        .unwrap_or_else(|| panic!("expected one array line, got {line}"));
    assert_eq!(answers.len(), 3, "{line}");
    let by_id = |id: Value| {
        answers
            .iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("no answer {id}: {line}"))
    };
    assert!(by_id(json!("a")).get("result").is_some(), "{line}");
    assert_eq!(by_id(json!(7))["result"]["content"][0]["text"], "batched");
    assert_eq!(
        by_id(json!(8))["error"]["code"],
        -32602,
        "hidden tool in a batch: {line}"
    );
    // A batch of notifications only gets nothing back; the next request is answered.
    gw.send(r#"[{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}]"#);
    let pong = gw.request(9, "ping", json!({}));
    assert!(pong.get("result").is_some(), "{pong}");
    assert!(
        gw.skipped.is_empty(),
        "a notification-only batch must get no answer: {:?}",
        gw.skipped
    );
}

/// A 2025-03-26 batch that uses one request id twice: one member runs, the other is refused.
fn assert_duplicate_refused(what: &str, answers: &[Value]) {
    let with_id: Vec<&Value> = answers.iter().filter(|m| m["id"] == 1).collect();
    assert_eq!(with_id.len(), 2, "{what}: {answers:?}");
    let ran = with_id.iter().filter(|m| m.get("result").is_some()).count();
    let refused = with_id
        .iter()
        .filter(|m| m["error"]["code"] == INVALID_REQUEST)
        .count();
    assert_eq!(
        (ran, refused),
        (1, 1),
        "{what}: one runs, the duplicate is refused: {answers:?}"
    );
}

const DUPLICATE_BATCH: &str = r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"one"}}},{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"two"}}}]"#;

#[test]
fn stdio_batch_with_a_duplicate_request_id_runs_it_once() {
    let mut gw = StdioGateway::start(&config(), "demo");
    gw.initialize("2025-03-26", json!({}));
    gw.send(DUPLICATE_BATCH);
    let line = gw.recv();
    assert_duplicate_refused("stdio", line.as_array().unwrap_or_else(|| panic!("{line}")));
}

#[tokio::test]
async fn http_batch_with_a_duplicate_request_id_runs_it_once() {
    let gw = Gateway::start(&config());
    let mut c = RawHttp::new(&gw.url("demo"));
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"0"}}});
    let a = c.post(init.to_string()).await;
    c.session = a.header("mcp-session-id").map(str::to_owned);
    c.version = Some("2025-03-26".into());
    let a = c.post(DUPLICATE_BATCH).await;
    let answers = batch_answers(&a);
    assert_duplicate_refused("http", &answers);
}

/// The answers to a batch: a JSON array, or (as the 2025-03-26 transport also allows) the
/// events of an SSE stream, one message each.
fn batch_answers(a: &support::HttpAnswer) -> Vec<Value> {
    if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(&a.body) {
        return items;
    }
    assert!(
        !a.messages.is_empty(),
        "neither a JSON array nor SSE events: {}",
        a.body
    );
    a.messages.clone()
}
