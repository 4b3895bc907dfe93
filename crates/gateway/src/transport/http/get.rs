//! GET (the server's stream, and resumption) and DELETE (end a session).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_wire::ProtocolVersion;

use super::streams::parse_event_id;
use super::{SESSION_HEADER, SharedState, VERSION_HEADER, checks, plain, sse};

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// 2026-07-28 has neither a GET stream nor client-ended sessions.
fn is_modern(headers: &HeaderMap) -> bool {
    header(headers, VERSION_HEADER)
        .and_then(ProtocolVersion::parse)
        .is_some_and(|v| !v.has_sessions())
}

pub async fn handle(
    State(st): State<SharedState>,
    Path(route): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err((status, why)) = st.hosts.check(&headers) {
        return plain(status, why);
    }
    if st.gateway.route(&route).is_none() {
        return plain(StatusCode::NOT_FOUND, "no such MCP endpoint");
    }
    if is_modern(&headers) {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "protocol 2026-07-28 has no GET stream",
        );
    }
    if !checks::accepts(&headers, "text/event-stream") {
        return plain(
            StatusCode::NOT_ACCEPTABLE,
            "Accept must include text/event-stream",
        );
    }
    let Some(sid) = header(&headers, SESSION_HEADER) else {
        return plain(StatusCode::BAD_REQUEST, "missing Mcp-Session-Id header");
    };
    let Some(entry) = st.sessions.get(sid, &route) else {
        return plain(StatusCode::NOT_FOUND, "session not found");
    };
    entry.session.touch();

    if let Some(last) = header(&headers, "last-event-id") {
        // Resumption replays the one stream the id names, and only within this session.
        let Some((token, seq)) = parse_event_id(last) else {
            return plain(StatusCode::BAD_REQUEST, "malformed Last-Event-ID");
        };
        let Some(stream) = entry.outbound.find_stream(token) else {
            return plain(
                StatusCode::BAD_REQUEST,
                "unknown Last-Event-ID for this session",
            );
        };
        return sse(stream.attach(Some(seq)));
    }

    let Some(stream) = entry.outbound.open_standalone() else {
        return plain(
            StatusCode::CONFLICT,
            "this session already has a connected GET stream",
        );
    };
    // The client listens now: have the upstreams open theirs, so their unsolicited
    // messages (list changes, resource updates) reach it.
    entry.session.listen_upstreams();
    sse(stream.attach(None))
}

pub async fn delete(
    State(st): State<SharedState>,
    Path(route): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err((status, why)) = st.hosts.check(&headers) {
        return plain(status, why);
    }
    if st.gateway.route(&route).is_none() {
        return plain(StatusCode::NOT_FOUND, "no such MCP endpoint");
    }
    if is_modern(&headers) {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "protocol 2026-07-28 has no sessions to end",
        );
    }
    let Some(sid) = header(&headers, SESSION_HEADER) else {
        return plain(StatusCode::BAD_REQUEST, "missing Mcp-Session-Id header");
    };
    if st.sessions.get(sid, &route).is_none() {
        return plain(StatusCode::NOT_FOUND, "session not found");
    }
    if let Some(entry) = st.sessions.remove(sid) {
        entry.session.close().await;
    }
    StatusCode::OK.into_response()
}
