//! The approvals channel of consent: a call that a rule with `effect = "consent"` holds waits
//! in the gateway's [`ApprovalQueue`] until a person decides on the approvals page
//! (`/approvals`) or with `portcullis approvals approve|deny`, or its time runs out.
//!
//! - [`queue`]: the waiting calls (in memory, bounded, each gone at its deadline) and the
//!   delivery of one decision to one call;
//! - [`admin`]: who may decide — the holder of the admin token (`[approvals]`), as a bearer
//!   token (the CLI) or signed in on the page (a session cookie, CSRF tokens);
//! - [`page`]: the HTML pages: sign-in, the list of waiting calls, approve and deny;
//! - [`api`]: the JSON API `portcullis approvals` speaks (`/approvals/api/…`).
//!
//! What the caller sent is shown as [`crate::consent::render`] renders it for every channel
//! (cut with a visible marker, invisible characters as code points), HTML-escaped on the page.
//!
//! The pages and the API are served only when the config has `[approvals]`: by `serve` on its
//! listener, and by `stdio` alone on loopback `gateway.listen` (see
//! [`crate::transport::pages`]). Every answer is `no-store`; the pages carry
//! `frame-ancestors 'none'` and `X-Frame-Options: DENY`, and every form POST must come from
//! the gateway's own origin with the session's CSRF token.

pub mod admin;
pub mod api;
pub mod page;
pub mod queue;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::{get, post};

pub use admin::{AdminAuth, AdminAuthError};
pub use queue::{ApprovalQueue, DecideError, Decision};

use crate::consent::render;
use crate::transport::http::checks::HostPolicy;
use crate::transport::http::forwarded::ClientOrigin;

/// What an approval "always" from the page or the CLI asks for: the longest; the consent
/// engine keeps it no longer than the rule's `consent.always_ttl`.
pub const ALWAYS_FOR: Duration = Duration::from_secs(365 * 24 * 3600);
/// Forms and API bodies are a few hundred bytes; anything larger is not ours.
const MAX_BODY_BYTES: usize = 8 * 1024;
/// Longest deny reason kept (it goes to the caller and to the audit log).
const MAX_REASON_CHARS: usize = 200;

/// What the pages and the API share.
pub struct Desk {
    pub queue: Arc<ApprovalQueue>,
    pub admin: Arc<AdminAuth>,
    hosts: HostPolicy,
    public_url: Option<String>,
}

type SharedDesk = Arc<Desk>;

/// The approvals routes, when the gateway has `[approvals]`: merged into `serve`'s router, or
/// served alone on loopback by `portcullis stdio`.
pub fn router(gateway: &crate::gateway::Gateway) -> Option<axum::Router> {
    let desk = Arc::new(Desk {
        queue: gateway.approvals.clone(),
        admin: gateway.approvals_admin.clone()?,
        hosts: HostPolicy::from_config(&gateway.config.gateway),
        public_url: gateway.config.gateway.public_url.clone(),
    });
    Some(
        axum::Router::new()
            .route("/approvals", get(page::list))
            .route("/approvals/login", post(page::login))
            .route("/approvals/logout", post(page::logout))
            .route("/approvals/decide/{id}", post(page::decide))
            .route("/approvals/api/pending", get(api::pending))
            .route("/approvals/api/{id}", post(api::decide))
            .with_state(desk),
    )
}

impl Desk {
    /// The `Host` check of the MCP endpoints (DNS rebinding).
    fn host_checked(&self, headers: &HeaderMap) -> Result<(), Box<Response>> {
        crate::oauth::web::host_checked(&self.hosts, headers)
    }

    /// A form POST must say where it comes from, and that must be the gateway itself: the
    /// origin the browser addressed (its allowed `Host`, with the listener's or a trusted
    /// proxy's scheme), or `gateway.public_url`'s.
    fn same_origin(&self, headers: &HeaderMap, origin: Option<&ClientOrigin>) -> bool {
        let Some(sent) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
            return false;
        };
        let sent = sent.trim_end_matches('/');
        let addressed = origin.and_then(ClientOrigin::base_url);
        let public = self
            .public_url
            .as_deref()
            .and_then(crate::oauth::web::origin_of);
        [addressed, public]
            .into_iter()
            .flatten()
            .any(|own| own.eq_ignore_ascii_case(sent))
    }
}

/// Free text a person typed (a deny reason, an operator's name) as kept: hidden and control
/// characters dropped, at most `max` characters.
fn clean_text(text: &str, max: usize) -> String {
    text.chars()
        .filter(|c| !render::is_hidden(*c) && !c.is_control())
        .take(max)
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests;
