//! Real parts for the OAuth client's end-to-end tests: `oidc-provider` as the authorization
//! server (the gateway's `tests/peers/oauth_server.mjs`, run with the Node 22 of `.peers`),
//! a loopback stand-in for the remote MCP server's auth surface (its 401 challenge and RFC
//! 9728 metadata), and a browser made of reqwest and a cookie jar that logs in and consents
//! on oidc-provider's own pages.

#![allow(clippy::unwrap_used)] // test support: a failure here is a failed test

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};

/// The longest the authorization server may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest one browser request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Redirects and form posts one authorization may take before the test gives up.
const MAX_BROWSER_STEPS: usize = 20;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn peers() -> PathBuf {
    let dir = std::env::var_os("PORTCULLIS_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".peers"));
    assert!(
        dir.join("stamp").exists(),
        "the test peers are not installed in {}: run scripts/install-peers",
        dir.display()
    );
    dir
}

/// A running oidc-provider, killed on drop.
pub struct AuthServer {
    child: Child,
    pub issuer: String,
    _dir: tempfile::TempDir,
}

impl AuthServer {
    /// Starts it with `config` (the JSON `oauth_server.mjs` reads) and waits, bounded, for
    /// its `issuer=` line.
    pub fn start(config: &Value) -> AuthServer {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("as.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let mut child = Command::new(peers().join("node22/node_modules/.bin/node"))
            .arg(workspace().join("crates/gateway/tests/peers/oauth_server.mjs"))
            .arg(&path)
            .arg("0")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("PORTCULLIS_NODE_MODULES", peers().join("npm/node_modules"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(issuer) = line.strip_prefix("issuer=") {
                    let _ = tx.send(issuer.to_owned());
                }
            }
        });
        let issuer = match rx.recv_timeout(START_TIMEOUT) {
            Ok(issuer) => issuer,
            Err(_) => {
                let _ = child.kill();
                panic!("oauth_server.mjs did not start within {START_TIMEOUT:?}");
            }
        };
        AuthServer {
            child,
            issuer,
            _dir: dir,
        }
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The remote MCP server's auth surface on 127.0.0.1: `/mcp` answers 401 with a challenge
/// naming its metadata and `scope`, the path-inserted well-known URL serves the metadata.
pub struct McpServer {
    pub url: String,
    issuer: std::sync::Arc<std::sync::OnceLock<String>>,
}

impl McpServer {
    pub async fn start(scope: &'static str) -> McpServer {
        McpServer::start_claiming(scope, None).await
    }

    /// A server whose metadata claims to be for `resource` (a lying or misconfigured one)
    /// instead of its own URL.
    pub async fn start_claiming(scope: &'static str, resource: Option<&str>) -> McpServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let url = format!("{origin}/mcp");
        let issuer = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
        let prm_url = format!("{origin}/.well-known/oauth-protected-resource/mcp");
        let challenge = format!(r#"Bearer resource_metadata="{prm_url}", scope="{scope}""#);
        let resource = resource.map_or_else(|| url.clone(), str::to_owned);
        let as_issuer = issuer.clone();
        let app = Router::new()
            .route(
                "/mcp",
                get(move || {
                    let challenge = challenge.clone();
                    async move {
                        (
                            StatusCode::UNAUTHORIZED,
                            [(header::WWW_AUTHENTICATE, challenge)],
                        )
                            .into_response()
                    }
                }),
            )
            .route(
                "/.well-known/oauth-protected-resource/mcp",
                get(move || {
                    let doc = json!({
                        "resource": resource,
                        "authorization_servers": [as_issuer.get().cloned().unwrap_or_default()],
                        "scopes_supported": ["mcp:tools"],
                    });
                    async move { axum::Json(doc).into_response() }
                }),
            );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        McpServer { url, issuer }
    }

    /// Names the authorization server in the metadata (it starts after this server, as it
    /// needs this server's URL as a resource).
    pub fn set_issuer(&self, issuer: &str) {
        self.issuer.set(issuer.to_owned()).unwrap();
    }
}

/// A user agent: follows redirects by hand, keeps cookies, logs in as `user` and consents
/// on oidc-provider's development pages. Returns the query of the redirect to
/// `redirect_uri` (which is never requested: nothing listens there).
pub async fn authorize_in_browser(start_url: &str, redirect_uri: &str, user: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap();
    let origin = {
        let after = start_url.find("://").unwrap() + 3;
        let end = start_url[after..]
            .find('/')
            .map_or(start_url.len(), |i| after + i);
        start_url[..end].to_owned()
    };
    let mut jar: HashMap<String, String> = HashMap::new();
    let mut next = (reqwest::Method::GET, start_url.to_owned(), None::<String>);
    for _ in 0..MAX_BROWSER_STEPS {
        let (method, url, form) = next.clone();
        let mut req = http.request(method, &url);
        if !jar.is_empty() {
            let cookies: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header(header::COOKIE, cookies.join("; "));
        }
        if let Some(form) = form {
            req = req
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form);
        }
        let resp = req.send().await.expect("browser request");
        remember_cookies(&mut jar, resp.headers());
        let status = resp.status();
        if status.is_redirection() {
            let location = resp.headers()[header::LOCATION]
                .to_str()
                .unwrap()
                .to_owned();
            if let Some(query) = location.strip_prefix(&format!("{redirect_uri}?")) {
                return query.to_owned();
            }
            let absolute = if location.starts_with('/') {
                format!("{origin}{location}")
            } else {
                location
            };
            next = (reqwest::Method::GET, absolute, None);
            continue;
        }
        let page = resp.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{url}: {page}");
        // The pages post back to their own URL.
        let form = if page.contains(r#"name="prompt" value="login""#) {
            format!("prompt=login&login={user}&password=any")
        } else if page.contains(r#"name="prompt" value="consent""#) {
            "prompt=consent".to_owned()
        } else {
            panic!("unexpected page at {url}: {page}");
        };
        next = (reqwest::Method::POST, url, Some(form));
    }
    panic!("no redirect to {redirect_uri} within {MAX_BROWSER_STEPS} steps");
}

fn remember_cookies(jar: &mut HashMap<String, String>, headers: &HeaderMap) {
    for value in headers.get_all(header::SET_COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        let pair = text.split(';').next().unwrap_or("");
        if let Some((name, value)) = pair.split_once('=') {
            if value.is_empty() {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_owned(), value.to_owned());
            }
        }
    }
}

/// The claims of a JWT, unverified (the test only reads what the AS put in).
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
