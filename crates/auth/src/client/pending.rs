//! Authorizations started and not yet finished, by `state`.
//!
//! The `state` is the only thing tying a callback to the request the gateway made, so each
//! one is random, works once (taken out of the store by the callback, whatever the outcome),
//! and expires (default ten minutes, as the security best practices suggest). The store is
//! in memory and bounded: a flood of started-and-abandoned authorizations cannot grow it
//! past [`DEFAULT_MAX_PENDING`]; expired entries are dropped before a new one is refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Uri;

use super::error::OAuthClientError;
use super::pkce::random_token;
use crate::resource::Clock;
use crate::secret::Secret;

/// How long a `state` is honoured, unless configured.
pub const DEFAULT_STATE_LIFETIME: Duration = Duration::from_secs(600);
/// Authorizations pending at once, unless configured.
pub const DEFAULT_MAX_PENDING: usize = 10_000;

/// What the callback needs to redeem the code: recorded with the `state` when the user is
/// sent to the authorization server (RFC 9207 asks for the issuer to be recorded with it).
#[derive(Debug, Clone)]
pub struct PendingAuthorization {
    pub issuer: String,
    /// Whether the issuer advertised `authorization_response_iss_parameter_supported`.
    pub iss_parameter_supported: bool,
    pub token_endpoint: Uri,
    pub client_id: String,
    pub redirect_uri: String,
    pub resource: String,
    pub scope: Option<String>,
    pub code_verifier: Secret,
    /// Who the authorization is for (the gateway's principal), opaque here.
    pub principal: String,
}

#[derive(Debug)]
struct Entry {
    created: Duration,
    pending: PendingAuthorization,
}

/// The pending authorizations, by state.
#[derive(Debug)]
pub struct PendingAuthorizations {
    entries: Mutex<HashMap<String, Entry>>,
    lifetime: Duration,
    max: usize,
    clock: Arc<dyn Clock>,
}

impl PendingAuthorizations {
    pub fn new(lifetime: Duration, max: usize, clock: Arc<dyn Clock>) -> Self {
        PendingAuthorizations {
            entries: Mutex::new(HashMap::new()),
            lifetime,
            max,
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `pending` under a new random state, which is returned.
    pub fn insert(&self, pending: PendingAuthorization) -> Result<String, OAuthClientError> {
        let now = self.clock.monotonic();
        let mut entries = self.lock();
        if entries.len() >= self.max {
            entries.retain(|_, e| now < e.created + self.lifetime);
            if entries.len() >= self.max {
                return Err(OAuthClientError::TooManyPending { limit: self.max });
            }
        }
        let state = random_token().expose().to_owned();
        entries.insert(
            state.clone(),
            Entry {
                created: now,
                pending,
            },
        );
        Ok(state)
    }

    /// Takes the authorization of `state` out of the store: a second call with the same
    /// state finds nothing. An expired one is removed too, and refused.
    pub fn take(&self, state: &str) -> Result<PendingAuthorization, OAuthClientError> {
        let entry = self
            .lock()
            .remove(state)
            .ok_or(OAuthClientError::UnknownState)?;
        if self.clock.monotonic() >= entry.created + self.lifetime {
            return Err(OAuthClientError::ExpiredState);
        }
        Ok(entry.pending)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::resource::ManualClock;

    pub(crate) fn pending(issuer: &str, iss_supported: bool) -> PendingAuthorization {
        PendingAuthorization {
            issuer: issuer.to_owned(),
            iss_parameter_supported: iss_supported,
            token_endpoint: "https://as.example.com/token".parse().unwrap(),
            client_id: "gw".into(),
            redirect_uri: "https://gw.example.com/oauth/callback".into(),
            resource: "https://mcp.example.com/mcp".into(),
            scope: None,
            code_verifier: Secret::new("v".repeat(43)),
            principal: "alice".into(),
        }
    }

    fn store(max: usize) -> (Arc<ManualClock>, PendingAuthorizations) {
        let clock = Arc::new(ManualClock::new());
        let store = PendingAuthorizations::new(Duration::from_secs(600), max, clock.clone());
        (clock, store)
    }

    #[test]
    fn a_state_works_once() {
        let (_, s) = store(10);
        let state = s.insert(pending("https://as", false)).unwrap();
        assert!(state.len() >= 43);
        assert_eq!(s.take(&state).unwrap().principal, "alice");
        assert!(matches!(
            s.take(&state),
            Err(OAuthClientError::UnknownState)
        ));
        assert!(matches!(
            s.take("guessed"),
            Err(OAuthClientError::UnknownState)
        ));
    }

    #[test]
    fn an_expired_state_is_refused_and_removed() {
        let (clock, s) = store(10);
        let state = s.insert(pending("https://as", false)).unwrap();
        clock.advance(Duration::from_secs(600));
        assert!(matches!(
            s.take(&state),
            Err(OAuthClientError::ExpiredState)
        ));
        assert!(s.is_empty());
    }

    #[test]
    fn the_store_is_bounded_but_expired_entries_make_room() {
        let (clock, s) = store(2);
        let first = s.insert(pending("https://as", false)).unwrap();
        s.insert(pending("https://as", false)).unwrap();
        assert!(matches!(
            s.insert(pending("https://as", false)),
            Err(OAuthClientError::TooManyPending { limit: 2 })
        ));
        clock.advance(Duration::from_secs(601));
        s.insert(pending("https://as", false)).unwrap();
        assert_eq!(s.len(), 1);
        assert!(matches!(
            s.take(&first),
            Err(OAuthClientError::UnknownState)
        ));
    }

    #[test]
    fn states_are_unique() {
        let (_, s) = store(100);
        let a = s.insert(pending("https://as", false)).unwrap();
        let b = s.insert(pending("https://as", false)).unwrap();
        assert_ne!(a, b);
    }
}
