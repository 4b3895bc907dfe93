//! The signing keys of one issuer, fetched from its `jwks_uri` and cached.
//!
//! The cache has to serve two masters: key rotation must work without a restart (a token
//! signed with a new key triggers a refetch), and a flood of tokens with random `kid`s must
//! not turn the gateway into a weapon against the identity provider. Hence:
//! - keys are refreshed after the response's `Cache-Control: max-age`, clamped to
//!   [`KeyCacheConfig::refresh_floor`, `KeyCacheConfig::refresh_ceiling`];
//! - an unknown `kid` triggers an immediate refetch, but no fetch of any kind starts within
//!   [`KeyCacheConfig::min_refetch_interval`] of the previous one, and concurrent misses wait
//!   for one shared fetch (single flight);
//! - when a fetch fails, the last good keys stay in use until
//!   [`KeyCacheConfig::max_key_age`] after they were fetched; after that validation fails
//!   closed with [`TokenError::KeysUnavailable`].
//!
//! The `kid` of a token is only ever compared with the `kid`s of the fetched set: it never
//! becomes part of a URL or a path.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::Uri;
use http::header::CACHE_CONTROL;
use jsonwebtoken::Algorithm;
use portcullis_egress::EgressClient;

use super::clock::Clock;
use super::discovery::{DiscoveryError, LazyMetadata};
use super::error::TokenError;
use super::fetch::{self, Bounds, FetchError, InvalidEndpoint};
use super::jwk::{self, JwkSetError, VerificationKey};

/// Timings and bounds of a key cache.
#[derive(Debug, Clone)]
pub struct KeyCacheConfig {
    /// Shortest time keys are used before a refresh (default 5 min), whatever `max-age` says;
    /// also the refresh time when the response has no `max-age`.
    pub refresh_floor: Duration,
    /// Longest time keys are used before a refresh (default 24 h).
    pub refresh_ceiling: Duration,
    /// No fetch starts sooner than this after the previous attempt (default 10 s): bounds the
    /// load an unknown-`kid` flood or a failing endpoint puts on the identity provider.
    pub min_refetch_interval: Duration,
    /// Keys older than this (since their fetch) are not used any more when refreshing fails
    /// (default 24 h).
    pub max_key_age: Duration,
    /// One fetch, head and body (default 10 s).
    pub fetch_timeout: Duration,
    /// Largest JWKS document (default 64 KiB).
    pub max_body_bytes: usize,
    /// Most keys in one set (default 100); a larger set is refused as a whole.
    pub max_keys: usize,
}

impl Default for KeyCacheConfig {
    fn default() -> Self {
        KeyCacheConfig {
            refresh_floor: Duration::from_secs(5 * 60),
            refresh_ceiling: Duration::from_secs(24 * 3600),
            min_refetch_interval: Duration::from_secs(10),
            max_key_age: Duration::from_secs(24 * 3600),
            fetch_timeout: Duration::from_secs(10),
            max_body_bytes: 64 * 1024,
            max_keys: 100,
        }
    }
}

/// Where the JWKS URL comes from.
#[derive(Debug)]
pub enum JwksSource {
    /// Configured.
    Uri(Uri),
    /// The `jwks_uri` of the issuer's discovered metadata.
    Discovered(Arc<LazyMetadata>),
}

/// Why a JWKS fetch failed (logged; validation sees [`TokenError::KeysUnavailable`] or keeps
/// using older keys).
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("discovery failed: {0}")]
    Discovery(#[from] DiscoveryError),
    #[error("the issuer's metadata has no jwks_uri")]
    NoJwksUri,
    #[error(transparent)]
    InvalidUri(#[from] InvalidEndpoint),
    #[error("fetching the JWKS failed: {0}")]
    Fetch(#[from] FetchError),
    #[error("the JWKS was refused: {0}")]
    Set(#[from] JwkSetError),
}

#[derive(Default)]
struct CacheState {
    /// The last good set; `None` before the first successful fetch.
    keys: Option<Arc<Vec<VerificationKey>>>,
    fetched_at: Duration,
    refresh_at: Duration,
    last_attempt: Option<Duration>,
    /// Bumped by every completed attempt: a waiter that sees it moved knows a fetch happened
    /// while it waited and does not start another.
    generation: u64,
}

/// The keys of one issuer. Share it (it is internally synchronized).
pub struct KeyCache {
    source: JwksSource,
    egress: EgressClient,
    config: KeyCacheConfig,
    clock: Arc<dyn Clock>,
    state: RwLock<CacheState>,
    fetch_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

enum Found {
    Key(VerificationKey),
    /// The `kid` is known but its key does not fit the token's `alg`.
    WrongAlgorithm,
    Missing,
}

impl KeyCache {
    pub fn new(
        source: JwksSource,
        egress: EgressClient,
        config: KeyCacheConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        KeyCache {
            source,
            egress,
            config,
            clock,
            state: RwLock::new(CacheState::default()),
            fetch_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The key to verify a token with header `kid` and `alg`. Without a `kid`, the set must
    /// hold exactly one key usable with `alg`. Refetches (within the rate limit) when the keys
    /// are due for refresh or the `kid` is unknown.
    pub async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<VerificationKey, TokenError> {
        let mut fetched = false;
        loop {
            let now = self.clock.monotonic();
            let (found, fresh, usable, may_fetch, generation) = {
                let s = self.read();
                let usable = s.keys.is_some() && now < s.fetched_at + self.config.max_key_age;
                let found = match &s.keys {
                    Some(keys) if usable => find(keys, kid, alg),
                    _ => Found::Missing,
                };
                let may_fetch = s
                    .last_attempt
                    .is_none_or(|t| now >= t + self.config.min_refetch_interval);
                (
                    found,
                    usable && now < s.refresh_at,
                    usable,
                    may_fetch,
                    s.generation,
                )
            };
            match found {
                Found::WrongAlgorithm => return Err(TokenError::AlgorithmNotAllowed),
                Found::Key(key) if fresh => return Ok(key),
                _ => {}
            }
            if may_fetch && !fetched {
                fetched = true;
                self.fetch_shared(generation).await;
                continue;
            }
            return match found {
                // Due for refresh, but the refresh failed or is rate-limited: still in max age.
                Found::Key(key) => Ok(key),
                _ if !usable => Err(TokenError::KeysUnavailable),
                _ => Err(TokenError::UnknownKey),
            };
        }
    }

    /// Fetches now, outside the rate limit (for warming the cache at startup). Returns the
    /// number of usable keys.
    pub async fn refresh(&self) -> Result<usize, JwksError> {
        let _guard = self.fetch_lock.lock().await;
        match self.fetch().await {
            Ok((keys, max_age)) => {
                let count = keys.len();
                self.record(Some((keys, max_age)));
                Ok(count)
            }
            Err(e) => {
                self.record(None);
                Err(e)
            }
        }
    }

    /// Runs one fetch unless another completed since `seen_generation` was read.
    async fn fetch_shared(&self, seen_generation: u64) {
        let _guard = self.fetch_lock.lock().await;
        if self.read().generation != seen_generation {
            return;
        }
        match self.fetch().await {
            Ok(fetched) => self.record(Some(fetched)),
            Err(e) => {
                tracing::warn!(
                    source = ?self.source,
                    error = %e,
                    "JWKS fetch failed; the last good keys stay in use until their max age"
                );
                self.record(None);
            }
        }
    }

    fn record(&self, outcome: Option<(Vec<VerificationKey>, Option<Duration>)>) {
        let now = self.clock.monotonic();
        let mut s = self.state.write().unwrap_or_else(|p| p.into_inner());
        s.last_attempt = Some(now);
        s.generation += 1;
        if let Some((keys, max_age)) = outcome {
            let lifetime = max_age
                .unwrap_or(self.config.refresh_floor)
                .clamp(self.config.refresh_floor, self.config.refresh_ceiling);
            s.keys = Some(Arc::new(keys));
            s.fetched_at = now;
            s.refresh_at = now + lifetime;
        }
    }

    async fn fetch(&self) -> Result<(Vec<VerificationKey>, Option<Duration>), JwksError> {
        let uri = match &self.source {
            JwksSource::Uri(uri) => uri.clone(),
            JwksSource::Discovered(metadata) => {
                let found = metadata.get().await?;
                fetch::endpoint(found.jwks_uri.as_deref().ok_or(JwksError::NoJwksUri)?)?
            }
        };
        let bounds = Bounds {
            timeout: self.config.fetch_timeout,
            max_body_bytes: self.config.max_body_bytes,
        };
        let (headers, document) = fetch::get_json(&self.egress, &uri, &bounds).await?;
        let keys = jwk::parse_jwk_set(&document, self.config.max_keys)?;
        let max_age = headers
            .get_all(CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(max_age);
        tracing::debug!(%uri, keys = keys.len(), "fetched JWKS");
        Ok((keys, max_age))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, CacheState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }
}

fn find(keys: &[VerificationKey], kid: Option<&str>, alg: Algorithm) -> Found {
    match kid {
        Some(kid) => {
            let mut named = keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .peekable();
            if named.peek().is_none() {
                return Found::Missing;
            }
            named
                .find(|k| k.accepts(alg))
                .map_or(Found::WrongAlgorithm, |k| Found::Key(k.clone()))
        }
        None => {
            let mut usable = keys.iter().filter(|k| k.accepts(alg));
            match (usable.next(), usable.next()) {
                (Some(k), None) => Found::Key(k.clone()),
                _ => Found::Missing,
            }
        }
    }
}

/// The lifetime a `Cache-Control` value grants: `max-age=N`, or zero for `no-store` and
/// `no-cache` (the floor then applies).
fn max_age(value: &str) -> Option<Duration> {
    value.split(',').find_map(|directive| {
        let directive = directive.trim();
        if directive.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("no-cache")
        {
            return Some(Duration::ZERO);
        }
        let (name, seconds) = directive.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("max-age") {
            return None;
        }
        let seconds = seconds.trim().trim_matches('"');
        if seconds.is_empty() || !seconds.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Saturates: an absurd max-age is clamped to the ceiling anyway.
        Some(Duration::from_secs(seconds.parse().unwrap_or(u64::MAX)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(max_age("max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(
            max_age("public, MAX-AGE = 60, must-revalidate"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(max_age("max-age=\"30\""), Some(Duration::from_secs(30)));
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(
            max_age("max-age=99999999999999999999999"),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=-5"), None);
        assert_eq!(max_age("s-maxage=100"), None);
    }
}
