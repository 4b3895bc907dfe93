//! RFC 7662 token introspection, for opaque (non-JWT) access tokens.
//!
//! The authorization server is asked whether the token is active; the answer then goes
//! through the same audience, expiry and subject checks as a JWT's claims. Answers are
//! cached under the SHA-256 of the token (the token itself is not kept) until the token's
//! `exp` or the cache ceiling, whichever comes first, so revocation takes effect within the
//! ceiling. Inactive answers are not cached. Concurrent introspections are bounded, so a
//! flood of random opaque tokens queues here instead of at the authorization server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue, Uri};
use portcullis_egress::EgressClient;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::claims::{self, ClaimRules, VerifiedToken};
use super::clock::Clock;
use super::discovery::LazyMetadata;
use super::error::TokenError;
use super::fetch::{self, Bounds};
use crate::secret::Secret;

/// How to reach the introspection endpoint, and the bounds of its use.
#[derive(Debug, Clone)]
pub struct IntrospectionConfig {
    /// The issuer whose authorization server introspects (and whose `iss` the answers must
    /// carry, when they carry one). Default: the only configured issuer.
    pub issuer: Option<String>,
    /// The endpoint. Default: the issuer's discovered `introspection_endpoint`.
    pub endpoint: Option<String>,
    /// This resource server's client credentials (`client_secret_basic`).
    pub client_id: String,
    pub client_secret: Secret,
    /// One introspection request, head and body (default 5 s).
    pub timeout: Duration,
    /// Largest answer (default 64 KiB).
    pub max_body_bytes: usize,
    /// Longest an active answer is reused (default 60 s): the bound on how long a revoked
    /// token keeps working.
    pub cache_ceiling: Duration,
    /// Most cached answers (default 10 000).
    pub cache_entries: usize,
    /// Most introspection requests in flight (default 32); further tokens wait for a slot,
    /// at most `timeout`.
    pub max_in_flight: usize,
}

impl IntrospectionConfig {
    pub fn new(client_id: impl Into<String>, client_secret: Secret) -> Self {
        IntrospectionConfig {
            issuer: None,
            endpoint: None,
            client_id: client_id.into(),
            client_secret,
            timeout: Duration::from_secs(5),
            max_body_bytes: 64 * 1024,
            cache_ceiling: Duration::from_secs(60),
            cache_entries: 10_000,
            max_in_flight: 32,
        }
    }
}

#[derive(Debug)]
pub(crate) enum EndpointSource {
    Uri(Uri),
    Discovered(Arc<LazyMetadata>),
}

struct CachedAnswer {
    claims: Arc<Map<String, Value>>,
    /// Monotonic time after which the answer is asked again.
    until: Duration,
    /// `expires_at` for answers without `exp`.
    trusted_until: SystemTime,
}

pub(crate) struct Introspector {
    issuer: String,
    endpoint: EndpointSource,
    egress: EgressClient,
    config: IntrospectionConfig,
    clock: Arc<dyn Clock>,
    cache: Mutex<HashMap<[u8; 32], CachedAnswer>>,
    in_flight: Semaphore,
}

impl std::fmt::Debug for Introspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspector")
            .field("issuer", &self.issuer)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Introspector {
    pub(crate) fn new(
        issuer: String,
        endpoint: EndpointSource,
        egress: EgressClient,
        config: IntrospectionConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let permits = config.max_in_flight.max(1);
        Introspector {
            issuer,
            endpoint,
            egress,
            config,
            clock,
            cache: Mutex::new(HashMap::new()),
            in_flight: Semaphore::new(permits),
        }
    }

    pub(crate) async fn validate(
        &self,
        token: &str,
        rules: &ClaimRules<'_>,
    ) -> Result<VerifiedToken, TokenError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let cached = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .get(&key)
                .filter(|a| self.clock.monotonic() < a.until)
                .map(|a| (a.claims.clone(), a.trusted_until))
        };
        if let Some((claims, trusted_until)) = cached {
            return claims::check(&self.issuer, (*claims).clone(), rules, trusted_until);
        }
        let answer = self.ask(token).await?;
        if answer.get("active") != Some(&Value::Bool(true)) {
            return Err(TokenError::Inactive);
        }
        check_token_type(&answer)?;
        match answer.get("iss") {
            None => {}
            Some(Value::String(iss)) if *iss == self.issuer => {}
            Some(_) => return Err(TokenError::WrongIssuer),
        }
        let now = self.clock.now();
        let trusted_until = now + self.config.cache_ceiling;
        let verified = claims::check(&self.issuer, answer, rules, trusted_until)?;
        // Reuse until exp or the ceiling, whichever is sooner.
        let ttl = verified
            .expires_at
            .duration_since(now)
            .unwrap_or_default()
            .min(self.config.cache_ceiling);
        if !ttl.is_zero() {
            self.remember(
                key,
                CachedAnswer {
                    claims: Arc::new(verified.claims.clone()),
                    until: self.clock.monotonic() + ttl,
                    trusted_until,
                },
            );
        }
        Ok(verified)
    }

    fn remember(&self, key: [u8; 32], answer: CachedAnswer) {
        let now = self.clock.monotonic();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= self.config.cache_entries {
            cache.retain(|_, a| now < a.until);
        }
        if cache.len() >= self.config.cache_entries {
            // Still full of live answers: drop the one that would expire first.
            let soonest = cache.iter().min_by_key(|(_, a)| a.until).map(|(k, _)| *k);
            if let Some(k) = soonest {
                cache.remove(&k);
            }
        }
        if self.config.cache_entries > 0 {
            cache.insert(key, answer);
        }
    }

    async fn ask(&self, token: &str) -> Result<Map<String, Value>, TokenError> {
        let _permit = tokio::time::timeout(self.config.timeout, self.in_flight.acquire())
            .await
            .map_err(|_| TokenError::IntrospectionFailed)?
            .map_err(|_| TokenError::IntrospectionFailed)?;
        let uri = self.endpoint().await?;
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, self.client_authorization()?);
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        let bounds = Bounds {
            timeout: self.config.timeout,
            max_body_bytes: self.config.max_body_bytes,
        };
        match fetch::post_form(&self.egress, &uri, headers, body, &bounds).await {
            Ok((_, answer)) => Ok(answer),
            Err(e) => {
                tracing::warn!(issuer = %self.issuer, error = %e, "token introspection failed");
                Err(TokenError::IntrospectionFailed)
            }
        }
    }

    async fn endpoint(&self) -> Result<Uri, TokenError> {
        let url = match &self.endpoint {
            EndpointSource::Uri(uri) => return Ok(uri.clone()),
            EndpointSource::Discovered(metadata) => metadata
                .get()
                .await
                .map_err(|_| TokenError::IntrospectionFailed)?
                .introspection_endpoint
                .clone(),
        };
        let url = url.ok_or_else(|| {
            tracing::warn!(issuer = %self.issuer, "the issuer's metadata has no introspection_endpoint");
            TokenError::IntrospectionFailed
        })?;
        fetch::endpoint(&url).map_err(|e| {
            tracing::warn!(error = %e, "unusable introspection endpoint");
            TokenError::IntrospectionFailed
        })
    }

    /// `client_secret_basic` (RFC 6749 §2.3.1): both parts form-urlencoded, then base64.
    fn client_authorization(&self) -> Result<HeaderValue, TokenError> {
        let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pair = Zeroizing::new(format!(
            "{}:{}",
            encode(&self.config.client_id),
            Zeroizing::new(encode(self.config.client_secret.expose())).as_str()
        ));
        let text = Zeroizing::new(format!("Basic {}", STANDARD.encode(pair.as_bytes())));
        let mut value =
            HeaderValue::from_str(&text).map_err(|_| TokenError::IntrospectionFailed)?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// An active answer for something other than an access token (a refresh token presented as
/// a bearer token, a DPoP-bound token without its proof) is not a usable bearer token.
fn check_token_type(answer: &Map<String, Value>) -> Result<(), TokenError> {
    match answer.get("token_type") {
        None => Ok(()),
        Some(Value::String(t))
            if [
                "bearer",
                "access_token",
                "urn:ietf:params:oauth:token-type:access_token",
            ]
            .iter()
            .any(|ok| t.eq_ignore_ascii_case(ok)) =>
        {
            Ok(())
        }
        Some(_) => Err(TokenError::Inactive),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_access_token_types_are_usable() {
        let t = |v: Value| check_token_type(v.as_object().unwrap());
        assert_eq!(t(json!({})), Ok(()));
        assert_eq!(t(json!({"token_type": "Bearer"})), Ok(()));
        assert_eq!(t(json!({"token_type": "access_token"})), Ok(()));
        assert_eq!(
            t(json!({"token_type": "refresh_token"})),
            Err(TokenError::Inactive)
        );
        assert_eq!(t(json!({"token_type": "DPoP"})), Err(TokenError::Inactive));
        assert_eq!(t(json!({"token_type": 1})), Err(TokenError::Inactive));
    }
}
