//! The OAuth test infrastructure proves itself: a real authorization server (`oidc-provider`
//! from `tests/peers/oauth_server.mjs`) issues RFC 9068 tokens for the resource asked for,
//! tokens minted in the test verify against the AS's published keys (and forged ones do not),
//! and the fixture records the headers it receives. The gateway's auth tests build on these.

mod support;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde_json::{Value, json};
use support::oauth::{
    AuthServer, AuthServerConfig, MintHeader, OAuthClient, ResourceServer, TestKey, unix_now,
};

const RESOURCE: &str = "http://127.0.0.1:1/mcp/x";
const OTHER_RESOURCE: &str = "http://127.0.0.1:1/mcp/other";
const OPAQUE_RESOURCE: &str = "http://127.0.0.1:1/mcp/opaque";
const CLIENT: &str = "portcullis-e2e";
const SECRET: &str = "portcullis-e2e-secret-0123456789";

fn auth_server() -> AuthServer {
    AuthServer::start(
        AuthServerConfig::new()
            .client(OAuthClient::client_credentials(
                CLIENT,
                SECRET,
                "mcp:tools mcp:admin",
            ))
            .client(
                OAuthClient::client_credentials("confined", SECRET, "mcp:tools")
                    .only_for(&[RESOURCE]),
            )
            .resource(ResourceServer::jwt(RESOURCE, "mcp:tools mcp:admin"))
            .resource(ResourceServer::jwt(OTHER_RESOURCE, "mcp:tools"))
            .resource(ResourceServer::opaque(OPAQUE_RESOURCE, "mcp:tools")),
    )
}

/// The base64url JSON of one JWT part.
fn part(token: &str, index: usize) -> Value {
    use base64::Engine as _;
    let segment = token.split('.').nth(index).expect("JWT part");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// The key of the published JWKS with this `kid`.
async fn published_key(server: &AuthServer, kid: &str) -> DecodingKey {
    let jwks: JwkSet =
        serde_json::from_value(server.get_json(&server.jwks_url()).await).expect("a JWK set");
    let jwk = jwks
        .find(kid)
        .unwrap_or_else(|| panic!("kid {kid} is not in the AS's JWKS"));
    DecodingKey::from_jwk(jwk).expect("JWK")
}

fn validation(server: &AuthServer, audience: &str) -> Validation {
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[audience]);
    v.set_issuer(&[server.issuer()]);
    v
}

#[tokio::test]
async fn the_authorization_server_publishes_metadata_naming_its_issuer() {
    let server = auth_server();
    let rfc8414 = server.get_json(&server.metadata_url()).await;
    let oidc = server
        .get_json(&format!(
            "{}/.well-known/openid-configuration",
            server.issuer()
        ))
        .await;
    for metadata in [&rfc8414, &oidc] {
        assert_eq!(metadata["issuer"], server.issuer());
        assert_eq!(metadata["token_endpoint"], server.token_url());
        assert_eq!(metadata["jwks_uri"], server.jwks_url());
        assert_eq!(
            metadata["introspection_endpoint"],
            server.introspection_url()
        );
        assert_eq!(
            metadata["code_challenge_methods_supported"],
            json!(["S256"])
        );
        assert!(
            metadata["grant_types_supported"]
                .as_array()
                .expect("grant types")
                .contains(&json!("client_credentials")),
            "{metadata}"
        );
    }
    // The JWKS publishes the public half of the test's key, and nothing private.
    let jwks = server.get_json(&server.jwks_url()).await;
    assert_eq!(jwks, server.signing_key().public_jwks());
}

#[tokio::test]
async fn a_client_credentials_token_is_an_rfc9068_jwt_for_the_requested_resource() {
    let server = auth_server();
    let token = server
        .client_credentials(CLIENT, SECRET, Some("mcp:tools"), Some(RESOURCE))
        .await;

    let header = part(&token, 0);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], server.signing_key().kid());

    let claims = part(&token, 1);
    assert_eq!(claims["aud"], RESOURCE);
    assert_eq!(claims["iss"], server.issuer());
    assert_eq!(claims["scope"], "mcp:tools");
    assert_eq!(claims["client_id"], CLIENT);
    let exp = claims["exp"].as_u64().expect("exp");
    assert!(exp > unix_now() && exp <= unix_now() + 301, "exp {exp}");

    // The signature is the AS's, checked against the key it publishes.
    let key = published_key(&server, server.signing_key().kid()).await;
    let data = jsonwebtoken::decode::<Value>(&token, &key, &validation(&server, RESOURCE))
        .expect("the AS's token verifies against its JWKS");
    assert_eq!(data.claims["sub"], CLIENT);
}

#[tokio::test]
async fn the_authorization_server_refuses_resources_and_scopes_it_was_not_given() {
    let server = auth_server();
    let grant = |client: &'static str, scope: &'static str, resource: &'static str| {
        let server = &server;
        async move {
            server
                .token_request(
                    client,
                    SECRET,
                    &[
                        ("grant_type", "client_credentials"),
                        ("scope", scope),
                        ("resource", resource),
                    ],
                )
                .await
        }
    };
    // Not a configured resource: no token can name it as audience.
    let (status, body) = grant(CLIENT, "mcp:tools", "http://127.0.0.1:1/mcp/unknown").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target"))
    );
    // A client confined to one resource cannot get a token for another.
    let (status, body) = grant("confined", "mcp:tools", OTHER_RESOURCE).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target"))
    );
    // Nor a scope outside its own.
    let (status, body) = grant("confined", "mcp:admin", RESOURCE).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    // A wrong secret is not a client.
    let (status, body) = server
        .token_request(CLIENT, "wrong", &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // A scope the resource does not define is dropped from the grant, not added to it.
    let token = server
        .client_credentials(CLIENT, SECRET, Some("mcp:admin"), Some(OTHER_RESOURCE))
        .await;
    assert_eq!(part(&token, 1).get("scope"), None);
}

#[tokio::test]
async fn an_opaque_token_is_only_known_through_introspection() {
    let server = auth_server();
    let token = server
        .client_credentials(CLIENT, SECRET, Some("mcp:tools"), Some(OPAQUE_RESOURCE))
        .await;
    assert!(!token.contains('.'), "not a JWT: {token}");
    let info = server.introspect(CLIENT, SECRET, &token).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["aud"], OPAQUE_RESOURCE);
    assert_eq!(info["scope"], "mcp:tools");
    assert_eq!(info["client_id"], CLIENT);
    assert_eq!(info["iss"], server.issuer());
    let unknown = server.introspect(CLIENT, SECRET, "no-such-token").await;
    assert_eq!(unknown, json!({ "active": false }));
}

#[tokio::test]
async fn a_token_minted_with_the_as_key_verifies_against_the_published_jwks() {
    let server = auth_server();
    let claims = server.access_token_claims(RESOURCE, "mcp:tools");
    let token = server.mint(claims.clone(), MintHeader::default());
    assert_eq!(
        part(&token, 0),
        json!({
            "alg": "RS256", "typ": "at+jwt", "kid": server.signing_key().kid()
        })
    );
    let key = published_key(&server, server.signing_key().kid()).await;
    let data = jsonwebtoken::decode::<Value>(&token, &key, &validation(&server, RESOURCE))
        .expect("a minted token verifies against the AS's JWKS");
    assert_eq!(data.claims, claims);

    // Attack material keeps a valid signature: an expired token fails on `exp` only.
    let mut expired = claims.clone();
    expired["exp"] = json!(unix_now() - 3600);
    let token = server.mint(expired, MintHeader::default());
    let err = jsonwebtoken::decode::<Value>(&token, &key, &validation(&server, RESOURCE))
        .expect_err("expired");
    assert_eq!(
        *err.kind(),
        jsonwebtoken::errors::ErrorKind::ExpiredSignature
    );
    let mut lax = validation(&server, RESOURCE);
    lax.validate_exp = false;
    jsonwebtoken::decode::<Value>(&token, &key, &lax).expect("signature of the expired token");
}

#[tokio::test]
async fn minted_headers_carry_exactly_what_the_test_asked_for() {
    let server = auth_server();
    let claims = server.access_token_claims(RESOURCE, "mcp:tools");
    let header = MintHeader::default()
        .alg(Algorithm::PS256)
        .typ(Some("JWT"))
        .kid("../../../etc/passwd")
        .jku("http://127.0.0.1:9/jwks")
        .x5u("http://127.0.0.1:9/cert.pem");
    let token = server.mint(claims.clone(), header);
    assert_eq!(
        part(&token, 0),
        json!({
            "alg": "PS256", "typ": "JWT", "kid": "../../../etc/passwd",
            "jku": "http://127.0.0.1:9/jwks", "x5u": "http://127.0.0.1:9/cert.pem"
        })
    );
    let key = server.signing_key().decoding_key();
    let mut v = validation(&server, RESOURCE);
    v.algorithms = vec![Algorithm::PS256];
    jsonwebtoken::decode::<Value>(&token, &key, &v).expect("PS256 with the AS key");

    let bare = server.mint(claims, MintHeader::default().typ(None).without_kid());
    assert_eq!(part(&bare, 0), json!({ "alg": "RS256" }));
}

#[tokio::test]
async fn tokens_from_an_untrusted_key_or_forged_do_not_verify_against_the_as_keys() {
    let server = auth_server();
    let claims = server.access_token_claims(RESOURCE, "mcp:tools");
    let key = published_key(&server, server.signing_key().kid()).await;
    let v = validation(&server, RESOURCE);

    // Signed by a key the AS never published, even under the AS's own kid.
    let other = server.mint_with_other_key(
        claims.clone(),
        MintHeader::default().kid(server.signing_key().kid()),
    );
    assert_eq!(part(&other, 0)["kid"], server.signing_key().kid());
    let err = jsonwebtoken::decode::<Value>(&other, &key, &v).expect_err("untrusted key");
    assert_eq!(
        *err.kind(),
        jsonwebtoken::errors::ErrorKind::InvalidSignature
    );
    let own = server.mint_with_other_key(claims.clone(), MintHeader::default());
    assert_eq!(part(&own, 0)["kid"], TestKey::untrusted().kid());
    jsonwebtoken::decode::<Value>(&own, &TestKey::untrusted().decoding_key(), &v)
        .expect("the untrusted key's signature is real");

    // alg none: an empty signature.
    let none = server.forge_alg_none(claims.clone());
    assert_eq!(part(&none, 0)["alg"], "none");
    assert!(none.ends_with('.'), "{none}");
    assert!(jsonwebtoken::decode::<Value>(&none, &key, &v).is_err());

    // HS256 keyed with the public key's PEM: a real HMAC over header.payload.
    let hs = server.forge_hs256_with_public_key(claims);
    assert_eq!(part(&hs, 0)["alg"], "HS256");
    let pem = server.signing_key().public_key_pem();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    let mut hs_validation = validation(&server, RESOURCE);
    hs_validation.algorithms = vec![Algorithm::HS256];
    jsonwebtoken::decode::<Value>(
        &hs,
        &DecodingKey::from_secret(pem.as_bytes()),
        &hs_validation,
    )
    .expect("the HMAC is keyed with the PEM");
    assert!(jsonwebtoken::decode::<Value>(&hs, &key, &v).is_err());
}

#[tokio::test]
async fn the_authorization_server_can_go_down_and_come_back_with_rotated_keys() {
    let mut server = auth_server();
    let issuer = server.issuer().to_owned();
    let jwks_url = server.jwks_url();
    server.stop();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let down = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        http.get(&jwks_url).send(),
    )
    .await
    .expect("bounded");
    assert!(down.is_err(), "the stopped AS still answers");

    let rotated = TestKey::generate("portcullis-test-rotated");
    server.restart_with_keys(vec![rotated.clone(), TestKey::for_auth_server()]);
    assert_eq!(server.issuer(), issuer, "same port, same issuer");
    let jwks = server.get_json(&jwks_url).await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid"))
        .collect();
    assert_eq!(kids, [rotated.kid(), TestKey::for_auth_server().kid()]);
    let token = server
        .client_credentials(CLIENT, SECRET, Some("mcp:tools"), Some(RESOURCE))
        .await;
    assert_eq!(part(&token, 0)["kid"], rotated.kid(), "the first key signs");
}

/// POSTs `initialize` with a bearer token and cookies to a fixture URL.
async fn initialize_with_credentials(url: &str) {
    let resp = reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client")
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("authorization", "Bearer client-token-must-not-leak")
        .header("cookie", "session=one")
        .header("cookie", "other=two")
        .body(
            json!({
                "jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": { "protocolVersion": "2025-11-25", "capabilities": {},
                            "clientInfo": { "name": "oauth-peer", "version": "0" } }
            })
            .to_string(),
        )
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn the_fixture_records_every_request_s_headers_when_asked() {
    let (fixture, log) = support::oauth::recording_fixture(&[]);
    assert!(log.requests().is_empty());
    initialize_with_credentials(&fixture.url).await;

    let requests = log.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0]["method"], "POST");
    assert_eq!(requests[0]["path"], "/mcp");
    assert_eq!(
        log.values("authorization"),
        ["Bearer client-token-must-not-leak"]
    );
    assert_eq!(log.values("cookie"), ["session=one", "other=two"]);
    assert!(log.text().contains("client-token-must-not-leak"));

    // The flag does the same as the environment variable.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("flag.jsonl");
    let flagged = support::FixtureHttp::start(&["--header-log", path.to_str().expect("utf-8")]);
    initialize_with_credentials(&flagged.url).await;
    let log = support::oauth::HeaderLog { path };
    assert_eq!(
        log.values("authorization"),
        ["Bearer client-token-must-not-leak"]
    );
}

#[test]
fn the_python_client_oauth_options_leave_an_unauthenticated_server_alone() {
    let fixture = support::FixtureHttp::start(&[]);
    let summary = support::run_python_client(
        "echo",
        "legacy",
        &support::PeerTarget::Url(fixture.url.clone()),
        &["--oauth-client-id", CLIENT, "--oauth-client-secret", SECRET],
    );
    let peer = support::PeerSummary(summary);
    peer.assert_clean_run();
    assert_eq!(peer.text("tools/call echo"), "hello through portcullis");
    // No 401, so no discovery and no token request.
    assert_eq!(peer.0["oauth"]["token_requests"], 0, "{}", peer.0);
    assert_eq!(peer.0["oauth"]["token_scopes"], json!([]), "{}", peer.0);
}
