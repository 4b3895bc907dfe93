//! `portcullis serve` as an OAuth 2.1 resource server: which tokens it accepts, against a
//! real authorization server (npm `oidc-provider`, started per test) and a real upstream
//! (the fixture over HTTP, recording every header it receives).
//!
//! Each attack has its own test, and each ends by checking the upstream's header log: a
//! refused request never reaches it, and no client token or cookie ever does.

mod support;

use std::net::TcpListener;

use serde_json::{Value, json};
use support::oauth::gateway::*;
use support::oauth::{MintHeader, unix_now};

#[tokio::test]
async fn a_request_without_a_token_gets_the_discovery_challenge() {
    let s = Setup::start();
    let (status, challenge) = refused_initialize(&s, None).await;
    assert_eq!(status, 401);
    assert_eq!(
        challenge,
        format!(
            r#"Bearer resource_metadata="{}/.well-known/oauth-protected-resource/mcp/fx", scope="mcp:tools""#,
            s.gw.base
        )
    );
    // The metadata names this route as the resource and the issuer as its server.
    let prm: Value = reqwest::get(format!(
        "{}/.well-known/oauth-protected-resource/mcp/fx",
        s.gw.base
    ))
    .await
    .expect("GET metadata")
    .json()
    .await
    .expect("JSON");
    assert_eq!(
        prm,
        json!({
            "resource": s.resource(),
            "authorization_servers": [s.auth.issuer()],
            "scopes_supported": ["mcp:tools"],
            "bearer_methods_supported": ["header"],
        })
    );
    s.assert_upstream_untouched();
}

#[tokio::test]
async fn a_valid_token_opens_a_session_and_the_upstream_sees_only_its_own_credential() {
    let s = Setup::start();
    let token = s.token(ALICE, "mcp:tools").await;
    let c = open_session(&s, &token).await;
    let a = c
        .post_with(
            json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": { "name": "echo", "arguments": { "message": "hi" } } })
            .to_string(),
            &[
                ("authorization", &bearer(&token)),
                ("cookie", "session-cookie=abc"),
                ("proxy-authorization", &bearer(&token)),
            ],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.response()["result"]["content"][0]["text"],
        "hi",
        "{}",
        a.body
    );
    s.assert_upstream_saw_only_its_credential(&[&token]);
}

#[tokio::test]
async fn a_token_signed_with_alg_none_is_refused() {
    let s = Setup::start();
    let claims = s.auth.access_token_claims(&s.resource(), "mcp:tools");
    assert_invalid_token(&s, &s.auth.forge_alg_none(claims), "alg none").await;
}

#[tokio::test]
async fn a_token_hmac_signed_with_the_public_key_is_refused() {
    let s = Setup::start();
    let claims = s.auth.access_token_claims(&s.resource(), "mcp:tools");
    let forged = s.auth.forge_hs256_with_public_key(claims);
    assert_invalid_token(&s, &forged, "HS256 with the RSA public key").await;
}

#[tokio::test]
async fn a_token_for_another_resource_is_refused() {
    let s = Setup::start();
    let other = s.minted(
        json!({ "aud": "http://127.0.0.1:1/mcp/other" }),
        MintHeader::default(),
    );
    assert_invalid_token(&s, &other, "audience confusion").await;
}

#[tokio::test]
async fn a_token_from_another_issuer_is_refused() {
    let s = Setup::start();
    let t = s.minted(
        json!({ "iss": "http://127.0.0.1:1" }),
        MintHeader::default(),
    );
    assert_invalid_token(&s, &t, "wrong issuer").await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let s = Setup::start();
    let now = unix_now();
    let t = s.minted(
        json!({ "iat": now - 3600, "exp": now - 600 }),
        MintHeader::default(),
    );
    assert_invalid_token(&s, &t, "expired").await;
}

#[tokio::test]
async fn a_token_not_valid_yet_is_refused() {
    let s = Setup::start();
    let t = s.minted(json!({ "nbf": unix_now() + 3600 }), MintHeader::default());
    assert_invalid_token(&s, &t, "nbf in the future").await;
}

#[tokio::test]
async fn a_token_signed_by_an_unknown_key_is_refused_and_a_flood_of_kids_is_bounded() {
    let s = Setup::start();
    let claims = s.auth.access_token_claims(&s.resource(), "mcp:tools");
    let t = s
        .auth
        .mint_with_other_key(claims.clone(), MintHeader::default());
    assert_invalid_token(&s, &t, "unknown kid").await;
    // A flood of random kids: every one refused, quickly (the JWKS refetch is rate-limited).
    let started = std::time::Instant::now();
    for i in 0..50 {
        let t = s.auth.mint_with_other_key(
            claims.clone(),
            MintHeader::default().kid(&format!("random-{i}")),
        );
        let (status, _) = refused_initialize(&s, Some(&bearer(&t))).await;
        assert_eq!(status, 401);
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    s.assert_upstream_untouched();
}

#[tokio::test]
async fn a_token_naming_its_own_key_url_is_refused_and_the_url_never_fetched() {
    let s = Setup::start();
    let trap = TcpListener::bind("127.0.0.1:0").expect("trap");
    trap.set_nonblocking(true).expect("nonblocking");
    let trap_url = format!("http://{}/jwks", trap.local_addr().expect("addr"));
    let jku = s.minted(json!({}), MintHeader::default().jku(&trap_url));
    assert_invalid_token(&s, &jku, "jku").await;
    let x5u = s.minted(json!({}), MintHeader::default().x5u(&trap_url));
    assert_invalid_token(&s, &x5u, "x5u").await;
    assert!(
        trap.accept().is_err(),
        "the gateway connected to the URL a token named"
    );
}

#[tokio::test]
async fn a_token_in_the_query_string_is_refused() {
    let s = Setup::start();
    let token = s.token(ALICE, "mcp:tools").await;
    let mut c = s.client();
    c.url = format!("{}?access_token={token}", s.resource());
    let a = c.post(initialize_body()).await;
    assert_eq!(a.status, 400, "{}", a.body);
    s.assert_upstream_untouched();
}

#[tokio::test]
async fn a_64_kib_token_is_refused_unparsed() {
    let s = Setup::start();
    let huge = "a".repeat(64 * 1024);
    let (status, challenge) = refused_initialize(&s, Some(&bearer(&huge))).await;
    assert_eq!(status, 401, "{challenge}");
    assert!(challenge.contains("invalid_token"), "{challenge}");
    s.assert_upstream_untouched();
}

#[tokio::test]
async fn a_malformed_authorization_header_is_a_bad_request() {
    let s = Setup::start();
    let (status, challenge) = refused_initialize(&s, Some("Basic YWxpY2U6c2VjcmV0")).await;
    assert_eq!(status, 400, "{challenge}");
    assert!(challenge.contains("invalid_request"), "{challenge}");
    s.assert_upstream_untouched();
}

#[tokio::test]
async fn keys_cached_before_the_authorization_server_went_down_still_verify() {
    let mut s = Setup::start();
    let token = s.token(ALICE, "mcp:tools").await;
    let c = open_session(&s, &token).await;
    s.auth.stop();
    let ok = call(&c, &token, 1, "echo", json!({ "message": "cached" })).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[tokio::test]
async fn with_the_authorization_server_down_and_no_cached_keys_requests_are_refused() {
    let mut s = Setup::start();
    let token = s.token(ALICE, "mcp:tools").await;
    s.auth.stop();
    let (status, _) = refused_initialize(&s, Some(&bearer(&token))).await;
    assert_eq!(
        status, 503,
        "no keys: the gateway cannot check, so it refuses"
    );
    s.assert_upstream_untouched();
}

/// Opaque tokens are checked by RFC 7662 introspection at the authorization server, with the
/// gateway's own client credentials; an unknown one is refused.
#[tokio::test]
async fn an_opaque_token_is_introspected_and_an_unknown_one_refused() {
    let s = Setup::with_options(Options {
        auth: &format!(
            "introspection = {{ client_id = \"{}\", secret_env = \"GATEWAY_CLIENT_SECRET\" }}",
            GATEWAY_CLIENT.0
        ),
        opaque: true,
        ..Options::default()
    });
    let token = s.token(ALICE, "mcp:tools").await;
    assert_eq!(token.split('.').count(), 1, "an opaque token, not a JWT");
    let c = open_session(&s, &token).await;
    let ok = call(&c, &token, 1, "echo", json!({ "message": "opaque" })).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.response()["result"]["content"][0]["text"], "opaque");
    let (status, challenge) =
        refused_initialize(&s, Some(&bearer("not-a-token-the-server-issued"))).await;
    assert_eq!(status, 401, "{challenge}");
    assert!(challenge.contains("invalid_token"), "{challenge}");
}
