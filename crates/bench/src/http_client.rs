//! An MCP client for Streamable HTTP (2025-11-25): one session, keep-alive connections.
//!
//! A request's answer is either one JSON message or an SSE stream that ends with it; both are
//! read to the end, so the connection goes back to the pool. Throughput keeps `concurrency`
//! calls in flight on one session, from as many tasks, over a pool big enough for all of them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};

use crate::protocol::{self, Incoming, preview};
use crate::stats::Samples;

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

#[derive(Clone)]
pub struct HttpClient {
    name: Arc<str>,
    http: reqwest::Client,
    url: reqwest::Url,
    /// `Bearer <access token>`, sent with every request when set (marked sensitive).
    authorization: Option<HeaderValue>,
}

/// How an endpoint answered an `initialize` (for the checks that an endpoint refuses what
/// it must).
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: u16,
    /// Its `WWW-Authenticate` header, if any.
    pub challenge: Option<String>,
}

/// One MCP session on an HTTP endpoint.
pub struct HttpSession {
    client: HttpClient,
    session_id: HeaderValue,
    next_id: AtomicU64,
    /// Answers that came as an SSE stream, and as one JSON body.
    sse_answers: AtomicUsize,
    json_answers: AtomicUsize,
}

impl HttpClient {
    /// A client of the MCP endpoint `url`; `timeout` bounds each request, body included.
    pub fn new(name: &str, url: &str, pool: usize, timeout: Duration) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(url).with_context(|| format!("bad URL {url}"))?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(pool)
            .tcp_nodelay(true)
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .context("cannot build the HTTP client")?;
        Ok(HttpClient {
            name: Arc::from(name),
            http,
            url,
            authorization: None,
        })
    }

    /// The same client, sending `Authorization: Bearer <token>` with every request.
    pub fn with_bearer(mut self, token: &str) -> anyhow::Result<Self> {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .context("the access token is not a valid header value")?;
        value.set_sensitive(true);
        self.authorization = Some(value);
        Ok(self)
    }

    /// Sends `initialize` and reports how it was answered, without opening a session (the
    /// body is read and dropped).
    pub async fn try_initialize(&self) -> anyhow::Result<Refusal> {
        let resp = self.post(protocol::initialize(1), None).await?;
        let status = resp.status().as_u16();
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let _ = resp.bytes().await;
        Ok(Refusal { status, challenge })
    }

    /// `initialize` (the answer carries the session id), then `notifications/initialized`.
    pub async fn open_session(&self) -> anyhow::Result<HttpSession> {
        let resp = self.post(protocol::initialize(1), None).await?;
        let session_id = resp
            .headers()
            .get(SESSION_HEADER)
            .cloned()
            .with_context(|| {
                format!("{}: initialize answered without Mcp-Session-Id", self.name)
            })?;
        let (answer, _) = self.read_answer(resp, 1).await?;
        answer
            .check_success()
            .with_context(|| format!("{}: initialize", self.name))?;
        let resp = self
            .post(protocol::initialized(), Some(&session_id))
            .await?;
        let status = resp.status();
        let body = resp.bytes().await.unwrap_or_default();
        if !status.is_success() {
            bail!(
                "{}: notifications/initialized got HTTP {status}: {}",
                self.name,
                preview(&body)
            );
        }
        Ok(HttpSession {
            client: self.clone(),
            session_id,
            next_id: AtomicU64::new(2),
            sse_answers: AtomicUsize::new(0),
            json_answers: AtomicUsize::new(0),
        })
    }

    async fn post(
        &self,
        body: Vec<u8>,
        session: Option<&HeaderValue>,
    ) -> anyhow::Result<reqwest::Response> {
        let mut req = self
            .http
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream")
            .body(body);
        if let Some(auth) = &self.authorization {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        if let Some(sid) = session {
            req = req
                .header(SESSION_HEADER, sid.clone())
                .header(VERSION_HEADER, protocol::PROTOCOL_VERSION);
        }
        req.send()
            .await
            .with_context(|| format!("POST to {} ({})", self.url, self.name))
    }

    /// The response to `id` from a JSON or SSE answer; true if it came as SSE.
    async fn read_answer(
        &self,
        mut resp: reqwest::Response,
        id: u64,
    ) -> anyhow::Result<(Incoming, bool)> {
        let status = resp.status();
        let is_sse = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if status != reqwest::StatusCode::OK || !is_sse {
            let body = resp
                .bytes()
                .await
                .with_context(|| format!("reading the answer of {}", self.name))?;
            if status != reqwest::StatusCode::OK {
                bail!("{}: HTTP {status}: {}", self.name, preview(&body));
            }
            return Ok((Incoming::parse(&body)?, false));
        }
        // Read the whole stream (it ends after the response), keeping the response.
        let mut events = SseScanner::default();
        let mut found = None;
        while let Some(chunk) = resp
            .chunk()
            .await
            .with_context(|| format!("reading the event stream of {}", self.name))?
        {
            for data in events.push(&chunk) {
                let msg = Incoming::parse(&data)?;
                if msg.response_id() == Some(id) {
                    found = Some(msg);
                }
            }
        }
        let msg = found
            .with_context(|| format!("{}: event stream ended without the answer", self.name))?;
        Ok((msg, true))
    }
}

impl HttpSession {
    /// `tools/list`, as a client does before calling.
    pub async fn list_tools(&self) -> anyhow::Result<()> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let resp = self
            .client
            .post(protocol::list_tools(id), Some(&self.session_id))
            .await?;
        let (answer, _) = self.client.read_answer(resp, id).await?;
        answer
            .check_success()
            .with_context(|| format!("{}: tools/list", self.client.name))
    }

    /// One `echo` call; its duration.
    pub async fn call(&self) -> anyhow::Result<Duration> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let resp = self
            .client
            .post(protocol::echo_call(id), Some(&self.session_id))
            .await?;
        let (answer, sse) = self.client.read_answer(resp, id).await?;
        answer
            .check_success()
            .with_context(|| format!("{}: call {id}", self.client.name))?;
        let took = start.elapsed();
        let counter = if sse {
            &self.sse_answers
        } else {
            &self.json_answers
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(took)
    }

    /// `calls` sequential calls.
    pub async fn sequential(&self, calls: usize) -> anyhow::Result<Samples> {
        let start = Instant::now();
        let mut samples = Vec::with_capacity(calls);
        for _ in 0..calls {
            samples.push(self.call().await?);
        }
        Ok(Samples {
            times: samples,
            elapsed: start.elapsed(),
        })
    }

    /// `calls` calls from `concurrency` tasks, each calling again as soon as it is answered.
    pub async fn concurrent(
        self: &Arc<Self>,
        calls: usize,
        concurrency: usize,
    ) -> anyhow::Result<Samples> {
        let remaining = Arc::new(AtomicUsize::new(calls));
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let session = self.clone();
            let remaining = remaining.clone();
            tasks.spawn(async move {
                let mut samples = Vec::new();
                while take_one(&remaining) {
                    samples.push(session.call().await?);
                }
                Ok::<_, anyhow::Error>(samples)
            });
        }
        let mut samples = Vec::with_capacity(calls);
        while let Some(joined) = tasks.join_next().await {
            samples.extend(joined.context("a load task panicked")??);
        }
        Ok(Samples {
            times: samples,
            elapsed: start.elapsed(),
        })
    }

    /// How many calls were answered with an SSE stream.
    pub fn sse_answers(&self) -> usize {
        self.sse_answers.load(Ordering::Relaxed)
    }

    /// How many calls were answered with one JSON body.
    pub fn json_answers(&self) -> usize {
        self.json_answers.load(Ordering::Relaxed)
    }
}

fn take_one(remaining: &AtomicUsize) -> bool {
    remaining
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

/// Splits an SSE body into the `data` of its events (chunks may end anywhere).
#[derive(Default)]
struct SseScanner {
    buf: Vec<u8>,
}

impl SseScanner {
    fn push(&mut self, chunk: &[u8]) -> Vec<Vec<u8>> {
        self.buf
            .extend(chunk.iter().copied().filter(|&b| b != b'\r'));
        let mut out = Vec::new();
        while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = self.buf.drain(..end + 2).collect();
            let mut data = Vec::new();
            for line in event.split(|&b| b == b'\n') {
                if let Some(rest) = line.strip_prefix(b"data:") {
                    if !data.is_empty() {
                        data.push(b'\n');
                    }
                    data.extend_from_slice(rest.strip_prefix(b" ").unwrap_or(rest));
                }
            }
            if !data.is_empty() {
                out.push(data);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_are_split_across_chunks() {
        let mut s = SseScanner::default();
        assert!(
            s.push(b"id: 1\ndata:\nretry: 3000\n\nevent: message\nda")
                .is_empty()
        );
        let events = s.push(b"ta: {\"id\":2}\r\n\r\n: keep-alive\n\n");
        assert_eq!(events, vec![b"{\"id\":2}".to_vec()]);
    }

    #[test]
    fn the_call_budget_is_shared_exactly() {
        let remaining = AtomicUsize::new(2);
        assert!(take_one(&remaining));
        assert!(take_one(&remaining));
        assert!(!take_one(&remaining));
    }
}
