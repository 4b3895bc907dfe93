//! `portcullis serve`: the Streamable HTTP front door.
//!
//! Every route is at `/mcp/<name>` and takes POST (client messages), GET (the server's
//! stream, or resumption) and DELETE (end the session), per the 2025-11-25 transport;
//! 2026-07-28 clients POST statelessly and get 405 for GET and DELETE.
//!
//! - [`checks`]: Host/Origin (DNS rebinding), Accept, Content-Type.
//! - [`auth`]: bearer tokens (`[auth]`): who is calling; protected resource metadata.
//! - [`post`]: one client message in, a JSON or SSE answer out.
//! - [`get`]: the standalone stream, resumption, session end.
//! - [`stateless`]: 2026-07-28 requests: envelope and header checks, no session.
//! - [`streams`]: where each server→client message goes, and replay for resumption.
//! - [`registry`]: the live sessions, their cap and their idle timeout.
//! - [`tls`]: TLS termination (`gateway.tls`), certificates reloaded when their files change.
//! - [`forwarded`]: the client's address, scheme and host, through trusted proxies
//!   (`gateway.behind_proxy`).

pub mod auth;
pub mod checks;
pub mod forwarded;
mod get;
mod post;
pub mod registry;
mod stateless;
pub mod streams;
pub mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get as get_route, post as post_route};
use bytes::Bytes;
use portcullis_wire::{Envelope, ErrorObject, Id};
use tokio::sync::mpsc;

use self::checks::HostPolicy;
use self::registry::Sessions;
use crate::gateway::Gateway;

pub const SESSION_HEADER: &str = "mcp-session-id";
pub const VERSION_HEADER: &str = "mcp-protocol-version";

/// Shared state of the HTTP front door.
pub struct HttpState {
    pub gateway: Arc<Gateway>,
    pub hosts: HostPolicy,
    pub sessions: Sessions,
    /// The token check; `None` without `[auth]` (every caller is anonymous).
    pub auth: Option<auth::TokenGate>,
    /// The caller of every request without `[auth]`, made once.
    anonymous: Arc<portcullis_policy::Principal>,
}

impl HttpState {
    /// Who is calling `route`: the token's principal, or anonymous without `[auth]`; or
    /// the response refusing the request.
    pub async fn caller(
        &self,
        uri: &axum::http::Uri,
        headers: &axum::http::HeaderMap,
        origin: Option<&forwarded::ClientOrigin>,
        route: &str,
    ) -> Result<auth::Caller, Box<Response>> {
        match &self.auth {
            Some(gate) => gate.authenticate(uri, headers, origin, route).await,
            None => Ok(auth::Caller {
                principal: self.anonymous.clone(),
                token: None,
                step_up: None,
            }),
        }
    }

    /// The most sessions one caller may hold.
    pub fn sessions_per_caller(&self) -> usize {
        self.gateway
            .config
            .auth
            .as_ref()
            .map_or(usize::MAX, |a| a.max_sessions_per_principal)
    }
}

pub type SharedState = Arc<HttpState>;

/// The router, and its state (the caller runs the session reaper on it).
pub fn router(gateway: Arc<Gateway>, auth: Option<auth::TokenGate>) -> (Router, SharedState) {
    let cfg = &gateway.config.gateway;
    let state = Arc::new(HttpState {
        hosts: HostPolicy::from_config(cfg),
        sessions: Sessions::new(cfg.max_sessions),
        gateway: gateway.clone(),
        auth,
        anonymous: Arc::new(portcullis_policy::Principal::anonymous()),
    });
    let router = Router::new()
        .route(
            "/mcp/{route}",
            post_route(post::handle)
                .get(get::handle)
                .delete(get::delete),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp/{route}",
            get_route(auth::metadata_document),
        )
        .route(
            "/.well-known/oauth-protected-resource",
            get_route(auth::root_metadata_document),
        )
        .route("/healthz", get_route(|| async { "ok\n" }))
        // Bodies are read with the gateway's own limit, to answer 413 with a JSON-RPC error.
        .layer(DefaultBodyLimit::disable())
        .with_state(state.clone());
    // The pages for people (`/oauth/…`, `/approvals`), when the config calls for them.
    let router = match super::pages::router(&gateway) {
        Some(pages) => router.merge(pages),
        None => router,
    };
    (router, state)
}

/// Binds, prints where each route is, and serves until Ctrl-C or SIGTERM.
pub async fn serve(gateway: Arc<Gateway>) -> anyhow::Result<()> {
    let listen = gateway.config.gateway.listen;
    // Loaded before binding: a gateway that cannot serve its certificate does not start.
    let certificates = match &gateway.config.gateway.tls {
        Some(files) => Some(Arc::new(
            tls::CertificateStore::load(files.clone())
                .map_err(|e| anyhow::anyhow!("cannot start TLS: {e}"))?,
        )),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    let scheme = if certificates.is_some() {
        "https"
    } else {
        "http"
    };
    print_routes(&gateway, addr, scheme);
    if addr.ip().is_loopback() {
        // The pages' address, unless `gateway.public_url` already gave it. Beyond loopback
        // only `public_url` can say how browsers reach the gateway.
        super::pages::set_base(&gateway, &format!("{scheme}://{}", display_host(addr)));
    }
    let gate = auth::gate(&gateway).await?;
    let (router, state) = router(gateway.clone(), gate);
    let router = forwarded::layer(router, &gateway.config.gateway);
    // The TCP peer reaches `forwarded` as `ConnectInfo`.
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    let reaper = tokio::spawn(registry::reap_expired(
        state.clone(),
        gateway.config.gateway.session_idle_timeout,
        gateway.config.gateway.session_lifetime,
    ));
    // No Nagle: SSE answers are written event by event, and Nagle's algorithm would hold
    // each small write back until the client's delayed ACK (40 ms on Linux).
    match certificates {
        Some(store) => {
            // TLS listeners set TCP_NODELAY themselves; `tap_io` only gives the listener
            // axum's `ConnectInfo<SocketAddr>` support.
            let listener = tls::TlsListener::new(listener, store)?;
            let listener = axum::serve::ListenerExt::tap_io(listener, |_| {});
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown_signal())
                .await?;
        }
        None => {
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown_signal())
                .await?;
        }
    }
    reaper.abort();
    state.sessions.close_all().await;
    gateway.shutdown().await;
    Ok(())
}

fn display_host(addr: SocketAddr) -> String {
    if addr.ip().is_loopback() && addr.is_ipv4() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    }
}

fn print_routes(gateway: &Gateway, addr: SocketAddr, scheme: &str) {
    let host = display_host(addr);
    println!("Portcullis is listening on {scheme}://{host}");
    let mut names: Vec<&str> = gateway.route_names().collect();
    names.sort_unstable();
    for name in names {
        println!("  MCP endpoint: {scheme}://{host}/mcp/{name}");
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}

/// A plain-text error for transport-level refusals.
pub(crate) fn plain(status: StatusCode, msg: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{msg}\n"),
    )
        .into_response()
}

/// An HTTP error whose body is a JSON-RPC error (as the transport allows for refusals).
pub(crate) fn rpc_error(status: StatusCode, id: Option<Id>, err: &ErrorObject) -> Response {
    json(status, &Envelope::error_response(id, err))
}

pub(crate) fn json(status: StatusCode, msg: &Envelope) -> Response {
    let mut resp = Response::new(Body::from(msg.to_bytes()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// An SSE response fed by `rx`, with keep-alive comments while idle.
pub(crate) fn sse(rx: mpsc::Receiver<Bytes>) -> Response {
    sse_guarded(rx, None::<()>)
}

/// An SSE response that holds `guard` until the body ends or the client goes away.
pub(crate) fn sse_guarded<G: Send + 'static>(
    rx: mpsc::Receiver<Bytes>,
    guard: Option<G>,
) -> Response {
    let start = tokio::time::Instant::now() + streams::KEEPALIVE;
    let ticks = tokio::time::interval_at(start, streams::KEEPALIVE);
    let body = futures::stream::unfold(
        (rx, ticks, guard),
        |(mut rx, mut ticks, guard)| async move {
            tokio::select! {
                item = rx.recv() => item.map(|b| (Ok::<_, Infallible>(b), (rx, ticks, guard))),
                _ = ticks.tick() => Some((Ok(Bytes::from_static(b": keep-alive\n\n")), (rx, ticks, guard))),
            }
        },
    );
    let mut resp = Response::new(Body::from_stream(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}
