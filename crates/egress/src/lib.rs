//! The one outbound HTTP client of Portcullis.
//!
//! Every request the gateway makes to the outside world — upstream MCP servers today; JWKS,
//! authorization-server metadata and token endpoints later — leaves through [`EgressClient`].
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

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
pub use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
pub use reqwest::Url;

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
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Total time for the request up to the response headers. Streaming bodies (SSE) are not
    /// covered: their reader applies its own bound.
    pub timeout: Option<Duration>,
}

impl EgressRequest {
    pub fn new(method: Method, url: Url) -> Self {
        EgressRequest {
            method,
            url,
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
    inner: reqwest::Response,
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
        let host = self.host;
        if let Some(len) = self.inner.content_length()
            && len > limit as u64
        {
            return Err(EgressError::BodyTooLarge { host, limit });
        }
        let mut stream = self.inner.bytes_stream();
        let mut buf = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| classify(&host, e))?;
            if buf.len() + chunk.len() > limit {
                return Err(EgressError::BodyTooLarge { host, limit });
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(buf))
    }

    /// The body as a stream of chunks, for server-sent events. The caller bounds what it
    /// buffers (the SSE decoder has its own event size limit).
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, EgressError>> + Send + Unpin {
        let host = self.host;
        self.inner
            .bytes_stream()
            .map(move |r| r.map_err(|e| classify(&host, e)))
    }
}

/// The outbound HTTP client. Cheap to clone: clones share the connection pool.
#[derive(Debug, Clone)]
pub struct EgressClient {
    inner: reqwest::Client,
}

impl EgressClient {
    pub fn new(config: &EgressConfig) -> Result<Self, EgressError> {
        let inner = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| EgressError::Build(e.to_string()))?;
        Ok(EgressClient { inner })
    }

    /// Parses and checks a URL for outbound use.
    pub fn parse_url(url: &str) -> Result<Url, EgressError> {
        let parsed = Url::parse(url).map_err(|e| EgressError::InvalidUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        check_scheme(&parsed)?;
        if parsed.host_str().is_none() {
            return Err(EgressError::InvalidUrl {
                url: url.to_owned(),
                reason: "no host".into(),
            });
        }
        Ok(parsed)
    }

    /// Sends one request and returns the response head.
    pub async fn send(&self, req: EgressRequest) -> Result<EgressResponse, EgressError> {
        check_scheme(&req.url)?;
        let host = req.url.host_str().unwrap_or_default().to_owned();
        let mut builder = self
            .inner
            .request(req.method, req.url)
            .headers(req.headers)
            .body(req.body);
        if let Some(timeout) = req.timeout {
            builder = builder.timeout(timeout);
        }
        let inner = builder.send().await.map_err(|e| classify(&host, e))?;
        Ok(EgressResponse { host, inner })
    }
}

fn check_scheme(url: &Url) -> Result<(), EgressError> {
    match url.scheme() {
        "http" | "https" => Ok(()),
        other => Err(EgressError::SchemeNotAllowed {
            scheme: other.to_owned(),
        }),
    }
}

fn classify(host: &str, e: reqwest::Error) -> EgressError {
    let host = host.to_owned();
    if e.is_timeout() {
        EgressError::Timeout { host }
    } else if e.is_connect() {
        EgressError::Connect {
            host,
            reason: source_chain(&e),
        }
    } else {
        EgressError::Transport {
            host,
            reason: source_chain(&e),
        }
    }
}

/// reqwest's top-level message is generic ("error sending request"); the cause is below it.
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
