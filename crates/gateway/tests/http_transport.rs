//! The Streamable HTTP front door against the 2025-11-25 transport rules: sessions (404, 400,
//! DELETE, idle timeout, cap, route binding, id quality), the DNS-rebinding checks (Origin,
//! Host), content negotiation (406, 415), size (413), the version header (400), methods of
//! the stateless era (405), one GET stream per session (409) and resumption that replays one
//! stream of one session only.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{Gateway, RawHttp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Two fixture servers, `a` and `b`, with echo and slow allowed.
fn config(gateway_section: &str) -> String {
    format!(
        "[gateway]\n{gateway_section}\n{}{}\n[[rules]]\ntools = [\"echo\", \"slow\"]\neffect = \"allow\"\n",
        support::fixture_stdio_server("a"),
        support::fixture_stdio_server("b"),
    )
}

async fn session(gw: &Gateway, route: &str) -> RawHttp {
    let mut c = RawHttp::new(&gw.url(route));
    c.initialize(json!({})).await;
    c
}

async fn echo_ok(c: &RawHttp, id: i64) {
    let r = c.call_tool(id, "echo", json!({"message": "ok"})).await;
    assert_eq!(r["result"]["content"][0]["text"], "ok", "{r}");
}

fn ping(id: i64) -> String {
    json!({"jsonrpc":"2.0","id":id,"method":"ping"}).to_string()
}

/// Sends one raw HTTP/1.1 request and returns the status code (for headers reqwest sets
/// itself, such as Host).
async fn raw_status(base: &str, request: &str) -> u16 {
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::time::timeout(support::WAIT, tokio::net::TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(2).any(|w| w == b"\r\n") {
        let n = tokio::time::timeout(support::WAIT, s.read(&mut chunk))
            .await
            .expect("answer in time")
            .expect("read");
        assert!(n > 0, "connection closed without a status line");
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    line.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {line}"))
}

fn raw_post(host: &str, origin: Option<&str>) -> String {
    let body = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}})
    .to_string();
    let origin = origin
        .map(|o| format!("Origin: {o}\r\n"))
        .unwrap_or_default();
    format!(
        "POST /mcp/a HTTP/1.1\r\nHost: {host}\r\n{origin}Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn unknown_or_missing_session_ids_get_404_and_400() {
    let gw = Gateway::start(&config(""));
    let mut c = RawHttp::new(&gw.url("a"));
    // Missing: every method of a session needs the header.
    let a = c.post(ping(1)).await;
    assert_eq!(a.status, 400, "POST without session: {}", a.body);
    assert_eq!(a.response()["error"]["code"], -32600);
    assert_eq!(c.get_with(&[]).await.status, 400, "GET without session");
    assert_eq!(
        c.delete_with(&[]).await.status,
        400,
        "DELETE without session"
    );
    // Unknown (never issued, or forged).
    c.session = Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into());
    c.version = Some("2025-11-25".into());
    let a = c.post(ping(2)).await;
    assert_eq!(a.status, 404, "{}", a.body);
    assert!(a.response()["error"]["code"].is_i64());
    assert_eq!(c.get_with(&[]).await.status, 404, "GET unknown session");
    assert_eq!(
        c.delete_with(&[]).await.status,
        404,
        "DELETE unknown session"
    );
    let n = c
        .post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .await;
    assert_eq!(
        n.status, 404,
        "notification to an unknown session: {}",
        n.body
    );
}

#[tokio::test]
async fn notifications_get_202_with_no_body() {
    let gw = Gateway::start(&config(""));
    let c = session(&gw, "a").await;
    for method in [
        "notifications/roots/list_changed",
        "notifications/cancelled",
        "notifications/no-such-thing",
    ] {
        let a = c
            .post(
                json!({"jsonrpc":"2.0","method":method,"params":{"requestId": 12345}}).to_string(),
            )
            .await;
        assert_eq!(a.status, 202, "{method}: {}", a.body);
        assert!(a.body.is_empty(), "{method}: 202 has no body: {}", a.body);
    }
    echo_ok(&c, 1).await;
}

#[tokio::test]
async fn unsupported_protocol_version_header_gets_400() {
    let gw = Gateway::start(&config(""));
    let c = session(&gw, "a").await;
    for bad in ["1999-01-01", "2025-11-25x", "latest"] {
        let a = c
            .post_exact(ping(1), &[("mcp-protocol-version", bad)])
            .await;
        assert_eq!(a.status, 400, "{bad}: {}", a.body);
        assert_eq!(a.messages[0]["error"]["code"], -32022, "{bad}: {}", a.body);
    }
    echo_ok(&c, 2).await;
}

#[tokio::test]
async fn forged_origins_get_403_and_loopback_or_configured_ones_pass() {
    let gw = Gateway::start(&config("allowed_origins = [\"https://app.example.com\"]"));
    let c = RawHttp::new(&gw.url("a"));
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}})
    .to_string();
    for forged in [
        "http://evil.example.com",
        "https://app.example.com.evil.com",
        "https://app.example.com:8443",
        "http://app.example.com",
        "null",
        "file://localhost",
    ] {
        let a = c.post_exact(init.clone(), &[("origin", forged)]).await;
        assert_eq!(a.status, 403, "{forged}: {}", a.body);
        assert!(a.header("mcp-session-id").is_none(), "{forged}");
    }
    for fine in [
        "http://localhost:5173",
        "http://127.0.0.1",
        "https://app.example.com",
        "HTTPS://APP.EXAMPLE.COM",
    ] {
        let a = c.post_exact(init.clone(), &[("origin", fine)]).await;
        assert_eq!(a.status, 200, "{fine}: {}", a.body);
    }
    // The check holds for an established session's GET and DELETE too.
    let s = session(&gw, "a").await;
    assert_eq!(
        s.get_with(&[("origin", "http://evil.example.com")])
            .await
            .status,
        403
    );
    assert_eq!(
        s.delete_with(&[("origin", "http://evil.example.com")])
            .await
            .status,
        403
    );
    echo_ok(&s, 1).await;
}

#[tokio::test]
async fn foreign_host_headers_get_403_and_configured_ones_pass() {
    let gw = Gateway::start(&config("allowed_hosts = [\"mcp.example.com\"]"));
    let port = gw.base.rsplit(':').next().unwrap().to_owned();
    for (host, want) in [
        ("evil.example.com".to_owned(), 403),
        (format!("evil.example.com:{port}"), 403),
        (format!("localhost.evil.com:{port}"), 403),
        (format!("127.0.0.1.nip.io:{port}"), 403),
        (format!("127.0.0.1:{port}"), 200),
        (format!("localhost:{port}"), 200),
        ("mcp.example.com".to_owned(), 200),
        (format!("MCP.example.com:{port}"), 200),
    ] {
        assert_eq!(
            raw_status(&gw.base, &raw_post(&host, None)).await,
            want,
            "Host: {host}"
        );
    }
    // A rebinding page sends its own name as Host and Origin together.
    let both = raw_post("attacker.example:80", Some("http://attacker.example"));
    assert_eq!(raw_status(&gw.base, &both).await, 403);
}

#[tokio::test]
async fn content_negotiation_size_and_type_errors() {
    let gw = Gateway::start(&config("max_message_bytes = \"64KiB\""));
    let c = session(&gw, "a").await;
    // 406: the client must accept both JSON and SSE on POST, SSE on GET.
    for accept in ["application/json", "text/event-stream", "text/html"] {
        let a = c.post_exact(ping(1), &[("accept", accept)]).await;
        assert_eq!(a.status, 406, "POST Accept: {accept}: {}", a.body);
    }
    assert_eq!(
        c.get_with(&[("accept", "application/json")]).await.status,
        406
    );
    // 415: the body must be declared as JSON.
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonx",
    ] {
        let a = c.post_exact(ping(1), &[("content-type", ct)]).await;
        assert_eq!(a.status, 415, "Content-Type: {ct}: {}", a.body);
    }
    assert_eq!(
        c.post_exact(
            ping(1),
            &[("content-type", "application/json; charset=utf-8")]
        )
        .await
        .status,
        200
    );
    // 413 with a JSON-RPC error, for a body over max_message_bytes.
    let big = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x".repeat(70_000)}}});
    let a = c.post(big.to_string()).await;
    assert_eq!(a.status, 413, "{}", a.body);
    assert_eq!(a.messages[0]["error"]["code"], -32600, "{}", a.body);
    echo_ok(&c, 3).await;
}

#[tokio::test]
async fn delete_ends_the_session_and_later_requests_get_404() {
    let gw = Gateway::start(&config(""));
    let c = session(&gw, "a").await;
    echo_ok(&c, 1).await;
    let d = c.delete_with(&[]).await;
    assert!(
        (200..300).contains(&d.status),
        "DELETE: {} {}",
        d.status,
        d.body
    );
    assert_eq!(c.post(ping(2)).await.status, 404);
    assert_eq!(c.get_with(&[]).await.status, 404);
    assert_eq!(c.delete_with(&[]).await.status, 404, "a second DELETE");
    // A new session works as before.
    let fresh = session(&gw, "a").await;
    assert_ne!(fresh.session, c.session);
    echo_ok(&fresh, 3).await;
}

#[tokio::test]
async fn get_and_delete_of_the_stateless_era_get_405() {
    let gw = Gateway::start(&config(""));
    let c = session(&gw, "a").await;
    let modern = [("mcp-protocol-version", "2026-07-28")];
    assert_eq!(c.get_with(&modern).await.status, 405);
    assert_eq!(c.delete_with(&modern).await.status, 405);
    let bare = RawHttp::new(&gw.url("a"));
    assert_eq!(bare.get_with(&modern).await.status, 405);
    assert_eq!(bare.delete_with(&modern).await.status, 405);
    // The 405 DELETE did not end the session.
    echo_ok(&c, 1).await;
}

#[tokio::test]
async fn a_second_concurrent_get_stream_gets_409() {
    let gw = Gateway::start(&config(""));
    let c = session(&gw, "a").await;
    let first = c.get_stream(&[]).await;
    assert_eq!(first.status, 200);
    assert!(
        first
            .header("content-type")
            .is_some_and(|v| v.starts_with("text/event-stream"))
    );
    let second = c.get_with(&[]).await;
    assert_eq!(second.status, 409, "{}", second.body);
    // The session is unharmed, and another session has its own stream.
    echo_ok(&c, 1).await;
    let other = session(&gw, "a").await;
    let other_stream = other.get_stream(&[]).await;
    assert_eq!(other_stream.status, 200);
    drop(first);
}

#[tokio::test]
async fn a_session_id_is_bound_to_its_route() {
    let gw = Gateway::start(&config(""));
    let on_a = session(&gw, "a").await;
    let mut on_b = RawHttp::new(&gw.url("b"));
    on_b.session = on_a.session.clone();
    on_b.version = on_a.version.clone();
    assert_eq!(
        on_b.post(ping(1)).await.status,
        404,
        "POST on another route"
    );
    assert_eq!(on_b.get_with(&[]).await.status, 404, "GET on another route");
    assert_eq!(
        on_b.delete_with(&[]).await.status,
        404,
        "DELETE on another route"
    );
    let nowhere = RawHttp::new(&format!("{}/mcp/nope", gw.base));
    assert_eq!(nowhere.post(ping(1)).await.status, 404, "unknown route");
    // The DELETE on the wrong route did not end it.
    echo_ok(&on_a, 2).await;
}

#[tokio::test]
async fn session_ids_are_long_random_visible_ascii() {
    let gw = Gateway::start(&config(""));
    let mut ids = Vec::new();
    for _ in 0..6 {
        let c = session(&gw, "a").await;
        ids.push(c.session.clone().unwrap());
    }
    for id in &ids {
        assert!(
            id.bytes().all(|b| (0x21..=0x7e).contains(&b)),
            "not visible ASCII: {id:?}"
        );
        // Entropy bound from the alphabet actually used: base64url carries 6 bits a
        // character, hex 4; anything else is counted as 4 to stay conservative.
        let b64 = id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let hex = id.bytes().all(|b| b.is_ascii_hexdigit());
        let bits = id.len() * if b64 && !hex { 6 } else { 4 };
        assert!(bits >= 128, "{id:?} carries at most {bits} bits");
    }
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "session ids repeat: {ids:?}");
}

#[tokio::test]
async fn an_idle_session_is_ended_by_the_idle_timeout() {
    let gw = Gateway::start(&config("session_idle_timeout = \"1s\""));
    let c = session(&gw, "a").await;
    echo_ok(&c, 1).await;
    // Each probe touches the session, so wait well past the timeout between probes.
    let mut ended = false;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let a = c.post(ping(2)).await;
        if a.status == 404 {
            ended = true;
            break;
        }
        assert_eq!(a.status, 200, "{}", a.body);
    }
    assert!(
        ended,
        "the session outlived its idle timeout; stderr:\n{}",
        gw.proc.stderr()
    );
}

#[tokio::test]
async fn the_session_cap_answers_503_and_frees_a_place_on_delete() {
    let gw = Gateway::start(&config("max_sessions = 2"));
    let one = session(&gw, "a").await;
    let _two = session(&gw, "b").await;
    let c = RawHttp::new(&gw.url("a"));
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}})
    .to_string();
    let a = c.post(init.clone()).await;
    assert_eq!(a.status, 503, "{}", a.body);
    assert!(a.header("mcp-session-id").is_none());
    assert!(a.response()["error"]["code"].is_i64(), "{}", a.body);
    // Existing sessions keep working; ending one frees its place.
    echo_ok(&one, 1).await;
    one.delete_with(&[]).await;
    let a = c.post(init).await;
    assert_eq!(a.status, 200, "{}", a.body);
}

/// Calls `slow` with a progress token: an SSE answer whose events carry ids.
async fn slow_stream(c: &RawHttp, id: i64) -> Vec<(String, serde_json::Value)> {
    let body = json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{
        "name":"slow","arguments":{"steps":3,"delay_ms":20},"_meta":{"progressToken":format!("p{id}")}}});
    let mut s = c.post_stream(body.to_string(), &[]).await;
    assert_eq!(s.status, 200);
    assert!(
        s.header("content-type")
            .is_some_and(|v| v.starts_with("text/event-stream")),
        "{:?}",
        s.headers
    );
    let mut out = Vec::new();
    for e in s.rest().await {
        if let (Some(eid), Some(msg)) = (e.id.clone(), e.json()) {
            out.push((eid, msg));
        }
    }
    assert!(
        out.len() >= 2,
        "progress and a response, each with an event id: {out:?}"
    );
    assert_eq!(
        out.last().expect("a last event").1["id"],
        id,
        "the stream ends with the response"
    );
    out
}

#[tokio::test]
async fn resumption_replays_only_the_named_stream_of_the_same_session() {
    let gw = Gateway::start(&config(""));
    let c = session(&gw, "a").await;
    let s1 = slow_stream(&c, 1).await;
    let s2 = slow_stream(&c, 2).await;
    let token = |eid: &str| {
        eid.rsplit_once('.')
            .map(|(t, _)| t.to_owned())
            .unwrap_or_default()
    };
    assert_ne!(
        token(&s1[0].0),
        token(&s2[0].0),
        "each stream has its own ids"
    );
    let all_ids: Vec<&String> = s1.iter().chain(&s2).map(|(e, _)| e).collect();
    let mut dedup = all_ids.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(
        dedup.len(),
        all_ids.len(),
        "event ids are unique across the session's streams"
    );

    // Resume stream 1 after its first event: the rest of stream 1, nothing of stream 2.
    let replay = c.get_with(&[("last-event-id", &s1[0].0)]).await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    let want: Vec<&serde_json::Value> = s1[1..].iter().map(|(_, m)| m).collect();
    let got: Vec<&serde_json::Value> = replay.messages.iter().collect();
    assert_eq!(got, want, "replay of stream 1 after its first event");
    assert!(
        !replay.body.contains(&token(&s2[0].0)),
        "stream 2 leaked into the replay: {}",
        replay.body
    );

    // Another session cannot resume this session's stream, even knowing the event id.
    let other = session(&gw, "a").await;
    let stolen = other.get_with(&[("last-event-id", &s1[0].0)]).await;
    assert!(
        stolen.status >= 400,
        "replay across sessions: {} {}",
        stolen.status,
        stolen.body
    );
    assert!(!stolen.body.contains("\"result\""), "{}", stolen.body);
    // Nor can it on another route with the right session id (404 there).
    let mut on_b = RawHttp::new(&gw.url("b"));
    on_b.session = c.session.clone();
    assert_eq!(
        on_b.get_with(&[("last-event-id", &s1[0].0)]).await.status,
        404
    );
    // Malformed and made-up ids are refused, not answered with someone's stream.
    for bad in ["garbage", "abc.1", &format!("{}.x", token(&s1[0].0))] {
        let a = c.get_with(&[("last-event-id", bad)]).await;
        assert!(
            (400..500).contains(&a.status),
            "{bad}: {} {}",
            a.status,
            a.body
        );
    }
}

#[tokio::test]
async fn closing_the_get_stream_lets_the_client_open_another() {
    let gw = Gateway::start(&config(""));
    let c = session(&gw, "a").await;
    let first = c.get_stream(&[]).await;
    assert_eq!(first.status, 200);
    drop(first);
    // The gateway notices the closed connection (bounded wait), then accepts a new GET.
    let mut reopened = None;
    for _ in 0..100 {
        let s = c.get_stream(&[]).await;
        if s.status == 200 {
            reopened = Some(s);
            break;
        }
        assert_eq!(s.status, 409);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        reopened.is_some(),
        "the dropped GET stream was never released"
    );
}

#[tokio::test]
async fn a_broken_response_stream_resumes_where_it_left_off() {
    let gw = Gateway::start(&config(""));
    let c = session(&gw, "a").await;
    let body = json!({"jsonrpc":"2.0","id":"r","method":"tools/call","params":{
        "name":"slow","arguments":{"steps":10,"delay_ms":50},"_meta":{"progressToken":"r"}}});
    let mut s = c.post_stream(body.to_string(), &[]).await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let e = s.next().await.expect("an event");
        if !e.data.is_empty() {
            seen.push(e);
        }
    }
    let last = seen[1].id.clone().expect("events carry ids");
    drop(s); // the connection breaks mid-call
    let mut resumed = c.get_stream(&[("last-event-id", &last)]).await;
    assert_eq!(resumed.status, 200);
    let rest: Vec<serde_json::Value> = resumed
        .rest()
        .await
        .iter()
        .filter_map(|e| e.json())
        .collect();
    let end = rest
        .last()
        .unwrap_or_else(|| panic!("nothing after resuming"));
    assert_eq!(
        end["id"], "r",
        "the resumed stream ends with the response: {rest:?}"
    );
    assert_eq!(end["result"]["content"][0]["text"], "done");
    // Nothing before the Last-Event-ID is sent again, and nothing is lost after it.
    let steps: Vec<f64> = rest
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .filter_map(|m| m["params"]["progress"].as_f64())
        .collect();
    let before: Vec<f64> = seen
        .iter()
        .filter_map(|e| e.json()?["params"]["progress"].as_f64())
        .collect();
    assert!(
        steps.iter().all(|p| !before.contains(p)),
        "replayed {steps:?} after {before:?}"
    );
    assert_eq!(
        before.len() + steps.len(),
        10,
        "every step exactly once: {before:?} then {steps:?}"
    );
}

#[tokio::test]
async fn concurrent_initializes_cannot_exceed_the_session_cap() {
    let gw = Gateway::start(&config("max_sessions = 2"));
    let c = RawHttp::new(&gw.url("a"));
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}})
    .to_string();
    let answers = futures::future::join_all((0..6).map(|_| c.post(init.clone()))).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    let admitted = answers
        .iter()
        .filter(|a| a.header("mcp-session-id").is_some())
        .count();
    assert_eq!(
        admitted, 2,
        "max_sessions = 2 admitted {admitted}: {statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 503).count(),
        4,
        "{statuses:?}"
    );
}
