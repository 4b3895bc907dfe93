//! OAuth 2.0 token exchange (RFC 8693): the client's token goes to the authorization server
//! as the `subject_token`, and the upstream gets the token issued in return, meant for it.
//!
//! The client's token itself only ever travels to the token endpoint. Exchanged tokens are
//! cached per subject, keyed by the SHA-256 of the subject token (so the cache holds no
//! client token), for no longer than the subject token lives (when it says, as a JWT does),
//! and in a bounded number of entries (the least recently used goes first).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use http::HeaderValue;
use portcullis_egress::EgressClient;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::CredentialError;
use super::spec::TokenExchangeSpec;
use super::token_cache::TokenSlot;
use super::token_endpoint::{IssuedToken, TokenEndpoint};
use crate::secret::Secret;

/// The grant type of RFC 8693 §2.1.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// Subjects whose exchanged token is kept at once.
pub const DEFAULT_MAX_SUBJECTS: usize = 1024;
/// The longest subject token accepted: far above any real access token, and a bound on
/// what is hashed and sent.
pub const MAX_SUBJECT_TOKEN_BYTES: usize = 16 * 1024;

type SubjectKey = [u8; 32];

struct Entry {
    slot: Arc<TokenSlot>,
    last_used: Instant,
}

pub(crate) struct TokenExchangeGrant {
    pub(crate) endpoint: TokenEndpoint,
    spec: TokenExchangeSpec,
    subjects: Mutex<HashMap<SubjectKey, Entry>>,
    pub(crate) max_subjects: usize,
}

impl TokenExchangeGrant {
    pub(crate) fn new(
        spec: &TokenExchangeSpec,
        client_secret: Secret,
        egress: EgressClient,
    ) -> Result<Self, CredentialError> {
        Ok(TokenExchangeGrant {
            endpoint: TokenEndpoint::new(&spec.client, client_secret, egress)?,
            spec: spec.clone(),
            subjects: Mutex::new(HashMap::new()),
            max_subjects: DEFAULT_MAX_SUBJECTS,
        })
    }

    /// `Authorization: Bearer <exchanged token>` for this subject, from the cache or a new
    /// exchange (one at a time per subject).
    pub(crate) async fn authorization(
        &self,
        subject_token: &str,
    ) -> Result<HeaderValue, CredentialError> {
        check_subject(subject_token)?;
        let slot = self.slot(subject_key(subject_token));
        let not_after = jwt_expiry(subject_token);
        slot.get(not_after, || self.exchange(subject_token)).await
    }

    pub(crate) fn discard(&self, subject_token: &str) {
        let key = subject_key(subject_token);
        if let Some(entry) = self.lock_subjects().get(&key) {
            entry.slot.discard();
        }
    }

    async fn exchange(&self, subject_token: &str) -> Result<IssuedToken, CredentialError> {
        let s = &self.spec;
        let mut params = vec![
            ("grant_type", TOKEN_EXCHANGE_GRANT),
            ("subject_token", subject_token),
            ("subject_token_type", s.subject_token_type.as_str()),
        ];
        let optional = [
            ("audience", &s.audience),
            ("resource", &s.resource),
            ("scope", &s.scope),
            ("requested_token_type", &s.requested_token_type),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                params.push((name, value));
            }
        }
        self.endpoint.request(&params, &[subject_token]).await
    }

    /// The subject's slot, created if new; a new subject in a full cache evicts first the
    /// entries with nothing left in them, then the least recently used.
    fn slot(&self, key: SubjectKey) -> Arc<TokenSlot> {
        let now = Instant::now();
        let mut subjects = self.lock_subjects();
        if let Some(entry) = subjects.get_mut(&key) {
            entry.last_used = now;
            return entry.slot.clone();
        }
        if subjects.len() >= self.max_subjects {
            subjects.retain(|_, e| Arc::strong_count(&e.slot) > 1 || !e.slot.is_stale(now));
        }
        while subjects.len() >= self.max_subjects.max(1) {
            let Some(oldest) = subjects
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            subjects.remove(&oldest);
        }
        let slot = Arc::new(TokenSlot::default());
        subjects.insert(
            key,
            Entry {
                slot: slot.clone(),
                last_used: now,
            },
        );
        slot
    }

    #[cfg(test)]
    fn cached_subjects(&self) -> usize {
        self.lock_subjects().len()
    }

    /// Held only for map operations, never across an await.
    fn lock_subjects(&self) -> std::sync::MutexGuard<'_, HashMap<SubjectKey, Entry>> {
        self.subjects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn check_subject(subject_token: &str) -> Result<(), CredentialError> {
    if subject_token.is_empty() {
        return Err(CredentialError::SubjectTokenRequired);
    }
    if subject_token.len() > MAX_SUBJECT_TOKEN_BYTES {
        return Err(CredentialError::SubjectTokenTooLarge {
            limit: MAX_SUBJECT_TOKEN_BYTES,
        });
    }
    Ok(())
}

fn subject_key(subject_token: &str) -> SubjectKey {
    Sha256::digest(subject_token.as_bytes()).into()
}

/// The `exp` of a JWT subject token, read without checking the signature. That is safe here
/// because it is only used to shorten how long an exchanged token is cached (the resource
/// server validated the token before it got this far); an opaque token has no known expiry.
pub(crate) fn jwt_expiry(token: &str) -> Option<SystemTime> {
    #[derive(serde::Deserialize)]
    struct Claims {
        exp: Option<f64>,
    }
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None; // five parts: an encrypted JWT, whose claims are not readable here
    }
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let exp = serde_json::from_slice::<Claims>(&json).ok()?.exp?;
    if !exp.is_finite() {
        return None;
    }
    let secs = exp.max(0.0).min(u32::MAX as f64) as u64;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::spec::{
        ACCESS_TOKEN_TYPE, ClientAuthMethod, OAuthClientSpec, SecretSource,
    };

    fn jwt(claims: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b64(r#"{"alg":"RS256"}"#), b64(claims))
    }

    fn grant(max_subjects: usize) -> TokenExchangeGrant {
        let spec = TokenExchangeSpec {
            client: OAuthClientSpec {
                token_url: "http://127.0.0.1:9/token".into(),
                client_id: "gw".into(),
                client_secret: SecretSource::Env("UNUSED".into()),
                auth_method: ClientAuthMethod::ClientSecretBasic,
            },
            audience: None,
            resource: None,
            scope: None,
            subject_token_type: ACCESS_TOKEN_TYPE.into(),
            requested_token_type: None,
        };
        let egress = EgressClient::new(&Default::default()).unwrap();
        let mut g = TokenExchangeGrant::new(&spec, Secret::new("s".into()), egress).unwrap();
        g.max_subjects = max_subjects;
        g
    }

    #[test]
    fn jwt_expiry_reads_exp_and_ignores_opaque_tokens() {
        let t = jwt(r#"{"sub":"u","exp":1900000000}"#);
        assert_eq!(
            jwt_expiry(&t),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000))
        );
        assert_eq!(jwt_expiry(&jwt(r#"{"sub":"u"}"#)), None);
        assert_eq!(jwt_expiry("opaque-token"), None);
        assert_eq!(jwt_expiry("a.b.c.d.e"), None);
        assert_eq!(jwt_expiry("a.!!!.c"), None);
    }

    #[test]
    fn cache_keys_are_digests_not_tokens() {
        let key = subject_key("client-token");
        assert_eq!(key.len(), 32);
        assert_ne!(&key[..], b"client-token".as_slice());
        assert_ne!(subject_key("client-token"), subject_key("client-tokeN"));
    }

    /// Gives a subject's slot a token valid for `secs`, as a finished exchange would.
    async fn fill(g: &TokenExchangeGrant, subject: &str, secs: u64) {
        let slot = g.slot(subject_key(subject));
        slot.get(None, || async move {
            Ok(IssuedToken {
                authorization: HeaderValue::from_static("Bearer x"),
                expires_in: Some(Duration::from_secs(secs)),
            })
        })
        .await
        .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_subject_cache_is_bounded_and_evicts_the_least_recently_used() {
        let g = grant(3);
        for t in ["t0", "t1", "t2"] {
            fill(&g, t, 300).await;
            tokio::time::advance(Duration::from_millis(5)).await;
        }
        let _ = g.slot(subject_key("t0")); // t0 is now the most recently used
        tokio::time::advance(Duration::from_millis(5)).await;
        fill(&g, "t3", 300).await;
        assert_eq!(g.cached_subjects(), 3);
        let subjects = g.lock_subjects();
        assert!(subjects.contains_key(&subject_key("t0")));
        assert!(
            !subjects.contains_key(&subject_key("t1")),
            "t1 was least recently used"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn expired_subjects_are_evicted_before_live_ones() {
        let g = grant(3);
        fill(&g, "live-old", 300).await;
        tokio::time::advance(Duration::from_millis(5)).await;
        fill(&g, "short", 1).await;
        fill(&g, "live", 300).await;
        tokio::time::advance(Duration::from_secs(2)).await; // "short" has expired
        fill(&g, "new", 300).await;
        let subjects = g.lock_subjects();
        assert!(subjects.contains_key(&subject_key("live-old")));
        assert!(!subjects.contains_key(&subject_key("short")));
    }

    #[tokio::test]
    async fn an_empty_or_oversize_subject_token_is_refused_before_any_request() {
        let g = grant(4);
        assert!(matches!(
            g.authorization("").await,
            Err(CredentialError::SubjectTokenRequired)
        ));
        let huge = "a".repeat(MAX_SUBJECT_TOKEN_BYTES + 1);
        assert!(matches!(
            g.authorization(&huge).await,
            Err(CredentialError::SubjectTokenTooLarge { .. })
        ));
        assert_eq!(g.cached_subjects(), 0);
    }
}
