//! The one outbound HTTP client of Portcullis.
//!
//! Every request the gateway makes to the outside world — upstream MCP servers, JWKS,
//! authorization-server metadata, token and introspection endpoints — leaves through
//! [`EgressClient`].
//! Keeping a single type is the point: SSRF defences (address checks, pinned resolution,
//! per-hop redirect checks) are added here once and then hold for every caller, instead of
//! differing between code paths.
//!
//! What it already enforces:
//! - only `http` and `https` URLs;
//! - no proxy taken from the environment (`HTTP_PROXY` and friends would silently reroute
//!   upstream traffic and leak credentials to whoever set them);
//! - redirects are never followed (a redirect is a new destination and must be checked as one);
//! - a connect timeout, a per-request timeout, and a bound on every buffered body.
//!
//! It is built directly on hyper's pooled client (with rustls for `https`): the gateway makes
//! one upstream request per relayed call, and a thinner client costs measurably less per call.
//! Owning the connector is also what the address checks of the SSRF guard need.
//!
//! [`EgressClient::guarded`] builds the same client over the SSRF guard ([`guard`]): checked
//! URLs, one resolution, connections only to checked addresses, bounded bodies and time, and
//! redirects followed only through [`EgressClient::send_following`]. It is the gateway's
//! client; [`EgressClient::new`] (unguarded) is left for tools and tests.

pub mod address;
pub mod guard;
mod observer;
pub mod proxy;

pub use observer::RefusalObserver;

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
pub use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use http_body_util::{BodyExt, BodyStream, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Why an outbound request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("scheme {scheme:?} is not allowed for outbound requests (only http and https)")]
    SchemeNotAllowed { scheme: String },
    #[error("request to {host} timed out")]
    Timeout { host: String },
    #[error("could not connect to {host}: {reason}")]
    Connect { host: String, reason: String },
    #[error("response body from {host} is over the {limit}-byte limit")]
    BodyTooLarge { host: String, limit: usize },
    #[error("request to {host} failed: {reason}")]
    Transport { host: String, reason: String },
    #[error("could not build the HTTP client: {0}")]
    Build(String),
    /// The SSRF guard refused the URL, an address it resolved to, or a redirect.
    /// (Boxed: a refusal carries the URL and the rule, and every `Result` of this crate
    /// would otherwise be as large.)
    #[error(transparent)]
    Refused(Box<guard::Refusal>),
    #[error("redirects are followed only by a guarded client")]
    RedirectsNeedGuard,
}

/// Settings of the outbound client.
#[derive(Debug, Clone)]
pub struct EgressConfig {
    /// Time allowed to establish a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Idle pooled connections are closed after this long.
    pub pool_idle_timeout: Duration,
    /// Idle pooled connections kept per host.
    pub pool_max_idle_per_host: usize,
}

impl Default for EgressConfig {
    fn default() -> Self {
        EgressConfig {
            connect_timeout: Duration::from_secs(10),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 64,
        }
    }
}

/// One outbound request. The body is buffered: MCP messages are bounded in size.
#[derive(Debug, Clone)]
pub struct EgressRequest {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Total time for the request up to the response headers. Streaming bodies (SSE) are not
    /// covered: their reader applies its own bound.
    pub timeout: Option<Duration>,
}

impl EgressRequest {
    pub fn new(method: Method, uri: Uri) -> Self {
        EgressRequest {
            method,
            uri,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            timeout: None,
        }
    }
}

/// The response head, with the body still to be read (bounded or as a stream).
#[derive(Debug)]
pub struct EgressResponse {
    host: String,
    inner: http::Response<Incoming>,
    /// The guarded client's own bound on `bytes_limited`, whatever the caller asks.
    max_body: usize,
    /// The guarded client's total deadline, which covers reading the body.
    deadline: Option<tokio::time::Instant>,
}

impl EgressResponse {
    pub fn status(&self) -> StatusCode {
        self.inner.status()
    }

    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers()
    }

    /// Reads the whole body, refusing more than `limit` bytes (checked while reading, so an
    /// endless body costs at most `limit` bytes of memory).
    pub async fn bytes_limited(self, limit: usize) -> Result<Bytes, EgressError> {
        match self.deadline {
            Some(deadline) => {
                let host = self.host.clone();
                tokio::time::timeout_at(deadline, self.read_limited(limit))
                    .await
                    .map_err(|_| EgressError::Timeout { host })?
            }
            None => self.read_limited(limit).await,
        }
    }

    async fn read_limited(self, limit: usize) -> Result<Bytes, EgressError> {
        let limit = limit.min(self.max_body);
        let host = self.host;
        let declared = self
            .inner
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(EgressError::BodyTooLarge { host, limit });
        }
        let mut body = self.inner.into_body();
        let mut buf: Vec<u8> = Vec::new();
        let mut first: Option<Bytes> = None;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| transport(&host, &e))?;
            let Ok(chunk) = frame.into_data() else {
                continue;
            };
            let have = first.as_ref().map_or(0, Bytes::len) + buf.len();
            if have + chunk.len() > limit {
                return Err(EgressError::BodyTooLarge { host, limit });
            }
            // The common answer is one chunk: keep it without copying.
            match first.take() {
                None if buf.is_empty() => first = Some(chunk),
                None => buf.extend_from_slice(&chunk),
                Some(f) => {
                    buf.extend_from_slice(&f);
                    buf.extend_from_slice(&chunk);
                }
            }
        }
        Ok(first.unwrap_or_else(|| Bytes::from(buf)))
    }

    /// The body as a stream of chunks, for server-sent events. The caller bounds what it
    /// buffers (the SSE decoder has its own event size limit).
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, EgressError>> + Send + Unpin {
        let host = self.host;
        BodyStream::new(self.inner.into_body()).filter_map(move |frame| {
            let out = match frame {
                Ok(frame) => frame.into_data().ok().map(Ok),
                Err(e) => Some(Err(transport(&host, &e))),
            };
            std::future::ready(out)
        })
    }
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
type GuardedConnector = hyper_rustls::HttpsConnector<guard::GuardedConnector>;

/// The outbound HTTP client. Cheap to clone: clones share the connection pool.
#[derive(Debug, Clone)]
pub struct EgressClient {
    inner: Inner,
    /// Told about refusals (a guarded client only).
    observer: Option<RefusalObserver>,
}

#[derive(Debug, Clone)]
enum Inner {
    Plain(Client<Connector, Full<Bytes>>),
    Guarded {
        client: Client<GuardedConnector, Full<Bytes>>,
        guard: guard::EgressGuard,
    },
}

impl EgressClient {
    /// The client without the SSRF guard (only the scheme is checked).
    pub fn new(config: &EgressConfig) -> Result<Self, EgressError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.connect_timeout));
        let client = pooled(config, tls_over(http)?);
        Ok(EgressClient {
            inner: Inner::Plain(client),
            observer: None,
        })
    }

    /// The client behind the SSRF guard: every request's URL is checked, names are resolved
    /// once and every address checked, connections go only to checked addresses, no proxy
    /// from the environment, redirects only through [`send_following`](Self::send_following),
    /// and the guard's time and body bounds apply.
    pub fn guarded(config: &EgressConfig, guard: guard::EgressGuard) -> Result<Self, EgressError> {
        let connector = guard::GuardedConnector::new(guard.clone(), config.connect_timeout);
        let client = pooled(config, tls_over(connector)?);
        Ok(EgressClient {
            inner: Inner::Guarded { client, guard },
            observer: None,
        })
    }

    /// The same client, telling `observer` about every refusal (of `send` and of each hop of
    /// `send_following`). No effect on a client without the guard.
    pub fn with_refusal_observer(mut self, observer: RefusalObserver) -> Self {
        if let Inner::Guarded { .. } = self.inner {
            self.observer = Some(observer);
        }
        self
    }

    /// The guard, for a guarded client.
    pub fn guard(&self) -> Option<&guard::EgressGuard> {
        match &self.inner {
            Inner::Plain(_) => None,
            Inner::Guarded { guard, .. } => Some(guard),
        }
    }

    /// Passes `result` through, telling the observer if it is a refusal.
    fn observed<T>(&self, result: Result<T, EgressError>) -> Result<T, EgressError> {
        if let (Err(EgressError::Refused(refusal)), Some(observer)) = (&result, &self.observer) {
            observer.notify(refusal);
        }
        result
    }

    /// Parses and checks a URL for outbound use.
    pub fn parse_url(url: &str) -> Result<Uri, EgressError> {
        let invalid = |reason: &str| EgressError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let parsed: Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
        check_scheme(&parsed)?;
        match parsed.host() {
            Some(h) if !h.is_empty() => Ok(parsed),
            _ => Err(invalid("no host")),
        }
    }

    /// Sends one request and returns the response head. Redirects are returned as they are.
    pub async fn send(&self, req: EgressRequest) -> Result<EgressResponse, EgressError> {
        let result = self.send_unobserved(req).await;
        self.observed(result)
    }

    async fn send_unobserved(&self, req: EgressRequest) -> Result<EgressResponse, EgressError> {
        match &self.inner {
            Inner::Plain(client) => {
                check_scheme(&req.uri)?;
                dispatch(client, req, None).await
            }
            Inner::Guarded { client, guard, .. } => {
                guard.check_url(&req.uri)?;
                let limits = guard.limits();
                let total = limits.total_timeout;
                let timeout = req.timeout.map_or(total, |t| t.min(total));
                let deadline = tokio::time::Instant::now() + timeout;
                let uri = req.uri.clone();
                let mut resp =
                    dispatch(client, req, Some(deadline))
                        .await
                        .map_err(|e| match e {
                            // hyper gives the connector only scheme and authority: the audit gets
                            // the whole (redacted) URL.
                            EgressError::Refused(refusal) => {
                                EgressError::Refused(Box::new(refusal.for_request(&uri)))
                            }
                            other => other,
                        })?;
                resp.max_body = limits.max_response_bytes;
                resp.deadline = Some(deadline);
                Ok(resp)
            }
        }
    }

    /// Sends `req`, following redirects (at most the guard's `max_redirects`), each hop a new
    /// request checked by the guard, credentials dropped when the origin changes (see
    /// [`guard::redirect::next_hop`]). Only a guarded client follows redirects.
    pub async fn send_following(&self, req: EgressRequest) -> Result<EgressResponse, EgressError> {
        let guard = self.guard().ok_or(EgressError::RedirectsNeedGuard)?;
        let max = guard.limits().max_redirects;
        let mut req = req;
        for _ in 0..=max {
            // `send` tells the observer of its own refusals; the hops' are told here.
            let resp = self.send(req.clone()).await?;
            let hop = guard::redirect::next_hop(guard, &req, resp.status(), resp.headers());
            match self.observed(hop.map_err(EgressError::from))? {
                Some(next) => req = next,
                None => return Ok(resp),
            }
        }
        let too_many = guard::Refusal::new(&req.uri, guard::Rule::TooManyRedirects(max));
        self.observed(Err(too_many.into()))
    }
}

/// hyper-util's pooled client over `connector`.
fn pooled<C>(config: &EgressConfig, connector: C) -> Client<C, Full<Bytes>>
where
    C: hyper_util::client::legacy::connect::Connect + Clone,
{
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(config.pool_idle_timeout)
        .pool_max_idle_per_host(config.pool_max_idle_per_host)
        .build(connector)
}

/// rustls (with the system's roots) over a TCP connector; `http` URLs pass through in clear.
fn tls_over<T>(tcp: T) -> Result<hyper_rustls::HttpsConnector<T>, EgressError> {
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| EgressError::Build(e.to_string()))?
    .with_root_certificates(native_roots())
    .with_no_client_auth();
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(tcp))
}

/// Sends one request on `client`, bounded by the request's timeout or `deadline`.
async fn dispatch<C>(
    client: &Client<C, Full<Bytes>>,
    req: EgressRequest,
    deadline: Option<tokio::time::Instant>,
) -> Result<EgressResponse, EgressError>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let host = req.uri.host().unwrap_or_default().to_owned();
    let mut builder = http::Request::builder().method(req.method).uri(req.uri);
    if let Some(h) = builder.headers_mut() {
        *h = req.headers;
    }
    let request = builder
        .body(Full::new(req.body))
        .map_err(|e| transport(&host, &e))?;
    let sending = client.request(request);
    let deadline = deadline.or_else(|| req.timeout.map(|t| tokio::time::Instant::now() + t));
    let result = match deadline {
        Some(d) => tokio::time::timeout_at(d, sending)
            .await
            .map_err(|_| EgressError::Timeout { host: host.clone() })?,
        None => sending.await,
    };
    let inner = result.map_err(|e| classify(&host, &e))?;
    Ok(EgressResponse {
        host,
        inner,
        max_body: usize::MAX,
        deadline: None,
    })
}

/// The operating system's trust anchors (what a browser on this machine would trust).
fn native_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        let _ = roots.add(cert);
    }
    roots
}

fn check_scheme(uri: &Uri) -> Result<(), EgressError> {
    match uri.scheme_str() {
        Some("http" | "https") => Ok(()),
        other => Err(EgressError::SchemeNotAllowed {
            scheme: other.unwrap_or_default().to_owned(),
        }),
    }
}

impl From<guard::Refusal> for EgressError {
    fn from(refusal: guard::Refusal) -> Self {
        EgressError::Refused(Box::new(refusal))
    }
}

fn classify(host: &str, e: &hyper_util::client::legacy::Error) -> EgressError {
    let host = host.to_owned();
    if let Some(refusal) = find_refusal(e) {
        return EgressError::Refused(Box::new(refusal));
    }
    if e.is_connect() {
        EgressError::Connect {
            host,
            reason: source_chain(e),
        }
    } else {
        EgressError::Transport {
            host,
            reason: source_chain(e),
        }
    }
}

fn transport(host: &str, e: &(dyn std::error::Error + 'static)) -> EgressError {
    EgressError::Transport {
        host: host.to_owned(),
        reason: source_chain(e),
    }
}

/// The guard's refusal, if the connector's error is one (hyper wraps it as a cause).
fn find_refusal(e: &(dyn std::error::Error + 'static)) -> Option<guard::Refusal> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(refusal) = err.downcast_ref::<guard::Refusal>() {
            return Some(refusal.clone());
        }
        if let Some(guard::ConnectFailure::Refused(refusal)) =
            err.downcast_ref::<guard::ConnectFailure>()
        {
            return Some(refusal.clone());
        }
        cur = err.source();
    }
    None
}

/// Transport errors say little at the top ("error sending request"); the cause is below.
fn source_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_urls_are_accepted() {
        assert!(EgressClient::parse_url("https://example.com/mcp").is_ok());
        assert!(EgressClient::parse_url("http://127.0.0.1:3001/mcp").is_ok());
        for bad in [
            "file:///etc/passwd",
            "gopher://x/",
            "ftp://host/",
            "javascript:alert(1)",
        ] {
            assert!(
                EgressClient::parse_url(bad).is_err(),
                "{bad} must be refused"
            );
        }
        assert!(matches!(
            EgressClient::parse_url("not a url"),
            Err(EgressError::InvalidUrl { .. })
        ));
    }

    #[tokio::test]
    async fn every_refusal_reaches_the_observer() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<guard::Refusal>::new()));
        let log = seen.clone();
        let policy = guard::EgressPolicy::default();
        let guard = guard::EgressGuard::new(policy, guard::GuardLimits::default());
        let client = EgressClient::guarded(&EgressConfig::default(), guard)
            .unwrap()
            .with_refusal_observer(RefusalObserver::new(move |r| {
                log.lock().unwrap().push(r.clone())
            }));
        let url = EgressClient::parse_url("http://127.0.0.1:9/secret?token=x").unwrap();
        let err = client
            .send(EgressRequest::new(Method::GET, url.clone()))
            .await
            .unwrap_err();
        assert!(matches!(err, EgressError::Refused(_)), "{err}");
        let err = client
            .send_following(EgressRequest::new(Method::GET, url))
            .await
            .unwrap_err();
        assert!(matches!(err, EgressError::Refused(_)), "{err}");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[0].rule.code(), "blocked_address");
        assert_eq!(seen[0].url, "http://127.0.0.1:9/secret");
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await;
            sock.write_all(
                b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\nContent-Length: 0\r\n\r\n",
            )
            .await
            .unwrap();
        });
        let client = EgressClient::new(&EgressConfig::default()).unwrap();
        let url = EgressClient::parse_url(&format!("http://{addr}/")).unwrap();
        let resp = client
            .send(EgressRequest::new(Method::GET, url))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FOUND);
    }

    #[tokio::test]
    async fn oversized_bodies_are_refused_while_reading() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await;
            // No Content-Length: the limit must hold while streaming.
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                .await;
            let chunk = vec![b'x'; 4096];
            for _ in 0..64 {
                if sock.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        });
        let client = EgressClient::new(&EgressConfig::default()).unwrap();
        let url = EgressClient::parse_url(&format!("http://{addr}/")).unwrap();
        let resp = client
            .send(EgressRequest::new(Method::GET, url))
            .await
            .unwrap();
        let err = resp.bytes_limited(10_000).await.unwrap_err();
        assert!(
            matches!(err, EgressError::BodyTooLarge { limit: 10_000, .. }),
            "{err}"
        );
    }
}
