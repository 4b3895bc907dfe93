//! Shared by the `resource_*` integration tests: test keys, token signing, and a scripted
//! identity provider on 127.0.0.1 that records every request it gets.
#![allow(dead_code)] // each test file uses a different part
#![allow(clippy::unwrap_used)] // test support: a failure here is a failed test

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis_auth::resource::{IssuerConfig, ManualClock, ResourceServerConfig, TokenValidator};
use portcullis_egress::{EgressClient, EgressConfig};
use serde_json::{Value, json};

/// The audience every test resource has.
pub const AUDIENCE: &str = "https://mcp.example.com/mcp/files";

// ---------------------------------------------------------------------------------------
// Keys and tokens

/// A private key for signing test tokens, with its public JWK.
pub struct TestKey {
    pub encoding: EncodingKey,
    pub alg: Algorithm,
    pub kid: String,
    /// The public JWK, with `kid` and without `alg`.
    pub jwk: Value,
}

fn pem_der(pem: &str) -> Vec<u8> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(b64).unwrap()
}

/// One of the committed test keys (`tests/keys/<name>.pem`), published under `kid`.
pub fn key(name: &str, kid: &str) -> TestKey {
    let (encoding, alg) = match name {
        "rsa-a" => (
            EncodingKey::from_rsa_der(&pem_der(include_str!("../keys/rsa-a.pem"))),
            Algorithm::RS256,
        ),
        "rsa-b" => (
            EncodingKey::from_rsa_der(&pem_der(include_str!("../keys/rsa-b.pem"))),
            Algorithm::RS256,
        ),
        "ec-p256" => (
            EncodingKey::from_ec_der(&pem_der(include_str!("../keys/ec-p256.pem"))),
            Algorithm::ES256,
        ),
        "ec-p384" => (
            EncodingKey::from_ec_der(&pem_der(include_str!("../keys/ec-p384.pem"))),
            Algorithm::ES384,
        ),
        "ed25519" => (
            EncodingKey::from_ed_der(&pem_der(include_str!("../keys/ed25519.pem"))),
            Algorithm::EdDSA,
        ),
        other => panic!("no test key {other}"),
    };
    let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&encoding, alg).unwrap()).unwrap();
    let obj = jwk.as_object_mut().unwrap();
    obj.remove("alg");
    obj.insert("kid".into(), json!(kid));
    TestKey {
        encoding,
        alg,
        kid: kid.to_owned(),
        jwk,
    }
}

impl TestKey {
    /// The same key with another algorithm (RSA: RS256 ↔ PS256 …).
    pub fn with_alg(mut self, alg: Algorithm) -> Self {
        self.alg = alg;
        self
    }

    /// The public key as a JWK Set of one.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk] })
    }

    /// A token for `claims`, with header `alg`, `kid` and `typ: at+jwt`.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with(claims, |_| {})
    }

    /// A token whose header `edit` changes first.
    pub fn sign_with(&self, claims: &Value, edit: impl FnOnce(&mut Header)) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        header.typ = Some("at+jwt".into());
        edit(&mut header);
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// A token from raw header and claims JSON with the given signature bytes (for tokens no
/// library would sign: `alg: none`, forged headers).
pub fn raw_token(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims of a valid access token from `issuer` for [`AUDIENCE`], expiring in 5 minutes.
pub fn claims(issuer: &str) -> Value {
    let now = unix_now();
    json!({
        "iss": issuer,
        "sub": "alice",
        "aud": AUDIENCE,
        "exp": now + 300,
        "iat": now,
        "client_id": "claude-desktop",
        "scope": "mcp:tools files:read",
    })
}

// ---------------------------------------------------------------------------------------
// The scripted identity provider

#[derive(Clone)]
struct Scripted {
    status: StatusCode,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
    delay: Duration,
}

/// One request the provider received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: String,
}

#[derive(Default)]
struct Script {
    routes: Mutex<HashMap<String, Scripted>>,
    log: Mutex<Vec<Recorded>>,
}

/// An HTTP server on 127.0.0.1 answering what the test scripted, per path; 404 elsewhere.
pub struct Idp {
    pub addr: SocketAddr,
    script: Arc<Script>,
}

impl Idp {
    pub async fn start() -> Idp {
        let script = Arc::new(Script::default());
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Idp { addr, script }
    }

    /// The issuer identifier of this provider (no path).
    pub fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers `path` with `status` and the JSON `body`, plus `headers`.
    pub fn serve_json(&self, path: &str, status: u16, body: &Value, headers: &[(&str, &str)]) {
        self.serve_bytes(path, status, body.to_string().into_bytes(), headers);
    }

    pub fn serve_bytes(&self, path: &str, status: u16, body: Vec<u8>, headers: &[(&str, &str)]) {
        let mut routes = self.script.routes.lock().unwrap();
        let delay = routes.get(path).map_or(Duration::ZERO, |r| r.delay);
        routes.insert(
            path.to_owned(),
            Scripted {
                status: StatusCode::from_u16(status).unwrap(),
                body,
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                delay,
            },
        );
    }

    /// Delays the answer of an already scripted `path`.
    pub fn delay(&self, path: &str, delay: Duration) {
        self.script
            .routes
            .lock()
            .unwrap()
            .get_mut(path)
            .unwrap()
            .delay = delay;
    }

    /// Makes `path` answer 503 from now on.
    pub fn fail(&self, path: &str) {
        self.serve_json(path, 503, &json!({"error": "down"}), &[]);
    }

    /// How many requests `path` got.
    pub fn hits(&self, path: &str) -> usize {
        self.requests().iter().filter(|r| r.path == path).count()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.script.log.lock().unwrap().clone()
    }
}

async fn answer(State(script): State<Arc<Script>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    script.log.lock().unwrap().push(Recorded {
        method: parts.method.to_string(),
        path: path.clone(),
        authorization: parts
            .headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let scripted = script.routes.lock().unwrap().get(&path).cloned();
    let Some(s) = scripted else {
        let mut r = Response::new(Body::from("not found"));
        *r.status_mut() = StatusCode::NOT_FOUND;
        return r;
    };
    tokio::time::sleep(s.delay).await;
    let mut r = Response::new(Body::from(s.body));
    *r.status_mut() = s.status;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    for (k, v) in s.headers {
        r.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(&v).unwrap(),
        );
    }
    r
}

// ---------------------------------------------------------------------------------------
// Validators

pub fn egress() -> EgressClient {
    EgressClient::new(&EgressConfig::default()).unwrap()
}

/// A configuration trusting `idp` with its JWKS at `/jwks`, on a manual clock.
pub fn config_for(idp: &Idp, clock: &Arc<ManualClock>) -> ResourceServerConfig {
    let mut config = ResourceServerConfig::new(vec![IssuerConfig {
        issuer: idp.issuer(),
        jwks_uri: Some(idp.url("/jwks")),
    }]);
    config.clock = clock.clone();
    config
}

/// A provider serving `keys` at `/jwks`, and a validator trusting it.
pub async fn setup(keys: &[&TestKey]) -> (Idp, Arc<ManualClock>, TokenValidator) {
    let idp = Idp::start().await;
    let jwks: Vec<Value> = keys.iter().map(|k| k.jwk.clone()).collect();
    idp.serve_json("/jwks", 200, &json!({ "keys": jwks }), &[]);
    let clock = Arc::new(ManualClock::new());
    let validator = TokenValidator::new(config_for(&idp, &clock), egress()).unwrap();
    (idp, clock, validator)
}
