//! Who is making the request being handled.
//!
//! A session belongs to one identity (issuer, subject, client), fixed when it began; the
//! transport refuses a request on it from anyone else. But each request carries its own
//! token, and a later token of the same caller may carry other scopes (step-up
//! authorization: the client fetches a token with the scope a `403` asked for, and retries
//! on the same session). So decisions use the principal of the request's own token, which
//! the transport sets around the handling of each request with [`as_caller`]; without one
//! (stdio, unauthenticated HTTP) the session's principal is the caller.

use std::future::Future;
use std::sync::Arc;

use portcullis_auth::secret::Secret;
use portcullis_policy::Principal;

use super::Session;

tokio::task_local! {
    static CALLER: Arc<Principal>;
    static CALLER_TOKEN: Option<Arc<Secret>>;
}

/// Runs `work` (the handling of one request) on behalf of `caller`, who presented `token`.
/// The token is there only for an upstream credential that exchanges it (RFC 8693): it is
/// sent to that token endpoint, never to an upstream.
pub(crate) async fn as_caller<F: Future>(
    caller: Option<Arc<Principal>>,
    token: Option<Arc<Secret>>,
    work: F,
) -> F::Output {
    match caller {
        Some(p) => CALLER.scope(p, CALLER_TOKEN.scope(token, work)).await,
        None => work.await,
    }
}

/// The access token of the request being handled, if it came with one.
pub(crate) fn caller_token() -> Option<Arc<Secret>> {
    CALLER_TOKEN.try_with(Clone::clone).ok().flatten()
}

impl Session {
    /// The principal decisions are made for: the current request's, when the transport set
    /// one of the session's own identity, else the session's.
    pub(crate) fn caller(&self) -> Arc<Principal> {
        CALLER
            .try_with(|p| p.clone())
            .ok()
            .filter(|p| p.same_identity(&self.principal))
            .unwrap_or_else(|| self.principal.clone())
    }
}
