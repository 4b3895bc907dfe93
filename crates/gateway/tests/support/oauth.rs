//! A real OAuth 2.1 authorization server for the auth tests, and tokens for attacking the
//! gateway's resource server.
//!
//! [`AuthServer`] runs `tests/peers/oauth_server.mjs` (npm `oidc-provider`, Node 22 from
//! `.peers`) on a loopback port with the clients, resources and keys a test chooses, and gets
//! real tokens from it over HTTP ([`AuthServer::client_credentials`]). Its signing key is a
//! [`TestKey`] generated in this process, so a test can also sign tokens with the AS's own key
//! ([`AuthServer::mint`]: expired, wrong audience, `jku` header … all with a valid signature),
//! with a key nobody trusts ([`AuthServer::mint_with_other_key`]), or forge them
//! ([`forge_alg_none`], [`forge_hs256`]).
//!
//! [`recording_fixture`] starts the fixture server recording every request's headers, so a
//! test can assert that no client token or cookie ever reached the upstream.

pub mod gateway;
mod keys;

// Not every test binary names all of these (each includes `support`).
#[allow(unused_imports)]
pub use keys::{Kid, MintHeader, TestKey, forge_alg_none, forge_hs256};

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::{FixtureHttp, Proc, node22, peer_script, peers, spawn_until};

/// The longest one request to the authorization server may take.
const AS_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A client registered with the authorization server.
#[derive(Clone)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: String,
    /// Default `["client_credentials"]`.
    pub grant_types: Vec<String>,
    /// The scopes it may request (space-separated); a scope outside it is `invalid_scope`.
    pub scope: String,
    /// When set, the only resources it may get tokens for (others are `invalid_target`).
    pub resources: Option<Vec<String>>,
    /// Default `client_secret_basic`.
    pub token_endpoint_auth_method: String,
    /// For the authorization-code grant: where the code may be sent.
    pub redirect_uris: Vec<String>,
}

impl OAuthClient {
    /// A confidential client for the client-credentials grant.
    pub fn client_credentials(client_id: &str, client_secret: &str, scope: &str) -> OAuthClient {
        OAuthClient {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            grant_types: vec!["client_credentials".to_owned()],
            scope: scope.to_owned(),
            resources: None,
            token_endpoint_auth_method: "client_secret_basic".to_owned(),
            redirect_uris: Vec::new(),
        }
    }

    /// A confidential client of the authorization-code grant (with refresh tokens).
    pub fn authorization_code(
        client_id: &str,
        client_secret: &str,
        scope: &str,
        redirect_uri: &str,
    ) -> OAuthClient {
        OAuthClient {
            grant_types: vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
            redirect_uris: vec![redirect_uri.to_owned()],
            ..Self::client_credentials(client_id, client_secret, scope)
        }
    }

    /// Restricts the client to these resources.
    pub fn only_for(mut self, resources: &[&str]) -> OAuthClient {
        self.resources = Some(resources.iter().map(|r| (*r).to_owned()).collect());
        self
    }

    fn to_json(&self) -> Value {
        let mut client = json!({
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "grant_types": self.grant_types,
            "scope": self.scope,
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
        });
        if let Some(resources) = &self.resources {
            client["resources"] = json!(resources);
        }
        if !self.redirect_uris.is_empty() {
            client["redirect_uris"] = json!(self.redirect_uris);
            client["response_types"] = json!(["code"]);
        }
        client
    }
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scope", &self.scope)
            .field("resources", &self.resources)
            .finish()
    }
}

/// The format of the access tokens issued for a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenFormat {
    /// RFC 9068 JWT (`typ: at+jwt`, RS256, `aud` = the resource).
    Jwt,
    /// An opaque handle, only usable through introspection (RFC 7662).
    Opaque,
}

/// A resource server (an RFC 8707 resource indicator) the AS issues tokens for.
#[derive(Clone, Debug)]
pub struct ResourceServer {
    pub url: String,
    /// The scopes a token for it may carry (space-separated); others are dropped from grants.
    pub scope: String,
    /// `aud` of its tokens; default the URL itself.
    pub audience: Option<String>,
    pub access_token_ttl: Duration,
    pub format: TokenFormat,
}

impl ResourceServer {
    /// JWT access tokens for `url`, valid five minutes.
    pub fn jwt(url: &str, scope: &str) -> ResourceServer {
        ResourceServer {
            url: url.to_owned(),
            scope: scope.to_owned(),
            audience: None,
            access_token_ttl: Duration::from_secs(300),
            format: TokenFormat::Jwt,
        }
    }

    /// Opaque access tokens for `url` (for introspection tests).
    pub fn opaque(url: &str, scope: &str) -> ResourceServer {
        ResourceServer {
            format: TokenFormat::Opaque,
            ..ResourceServer::jwt(url, scope)
        }
    }

    pub fn ttl(mut self, ttl: Duration) -> ResourceServer {
        self.access_token_ttl = ttl;
        self
    }
}

/// What the authorization server knows: clients, resources, scopes and keys.
#[derive(Clone, Debug, Default)]
pub struct AuthServerConfig {
    pub clients: Vec<OAuthClient>,
    pub resources: Vec<ResourceServer>,
    /// Extra scopes beyond the resources' (which are always known).
    pub scopes: Vec<String>,
    /// Private signing keys, all published in the JWKS; the first signs. Empty:
    /// [`TestKey::for_auth_server`].
    pub keys: Vec<TestKey>,
    /// The resource of a token request that names none (otherwise it gets an opaque token).
    pub default_resource: Option<String>,
    /// oidc-provider's login/consent pages, for authorization-code tests.
    pub dev_interactions: bool,
    /// Dynamic client registration (RFC 7591) at `/reg`.
    pub registration: bool,
    /// Refresh tokens for every client allowed the `refresh_token` grant.
    pub refresh_tokens: bool,
    /// The port to listen on; 0 picks a free one.
    pub port: u16,
}

impl AuthServerConfig {
    pub fn new() -> AuthServerConfig {
        AuthServerConfig::default()
    }

    pub fn client(mut self, client: OAuthClient) -> AuthServerConfig {
        self.clients.push(client);
        self
    }

    pub fn resource(mut self, resource: ResourceServer) -> AuthServerConfig {
        self.resources.push(resource);
        self
    }

    pub fn key(mut self, key: TestKey) -> AuthServerConfig {
        self.keys.push(key);
        self
    }

    fn signing_keys(&self) -> Vec<TestKey> {
        if self.keys.is_empty() {
            vec![TestKey::for_auth_server()]
        } else {
            self.keys.clone()
        }
    }

    /// The JSON `oauth_server.mjs` reads (see its header).
    fn to_json(&self) -> Value {
        let resources: serde_json::Map<String, Value> = self
            .resources
            .iter()
            .map(|r| {
                let mut rs = json!({
                    "scope": r.scope,
                    "accessTokenTTL": r.access_token_ttl.as_secs(),
                    "format": match r.format { TokenFormat::Jwt => "jwt", TokenFormat::Opaque => "opaque" },
                });
                if let Some(audience) = &r.audience {
                    rs["audience"] = json!(audience);
                }
                (r.url.clone(), rs)
            })
            .collect();
        json!({
            "clients": self.clients.iter().map(OAuthClient::to_json).collect::<Vec<_>>(),
            "resources": resources,
            "scopes": self.scopes,
            "jwks": { "keys": self.signing_keys().iter().map(TestKey::private_jwk).collect::<Vec<_>>() },
            "defaultResource": self.default_resource,
            "devInteractions": self.dev_interactions,
            "registration": self.registration,
            "refreshTokens": self.refresh_tokens,
            "port": self.port,
        })
    }
}

/// A running `oidc-provider`, killed (with its process group) on drop or [`AuthServer::stop`].
pub struct AuthServer {
    proc: Option<Proc>,
    issuer: String,
    config: AuthServerConfig,
    keys: Vec<TestKey>,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl AuthServer {
    /// Starts the authorization server and waits (bounded) for its `issuer=` line.
    pub fn start(config: AuthServerConfig) -> AuthServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(AS_REQUEST_TIMEOUT)
            .build()
            .expect("http client");
        let keys = config.signing_keys();
        let port = config.port;
        let mut server = AuthServer {
            proc: None,
            issuer: String::new(),
            config,
            keys,
            http,
            dir,
        };
        server.launch(port);
        server
    }

    fn launch(&mut self, port: u16) {
        let path = self.dir.path().join("oauth-server.json");
        std::fs::write(&path, self.config.to_json().to_string()).expect("write AS config");
        let mut cmd = Command::new(node22());
        cmd.arg(peer_script("oauth_server.mjs"))
            .arg(&path)
            .arg(port.to_string())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("PORTCULLIS_NODE_MODULES", peers().join("npm/node_modules"));
        let (proc, line) = spawn_until(cmd, "issuer=http://", self.dir.path());
        let issuer = line
            .trim()
            .strip_prefix("issuer=")
            .expect("issuer line")
            .to_owned();
        self.proc = Some(proc);
        self.issuer = issuer;
    }

    /// Stops the server; its URLs keep their values (for "the AS is down" tests).
    pub fn stop(&mut self) {
        self.proc = None;
    }

    /// Starts it again on the same port with the same configuration (a stopped server only).
    pub fn restart(&mut self) {
        self.stop();
        let port = self
            .issuer
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("issuer port");
        self.launch(port);
    }

    /// Restarts on the same port publishing `keys` instead (the first signs): key rotation.
    pub fn restart_with_keys(&mut self, keys: Vec<TestKey>) {
        self.config.keys = keys;
        self.keys = self.config.signing_keys();
        self.restart();
    }

    /// The server's stderr so far: one `event=…` line per token request, and errors.
    pub fn stderr(&self) -> String {
        self.proc.as_ref().map(Proc::stderr).unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT`
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-authorization-server", self.issuer)
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.issuer)
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    pub fn introspection_url(&self) -> String {
        format!("{}/token/introspection", self.issuer)
    }

    /// The key that signs the server's tokens (the first configured).
    pub fn signing_key(&self) -> &TestKey {
        &self.keys[0]
    }

    /// GETs a URL of the server and parses its JSON answer (panics on anything else).
    pub async fn get_json(&self, url: &str) -> Value {
        let resp = self.http.get(url).send().await.expect("GET from the AS");
        let status = resp.status();
        let body = resp.text().await.expect("AS body");
        assert!(status.is_success(), "GET {url}: {status}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {body}"))
    }

    /// A form POST to `url` authenticated with HTTP Basic (RFC 6749 §2.3.1); returns the status
    /// and the JSON body (a string when it is not JSON), whatever they are.
    pub async fn form_post(
        &self,
        url: &str,
        client_id: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> (u16, Value) {
        let basic = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{}:{}", form_encode(client_id), form_encode(secret)),
        );
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let resp = self
            .http
            .post(url)
            .header("authorization", format!("Basic {basic}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("response body");
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    /// A request to the token endpoint (see [`AuthServer::form_post`]).
    pub async fn token_request(
        &self,
        client_id: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> (u16, Value) {
        self.form_post(&self.token_url(), client_id, secret, form)
            .await
    }

    /// RFC 7662 introspection of `token` by a registered client: the AS's answer (`active`,
    /// and for an active token `aud`, `scope`, `client_id`, `exp`, `iss` …).
    pub async fn introspect(&self, client_id: &str, secret: &str, token: &str) -> Value {
        let (status, body) = self
            .form_post(
                &self.introspection_url(),
                client_id,
                secret,
                &[("token", token)],
            )
            .await;
        assert_eq!(status, 200, "introspection: {body}");
        body
    }

    /// A real access token from the client-credentials grant (RFC 6749 §4.4), for `resource`
    /// (RFC 8707) when given. Panics with the AS's error otherwise.
    pub async fn client_credentials(
        &self,
        client_id: &str,
        secret: &str,
        scope: Option<&str>,
        resource: Option<&str>,
    ) -> String {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        if let Some(resource) = resource {
            form.push(("resource", resource));
        }
        let (status, body) = self.token_request(client_id, secret, &form).await;
        match body["access_token"].as_str() {
            Some(token) if status == 200 => token.to_owned(),
            _ => panic!(
                "client_credentials for {client_id}: {status} {}",
                // The error body carries no token; a success without one is printed as is.
                body
            ),
        }
    }

    /// Claims of a valid access token from this server for `resource` with `scope`: `iss`,
    /// `sub`, `client_id`, `aud`, `scope`, `iat`, `exp` (in 5 min), `jti`. Tests change them.
    pub fn access_token_claims(&self, resource: &str, scope: &str) -> Value {
        let now = unix_now();
        json!({
            "iss": self.issuer,
            "sub": "portcullis-test-user",
            "client_id": "portcullis-test-client",
            "aud": resource,
            "scope": scope,
            "iat": now,
            "exp": now + 300,
            "jti": format!("minted-{now}-{}", keys::random_hex(8)),
        })
    }

    /// A token signed with the server's own key: trusted by anyone who trusts the AS.
    pub fn mint(&self, claims: Value, header: MintHeader) -> String {
        self.signing_key().sign(&claims, &header)
    }

    /// A token signed with [`TestKey::untrusted`] (its own `kid` unless the header names one,
    /// e.g. the AS's): published nowhere, so it must never verify.
    pub fn mint_with_other_key(&self, claims: Value, header: MintHeader) -> String {
        TestKey::untrusted().sign(&claims, &header)
    }

    /// `alg: none`, no signature, with the AS's `kid`.
    pub fn forge_alg_none(&self, claims: Value) -> String {
        forge_alg_none(&claims, Some(self.signing_key().kid()))
    }

    /// HS256 whose HMAC secret is the AS's RSA public key as PEM (SPKI), with the AS's `kid`:
    /// the algorithm-confusion attack on verifiers that take the algorithm from the token.
    pub fn forge_hs256_with_public_key(&self, claims: Value) -> String {
        let pem = self.signing_key().public_key_pem();
        forge_hs256(&claims, pem.as_bytes(), Some(self.signing_key().kid()))
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// `application/x-www-form-urlencoded` for one name or value: everything but the unreserved
/// characters percent-encoded.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The headers the fixture recorded (see `crates/fixtures/README.md`, header recording).
pub struct HeaderLog {
    pub path: PathBuf,
}

impl HeaderLog {
    /// Every recorded request: `{"method","path","query","headers":{name:[values]}}`.
    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad header log line ({e}): {l}"))
            })
            .collect()
    }

    /// The whole log as text, to search for a secret anywhere in it.
    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap_or_default()
    }

    /// The values of header `name` (lower-case) in every recorded request.
    pub fn values(&self, name: &str) -> Vec<String> {
        self.requests()
            .iter()
            .filter_map(|r| r["headers"][name].as_array().cloned())
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    }
}

/// The fixture over HTTP (`portcullis fixture http`) with header recording on, through
/// `PORTCULLIS_FIXTURE_HEADER_LOG` (the flag `--header-log FILE` does the same).
pub fn recording_fixture(extra: &[&str]) -> (FixtureHttp, HeaderLog) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("headers.jsonl");
    let mut cmd = Command::new(super::portcullis_bin());
    cmd.args(["fixture", "http", "--listen", "127.0.0.1:0"])
        .args(extra)
        .env(portcullis_fixtures::HEADER_LOG_ENV, &path);
    let (proc, line) = spawn_until(cmd, "listening on http://", dir.path());
    let url = line
        .split("listening on ")
        .nth(1)
        .expect("url")
        .trim()
        .to_owned();
    (FixtureHttp { proc, url, dir }, HeaderLog { path })
}
