//! Upstream connectors: the gateway as an MCP *client* of each configured server.
//!
//! The gateway terminates the protocol on both sides. Towards an upstream it holds its own
//! connection ([`UpstreamConn`]): it mints its own request ids (so ids of different sessions
//! and upstreams never collide), runs its own handshake, and keeps its own upstream session.
//! Nothing the downstream client chose — ids, session id, credentials — is passed through.
//!
//! - [`conn`]: the transport-independent client: pending requests, timeouts, cancellation,
//!   routing of what the upstream sends on its own initiative.
//! - [`stdio`]: a child process speaking newline-delimited JSON-RPC.
//! - [`confine`]: a stdio server's sandbox, planned once from its config.
//! - [`proxy`]: a sandboxed server's network proxy, deciding with the gateway's `[egress]`.
//! - [`http`]: a Streamable HTTP server, reached through the egress client.
//! - [`handshake`]: `initialize` (stateful era) or `server/discover` (2026-07-28).
//! - [`pinning`]: the launch check against the pin `portcullis trust` stored.
//! - [`definitions`]: tool definitions and instructions pinned against rug pulls.
//! - [`slot`]: lazy start, and restart with backoff after a crash.

pub mod catalog;
pub mod confine;
pub mod conn;
pub mod definitions;
pub mod handshake;
pub mod http;
pub mod pinning;
pub mod proxy;
pub mod slot;
pub mod stdio;

use std::time::Duration;

use portcullis_wire::{ErrorObject, codes};
use serde_json::value::RawValue;

pub use catalog::Catalog;
pub use conn::{Origin, PendingCall, UpstreamConn, UpstreamListener};
pub use handshake::{ClientCapsForUpstream, ServerIdentity};
pub use slot::UpstreamSlot;

/// What an upstream answered to one request: its `result` or its `error`, as raw JSON.
#[derive(Debug)]
pub enum Reply {
    Result(Box<RawValue>),
    Error(Box<RawValue>),
}

/// Why a request to an upstream got no answer from it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream {server:?} did not answer within {}ms", timeout.as_millis())]
    Timeout { server: String, timeout: Duration },
    #[error("upstream {server:?} is unavailable: {reason}")]
    Unavailable { server: String, reason: String },
    /// The launch check refused to start a stdio server (see [`pinning`]).
    #[error("upstream {server:?} was not started: {reason}")]
    LaunchRefused { server: String, reason: String },
    #[error("upstream {server:?} closed while the request was pending: {reason}")]
    Closed { server: String, reason: String },
    #[error("upstream {server:?} broke the protocol: {reason}")]
    Protocol { server: String, reason: String },
    #[error("upstream {server:?} answered HTTP {status}")]
    HttpStatus { server: String, status: u16 },
    /// The server needs its user's authorization (per-user OAuth), or it failed.
    #[error("upstream {:?} needs authorization: {}", .0.server(), authorization_text(.0))]
    AuthorizationRequired(crate::oauth::AuthorizationNeeded),
    #[error("the request was cancelled")]
    Cancelled,
}

fn authorization_text(needed: &crate::oauth::AuthorizationNeeded) -> String {
    match needed {
        crate::oauth::AuthorizationNeeded::Connect { message, .. } => message.clone(),
        crate::oauth::AuthorizationNeeded::Failed { reason, .. } => reason.clone(),
    }
}

impl UpstreamError {
    /// The JSON-RPC error a client gets in place of the upstream's answer.
    pub fn to_error_object(&self) -> ErrorObject {
        if let UpstreamError::AuthorizationRequired(crate::oauth::AuthorizationNeeded::Connect {
            url,
            elicitation_id,
            message,
            ..
        }) = self
        {
            // MCP 2025-11-25 URLElicitationRequiredError: the client shows the URL to its
            // user (who opens it in a browser the client cannot look into), then retries.
            return ErrorObject::new(codes::URL_ELICITATION_REQUIRED, self.to_string()).with_data(
                serde_json::json!({ "elicitations": [{
                    "mode": "url",
                    "elicitationId": elicitation_id,
                    "url": url,
                    "message": message,
                }]}),
            );
        }
        let code = match self {
            UpstreamError::Timeout { .. } => codes::REQUEST_TIMEOUT,
            UpstreamError::Cancelled => codes::INTERNAL_ERROR,
            UpstreamError::Unavailable { .. }
            | UpstreamError::LaunchRefused { .. }
            | UpstreamError::Closed { .. }
            | UpstreamError::Protocol { .. }
            | UpstreamError::HttpStatus { .. }
            | UpstreamError::AuthorizationRequired(_) => codes::UPSTREAM_UNAVAILABLE,
        };
        ErrorObject::new(code, self.to_string())
    }
}
