//! `portcullis serve` with `[auth]`: sessions bound to their caller, step-up, the official
//! Python SDK as the client, upstream credentials, a reverse proxy, session lifetimes;
//! against a real authorization server (npm `oidc-provider`) and the recording fixture.

mod support;

use serde_json::{Value, json};
use support::oauth::MintHeader;
use support::oauth::gateway::*;

#[tokio::test]
async fn a_session_used_with_another_callers_token_is_not_found() {
    let s = Setup::start();
    let alice = s.token(ALICE, "mcp:tools").await;
    let bob = s.token(BOB, "mcp:tools").await;
    let c = open_session(&s, &alice).await;
    let stolen = call(&c, &bob, 1, "echo", json!({ "message": "as bob" })).await;
    assert_eq!(stolen.status, 404, "{}", stolen.body);
    // The same for the server's stream and for ending the session.
    let sid = c.session.clone().expect("session");
    let get = c
        .client
        .get(&c.url)
        .header("authorization", bearer(&bob))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &sid)
        .send()
        .await
        .expect("GET");
    assert_eq!(get.status(), 404);
    let delete = c
        .client
        .delete(&c.url)
        .header("authorization", bearer(&bob))
        .header("mcp-session-id", &sid)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(delete.status(), 404);
    // Still Alice's, and alive.
    let ok = call(&c, &alice, 2, "echo", json!({ "message": "as alice" })).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.response()["result"]["content"][0]["text"], "as alice");
    // A session id alone is no credential.
    let bare = c
        .post(json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/list" }).to_string())
        .await;
    assert_eq!(bare.status, 401);
    s.assert_upstream_saw_only_its_credential(&[&alice, &bob]);
}

#[tokio::test]
async fn a_missing_scope_gets_the_step_up_challenge_and_a_new_token_passes() {
    let s = Setup::start();
    let narrow = s.token(ALICE, "mcp:tools").await;
    let c = open_session(&s, &narrow).await;
    let refused = call(&c, &narrow, 1, "add", json!({ "a": 1, "b": 2 })).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(
        refused.header("www-authenticate").unwrap_or_default(),
        format!(
            r#"Bearer error="insufficient_scope", scope="mcp:tools mcp:admin", resource_metadata="{}/.well-known/oauth-protected-resource/mcp/fx""#,
            s.gw.base
        )
    );
    assert_eq!(refused.response()["error"]["code"], -32014);
    assert_eq!(
        refused.response()["error"]["data"]["missingScopes"],
        json!(["mcp:admin"])
    );
    // Step up: a token with the scope asked for, on the same session.
    let wide = s.token(ALICE, "mcp:tools mcp:admin").await;
    let ok = call(&c, &wide, 2, "add", json!({ "a": 1, "b": 2 })).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.response()["result"].is_object(), "{}", ok.body);
}

#[tokio::test]
async fn a_forged_origin_is_refused_even_with_a_valid_token() {
    let s = Setup::start();
    let token = s.token(ALICE, "mcp:tools").await;
    let a = s
        .client()
        .post_with(
            initialize_body(),
            &[
                ("authorization", &bearer(&token)),
                ("origin", "https://evil.example"),
            ],
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.body);
    s.assert_upstream_untouched();
}

#[tokio::test]
async fn each_caller_holds_at_most_its_cap_of_sessions() {
    let s = Setup::with_auth_extra("max_sessions_per_principal = 2");
    let alice = s.token(ALICE, "mcp:tools").await;
    let bob = s.token(BOB, "mcp:tools").await;
    let _one = open_session(&s, &alice).await;
    let _two = open_session(&s, &alice).await;
    let third = s
        .client()
        .post_with(initialize_body(), &[("authorization", &bearer(&alice))])
        .await;
    assert_eq!(third.status, 503, "{}", third.body);
    assert!(
        third.body.contains("max_sessions_per_principal"),
        "{}",
        third.body
    );
    // Another caller is not affected.
    let _bobs = open_session(&s, &bob).await;
}

/// The official Python SDK client with its client-credentials provider, told only the
/// gateway's URL and its own client id and secret: it learns everything else from the 401
/// (metadata, authorization server, scope), gets a token for this route, lists and calls
/// tools, and on a 403 steps up to the scope asked for and retries on the same session.
#[tokio::test]
async fn the_python_sdk_discovers_the_gateway_authorizes_and_steps_up() {
    let s = Setup::start();
    let calls = json!([
        { "step": "list", "list": "tools" },
        { "step": "echo", "tool": "echo", "args": { "message": "through oauth" } },
        { "step": "add", "tool": "add", "args": { "a": 2, "b": 3 } },
    ]);
    let summary = s.python_client(ALICE, "legacy", calls).await;
    let names: Vec<&str> = summary.ok("list")["tools"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        names.contains(&"echo") && names.contains(&"add"),
        "{names:?}"
    );
    assert_eq!(
        summary.ok("echo")["content"][0]["text"],
        "through oauth",
        "{}",
        summary.explain("echo", "echo failed")
    );
    assert!(
        summary.ok("add")["content"].is_array(),
        "{}",
        summary.explain("add", "add failed after step-up")
    );
    // Two token requests: the scope of the 401 challenge, then the step-up's union, both
    // for this route's resource.
    let oauth = &summary.0["oauth"];
    let requests = oauth["token_request_params"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(oauth["token_requests"], 2, "{oauth}");
    assert_eq!(requests.len(), 2, "{oauth}");
    assert_eq!(requests[0]["scope"], "mcp:tools", "{oauth}");
    assert_eq!(requests[1]["scope"], "mcp:tools mcp:admin", "{oauth}");
    for r in &requests {
        assert_eq!(r["resource"], s.resource(), "{oauth}");
    }
    s.assert_upstream_saw_only_its_credential(&[]);
}

/// Behind a TLS-terminating proxy the gateway trusts, the audience (and the metadata's
/// `resource`) is the URL the client used; from anyone else the forwarding headers count
/// for nothing.
#[tokio::test]
async fn behind_a_trusted_proxy_the_audience_is_the_url_the_client_used() {
    let s = Setup::with(
        "behind_proxy = { trusted = [\"127.0.0.1\"] }\nallowed_hosts = [\"mcp.example.com\"]",
        "",
    );
    let forwarded = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "mcp.example.com"),
    ];
    let a = s.client().post_with(initialize_body(), &forwarded).await;
    assert_eq!(a.status, 401, "{}", a.body);
    assert!(
        a.header("www-authenticate").unwrap_or_default().contains(
            r#"resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp/fx""#
        ),
        "{:?}",
        a.header("www-authenticate")
    );
    // A token for the gateway's loopback URL is for another resource, seen from there.
    let loopback_token = s.token(ALICE, "mcp:tools").await;
    let mut with_token = forwarded.to_vec();
    let auth = bearer(&loopback_token);
    with_token.push(("authorization", &auth));
    let refused = s.client().post_with(initialize_body(), &with_token).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    // One for the public URL passes.
    let public = s.minted(
        json!({ "aud": "https://mcp.example.com/mcp/fx" }),
        MintHeader::default(),
    );
    let auth = bearer(&public);
    with_token.pop();
    with_token.push(("authorization", &auth));
    let ok = s.client().post_with(initialize_body(), &with_token).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}

/// The stateless protocol (2026-07-28) goes through the same door: discovery from the 401,
/// a token per request, step-up on the 403.
#[tokio::test]
async fn the_python_sdk_authorizes_and_steps_up_over_the_stateless_protocol() {
    let s = Setup::start();
    let calls = json!([
        { "step": "echo", "tool": "echo", "args": { "message": "stateless" } },
        { "step": "add", "tool": "add", "args": { "a": 2, "b": 3 } },
    ]);
    let summary = s.python_client(ALICE, "2026-07-28", calls).await;
    assert_eq!(
        summary.ok("echo")["content"][0]["text"],
        "stateless",
        "{}",
        summary.explain("echo", "echo failed")
    );
    assert!(
        summary.ok("add")["content"].is_array(),
        "{}",
        summary.explain("add", "add failed after step-up")
    );
    assert_eq!(
        summary.0["oauth"]["token_requests"], 2,
        "{}",
        summary.0["oauth"]
    );
    s.assert_upstream_saw_only_its_credential(&[]);
}

/// The upstream's credential can itself come from an OAuth authorization server: the gateway
/// gets a client-credentials token for the upstream's own resource, and the upstream sees
/// that token, never the caller's.
#[tokio::test]
async fn the_upstream_gets_a_client_credentials_token_of_its_own() {
    let s = Setup::with_options(Options {
        credential: Some(&format!(
            r#"{{ client_credentials = {{ token_url = "{{issuer}}/token", client_id = "{}", secret_env = "GATEWAY_CLIENT_SECRET", scope = "fx:call", resource = "{{fixture}}" }} }}"#,
            GATEWAY_CLIENT.0
        )),
        ..Options::default()
    });
    let caller = s.token(ALICE, "mcp:tools").await;
    let c = open_session(&s, &caller).await;
    for i in 0..3 {
        let ok = call(&c, &caller, i, "echo", json!({ "message": "x" })).await;
        assert_eq!(ok.status, 200, "{}", ok.body);
    }
    let seen = s.upstream.values("authorization");
    assert!(!seen.is_empty());
    let first = seen[0].strip_prefix("Bearer ").expect("a bearer token");
    assert!(
        seen.iter().all(|v| v == &seen[0]),
        "one cached token: {seen:?}"
    );
    assert_ne!(first, caller);
    // A JWT for the upstream's resource, with the scope asked for.
    let payload = first.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .expect("base64url"),
    )
    .expect("JSON claims");
    assert_eq!(claims["aud"], s.fixture.url, "{claims}");
    assert_eq!(claims["scope"], "fx:call", "{claims}");
    assert_eq!(claims["client_id"], GATEWAY_CLIENT.0, "{claims}");
    assert!(!s.upstream.text().contains(&caller));
}

/// A session ends at the end of its lifetime however busy it is; its id is then unknown.
#[tokio::test]
async fn a_busy_session_still_ends_at_the_end_of_its_lifetime() {
    let s = Setup::with("session_lifetime = \"2s\"", "");
    let token = s.token(ALICE, "mcp:tools").await;
    let c = open_session(&s, &token).await;
    let started = std::time::Instant::now();
    let mut id = 0;
    let ended_after = loop {
        id += 1;
        let a = call(&c, &token, id, "echo", json!({ "message": "busy" })).await;
        if a.status == 404 {
            break started.elapsed();
        }
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the session outlived its lifetime"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(
        ended_after >= std::time::Duration::from_millis(1800),
        "ended too early: {ended_after:?}"
    );
}

/// A client told to authenticate often retries at once on the same keep-alive connection:
/// the refusal leaves that connection usable (its body is read first), so the retry never
/// meets a connection closed without an answer.
#[tokio::test]
async fn a_refused_request_leaves_its_connection_usable_for_the_retry() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Setup::start();
    let token = s.token(ALICE, "mcp:tools").await;
    let addr = s.gw.base.trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let body = initialize_body();
    let request = |auth: &str| {
        format!(
            "POST /mcp/fx HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{auth}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    // The headers first, then (after the gateway has had time to answer) the body, as a
    // client on a slow link would.
    let first = request("");
    let split = first.len() - body.len();
    tcp.write_all(&first.as_bytes()[..split])
        .await
        .expect("write");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    tcp.write_all(&first.as_bytes()[split..])
        .await
        .expect("write");
    let mut seen = Vec::new();
    let mut buf = [0u8; 8192];
    let read_answer = |seen: &Vec<u8>| String::from_utf8_lossy(seen).to_string();
    while !read_answer(&seen).contains("\r\n\r\n") {
        let n = tokio::time::timeout(support::WAIT, tcp.read(&mut buf))
            .await
            .expect("an answer")
            .expect("read");
        assert!(n > 0, "closed before answering");
        seen.extend_from_slice(&buf[..n]);
    }
    let answer = read_answer(&seen);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    // The retry, with a token, on the same connection.
    seen.clear();
    tcp.write_all(request(&format!("Authorization: Bearer {token}\r\n")).as_bytes())
        .await
        .expect("write the retry");
    loop {
        let n = tokio::time::timeout(support::WAIT, tcp.read(&mut buf))
            .await
            .expect("an answer to the retry")
            .expect("read");
        assert!(n > 0, "the connection was closed: the retry got no answer");
        seen.extend_from_slice(&buf[..n]);
        if read_answer(&seen).contains("\r\n\r\n") {
            break;
        }
    }
    assert!(
        read_answer(&seen).starts_with("HTTP/1.1 200"),
        "{}",
        read_answer(&seen)
    );
}
