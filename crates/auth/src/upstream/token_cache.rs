//! A cached access token with single-flight refresh and failure backoff.
//!
//! One [`TokenSlot`] holds one token (the client-credentials token of a server, or the
//! exchanged token of one subject). Callers take the cached token while it is fresh. When
//! it is not, the first caller fetches and everyone else waits for that one fetch instead of
//! sending their own: an upstream with fifty calls in flight when the token expires costs
//! the authorization server one request, not fifty. A failed fetch is remembered for a short,
//! growing backoff, so a broken token endpoint is not hammered either; while the old token
//! has not expired yet, it keeps being used through such a failure.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use http::HeaderValue;
use tokio::time::Instant;

use super::CredentialError;
use super::token_endpoint::IssuedToken;

/// The lifetime assumed when the issuer does not say (`expires_in` is only RECOMMENDED).
/// Short, so a token that dies earlier is not used for long; an upstream's 401 can also
/// discard it (`UpstreamCredential::discard_cached`).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(300);
/// No token is cached longer than this, whatever the issuer says.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// The first wait after a failed fetch; it doubles on each further failure.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait after failed fetches.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// When to fetch a new token: at 80 % of its lifetime or 60 s before it expires, whichever
/// comes first. For lifetimes under two minutes the 60 s margin would leave little or nothing
/// of the token usable, so the margin never exceeds half the lifetime.
pub fn refresh_after(lifetime: Duration) -> Duration {
    let margin = (lifetime / 5)
        .max(Duration::from_secs(60))
        .min(lifetime / 2);
    lifetime - margin
}

struct CachedToken {
    authorization: HeaderValue,
    refresh_at: Instant,
    expires_at: Instant,
}

struct Failure {
    error: CredentialError,
    retry_at: Instant,
    backoff: Duration,
}

#[derive(Default)]
struct SlotState {
    token: Option<CachedToken>,
    failure: Option<Failure>,
}

/// One cached token; see the module documentation.
#[derive(Default)]
pub(crate) struct TokenSlot {
    state: Mutex<SlotState>,
    /// Held for the duration of a fetch: the single flight.
    fetching: tokio::sync::Mutex<()>,
}

impl TokenSlot {
    /// The cached token if fresh; otherwise the result of one `fetch`, shared with every
    /// caller that arrives meanwhile. `not_after` caps the token's life (the subject token's
    /// own expiry, for an exchanged token).
    pub(crate) async fn get<F, Fut>(
        &self,
        not_after: Option<SystemTime>,
        fetch: F,
    ) -> Result<HeaderValue, CredentialError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<IssuedToken, CredentialError>>,
    {
        if let Some(fresh) = self.fresh(Instant::now()) {
            return Ok(fresh);
        }
        let _flight = self.fetching.lock().await;
        let now = Instant::now();
        {
            let state = self.lock_state();
            if let Some(t) = state.token.as_ref().filter(|t| now < t.refresh_at) {
                return Ok(t.authorization.clone());
            }
            if let Some(f) = state.failure.as_ref().filter(|f| now < f.retry_at) {
                return match state.token.as_ref().filter(|t| now < t.expires_at) {
                    Some(still_valid) => Ok(still_valid.authorization.clone()),
                    None => Err(CredentialError::BackingOff {
                        retry_in: f.retry_at - now,
                        last: Box::new(f.error.clone()),
                    }),
                };
            }
        }
        let result = fetch().await;
        let now = Instant::now();
        let mut state = self.lock_state();
        match result {
            Ok(issued) => {
                let mut lifetime = issued
                    .expires_in
                    .unwrap_or(DEFAULT_TOKEN_LIFETIME)
                    .min(MAX_TOKEN_LIFETIME);
                if let Some(limit) = not_after {
                    let left = limit
                        .duration_since(SystemTime::now())
                        .unwrap_or(Duration::ZERO);
                    lifetime = lifetime.min(left);
                }
                let authorization = issued.authorization.clone();
                state.token = Some(CachedToken {
                    authorization: issued.authorization,
                    refresh_at: now + refresh_after(lifetime),
                    expires_at: now + lifetime,
                });
                state.failure = None;
                Ok(authorization)
            }
            Err(error) => {
                let backoff = state
                    .failure
                    .as_ref()
                    .map_or(INITIAL_BACKOFF, |f| (f.backoff * 2).min(MAX_BACKOFF));
                tracing::warn!(%error, retry_in = ?backoff, "upstream token fetch failed");
                state.failure = Some(Failure {
                    error: error.clone(),
                    retry_at: now + backoff,
                    backoff,
                });
                match state.token.as_ref().filter(|t| now < t.expires_at) {
                    Some(still_valid) => Ok(still_valid.authorization.clone()),
                    None => Err(error),
                }
            }
        }
    }

    /// Forgets the token (the upstream refused it), so the next call fetches a new one.
    /// A failure backoff in progress stays.
    pub(crate) fn discard(&self) {
        self.lock_state().token = None;
    }

    /// Whether this slot holds nothing worth keeping at `now`: no token that is still valid
    /// and no failure backoff still running.
    pub(crate) fn is_stale(&self, now: Instant) -> bool {
        let state = self.lock_state();
        state.token.as_ref().is_none_or(|t| t.expires_at <= now)
            && state.failure.as_ref().is_none_or(|f| f.retry_at <= now)
    }

    fn fresh(&self, now: Instant) -> Option<HeaderValue> {
        let state = self.lock_state();
        state
            .token
            .as_ref()
            .filter(|t| now < t.refresh_at)
            .map(|t| t.authorization.clone())
    }

    /// The state is only ever held for a few field reads and writes; a panic while holding
    /// it cannot leave it half-updated in a way that matters, so poisoning is ignored.
    fn lock_state(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn issued(token: &str, expires_in: Option<u64>) -> IssuedToken {
        IssuedToken {
            authorization: HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
            expires_in: expires_in.map(Duration::from_secs),
        }
    }

    fn unreachable() -> CredentialError {
        CredentialError::TokenEndpointUnreachable {
            url: "https://idp/token".into(),
            reason: "connection refused".into(),
        }
    }

    #[test]
    fn refresh_comes_at_80_percent_or_60_seconds_before_expiry() {
        let s = Duration::from_secs;
        assert_eq!(refresh_after(s(3600)), s(2880)); // 80 %
        assert_eq!(refresh_after(s(300)), s(240)); // both
        assert_eq!(refresh_after(s(200)), s(140)); // 60 s before
        assert_eq!(refresh_after(s(100)), s(50)); // capped at half
        assert_eq!(refresh_after(Duration::ZERO), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_is_reused_until_its_refresh_time() {
        let slot = TokenSlot::default();
        let hits = AtomicUsize::new(0);
        let fetch = || async {
            let n = hits.fetch_add(1, Ordering::SeqCst);
            Ok(issued(&format!("t{n}"), Some(300)))
        };
        assert_eq!(slot.get(None, fetch).await.unwrap(), "Bearer t0");
        tokio::time::advance(Duration::from_secs(239)).await;
        assert_eq!(slot.get(None, fetch).await.unwrap(), "Bearer t0");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(slot.get(None, fetch).await.unwrap(), "Bearer t1");
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_and_the_backoff_grows_to_a_bound() {
        let slot = TokenSlot::default();
        let hits = AtomicUsize::new(0);
        let failing = || async {
            hits.fetch_add(1, Ordering::SeqCst);
            Err(unreachable())
        };
        assert!(matches!(
            slot.get(None, failing).await,
            Err(CredentialError::TokenEndpointUnreachable { .. })
        ));
        // Within the backoff: refused at once, the endpoint is left alone.
        let err = slot.get(None, failing).await.unwrap_err();
        assert!(matches!(err, CredentialError::BackingOff { .. }), "{err}");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        let mut expected = INITIAL_BACKOFF;
        for _ in 0..8 {
            tokio::time::advance(expected).await;
            let _ = slot.get(None, failing).await;
            expected = (expected * 2).min(MAX_BACKOFF);
        }
        assert_eq!(hits.load(Ordering::SeqCst), 9);
        let state = slot.lock_state();
        assert_eq!(state.failure.as_ref().unwrap().backoff, MAX_BACKOFF);
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_clears_the_backoff() {
        let slot = TokenSlot::default();
        let _ = slot.get(None, || async { Err(unreachable()) }).await;
        tokio::time::advance(INITIAL_BACKOFF).await;
        let ok = slot.get(None, || async { Ok(issued("t", Some(60))) }).await;
        assert_eq!(ok.unwrap(), "Bearer t");
        assert!(slot.lock_state().failure.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_still_valid_token_survives_a_failed_refresh() {
        let slot = TokenSlot::default();
        let _ = slot
            .get(None, || async { Ok(issued("old", Some(300))) })
            .await;
        tokio::time::advance(Duration::from_secs(250)).await; // past refresh, before expiry
        let got = slot.get(None, || async { Err(unreachable()) }).await;
        assert_eq!(got.unwrap(), "Bearer old");
        tokio::time::advance(Duration::from_secs(51)).await; // expired now
        let got = slot.get(None, || async { Err(unreachable()) }).await;
        assert!(got.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn not_after_caps_the_cached_lifetime() {
        let slot = TokenSlot::default();
        let hits = AtomicUsize::new(0);
        let fetch = || async {
            hits.fetch_add(1, Ordering::SeqCst);
            Ok(issued("t", Some(3600)))
        };
        // An already expired cap: the token is handed to this caller and not reused.
        let past = SystemTime::now() - Duration::from_secs(10);
        slot.get(Some(past), fetch).await.unwrap();
        slot.get(Some(past), fetch).await.unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 2);
        assert!(slot.is_stale(Instant::now()));
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch() {
        let slot = Arc::new(TokenSlot::default());
        let hits = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let slot = slot.clone();
            let hits = hits.clone();
            tasks.spawn(async move {
                slot.get(None, || async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok(issued("shared", Some(300)))
                })
                .await
            });
        }
        while let Some(r) = tasks.join_next().await {
            assert_eq!(r.unwrap().unwrap(), "Bearer shared");
        }
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn discard_forces_a_new_fetch() {
        let slot = TokenSlot::default();
        let hits = AtomicUsize::new(0);
        let fetch = || async {
            hits.fetch_add(1, Ordering::SeqCst);
            Ok(issued("t", Some(300)))
        };
        slot.get(None, fetch).await.unwrap();
        slot.discard();
        slot.get(None, fetch).await.unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }
}
