//! GET (the server's stream, and resumption) and DELETE (end a session).

use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use portcullis_wire::ProtocolVersion;

use super::forwarded::ClientOrigin;
use super::registry::SessionEntry;
use super::streams::parse_event_id;
use super::{SESSION_HEADER, SharedState, VERSION_HEADER, checks, plain, sse};

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The checks GET and DELETE share, in order: Host and Origin (403), the route (404), the
/// caller's token (401/400/503), the protocol era (2026-07-28 has neither a GET stream nor
/// sessions: 405), the `Accept` header when one is required (406), the session id (400 when
/// missing, 404 when unknown or another caller's: resumption and the server's stream are
/// only for the session's owner).
async fn session_of(
    st: &SharedState,
    route: &str,
    uri: &Uri,
    origin: Option<&ClientOrigin>,
    headers: &HeaderMap,
    accept: Option<&str>,
) -> Result<SessionEntry, Box<Response>> {
    let refuse = |status, why: &str| Box::new(plain(status, why));
    st.hosts
        .check(headers)
        .map_err(|(status, why)| refuse(status, why))?;
    if st.gateway.route(route).is_none() {
        return Err(refuse(StatusCode::NOT_FOUND, "no such MCP endpoint"));
    }
    let caller = st.caller(uri, headers, origin, route).await?;
    if is_modern(headers) {
        return Err(refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "protocol 2026-07-28 has no GET stream and no sessions",
        ));
    }
    if let Some(media) = accept
        && !checks::accepts(headers, media)
    {
        return Err(refuse(
            StatusCode::NOT_ACCEPTABLE,
            &format!("Accept must include {media}"),
        ));
    }
    let sid = header(headers, SESSION_HEADER)
        .ok_or_else(|| refuse(StatusCode::BAD_REQUEST, "missing Mcp-Session-Id header"))?;
    st.sessions
        .get(sid, route, &caller.principal)
        .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "session not found"))
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
    uri: Uri,
    origin: Option<Extension<ClientOrigin>>,
    headers: HeaderMap,
) -> Response {
    let origin = origin.as_deref();
    let entry = match session_of(
        &st,
        &route,
        &uri,
        origin,
        &headers,
        Some("text/event-stream"),
    )
    .await
    {
        Ok(entry) => entry,
        Err(refused) => return *refused,
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
    uri: Uri,
    origin: Option<Extension<ClientOrigin>>,
    headers: HeaderMap,
) -> Response {
    let entry = match session_of(&st, &route, &uri, origin.as_deref(), &headers, None).await {
        Ok(entry) => entry,
        Err(refused) => return *refused,
    };
    if let Some(entry) = st.sessions.remove(&entry.session.id) {
        entry.session.close().await;
    }
    StatusCode::OK.into_response()
}
