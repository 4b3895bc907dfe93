//! POST of a 2026-07-28 (stateless) client: no session, every request stands alone.
//!
//! The request is checked in three steps, in this order (the order of the specification's
//! reference implementation, so a client sees the same error wherever it goes): the `_meta`
//! envelope (-32602), the standard headers against the body (-32020), the version (-32022),
//! all with HTTP 400. Policy is always decided on the body: the headers are only checked to
//! agree with it, so nothing downstream can route on one value while the server acts on
//! another.
//!
//! Each request gets a fresh session object over the route's shared upstream connections,
//! so two stateless clients using the same request id never meet.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_wire::{Envelope, ErrorObject, Id, Kind, ProtocolVersion, codes};

use super::auth::Caller;
use super::streams::HttpOutbound;
use super::{SharedState, VERSION_HEADER, rpc_error};
use crate::mcp;
use crate::route::Route;
use crate::session::{Session, SessionParams, TransportKind};
use crate::transport::era;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Cancels a stateless request upstream when dropped before the request completed (for
/// 2026-07-28, the client closing its stream is the cancellation). Harmless afterwards.
pub struct CancelOnDrop {
    session: Arc<Session>,
    id: Id,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let session = self.session.clone();
        let id = self.id.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                session
                    .cancel_inflight(&id, "the client closed the stream")
                    .await
            });
        }
    }
}

pub(super) async fn handle(
    st: &SharedState,
    route: Arc<Route>,
    headers: &HeaderMap,
    caller: Caller,
    msg: Envelope,
) -> Response {
    let declared = match era::check_envelope(&msg) {
        Ok(v) => v,
        Err(e) => return rpc_error(StatusCode::BAD_REQUEST, msg.id.clone(), &e),
    };
    if let Err(e) = check_standard_headers(headers, &msg, declared.as_deref()) {
        return rpc_error(StatusCode::BAD_REQUEST, msg.id.clone(), &e);
    }
    let version = declared.as_deref().or(header(headers, VERSION_HEADER));
    if let Err(e) = era::check_version(version) {
        return rpc_error(StatusCode::BAD_REQUEST, msg.id.clone(), &e);
    }
    match msg.kind() {
        Kind::Request => {}
        // Accepted and dropped: a stateless notification (such as a cancellation by id) is
        // not bound to anything, and honouring it would let one caller cancel another's work.
        Kind::Notification => return StatusCode::ACCEPTED.into_response(),
        Kind::Response | Kind::ErrorResponse => {
            let err = ErrorObject::new(
                codes::INVALID_REQUEST,
                "clients of protocol 2026-07-28 do not send responses",
            );
            return rpc_error(StatusCode::BAD_REQUEST, None, &err);
        }
    }
    let outbound = Arc::new(HttpOutbound::default());
    let session = Session::new(SessionParams {
        id: Arc::from("stateless"),
        gateway: st.gateway.clone(),
        route,
        principal: (*caller.principal).clone(),
        transport: TransportKind::Http,
        modern: true,
        shared_upstreams: true,
        outbound: outbound.clone(),
        client_caps: Default::default(),
    });
    session.set_version(ProtocolVersion::V2026_07_28);
    if msg.method() == Some(mcp::TOOLS_CALL)
        && let Err(e) = check_param_headers(&session, headers, &msg).await
    {
        return rpc_error(StatusCode::BAD_REQUEST, msg.id.clone(), &e);
    }
    let guard = msg.id.clone().map(|id| CancelOnDrop {
        session: session.clone(),
        id,
    });
    super::post::respond(session, outbound, msg, guard, caller).await
}

/// Step 2: `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` must mirror the body.
fn check_standard_headers(
    headers: &HeaderMap,
    msg: &Envelope,
    declared: Option<&str>,
) -> Result<(), ErrorObject> {
    let mismatch = |what: String| ErrorObject::new(codes::HEADER_MISMATCH, what);
    match (declared, header(headers, VERSION_HEADER)) {
        (_, None) => {
            return Err(mismatch(
                "the MCP-Protocol-Version header is required".into(),
            ));
        }
        (Some(body), Some(h)) if body != h.trim() => {
            return Err(mismatch(format!(
                "MCP-Protocol-Version header {h:?} does not match the _meta protocol version {body:?}"
            )));
        }
        _ => {}
    }
    if msg.kind() != Kind::Request {
        return Ok(());
    }
    if headers.get_all("mcp-method").iter().count() > 1
        || headers.get_all("mcp-name").iter().count() > 1
    {
        return Err(mismatch("a standard header appears more than once".into()));
    }
    let method = msg.method().unwrap_or_default();
    match header(headers, "mcp-method").map(str::trim) {
        Some(h) if h == method => {}
        Some(h) => {
            return Err(mismatch(format!(
                "Mcp-Method header {h:?} does not match the body's method {method:?}"
            )));
        }
        None => return Err(mismatch("the Mcp-Method header is required".into())),
    }
    let key = match method {
        mcp::TOOLS_CALL | mcp::PROMPTS_GET => "name",
        mcp::RESOURCES_READ => "uri",
        _ => return Ok(()),
    };
    let body_value = msg
        .params
        .as_deref()
        .and_then(|p| crate::json::RawObject::parse(p).ok())
        .and_then(|o| o.get_str(key));
    let header_value =
        header(headers, "mcp-name").map(|h| crate::standard_headers::decode_value(h).ok_or(h));
    match (header_value, body_value) {
        (Some(Ok(h)), Some(b)) if h == b => Ok(()),
        (Some(Err(raw)), _) => Err(mismatch(format!(
            "Mcp-Name header {raw:?} carries a malformed base64 value"
        ))),
        (None, _) => Err(mismatch(
            "the Mcp-Name header is required for this method".into(),
        )),
        (Some(Ok(h)), Some(b)) => Err(mismatch(format!(
            "Mcp-Name header {h:?} does not match params.{key} {b:?}"
        ))),
        (Some(Ok(h)), None) => Err(mismatch(format!(
            "Mcp-Name header {h:?} given, but params.{key} is missing"
        ))),
    }
}

/// The `Mcp-Param-*` headers of a `tools/call` must agree with the arguments the tool's
/// schema marks with `x-mcp-header` (the schema comes from the upstream's own list).
async fn check_param_headers(
    session: &Session,
    headers: &HeaderMap,
    msg: &Envelope,
) -> Result<(), ErrorObject> {
    #[derive(serde::Deserialize)]
    struct Call {
        name: String,
        arguments: Option<serde_json::Value>,
    }
    let Ok(Some(call)) = msg.params_as::<Call>() else {
        return Ok(());
    };
    let Some(resolved) = session.route().resolve_name(&call.name) else {
        return Ok(());
    };
    let Ok(conn) = session.conn(resolved.server).await else {
        return Ok(());
    };
    let Ok(listing) =
        crate::upstream::catalog::listing(&conn, crate::upstream::catalog::ListKind::Tools).await
    else {
        return Ok(());
    };
    let Some(tool) = listing.get(resolved.name) else {
        return Ok(());
    };
    let Ok(tool) = serde_json::from_str::<serde_json::Value>(tool.get()) else {
        return Ok(());
    };
    let schema = tool.get("inputSchema").cloned().unwrap_or_default();
    crate::standard_headers::check_params(&schema, call.arguments.as_ref(), |name| {
        header(headers, name)
    })
}
