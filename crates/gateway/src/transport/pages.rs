//! The gateway's pages for people: per-user OAuth (`/oauth/…`, when a server uses it) and the
//! approvals page (`/approvals`, with `[approvals]`). `serve` merges them into its router;
//! `portcullis stdio` has no HTTP front door and serves them alone on loopback
//! ([`serve_alone`]), so that a person can connect a server or approve a call there too.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::gateway::Gateway;

/// Every page router the config calls for, merged; `None` when there is none.
pub fn router(gateway: &Gateway) -> Option<axum::Router> {
    [
        crate::oauth::pages::router(gateway),
        crate::consent::approvals::router(gateway),
    ]
    .into_iter()
    .flatten()
    .reduce(axum::Router::merge)
}

/// Tells the pages where they are served, e.g. `http://127.0.0.1:8440` (the first value
/// stays, so `gateway.public_url`, given when the gateway was built, wins).
pub fn set_base(gateway: &Gateway, base: &str) {
    if let Some(ua) = &gateway.user_auth {
        ua.set_base(base.to_owned());
    }
    gateway.approvals.set_base(base);
}

/// `portcullis stdio`: the pages alone on `gateway.listen`, loopback only. A second gateway
/// on the same port (another host's stdio server) logs why it cannot; its users are told
/// the pages are unavailable.
pub async fn serve_alone(gateway: Arc<Gateway>) {
    let Some(app) = router(&gateway) else {
        return;
    };
    let listen = gateway.config.gateway.listen;
    if !listen.ip().is_loopback() {
        tracing::warn!(%listen, "the gateway's pages (per-user OAuth, approvals) are served on loopback only in stdio mode; set gateway.listen to a loopback address");
        gateway.approvals.unserved();
        return;
    }
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(%listen, error = %e, "cannot serve the gateway's pages: servers that need a user's authorization cannot be connected, and no call waits for approval here");
            gateway.approvals.unserved();
            return;
        }
    };
    if let Ok(addr) = listener.local_addr() {
        set_base(&gateway, &format!("http://{addr}"));
        tracing::info!("the gateway's pages are at http://{addr}/");
    }
    // Plain http on loopback, whatever `gateway.tls` says (that is `serve`'s listener): the
    // pages compare a form's `Origin` with the scheme the request came in on.
    let mut front = gateway.config.gateway.clone();
    front.tls = None;
    let app = crate::transport::http::forwarded::layer(app, &front)
        .into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, app).await {
        tracing::warn!(error = %e, "the gateway's pages stopped");
    }
}
