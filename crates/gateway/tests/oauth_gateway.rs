//! `portcullis serve` as an OAuth 2.1 resource server, against a real authorization server
//! (npm `oidc-provider`, started per test) and a real upstream (the fixture over HTTP,
//! recording every header it receives).
//!
//! Each attack has its own test, and each ends by checking the upstream's header log: a
//! refused request never reaches it, and no client token or cookie ever does.

mod support;

use std::net::TcpListener;

use serde_json::{Value, json};
use support::oauth::{
    AuthServer, AuthServerConfig, HeaderLog, MintHeader, OAuthClient, ResourceServer, unix_now,
};
use support::{FixtureHttp, Gateway, RawHttp};

/// The upstream's own credential (what `servers.fx.credential` names), never the client's.
const UPSTREAM_TOKEN: &str = "fx-upstream-credential-7d1e";
const ALICE: (&str, &str) = ("alice-agent", "alice-secret-0c5b");
const BOB: (&str, &str) = ("bob-agent", "bob-secret-91aa");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// An authorization server, a gateway trusting it, and the recording upstream behind it.
struct Setup {
    auth: AuthServer,
    gw: Gateway,
    upstream: HeaderLog,
    _fixture: FixtureHttp,
    _state: tempfile::TempDir,
}

/// What varies between setups.
#[derive(Default)]
struct Options<'a> {
    /// The `[gateway]` section's body.
    gateway: &'a str,
    /// Added to `[auth]`.
    auth: &'a str,
    /// `servers.fx.credential`, with `{issuer}` and `{fixture}` replaced; default the
    /// static bearer token from `FX_UPSTREAM_TOKEN`.
    credential: Option<&'a str>,
    /// Opaque access tokens for the gateway (checked by introspection) instead of JWTs.
    opaque: bool,
}

/// A confidential client of the authorization server the gateway itself uses (for
/// introspection, and for its upstream's client-credentials token).
const GATEWAY_CLIENT: (&str, &str) = ("portcullis-gateway", "gateway-secret-5e0f");

impl Setup {
    fn start() -> Setup {
        Self::with_options(Options::default())
    }

    /// `extra` is added to the `[auth]` section.
    fn with_auth_extra(extra: &str) -> Setup {
        Self::with_options(Options {
            auth: extra,
            ..Options::default()
        })
    }

    /// `gateway` is the `[gateway]` section's body, `extra` is added to `[auth]`.
    fn with(gateway: &str, extra: &str) -> Setup {
        Self::with_options(Options {
            gateway,
            auth: extra,
            ..Options::default()
        })
    }

    fn with_options(o: Options<'_>) -> Setup {
        let as_port = free_port();
        let issuer = format!("http://127.0.0.1:{as_port}");
        let (fixture, upstream) = support::oauth::recording_fixture(&[]);
        let credential = o
            .credential
            .unwrap_or(r#"{ bearer_env = "FX_UPSTREAM_TOKEN" }"#)
            .replace("{issuer}", &issuer)
            .replace("{fixture}", &fixture.url);
        let config = format!(
            r#"[gateway]
{gateway}

[auth]
issuer = "{issuer}"
scopes_supported = ["mcp:tools"]
{extra}

[servers.fx]
url = "{url}"
credential = {credential}

[[rules]]
server = "fx"
tools = ["add"]
scopes = ["mcp:admin"]
effect = "allow"

[[rules]]
server = "fx"
tools = ["*"]
scopes = ["mcp:tools"]
effect = "allow"
"#,
            gateway = o.gateway,
            extra = o.auth,
            url = fixture.url
        );
        let state = tempfile::tempdir().expect("tempdir");
        let db = format!("sqlite:{}", state.path().join("state.db").display());
        let gw = Gateway::start_with_env(
            &config,
            &[
                ("FX_UPSTREAM_TOKEN", UPSTREAM_TOKEN.as_ref()),
                ("GATEWAY_CLIENT_SECRET", GATEWAY_CLIENT.1.as_ref()),
                ("PORTCULLIS_STATE", db.as_ref()),
            ],
        );
        let resource = gw.url("fx");
        let ours = if o.opaque {
            ResourceServer::opaque(&resource, "mcp:tools mcp:admin")
        } else {
            ResourceServer::jwt(&resource, "mcp:tools mcp:admin")
        };
        let mut as_config = AuthServerConfig::new()
            .client(OAuthClient::client_credentials(
                ALICE.0,
                ALICE.1,
                "mcp:tools mcp:admin",
            ))
            .client(OAuthClient::client_credentials(BOB.0, BOB.1, "mcp:tools"))
            .client(OAuthClient::client_credentials(
                GATEWAY_CLIENT.0,
                GATEWAY_CLIENT.1,
                "fx:call",
            ))
            .resource(ours)
            .resource(ResourceServer::jwt(&fixture.url, "fx:call"));
        as_config.port = as_port;
        let auth = AuthServer::start(as_config);
        assert_eq!(auth.issuer(), issuer);
        Setup {
            auth,
            gw,
            upstream,
            _fixture: fixture,
            _state: state,
        }
    }

    fn resource(&self) -> String {
        self.gw.url("fx")
    }

    async fn token(&self, who: (&str, &str), scope: &str) -> String {
        self.auth
            .client_credentials(who.0, who.1, Some(scope), Some(&self.resource()))
            .await
    }

    /// A token signed with the authorization server's own key, with these claim changes.
    fn minted(&self, changes: Value, header: MintHeader) -> String {
        let mut claims = self.auth.access_token_claims(&self.resource(), "mcp:tools");
        for (k, v) in changes.as_object().expect("object").clone() {
            if v.is_null() {
                claims.as_object_mut().expect("object").remove(&k);
            } else {
                claims[k] = v;
            }
        }
        self.auth.mint(claims, header)
    }

    fn client(&self) -> RawHttp {
        RawHttp::new(&self.resource())
    }

    /// Nothing reached the upstream: no session was ever started for a refused request.
    fn assert_upstream_untouched(&self) {
        assert!(
            self.upstream.requests().is_empty(),
            "a refused request reached the upstream: {}",
            self.upstream.text()
        );
    }

    /// What reached the upstream carried its own credential, never a client's.
    fn assert_upstream_saw_only_its_credential(&self, client_tokens: &[&str]) {
        let log = self.upstream.text();
        assert!(!log.is_empty(), "nothing reached the upstream");
        for t in client_tokens {
            assert!(
                !log.contains(t),
                "a client token reached the upstream: {log}"
            );
        }
        assert!(
            !log.contains("session-cookie"),
            "a cookie reached the upstream"
        );
        for auth in self.upstream.values("authorization") {
            assert_eq!(auth, format!("Bearer {UPSTREAM_TOKEN}"));
        }
        assert!(self.upstream.values("cookie").is_empty());
    }
}

fn initialize_body() -> String {
    json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": { "protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": { "name": "portcullis-tests", "version": "0" } }
    })
    .to_string()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Opens a session with `token`; returns the client with its session id set.
async fn open_session(s: &Setup, token: &str) -> RawHttp {
    let mut c = s.client();
    let auth = bearer(token);
    let a = c
        .post_with(initialize_body(), &[("authorization", &auth)])
        .await;
    assert_eq!(a.status, 200, "initialize: {} {}", a.status, a.body);
    c.session = a.header("mcp-session-id").map(str::to_owned);
    c.version = Some("2025-11-25".into());
    let n = c
        .post_with(
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(n.status, 202, "{}", n.body);
    c
}

async fn call(c: &RawHttp, token: &str, id: i64, tool: &str, args: Value) -> support::HttpAnswer {
    let body = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
                       "params": { "name": tool, "arguments": args } });
    c.post_with(body.to_string(), &[("authorization", &bearer(token))])
        .await
}

/// A refused initialize: the status, and the `WWW-Authenticate` challenge.
async fn refused_initialize(s: &Setup, authorization: Option<&str>) -> (u16, String) {
    let c = s.client();
    let extra: Vec<(&str, &str)> = authorization
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    let a = c.post_with(initialize_body(), &extra).await;
    let challenge = a.header("www-authenticate").unwrap_or_default().to_owned();
    (a.status, challenge)
}

/// Asserts a 401 `invalid_token` whose challenge points at the metadata, and that nothing
/// went upstream.
async fn assert_invalid_token(s: &Setup, token: &str, why: &str) {
    let (status, challenge) = refused_initialize(s, Some(&bearer(token))).await;
    assert_eq!(status, 401, "{why}: {challenge}");
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{why}: {challenge}"
    );
    assert!(
        challenge.contains(&format!(
            r#"resource_metadata="{}/.well-known/oauth-protected-resource/mcp/fx""#,
            s.gw.base
        )),
        "{why}: {challenge}"
    );
    s.assert_upstream_untouched();
}

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
    let target = support::PeerTarget::Url(s.resource());
    let issuer = s.auth.issuer().to_owned();
    let summary = tokio::task::spawn_blocking(move || {
        support::PeerSummary(support::run_python_client(
            "calls",
            "legacy",
            &target,
            &[
                "--calls",
                &calls.to_string(),
                "--oauth-client-id",
                ALICE.0,
                "--oauth-client-secret",
                ALICE.1,
                "--oauth-issuer",
                &issuer,
            ],
        ))
    })
    .await
    .expect("python client");
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
    let target = support::PeerTarget::Url(s.resource());
    let issuer = s.auth.issuer().to_owned();
    let summary = tokio::task::spawn_blocking(move || {
        support::PeerSummary(support::run_python_client(
            "calls",
            "2026-07-28",
            &target,
            &[
                "--calls",
                &calls.to_string(),
                "--oauth-client-id",
                ALICE.0,
                "--oauth-client-secret",
                ALICE.1,
                "--oauth-issuer",
                &issuer,
            ],
        ))
    })
    .await
    .expect("python client");
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
    assert_eq!(claims["aud"], s._fixture.url, "{claims}");
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
