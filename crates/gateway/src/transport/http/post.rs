//! POST: one client message in.
//!
//! The transport answers a request with one JSON message when the answer is all there is,
//! and switches to an SSE stream as soon as anything else must be said first (progress,
//! logging, a sampling request): the response mode is decided by the first message the
//! request produces, so simple calls cost no streaming and long ones lose nothing.
//!
//! Statuses: 403 Host/Origin, 404 unknown route or session (or another caller's session),
//! 401/400/503 from the token check (see [`super::auth`]), 400 missing session id, bad
//! protocol version header or malformed message, 406 Accept, 413 size, 415 Content-Type,
//! 202 for notifications and responses, 503 when a session cap is reached, 403
//! `insufficient_scope` and 429 when a request is refused whole for its scopes or its rate.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::to_bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_wire::{
    Envelope, ErrorObject, Frame, IngressError, Kind, Limits, ProtocolVersion, codes, parse_frame,
};
use tokio::sync::mpsc;

use super::auth::Caller;
use super::forwarded::ClientOrigin;
use super::registry::{Full, SessionEntry};
use super::streams::{HttpOutbound, StreamItem};
use super::{SESSION_HEADER, SharedState, VERSION_HEADER, checks, json, plain, rpc_error, sse};
use crate::ids;
use crate::route::Route;
use crate::session::{Handled, Session, SessionParams, TransportKind, as_caller};
use crate::transport::era::{self, ClientEra};

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub async fn handle(
    State(st): State<SharedState>,
    Path(route): Path<String>,
    request: axum::extract::Request,
) -> Response {
    // Taken apart rather than extracted separately: the header map is borrowed, not copied.
    let (parts, body) = request.into_parts();
    let (route, caller) = match before_body(&st, &route, &parts).await {
        Ok(admitted) => admitted,
        Err(refused) => return after_unread_body(body, refused).await,
    };
    let headers = parts.headers;
    let max = st.gateway.config.gateway.max_message_bytes;
    let Ok(bytes) = to_bytes(body, max).await else {
        let err = IngressError::TooLarge {
            limit: max,
            actual: max + 1,
        };
        return rpc_error(StatusCode::PAYLOAD_TOO_LARGE, None, &err.to_error_object());
    };
    let header_version = header(&headers, VERSION_HEADER);
    if let Some(v) = header_version
        && header(&headers, SESSION_HEADER).is_some()
        && ProtocolVersion::parse(v).is_none()
    {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            None,
            &era::unsupported_version(v, false),
        );
    }
    let limits = Limits {
        max_frame_bytes: max,
        ..Limits::default()
    };
    let frame = match parse_frame(&bytes, &limits) {
        Ok(f) => f,
        Err(e) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                e.response_id(),
                &e.to_error_object(),
            );
        }
    };
    let msg = match frame {
        Frame::Single(msg) => msg,
        Frame::Batch(msgs) => return batch(&st, &route, &headers, &caller, msgs).await,
    };
    match era::classify(&msg, header_version) {
        ClientEra::Modern => super::stateless::handle(&st, route, &headers, caller, msg).await,
        ClientEra::Initialize if header(&headers, SESSION_HEADER).is_none() => {
            initialize(&st, route, caller, msg).await
        }
        ClientEra::Initialize | ClientEra::Legacy => {
            let Some(sid) = header(&headers, SESSION_HEADER) else {
                return rpc_error(
                    StatusCode::BAD_REQUEST,
                    msg.id.clone(),
                    &ErrorObject::new(
                        codes::INVALID_REQUEST,
                        "missing Mcp-Session-Id header: initialize a session first",
                    ),
                );
            };
            let Some(entry) = st.sessions.get(sid, &route.name, &caller.principal) else {
                return rpc_error(
                    StatusCode::NOT_FOUND,
                    msg.id.clone(),
                    &ErrorObject::new(codes::INVALID_REQUEST, "session not found"),
                );
            };
            dispatch(entry, caller, msg).await
        }
    }
}

async fn initialize(
    st: &SharedState,
    route: Arc<Route>,
    caller: Caller,
    msg: Envelope,
) -> Response {
    // The place is taken before the upstreams start, so concurrent initializes cannot
    // overshoot the cap; it is given back if the session does not come up.
    let place = match st
        .sessions
        .reserve(&caller.principal, st.sessions_per_caller())
    {
        Ok(place) => place,
        Err(full) => {
            let why = match full {
                Full::Gateway => "the gateway has reached its session limit; try again later",
                Full::Owner => {
                    "this caller holds as many sessions as it may (auth.max_sessions_per_principal); end one (DELETE) or let one expire"
                }
            };
            let err = ErrorObject::new(codes::INTERNAL_ERROR, why);
            return rpc_error(StatusCode::SERVICE_UNAVAILABLE, msg.id.clone(), &err);
        }
    };
    let outbound = Arc::new(HttpOutbound::default());
    let params = SessionParams {
        id: Arc::from(ids::session_id()),
        gateway: st.gateway.clone(),
        route,
        principal: (*caller.principal).clone(),
        transport: TransportKind::Http,
        modern: false,
        shared_upstreams: false,
        outbound: outbound.clone(),
        client_caps: Default::default(),
    };
    match Session::initialize(params, &msg).await {
        Ok(outcome) => {
            let sid = outcome.session.id.clone();
            place.insert(SessionEntry {
                session: outcome.session,
                outbound,
            });
            let mut resp = json(StatusCode::OK, &outcome.response);
            if let Ok(v) = HeaderValue::from_str(&sid) {
                resp.headers_mut().insert(SESSION_HEADER, v);
            }
            resp
        }
        Err(response) => json(StatusCode::OK, &response),
    }
}

/// A message of a live stateful session.
async fn dispatch(entry: SessionEntry, caller: Caller, msg: Envelope) -> Response {
    match msg.kind() {
        Kind::Request => respond(entry.session, entry.outbound, msg, None, caller).await,
        _ => match as_caller(
            Some(caller.principal),
            caller.token,
            entry.session.handle(msg),
        )
        .await
        {
            Handled::Rejected(err) => rpc_error(StatusCode::BAD_REQUEST, None, &err),
            _ => StatusCode::ACCEPTED.into_response(),
        },
    }
}

/// Runs a request and answers with JSON, or with SSE once something precedes the answer.
///
/// `on_disconnect` is dropped when the client goes away (or the answer is complete): the
/// stateless protocol uses it to cancel the request upstream, since for 2026-07-28 a closed
/// stream *is* the cancellation (for the stateful era it is not, so it passes None).
pub(super) async fn respond(
    session: Arc<Session>,
    outbound: Arc<HttpOutbound>,
    msg: Envelope,
    on_disconnect: Option<super::stateless::CancelOnDrop>,
    caller: Caller,
) -> Response {
    let Some(id) = msg.id.clone() else {
        return plain(StatusCode::BAD_REQUEST, "request without id");
    };
    let modern = session.modern;
    let (tx, mut rx) = mpsc::unbounded_channel();
    if !outbound.open_request(&id, tx) {
        let err = ErrorObject::new(
            codes::INVALID_REQUEST,
            format!("request id {id} is already in use in this session"),
        );
        return rpc_error(StatusCode::BAD_REQUEST, Some(id), &err);
    }
    let claim = Claim {
        outbound: outbound.clone(),
        id,
    };
    // The request runs in this connection's task while nothing but its answer is to be sent
    // (one task hop fewer per call); it moves to a task of its own when it becomes a stream,
    // since a stream must outlive its connection (resumption).
    let (principal, token) = (Some(caller.principal), caller.token);
    let mut work: Pin<Box<dyn Future<Output = Handled> + Send>> = Box::pin(async move {
        let handled = as_caller(principal, token, session.handle(msg)).await;
        // Released before the answer goes out: nothing related can slip in after it.
        drop(claim);
        handled
    });
    let first = tokio::select! {
        biased;
        Some(StreamItem::Message(m)) = rx.recv() => Err(m),
        handled = &mut work => Ok(handled),
    };
    match first {
        Ok(handled) => {
            // Messages sent just before the answer are still queued: they go first.
            let mut early = Vec::new();
            while let Ok(StreamItem::Message(m)) = rx.try_recv() {
                early.push(m);
            }
            match handled {
                Handled::Response(response) if early.is_empty() => {
                    drop(on_disconnect);
                    if let Some(retry_after) = rate_limited(&response) {
                        return too_many_requests(&response, retry_after);
                    }
                    if let (Some(missing), Some(step_up)) =
                        (missing_scopes(&response), &caller.step_up)
                    {
                        return step_up.forbidden(&missing, json(StatusCode::FORBIDDEN, &response));
                    }
                    let status = if modern {
                        stateless_status(&response)
                    } else {
                        StatusCode::OK
                    };
                    json(status, &response)
                }
                Handled::Response(response) => {
                    let stream = outbound.new_stream();
                    for m in early.iter().chain(std::iter::once(&response)) {
                        stream.push(m);
                    }
                    stream.finish();
                    sse(stream.attach(None))
                }
                // Cancelled by the client: the stream ends without an answer.
                _ => {
                    let (_tx, body) = mpsc::channel(1);
                    sse(body)
                }
            }
        }
        Err(first) => {
            let stream = outbound.new_stream();
            stream.push(&first);
            let body = stream.attach(None);
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        biased;
                        Some(StreamItem::Message(m)) = rx.recv() => stream.push(&m),
                        handled = &mut work => {
                            while let Ok(StreamItem::Message(m)) = rx.try_recv() {
                                stream.push(&m);
                            }
                            if let Handled::Response(r) = handled {
                                stream.push(&r);
                            }
                            break;
                        }
                    }
                }
                stream.finish();
            });
            super::sse_guarded(body, on_disconnect)
        }
    }
}

/// A client request id claimed on its session's streams; released when dropped, also when
/// the request is abandoned halfway (its connection went away).
struct Claim {
    outbound: Arc<HttpOutbound>,
    id: portcullis_wire::Id,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.outbound.close_request(&self.id);
    }
}

/// A JSON-RPC batch: only sessions of protocol 2025-03-26 or earlier accept one.
async fn batch(
    st: &SharedState,
    route: &Route,
    headers: &HeaderMap,
    caller: &Caller,
    msgs: Vec<Envelope>,
) -> Response {
    let entry = header(headers, SESSION_HEADER)
        .and_then(|sid| st.sessions.get(sid, &route.name, &caller.principal));
    let Some(entry) = entry.filter(|e| e.session.version().is_some_and(|v| v.allows_batch()))
    else {
        let err = IngressError::BatchNotAllowed;
        return rpc_error(StatusCode::BAD_REQUEST, None, &err.to_error_object());
    };
    // Each request of the batch claims its id, as a single request does, so a duplicate id
    // cannot run twice and the messages about each request reach this response.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut running = 0usize;
    let mut refused = Vec::new();
    for msg in msgs {
        if msg.kind() != Kind::Request {
            let handled = as_caller(
                Some(caller.principal.clone()),
                caller.token.clone(),
                entry.session.handle(msg),
            );
            if let Handled::Rejected(err) = handled.await {
                refused.push(Envelope::error_response(None, &err));
            }
            continue;
        }
        let Some(id) = msg.id.clone() else { continue };
        if !entry.outbound.open_request(&id, tx.clone()) {
            let err = ErrorObject::new(
                codes::INVALID_REQUEST,
                format!("request id {id} is already in use in this session"),
            );
            refused.push(Envelope::error_response(Some(id), &err));
            continue;
        }
        running += 1;
        let (session, out, tx) = (entry.session.clone(), entry.outbound.clone(), tx.clone());
        let (principal, token) = (Some(caller.principal.clone()), caller.token.clone());
        tokio::spawn(async move {
            let handled = as_caller(principal, token, session.handle(msg)).await;
            out.close_request(&id);
            let _ = tx.send(StreamItem::Done(handled));
        });
    }
    drop(tx);
    if running == 0 && refused.is_empty() {
        return StatusCode::ACCEPTED.into_response();
    }
    // Answers go back as events of one stream, one per message, as they come.
    let stream = entry.outbound.new_stream();
    for r in &refused {
        stream.push(r);
    }
    let body = stream.attach(None);
    tokio::spawn(async move {
        while running > 0 {
            match rx.recv().await {
                Some(StreamItem::Message(m)) => stream.push(&m),
                Some(StreamItem::Done(done)) => {
                    running -= 1;
                    if let Handled::Response(r) = done {
                        stream.push(&r);
                    }
                }
                None => break,
            }
        }
        stream.finish();
    });
    sse(body)
}

/// When the answer refuses the request for its rate limit: how many seconds to wait.
fn rate_limited(response: &Envelope) -> Option<u64> {
    let err = response.error_object()?;
    if err.code != codes::RATE_LIMITED {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Data {
        #[serde(rename = "retryAfterMs")]
        retry_after_ms: u64,
    }
    let ms = err
        .data
        .as_deref()
        .and_then(|d| serde_json::from_str::<Data>(d.get()).ok())
        .map_or(1000, |d| d.retry_after_ms);
    Some(ms.div_ceil(1000).max(1))
}

/// The checks made before a request's body is read, in order: Host and Origin, the route,
/// the caller's token (an unauthenticated client cannot make the gateway buffer megabytes),
/// Content-Type, Accept.
async fn before_body(
    st: &SharedState,
    route: &str,
    parts: &axum::http::request::Parts,
) -> Result<(Arc<Route>, Caller), Response> {
    let headers = &parts.headers;
    if let Err((status, why)) = st.hosts.check(headers) {
        return Err(plain(status, why));
    }
    let Some(route) = st.gateway.route(route) else {
        return Err(plain(StatusCode::NOT_FOUND, "no such MCP endpoint"));
    };
    let origin = ClientOrigin::of(&parts.extensions);
    let caller = st
        .caller(&parts.uri, headers, origin, &route.name)
        .await
        .map_err(|refused| *refused)?;
    if !checks::is_json(headers) {
        return Err(plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        ));
    }
    if !checks::accepts(headers, "application/json")
        || !checks::accepts(headers, "text/event-stream")
    {
        return Err(plain(
            StatusCode::NOT_ACCEPTABLE,
            "Accept must include application/json and text/event-stream",
        ));
    }
    Ok((route, caller))
}

/// Most of a refused request's body read (and dropped) so that its connection can carry
/// the client's next request: a client that is told to authenticate retries at once, often
/// on the same connection.
const DRAIN_LIMIT: usize = 64 << 10;

/// `refusal`, after reading and dropping what is left of the request body (up to
/// [`DRAIN_LIMIT`]). A body left unread would make the server close the connection after
/// the answer, and a client that already sent its next request on it sees a connection
/// closed without an answer. A larger body is not read: the answer says `Connection: close`.
async fn after_unread_body(body: axum::body::Body, mut refusal: Response) -> Response {
    if to_bytes(body, DRAIN_LIMIT).await.is_err() {
        refusal.headers_mut().insert(
            axum::http::header::CONNECTION,
            HeaderValue::from_static("close"),
        );
    }
    refusal
}

/// When the answer refuses the request for scopes the token lacks: which.
fn missing_scopes(response: &Envelope) -> Option<Vec<String>> {
    let err = response.error_object()?;
    if err.code != codes::INSUFFICIENT_SCOPE {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Data {
        #[serde(rename = "missingScopes")]
        missing: Vec<String>,
    }
    err.data
        .as_deref()
        .and_then(|d| serde_json::from_str::<Data>(d.get()).ok())
        .map(|d| d.missing)
}

/// A request refused whole for its rate limit: `429` with `Retry-After`, and the JSON-RPC
/// error (which says the same) as the body, since clients read it at any status.
fn too_many_requests(response: &Envelope, retry_after: u64) -> Response {
    let mut resp = json(StatusCode::TOO_MANY_REQUESTS, response);
    resp.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        HeaderValue::from(retry_after),
    );
    resp
}

/// The HTTP status of a 2026-07-28 answer: the protocol gives some errors their own status
/// (an unknown method is 404; a request the client must change is 400).
fn stateless_status(response: &Envelope) -> StatusCode {
    match response.error_object().map(|e| e.code) {
        Some(codes::METHOD_NOT_FOUND) => StatusCode::NOT_FOUND,
        Some(
            codes::HEADER_MISMATCH
            | codes::MISSING_REQUIRED_CLIENT_CAPABILITY
            | codes::UNSUPPORTED_PROTOCOL_VERSION,
        ) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    }
}
