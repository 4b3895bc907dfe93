//! A gateway with `[auth]` in front of the recording fixture, and a real authorization
//! server (oidc-provider) it trusts, for the OAuth end-to-end tests (`tests/oauth_*.rs`).

use std::net::TcpListener;

use serde_json::{Value, json};

use super::{AuthServer, AuthServerConfig, HeaderLog, MintHeader, OAuthClient, ResourceServer};
use crate::support::{
    FixtureHttp, Gateway, HttpAnswer, PeerSummary, PeerTarget, RawHttp, run_python_client,
};

/// The upstream's own credential (what `servers.fx.credential` names), never the client's.
pub const UPSTREAM_TOKEN: &str = "fx-upstream-credential-7d1e";
pub const ALICE: (&str, &str) = ("alice-agent", "alice-secret-0c5b");
pub const BOB: (&str, &str) = ("bob-agent", "bob-secret-91aa");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// An authorization server, a gateway trusting it, and the recording upstream behind it.
pub struct Setup {
    pub auth: AuthServer,
    pub gw: Gateway,
    pub upstream: HeaderLog,
    pub fixture: FixtureHttp,
    _state: tempfile::TempDir,
}

/// What varies between setups.
#[derive(Default)]
pub struct Options<'a> {
    /// The `[gateway]` section's body.
    pub gateway: &'a str,
    /// Added to `[auth]`.
    pub auth: &'a str,
    /// `servers.fx.credential`, with `{issuer}` and `{fixture}` replaced; default the
    /// static bearer token from `FX_UPSTREAM_TOKEN`.
    pub credential: Option<&'a str>,
    /// Opaque access tokens for the gateway (checked by introspection) instead of JWTs.
    pub opaque: bool,
}

/// A confidential client of the authorization server the gateway itself uses (for
/// introspection, and for its upstream's client-credentials token).
pub const GATEWAY_CLIENT: (&str, &str) = ("portcullis-gateway", "gateway-secret-5e0f");

impl Setup {
    pub fn start() -> Setup {
        Self::with_options(Options::default())
    }

    /// `extra` is added to the `[auth]` section.
    pub fn with_auth_extra(extra: &str) -> Setup {
        Self::with_options(Options {
            auth: extra,
            ..Options::default()
        })
    }

    /// `gateway` is the `[gateway]` section's body, `extra` is added to `[auth]`.
    pub fn with(gateway: &str, extra: &str) -> Setup {
        Self::with_options(Options {
            gateway,
            auth: extra,
            ..Options::default()
        })
    }

    pub fn with_options(o: Options<'_>) -> Setup {
        let as_port = free_port();
        let issuer = format!("http://127.0.0.1:{as_port}");
        let (fixture, upstream) = super::recording_fixture(&[]);
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
            fixture,
            _state: state,
        }
    }

    pub fn resource(&self) -> String {
        self.gw.url("fx")
    }

    pub async fn token(&self, who: (&str, &str), scope: &str) -> String {
        self.auth
            .client_credentials(who.0, who.1, Some(scope), Some(&self.resource()))
            .await
    }

    /// A token signed with the authorization server's own key, with these claim changes.
    pub fn minted(&self, changes: Value, header: MintHeader) -> String {
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

    /// The official Python SDK client, authenticating as `who` with its client-credentials
    /// provider (told only the route's URL, the issuer and its own id and secret), making
    /// `calls` in protocol `mode`.
    pub async fn python_client(&self, who: (&str, &str), mode: &str, calls: Value) -> PeerSummary {
        let target = PeerTarget::Url(self.resource());
        let (id, secret) = (who.0.to_owned(), who.1.to_owned());
        let (issuer, mode) = (self.auth.issuer().to_owned(), mode.to_owned());
        tokio::task::spawn_blocking(move || {
            PeerSummary(run_python_client(
                "calls",
                &mode,
                &target,
                &[
                    "--calls",
                    &calls.to_string(),
                    "--oauth-client-id",
                    &id,
                    "--oauth-client-secret",
                    &secret,
                    "--oauth-issuer",
                    &issuer,
                ],
            ))
        })
        .await
        .expect("the python client ran")
    }

    pub fn client(&self) -> RawHttp {
        RawHttp::new(&self.resource())
    }

    /// Nothing reached the upstream: no session was ever started for a refused request.
    pub fn assert_upstream_untouched(&self) {
        assert!(
            self.upstream.requests().is_empty(),
            "a refused request reached the upstream: {}",
            self.upstream.text()
        );
    }

    /// What reached the upstream carried its own credential, never a client's.
    pub fn assert_upstream_saw_only_its_credential(&self, client_tokens: &[&str]) {
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

pub fn initialize_body() -> String {
    json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": { "protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": { "name": "portcullis-tests", "version": "0" } }
    })
    .to_string()
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Opens a session with `token`; returns the client with its session id set.
pub async fn open_session(s: &Setup, token: &str) -> RawHttp {
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

pub async fn call(c: &RawHttp, token: &str, id: i64, tool: &str, args: Value) -> HttpAnswer {
    let body = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
                       "params": { "name": tool, "arguments": args } });
    c.post_with(body.to_string(), &[("authorization", &bearer(token))])
        .await
}

/// A refused initialize: the status, and the `WWW-Authenticate` challenge.
pub async fn refused_initialize(s: &Setup, authorization: Option<&str>) -> (u16, String) {
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
pub async fn assert_invalid_token(s: &Setup, token: &str, why: &str) {
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
