//! A remote MCP server over Streamable HTTP, reached through the egress client.
//!
//! Each request is a POST whose answer is either one JSON message or an SSE stream that
//! carries the server's messages about that request and ends with the response. A stream
//! that breaks before the response is resumed with `Last-Event-ID` (stateful era). The
//! server's standalone GET stream is opened only when a downstream session wants
//! unsolicited messages, so an idle session costs no connection and no task.
//!
//! The gateway holds its own upstream session: the `Mcp-Session-Id` here is the one the
//! upstream gave the gateway, never the one the gateway gave its client. No header of the
//! client's request is copied upstream: the only credential an upstream ever sees is its
//! own (`servers.<name>.credential`), added to each request here.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use futures::StreamExt;
use portcullis_auth::client::{BearerChallenge, parse_bearer_challenge};
use portcullis_auth::upstream::UpstreamCredential;
use portcullis_egress::guard::{Refusal, Rule};
use portcullis_egress::{
    EgressClient, EgressError, EgressRequest, EgressResponse, HeaderMap, HeaderName, HeaderValue,
    Method, StatusCode, Uri,
};
use portcullis_wire::{Limits, SseDecoder, parse_message};
use tokio_util::sync::CancellationToken;

use super::UpstreamError;
use super::conn::{ConnParams, Driver, Routing, Transport, UpstreamConn};
use super::slot::HttpTarget;
use crate::oauth::{AuthorizationNeeded, User, UserAuthorization};
use crate::on_behalf::{OnBehalf, on_behalf};

const ACCEPT_BOTH: &str = "application/json, text/event-stream";
/// Attempts to resume a broken response stream before the request fails.
const MAX_RESUMES: u32 = 3;

pub struct HttpIo {
    client: EgressClient,
    server: Arc<str>,
    credential: Option<Arc<UpstreamCredential>>,
    /// Per-user OAuth: the grants, and whose this connection presents.
    user: Option<(Arc<UserAuthorization>, User)>,
    /// Whom the connection's requests are made for (its session's principal), for the
    /// audit of an egress refusal.
    on_behalf: OnBehalf,
    url: Uri,
    session_id: RwLock<Option<HeaderValue>>,
    protocol_version: RwLock<Option<HeaderValue>>,
    /// The 2026-07-28 protocol: `Mcp-Method`/`Mcp-Name` headers on every POST.
    standard_headers: AtomicBool,
    listening: AtomicBool,
    stop: CancellationToken,
}

pub(crate) fn connect(
    client: EgressClient,
    target: &HttpTarget,
    user: Option<User>,
    params: ConnParams,
) -> Arc<UpstreamConn> {
    let on_behalf = OnBehalf {
        server: params.server.clone(),
        principal: Arc::from(user.as_ref().map_or("gateway", |u| u.principal.as_str())),
    };
    let io = HttpIo {
        client,
        server: params.server.clone(),
        credential: target.credential.clone(),
        user: target.user_auth.clone().zip(user),
        on_behalf,
        url: target.url.clone(),
        session_id: RwLock::new(None),
        protocol_version: RwLock::new(None),
        standard_headers: AtomicBool::new(false),
        listening: AtomicBool::new(false),
        stop: CancellationToken::new(),
    };
    UpstreamConn::new(params, Transport::Http(io))
}

/// Why a request could not be exchanged with the upstream.
enum SendFailure {
    /// Transport, guard or credential failure, said for the caller.
    Failed(String),
    /// The user has to authorize the gateway at the server first (per-user OAuth).
    Authorization(AuthorizationNeeded),
}

impl SendFailure {
    fn into_error(self, server: &str) -> UpstreamError {
        match self {
            SendFailure::Failed(reason) => UpstreamError::Unavailable {
                server: server.to_owned(),
                reason,
            },
            SendFailure::Authorization(needed) => UpstreamError::AuthorizationRequired(needed),
        }
    }
}

impl HttpIo {
    /// Sends `req` with the connection's authorization. With per-user OAuth, a `401` starts
    /// discovery and is retried once when the user has a grant (or a refresh works), and
    /// otherwise asks the user to connect; a `403 insufficient_scope` asks for a step-up.
    async fn send(&self, req: EgressRequest) -> Result<EgressResponse, SendFailure> {
        on_behalf(self.on_behalf.clone(), self.send_authorized(req)).await
    }

    async fn send_authorized(&self, req: EgressRequest) -> Result<EgressResponse, SendFailure> {
        let Some((ua, user)) = &self.user else {
            return self.send_once(req, None).await.map_err(SendFailure::Failed);
        };
        let mut retried = false;
        loop {
            let token = ua.authorization(&self.server, user).await;
            let sent_token = token.is_some();
            let resp = self
                .send_once(req.clone(), token)
                .await
                .map_err(SendFailure::Failed)?;
            let challenge = parse_bearer_challenge(resp.headers());
            match resp.status() {
                StatusCode::UNAUTHORIZED => {
                    let outcome = ua
                        .unauthorized(&self.server, user, challenge.as_ref(), sent_token)
                        .await;
                    match outcome {
                        Ok(()) if !retried => retried = true,
                        Ok(()) => {
                            return Err(SendFailure::Failed(
                                "the server refused the user's token again after a refresh".into(),
                            ));
                        }
                        Err(needed) => return Err(SendFailure::Authorization(needed)),
                    }
                }
                StatusCode::FORBIDDEN
                    if challenge
                        .as_ref()
                        .is_some_and(BearerChallenge::is_insufficient_scope) =>
                {
                    let challenge = challenge.as_ref().expect("checked above");
                    return Err(SendFailure::Authorization(ua.insufficient_scope(
                        &self.server,
                        user,
                        challenge,
                    )));
                }
                _ => return Ok(resp),
            }
        }
    }

    /// One request: the gateway's own credential for this upstream, or the user's token. A
    /// credential that cannot be had (its token endpoint down) fails the request: it is
    /// never sent without.
    async fn send_once(
        &self,
        mut req: EgressRequest,
        user_token: Option<HeaderValue>,
    ) -> Result<EgressResponse, String> {
        if let Some(token) = user_token {
            req.headers.insert(http::header::AUTHORIZATION, token);
        }
        if let Some(credential) = &self.credential {
            let subject = crate::session::caller_token();
            let headers = credential
                .headers(subject.as_ref().map(|t| t.expose()))
                .await
                .map_err(|e| format!("the upstream's credential is unavailable: {e}"))?;
            for (name, value) in headers {
                req.headers.insert(name, value);
            }
        }
        self.client.send(req).await.map_err(|e| match e {
            EgressError::Refused(refusal) => refused(&refusal),
            other => other.to_string(),
        })
    }

    /// Called by the handshake once the protocol version is known.
    pub(crate) fn set_protocol_version(&self, version: &str, standard_headers: bool) {
        *self
            .protocol_version
            .write()
            .unwrap_or_else(|p| p.into_inner()) = HeaderValue::from_str(version).ok();
        self.standard_headers
            .store(standard_headers, Ordering::Relaxed);
    }

    /// Forgets the version (an `initialize` after a refused `server/discover` carries none).
    pub(crate) fn clear_protocol_version(&self) {
        *self
            .protocol_version
            .write()
            .unwrap_or_else(|p| p.into_inner()) = None;
        self.standard_headers.store(false, Ordering::Relaxed);
    }

    pub(crate) fn has_session(&self) -> bool {
        self.session_id
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    fn headers(&self, accept: &str, method: &str, routing: Option<&Routing>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "accept",
            HeaderValue::from_static(if accept == ACCEPT_BOTH {
                ACCEPT_BOTH
            } else {
                "text/event-stream"
            }),
        );
        if let Some(v) = self
            .session_id
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            h.insert("mcp-session-id", v);
        }
        if let Some(v) = self
            .protocol_version
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            h.insert("mcp-protocol-version", v);
        }
        if self.standard_headers.load(Ordering::Relaxed) && !method.is_empty() {
            if let Ok(v) = HeaderValue::from_str(method) {
                h.insert("mcp-method", v);
            }
            let routing = routing.map(|r| (r.name.as_deref(), r.params.as_slice()));
            let (name, params) = routing.unwrap_or((None, &[]));
            if let Some(v) = name
                .and_then(|n| HeaderValue::from_str(&crate::standard_headers::encode_value(n)).ok())
            {
                h.insert("mcp-name", v);
            }
            for (k, v) in params {
                if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.as_str()), HeaderValue::from_str(v))
                {
                    h.insert(k, v);
                }
            }
        }
        h
    }

    fn post(
        &self,
        body: Vec<u8>,
        method: &str,
        routing: Option<&Routing>,
        timeout: Duration,
    ) -> EgressRequest {
        let mut req = EgressRequest::new(Method::POST, self.url.clone());
        req.headers = self.headers(ACCEPT_BOTH, method, routing);
        req.headers
            .insert("content-type", HeaderValue::from_static("application/json"));
        req.body = body.into();
        req.timeout = Some(timeout);
        req
    }

    /// The exchange of one request: POST it, read what comes back, dispatch it (the answer
    /// reaches its waiter through [`UpstreamConn::dispatch`]). The waiter drives it.
    pub(crate) fn post_request(
        &self,
        conn: &Arc<UpstreamConn>,
        id: u64,
        body: Vec<u8>,
        method: &str,
        routing: &Routing,
    ) -> Driver {
        let req = self.post(body, method, Some(routing), conn.timeout());
        let is_initialize = method == crate::mcp::INITIALIZE;
        let conn = conn.clone();
        Box::pin(async move {
            let Transport::Http(io) = &conn.transport else {
                return;
            };
            let outcome = tokio::select! {
                r = io.send(req) => r,
                () = io.stop.cancelled() => return,
            };
            let resp = match outcome {
                Ok(resp) => resp,
                Err(failure) => {
                    conn.fail_pending(id, failure.into_error(conn.server()));
                    return;
                }
            };
            if is_initialize && let Some(sid) = resp.headers().get("mcp-session-id") {
                *io.session_id.write().unwrap_or_else(|p| p.into_inner()) = Some(sid.clone());
            }
            io.read_response(&conn, id, resp).await;
        })
    }

    async fn read_response(&self, conn: &Arc<UpstreamConn>, id: u64, resp: EgressResponse) {
        let status = resp.status();
        let max = conn.max_message_bytes();
        if status == StatusCode::NOT_FOUND && self.has_session() {
            conn.close("the upstream ended its session (HTTP 404)");
            return;
        }
        if status == StatusCode::OK && is_event_stream(resp.headers()) {
            let last = self.read_events(conn, Some(id), resp).await;
            self.resume(conn, id, last).await;
            return;
        }
        // JSON answer, or an HTTP error whose body may still be a JSON-RPC error for us.
        let body = match resp.bytes_limited(max).await {
            Ok(body) => body,
            Err(e) => {
                conn.fail_pending(id, protocol(conn, e.to_string()));
                return;
            }
        };
        match parse_message(
            &body,
            &Limits {
                max_frame_bytes: max,
                ..Limits::default()
            },
        ) {
            Ok(msg) if msg.id.is_some() => conn.dispatch(msg, Some(id)),
            _ if status.is_success() => conn.fail_pending(
                id,
                protocol(conn, format!("HTTP {status} without a JSON-RPC response")),
            ),
            _ => conn.fail_pending(
                id,
                UpstreamError::HttpStatus {
                    server: conn.server().to_owned(),
                    status: status.as_u16(),
                },
            ),
        }
    }

    /// Reads an SSE body, dispatching each message; returns the last event id seen.
    async fn read_events(
        &self,
        conn: &Arc<UpstreamConn>,
        stream_of: Option<u64>,
        resp: EgressResponse,
    ) -> Option<String> {
        let max = conn.max_message_bytes();
        let limits = Limits {
            max_frame_bytes: max,
            ..Limits::default()
        };
        let mut decoder = SseDecoder::new(max);
        let mut body = resp.into_stream();
        loop {
            let chunk = tokio::select! {
                c = body.next() => c,
                () = self.stop.cancelled() => return None,
            };
            let Some(Ok(chunk)) = chunk else { break };
            let events = match decoder.push(&chunk) {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(server = conn.server(), error = %e, "bad SSE stream from upstream; closed");
                    break;
                }
            };
            for event in events {
                if event.data.is_empty() {
                    continue;
                }
                match parse_message(event.data.as_bytes(), &limits) {
                    Ok(msg) => conn.dispatch(msg, stream_of),
                    Err(e) => {
                        tracing::warn!(server = conn.server(), error = %e, "upstream sent an invalid message on an SSE stream; skipped")
                    }
                }
            }
        }
        decoder.last_event_id().map(str::to_owned)
    }

    /// A response stream ended before its response: resume it with `Last-Event-ID`, or fail.
    async fn resume(&self, conn: &Arc<UpstreamConn>, id: u64, mut last: Option<String>) {
        let mut attempts = 0;
        while conn.is_pending(id) {
            let Some(last_id) = last
                .clone()
                .filter(|_| attempts < MAX_RESUMES && self.has_session())
            else {
                conn.fail_pending(
                    id,
                    UpstreamError::Closed {
                        server: conn.server().to_owned(),
                        reason: "the response stream ended before the response".into(),
                    },
                );
                return;
            };
            attempts += 1;
            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempts))).await;
            let mut req = EgressRequest::new(Method::GET, self.url.clone());
            req.headers = self.headers("text/event-stream", "", None);
            if let Ok(v) = HeaderValue::from_str(&last_id) {
                req.headers.insert("last-event-id", v);
            }
            req.timeout = Some(conn.timeout());
            match self.send(req).await {
                Ok(resp) if resp.status() == StatusCode::OK && is_event_stream(resp.headers()) => {
                    if let Some(newer) = self.read_events(conn, Some(id), resp).await {
                        last = Some(newer);
                    }
                }
                Ok(_) | Err(_) => {}
            }
        }
    }

    /// Sends a notification or a response; the upstream answers 202.
    pub(crate) async fn post_message(
        &self,
        conn: &Arc<UpstreamConn>,
        body: Vec<u8>,
        method: &str,
    ) -> Result<(), UpstreamError> {
        let req = self.post(body, method, None, conn.timeout());
        let resp = self
            .send(req)
            .await
            .map_err(|failure| failure.into_error(conn.server()))?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND && self.has_session() {
            conn.close("the upstream ended its session (HTTP 404)");
        }
        if status.is_success() {
            Ok(())
        } else {
            Err(protocol(
                conn,
                format!(
                    "HTTP {status} for a {} message",
                    if method.is_empty() {
                        "response"
                    } else {
                        method
                    }
                ),
            ))
        }
    }

    /// Opens the server's standalone GET stream (once), reconnecting while the connection
    /// lives. A server without one (405) is fine: it just never speaks first.
    pub(crate) fn ensure_listening(&self, conn: &Arc<UpstreamConn>) {
        if !self.has_session() || self.listening.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(conn);
        tokio::spawn(listen(weak));
    }

    pub(crate) fn shutdown(&self) {
        self.stop.cancel();
        let Some(sid) = self
            .session_id
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut req = EgressRequest::new(Method::DELETE, self.url.clone());
        req.headers.insert("mcp-session-id", sid);
        if let Some(v) = self
            .protocol_version
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            req.headers.insert("mcp-protocol-version", v);
        }
        req.timeout = Some(Duration::from_secs(2));
        let client = self.client.clone();
        let credential = self.credential.clone();
        let user = self.user.clone();
        let server = self.server.clone();
        rt.spawn(async move {
            // Best effort: without its credential (a token exchange has no client token
            // here) the upstream ends the session on its own timeout instead.
            if let Some(c) = credential {
                match c.headers(None).await {
                    Ok(headers) => req.headers.extend(headers),
                    Err(_) => return,
                }
            }
            // A per-user server ends the session of the user who opened it.
            if let Some((ua, user)) = &user {
                match ua.authorization(&server, user).await {
                    Some(token) => {
                        req.headers.insert(http::header::AUTHORIZATION, token);
                    }
                    None => return,
                }
            }
            let _ = client.send(req).await;
        });
    }
}

async fn listen(conn: Weak<UpstreamConn>) {
    let mut last: Option<String> = None;
    let mut delay = Duration::from_millis(250);
    loop {
        let Some(c) = conn.upgrade() else { return };
        if c.is_closed() {
            return;
        }
        let Transport::Http(io) = &c.transport else {
            return;
        };
        let mut req = EgressRequest::new(Method::GET, io.url.clone());
        req.headers = io.headers("text/event-stream", "", None);
        if let Some(v) = last.as_deref().and_then(|l| HeaderValue::from_str(l).ok()) {
            req.headers.insert("last-event-id", v);
        }
        let outcome = tokio::select! {
            r = io.send(req) => r,
            () = io.stop.cancelled() => return,
        };
        match outcome {
            Ok(resp) if resp.status() == StatusCode::OK && is_event_stream(resp.headers()) => {
                delay = Duration::from_millis(250);
                if let Some(newer) = io.read_events(&c, None, resp).await {
                    last = Some(newer);
                }
            }
            Ok(resp) if resp.status() == StatusCode::METHOD_NOT_ALLOWED => return,
            Ok(resp) if resp.status() == StatusCode::NOT_FOUND => {
                c.close("the upstream ended its session (HTTP 404)");
                return;
            }
            Ok(_) | Err(_) => delay = (delay * 2).min(Duration::from_secs(30)),
        }
        let stop = io.stop.clone();
        drop(c);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.cancelled() => return,
        }
    }
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("text/event-stream")
        })
}

/// What the caller learns of a refusal: the URL and the rule, not the address a name
/// resolved to (that is for the audit record and the log, not for whoever sent the call).
pub(crate) fn refused(refusal: &Refusal) -> String {
    let rule = match &refusal.rule {
        Rule::PeerMismatch { .. } => "the connected peer is not the checked address".to_owned(),
        other => other.to_string(),
    };
    format!(
        "the egress guard refused {} ({}): {rule}",
        refusal.url,
        refusal.rule.code()
    )
}

fn protocol(conn: &UpstreamConn, reason: String) -> UpstreamError {
    UpstreamError::Protocol {
        server: conn.server().to_owned(),
        reason,
    }
}
