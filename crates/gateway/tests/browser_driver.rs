//! The headless Chromium driver (`support::browser`) against a small axum server on
//! 127.0.0.1 in the test: what the gateway's browser-page tests rely on, proven here with
//! pages whose behaviour is known. Each test launches its own browser (its own profile).

#![allow(clippy::unwrap_used)] // test helpers: a failure there is a failed test

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::{AppendHeaders, Html, Redirect, Response};
use axum::routing::{get, post};

use support::browser::{Browser, BrowserError, Launch, block_on, processes_mentioning};

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    /// Path and query.
    uri: String,
    cookie: String,
    content_type: String,
    body: String,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// A page with a form like the consent page's: a hidden CSRF field and two submit buttons.
const FORM: &str = r#"<!doctype html><html><body>
<form method="post" action="/submit">
  <input type="hidden" name="csrf" value="tok-3f9a">
  <p>Allow the client?</p>
  <button type="submit" name="decision" value="deny">Deny</button>
  <button type="submit" name="decision" value="approve">Approve</button>
</form>
<button id="hidden" style="display:none">Hidden</button>
</body></html>"#;

/// The pages; every request is recorded first ([`remember`]).
fn app(log: Log) -> Router {
    Router::new()
        .route("/form", get(|| async { Html(FORM) }))
        .route(
            "/submit",
            post(|body: String| async move {
                let decision = if body.contains("decision=approve") {
                    "approve"
                } else {
                    "deny"
                };
                Redirect::to(&format!("/done?decision={decision}"))
            }),
        )
        .route(
            "/done",
            get(|uri: Uri| async move {
                Html(format!("<p>Recorded: {}</p>", uri.query().unwrap_or("")))
            }),
        )
        .route(
            "/set-cookie",
            get(|| async {
                (
                    AppendHeaders([
                        (
                            header::SET_COOKIE,
                            "__Host-session=s3cr3t; Secure; HttpOnly; SameSite=Lax; Path=/",
                        ),
                        // Breaks the prefix's rules (no Secure): a browser must drop it.
                        (header::SET_COOKIE, "__Host-nosecure=1; HttpOnly; Path=/"),
                    ]),
                    Html("<p>cookie set</p>"),
                )
            }),
        )
        .route(
            "/echo-cookies",
            get(|headers: HeaderMap| async move {
                let cookie = headers
                    .get(header::COOKIE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none")
                    .to_owned();
                Html(format!("<p id=cookies>{cookie}</p>"))
            }),
        )
        .route(
            "/redirect/{n}",
            get(|Path(n): Path<u32>| async move {
                if n == 0 {
                    Redirect::to("/landing")
                } else {
                    Redirect::to(&format!("/redirect/{}", n - 1))
                }
            }),
        )
        .route("/landing", get(|| async { Html("<h1>Landed</h1>") }))
        .route("/parent", get(|| async { Html("<p>the framing page</p>") }))
        .route(
            "/framed-csp",
            get(|| async {
                (
                    [(header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'")],
                    Html("<p>consent secret</p>"),
                )
            }),
        )
        .route(
            "/framed-plain",
            get(|| async { Html("<p>public page</p>") }),
        )
        .layer(axum::middleware::from_fn_with_state(log.clone(), remember))
        .with_state(log)
}

/// Records every request (with its body) before the route answers.
async fn remember(
    State(log): State<Log>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let text = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    log.lock().unwrap().push(Seen {
        method: parts.method.clone(),
        uri: parts.uri.to_string(),
        cookie: text(header::COOKIE),
        content_type: text(header::CONTENT_TYPE),
        body: String::from_utf8_lossy(&bytes).into_owned(),
    });
    next.run(axum::extract::Request::from_parts(parts, bytes.into()))
        .await
}

/// The test server on a free port of 127.0.0.1 (reachable as `localhost` too).
struct Server {
    /// `http` or `https`.
    scheme: &'static str,
    port: u16,
    log: Log,
}

impl Server {
    async fn start() -> Server {
        let log: Log = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = app(log.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server {
            scheme: "http",
            port,
            log,
        }
    }

    /// The same pages over https, with a self-signed certificate for 127.0.0.1 and localhost.
    async fn start_https() -> Server {
        let log: Log = Arc::default();
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = tcp.local_addr().unwrap().port();
        let listener = TlsListener {
            tcp,
            acceptor: self_signed_acceptor(),
        };
        let app = app(log.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server {
            scheme: "https",
            port,
            log,
        }
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("{}://{host}:{}{path}", self.scheme, self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }
}

/// A TLS acceptor with a fresh self-signed certificate for 127.0.0.1 and localhost.
fn self_signed_acceptor() -> tokio_rustls::TlsAcceptor {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// A TCP listener whose connections axum gets after the TLS handshake (a handshake that
/// fails or stalls is skipped: the browser refusing the certificate closes it).
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            let handshake = self.acceptor.accept(tcp);
            if let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(5), handshake).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

#[tokio::test]
async fn clicking_a_submit_button_makes_the_browser_post_the_form_with_its_hidden_field() {
    let server = Server::start().await;
    let mut browser = Browser::launch().await.unwrap();
    browser
        .open(&server.url("127.0.0.1", "/form"))
        .await
        .unwrap();
    assert_eq!(browser.value("input[name=csrf]").await.unwrap(), "tok-3f9a");
    assert_eq!(
        browser
            .attribute("form", "method")
            .await
            .unwrap()
            .as_deref(),
        Some("post")
    );
    // What a person would see, kept for a look (the file tool shows it).
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-driver-form.png");
    browser.screenshot(&shot).await.unwrap();
    assert!(
        std::fs::read(&shot)
            .unwrap()
            .starts_with(b"\x89PNG\r\n\x1a\n")
    );

    browser
        .click_and_wait_for_load("button[value=approve]")
        .await
        .unwrap();

    let posts: Vec<Seen> = server
        .seen()
        .into_iter()
        .filter(|s| s.method == Method::POST)
        .collect();
    assert_eq!(posts.len(), 1, "one form submission: {posts:?}");
    assert_eq!(posts[0].uri, "/submit");
    assert_eq!(posts[0].content_type, "application/x-www-form-urlencoded");
    // The hidden field and only the clicked button's value, as the browser encodes them.
    assert_eq!(posts[0].body, "csrf=tok-3f9a&decision=approve");
    // The 303 after the POST was followed to the page that says what was recorded.
    assert_eq!(
        browser.url().await.unwrap(),
        server.url("127.0.0.1", "/done?decision=approve")
    );
    assert!(
        browser
            .text()
            .await
            .unwrap()
            .contains("Recorded: decision=approve")
    );
}

/// Chromium takes plain-http loopback origins as trustworthy: a `__Host-` cookie (which must
/// be `Secure`) set over http by 127.0.0.1 or localhost is kept, with its attributes, and
/// sent back; a `__Host-` cookie without `Secure` is still dropped, so the prefix's rules do
/// apply there. The gateway's browser tests can therefore run it without TLS.
#[tokio::test]
async fn a_host_prefixed_secure_cookie_set_over_http_on_loopback_is_kept_and_sent_back() {
    let server = Server::start().await;
    let mut browser = Browser::launch().await.unwrap();
    for host in ["127.0.0.1", "localhost"] {
        browser
            .open(&server.url(host, "/set-cookie"))
            .await
            .unwrap();
        let cookies = browser.cookies().await.unwrap();
        let mine: Vec<_> = cookies.iter().filter(|c| c.domain == host).collect();
        assert_eq!(
            mine.len(),
            1,
            "only the valid __Host- cookie of {host}: {cookies:?}"
        );
        let c = mine[0];
        assert_eq!(
            (c.name.as_str(), c.value.as_str()),
            ("__Host-session", "s3cr3t")
        );
        assert!(c.secure && c.http_only && c.session, "{c:?}");
        assert_eq!(c.same_site.as_deref(), Some("Lax"));
        assert_eq!(c.path, "/");

        // HttpOnly: the page's script cannot read it.
        let visible = browser.eval("document.cookie").await.unwrap();
        assert_eq!(visible, "", "HttpOnly cookie visible to script on {host}");

        browser
            .open(&server.url(host, "/echo-cookies"))
            .await
            .unwrap();
        let sent = server
            .seen()
            .into_iter()
            .rfind(|s| s.uri == "/echo-cookies")
            .unwrap();
        assert_eq!(
            sent.cookie, "__Host-session=s3cr3t",
            "cookie sent back to {host}"
        );
    }
}

/// The same page is refused in a frame of another origin when it says
/// `frame-ancestors 'none'`, and shown when it does not, whether the framing page is of
/// another site (`localhost` framing `127.0.0.1`: the frame gets its own process) or of the
/// same site on another port (same process).
#[tokio::test]
async fn a_frame_ancestors_none_page_is_refused_in_a_frame_while_the_same_page_without_it_loads() {
    let server = Server::start().await;
    let other_port = Server::start().await;
    let mut browser = Browser::launch().await.unwrap();
    let parents = [
        server.url("localhost", "/parent"),
        other_port.url("127.0.0.1", "/parent"),
    ];
    for parent in parents {
        browser.open(&parent).await.unwrap();
        let refused = browser
            .frame(&server.url("127.0.0.1", "/framed-csp"))
            .await
            .unwrap();
        assert!(refused.blocked(), "framed by {parent}: {refused:?}");
        assert_eq!(
            refused.net_error.as_deref(),
            Some("net::ERR_BLOCKED_BY_RESPONSE"),
            "framed by {parent}: {refused:?}"
        );
        assert!(
            refused
                .security_messages
                .iter()
                .any(|m| m.contains("frame-ancestors 'none'")),
            "framed by {parent}: {refused:?}"
        );
        assert!(!refused.text.contains("consent secret"), "{refused:?}");

        let shown = browser
            .frame(&server.url("127.0.0.1", "/framed-plain"))
            .await
            .unwrap();
        assert!(!shown.blocked(), "framed by {parent}: {shown:?}");
        assert_eq!(shown.document_url, server.url("127.0.0.1", "/framed-plain"));
        assert!(shown.text.contains("public page"), "{shown:?}");
    }
    // The refused page was fetched each time: it is the browser that refused to show it.
    let fetched = server
        .seen()
        .iter()
        .filter(|s| s.uri == "/framed-csp")
        .count();
    assert_eq!(fetched, 2);
}

/// From a plain `#[test]` too (with `block_on`): a chain of redirects is followed to its end.
#[test]
fn a_redirect_chain_ends_at_its_last_url() {
    block_on(async {
        let server = Server::start().await;
        let mut browser = Browser::launch().await.unwrap();
        browser
            .open(&server.url("127.0.0.1", "/redirect/3"))
            .await
            .unwrap();
        assert_eq!(
            browser.url().await.unwrap(),
            server.url("127.0.0.1", "/landing")
        );
        assert_eq!(browser.text().await.unwrap(), "Landed");
        let chain: Vec<String> = server
            .seen()
            .into_iter()
            .map(|s| s.uri)
            .filter(|u| u != "/favicon.ico")
            .collect();
        assert_eq!(
            chain,
            [
                "/redirect/3",
                "/redirect/2",
                "/redirect/1",
                "/redirect/0",
                "/landing"
            ]
        );
    });
}

#[tokio::test]
async fn waits_are_bounded_and_misuse_is_a_typed_error() {
    let server = Server::start().await;
    let mut browser = Browser::launch_with(Launch {
        timeout: Duration::from_secs(1),
        ..Launch::default()
    })
    .await
    .unwrap();
    browser
        .open(&server.url("127.0.0.1", "/form"))
        .await
        .unwrap();

    let started = std::time::Instant::now();
    let err = browser.wait_for("#never-there").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(&err, BrowserError::Timeout { what } if what.contains("#never-there") && what.contains("/form")),
        "{err}"
    );
    let err = browser.click("#hidden").await.unwrap_err();
    assert!(matches!(err, BrowserError::NotClickable { .. }), "{err}");
    let err = browser.value("#nothing").await.unwrap_err();
    assert!(matches!(err, BrowserError::NoElement(_)), "{err}");
    let err = browser.eval("no_such_function()").await.unwrap_err();
    assert!(
        matches!(&err, BrowserError::Script(m) if m.contains("no_such_function")),
        "{err}"
    );
    // Nothing outside loopback is ever visited (refused before the browser is asked).
    for url in [
        "http://example.com/",
        "http://10.0.0.1/",
        "file:///etc/passwd",
    ] {
        let err = browser.open(url).await.unwrap_err();
        assert!(matches!(err, BrowserError::NotLoopback(_)), "{url}: {err}");
    }
    // A refused connection is a navigation error, not a wait that runs out.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://127.0.0.1:{}/", closed.local_addr().unwrap().port());
    drop(closed);
    let err = browser.goto(&dead).await.unwrap_err();
    assert!(
        matches!(&err, BrowserError::Navigation { error, .. } if error.contains("CONNECTION_REFUSED")),
        "{err}"
    );
}

#[tokio::test]
async fn dropping_the_browser_leaves_no_chromium_process_behind() {
    let mut browser = Browser::launch().await.unwrap();
    let version = browser.version().await.unwrap();
    assert!(version.starts_with("Chrome/"), "{version}");
    let pid = browser.pid();
    let scratch = browser.scratch_dir().to_owned();
    assert!(
        group_members(pid) > 1,
        "chromium runs renderer and helper processes in its group"
    );
    // Its crash handlers run outside the group; they name the scratch directory.
    let outside = processes_mentioning(&scratch)
        .into_iter()
        .filter(|&p| process_group(p).is_some_and(|g| g != pid))
        .count();
    assert!(outside > 0, "no chromium process outside group {pid}");
    drop(browser);
    assert!(
        support::wait_until(Duration::from_secs(5), || group_members(pid) == 0
            && processes_mentioning(&scratch).is_empty()),
        "chromium processes left behind: group {pid}, or naming {}",
        scratch.display()
    );
}

/// The live processes whose process group is `pgid`.
fn group_members(pgid: u32) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| process_group(pid) == Some(pgid))
        .count()
}

/// The process group of a live (not zombie) process.
fn process_group(pid: i32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its ')'.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?;
    let pgrp = fields.nth(1)?.parse().ok()?;
    (state != "Z").then_some(pgrp)
}

/// Over https with a self-signed certificate the browser refuses the page unless launched
/// with `ignore_certificate_errors`; then the form and the `__Host-` cookie work as over
/// http. (The gateway's browser tests need no TLS, see the cookie test; this is the way if
/// one ever does.)
#[tokio::test]
async fn over_https_a_self_signed_certificate_needs_ignore_certificate_errors() {
    let server = Server::start_https().await;
    let mut strict = Browser::launch().await.unwrap();
    let err = strict
        .open(&server.url("127.0.0.1", "/form"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, BrowserError::Navigation { error, .. } if error.contains("ERR_CERT_")),
        "{err}"
    );
    drop(strict);

    let mut browser = Browser::launch_with(Launch {
        ignore_certificate_errors: true,
        ..Launch::default()
    })
    .await
    .unwrap();
    browser
        .open(&server.url("localhost", "/set-cookie"))
        .await
        .unwrap();
    let cookies = browser.cookies().await.unwrap();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(cookies[0].name == "__Host-session" && cookies[0].secure && cookies[0].http_only);
    browser
        .open(&server.url("localhost", "/form"))
        .await
        .unwrap();
    browser
        .click_and_wait_for_load("button[value=approve]")
        .await
        .unwrap();
    let post = server
        .seen()
        .into_iter()
        .find(|s| s.method == Method::POST)
        .unwrap();
    assert_eq!(post.body, "csrf=tok-3f9a&decision=approve");
    assert_eq!(post.cookie, "__Host-session=s3cr3t");
    assert_eq!(
        browser.url().await.unwrap(),
        server.url("localhost", "/done?decision=approve")
    );
}
