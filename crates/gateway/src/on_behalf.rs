//! Whom an outbound request is made for, so that an egress refusal is audited with the
//! server and the principal it concerns, not only "the gateway".
//!
//! The egress client is shared and knows nothing of sessions; its refusal observer runs
//! inside the request's task, so a task-local set around the request carries the context.

use std::future::Future;
use std::sync::Arc;

/// The server a request is for, and the principal it acts for (`gateway` for its own needs).
#[derive(Debug, Clone)]
pub struct OnBehalf {
    pub server: Arc<str>,
    pub principal: Arc<str>,
}

tokio::task_local! {
    static ON_BEHALF: OnBehalf;
}

/// Runs `work` (outbound requests) on behalf of `who`.
pub async fn on_behalf<F: Future>(who: OnBehalf, work: F) -> F::Output {
    ON_BEHALF.scope(who, work).await
}

/// The context of the request being made, if one was set.
pub fn current() -> Option<OnBehalf> {
    ON_BEHALF.try_with(Clone::clone).ok()
}
