//! A token endpoint and an upstream MCP endpoint on 127.0.0.1, in process, that record
//! everything they receive, for the `upstream_*` tests.

#![allow(dead_code)] // each test file uses a different part
#![allow(clippy::unwrap_used)] // test support: a failure here is a failed test

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::{any, post};
use portcullis_auth::upstream::{CredentialSpec, UpstreamCredential};
use portcullis_egress::{EgressClient, EgressConfig};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
}

impl Recorded {
    pub fn form(&self) -> Vec<(String, String)> {
        form_pairs(&self.body)
    }

    pub fn field(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Everything the request carried, as text: to look for a value anywhere in it.
    pub fn everything(&self) -> String {
        let mut out = format!("{}\n", self.path);
        for (name, value) in &self.headers {
            out.push_str(&format!(
                "{name}: {}\n",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        out.push_str(&self.body);
        out
    }
}

/// What the token endpoint answers.
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Reply {
            status,
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn token(access_token: &str, expires_in: u64) -> Self {
        Reply::json(
            200,
            serde_json::json!({
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": expires_in,
            }),
        )
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// Decides the reply from the number of token requests before this one and the request.
pub type Responder = dyn Fn(usize, &Recorded) -> Reply + Send + Sync;

struct Inner {
    token_requests: Mutex<Vec<Recorded>>,
    upstream_requests: Mutex<Vec<Recorded>>,
    responder: Box<Responder>,
}

/// The recording server: `POST /token` is the token endpoint, `/mcp` the upstream.
pub struct Server {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn start(
        responder: impl Fn(usize, &Recorded) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let inner = Arc::new(Inner {
            token_requests: Mutex::new(Vec::new()),
            upstream_requests: Mutex::new(Vec::new()),
            responder: Box::new(responder),
        });
        let app = Router::new()
            .route("/token", post(token))
            .route("/mcp", any(upstream))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Server { addr, inner, task }
    }

    pub fn token_url(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    pub fn upstream_url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    pub fn token_requests(&self) -> Vec<Recorded> {
        self.inner.token_requests.lock().unwrap().clone()
    }

    pub fn upstream_requests(&self) -> Vec<Recorded> {
        self.inner.upstream_requests.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn token(
    State(inner): State<Arc<Inner>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let recorded = Recorded {
        path: uri.to_string(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let before = {
        let mut log = inner.token_requests.lock().unwrap();
        log.push(recorded.clone());
        log.len() - 1
    };
    let reply = (inner.responder)(before, &recorded);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    (
        StatusCode::from_u16(reply.status).unwrap(),
        [("content-type", "application/json")],
        reply.body,
    )
}

async fn upstream(
    State(inner): State<Arc<Inner>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    inner.upstream_requests.lock().unwrap().push(Recorded {
        path: uri.to_string(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    "{}"
}

pub fn egress() -> EgressClient {
    EgressClient::new(&EgressConfig::default()).unwrap()
}

/// Parses `credential = { … }` as the gateway's config layer does.
pub fn spec(credential_toml: &str) -> CredentialSpec {
    #[derive(serde::Deserialize)]
    struct Server {
        credential: CredentialSpec,
    }
    toml::from_str::<Server>(&format!("credential = {credential_toml}"))
        .unwrap()
        .credential
}

pub fn credential(credential_toml: &str) -> UpstreamCredential {
    UpstreamCredential::new(&spec(credential_toml), egress()).unwrap()
}

/// A secret file; keep the handle alive for as long as the path is used.
pub fn secret_file(value: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), format!("{value}\n")).unwrap();
    f
}

/// `application/x-www-form-urlencoded` pairs, decoded as a server would.
pub fn form_pairs(body: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn decode(component: &str) -> String {
    form_pairs(&format!("x={component}")).remove(0).1
}

/// The `user:password` of a `Basic` authorization header, form-decoded (RFC 6749 §2.3.1).
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine as _;
    let value = headers.get("authorization")?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((decode(user), decode(password)))
}

/// Sends one upstream request the way the gateway will: the client's headers with its
/// credentials stripped, plus the upstream credential's headers.
pub async fn send_upstream(
    server: &Server,
    credential: &UpstreamCredential,
    client_headers: &HeaderMap,
    subject_token: Option<&str>,
) {
    use portcullis_auth::upstream::strip_client_credentials;
    use portcullis_egress::{EgressRequest, Method};
    let mut headers = client_headers.clone();
    strip_client_credentials(&mut headers, &[]);
    for (name, value) in credential.headers(subject_token).await.unwrap() {
        headers.insert(name, value);
    }
    let mut request = EgressRequest::new(
        Method::POST,
        EgressClient::parse_url(&server.upstream_url()).unwrap(),
    );
    request.headers = headers;
    request.body = Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
    let response = egress().send(request).await.unwrap();
    assert_eq!(response.status(), 200);
}
