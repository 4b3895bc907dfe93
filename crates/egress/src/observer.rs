//! The hook through which a guarded client reports its refusals.

use crate::guard;

/// Told about every refusal of a guarded client, whichever caller's request it was: the one
/// place the gateway logs and audits refusals, so no code path can forget to. It runs on the
/// request's task and must not block.
#[derive(Clone)]
pub struct RefusalObserver(std::sync::Arc<dyn Fn(&guard::Refusal) + Send + Sync>);

impl RefusalObserver {
    pub fn new(f: impl Fn(&guard::Refusal) + Send + Sync + 'static) -> Self {
        RefusalObserver(std::sync::Arc::new(f))
    }

    pub(crate) fn notify(&self, refusal: &guard::Refusal) {
        (self.0)(refusal)
    }
}

impl std::fmt::Debug for RefusalObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefusalObserver")
    }
}
