//! The `input_required` channel: asking a 2026-07-28 (stateless) client for consent.
//!
//! A stateless client cannot receive a request from the gateway; instead its call is
//! answered with an `input_required` result holding an `elicitation/create` form, and the
//! client retries the same call with the person's answer in `inputResponses` and the
//! `requestState` it was given. Nothing about the held call is kept between the two: the
//! state is a token the gateway signs (HMAC-SHA-256, with a key made when the process
//! starts), binding the principal, server, tool, method, deciding rule and argument digest,
//! with an expiry. A retry whose state does not verify, has expired, was issued for another
//! principal or call, or was used already, is refused — so an approval can neither be
//! replayed nor carried over to other arguments or to someone else.
//!
//! Tokens begin with [`STATE_PREFIX`], which differs from the prefix of the tokens that park
//! an upstream's own input requests (`session::mrtr`): those resume a call already made,
//! these come back through admission.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Marks the gateway's consent states (see the module docs).
pub const STATE_PREFIX: &str = "portcullis-consent.";
/// The key of the consent question in `inputRequests` / `inputResponses`.
pub const INPUT_KEY: &str = "portcullis-consent";
/// Longest state accepted (a genuine one is far shorter).
const MAX_STATE_CHARS: usize = 4096;
/// Most states issued and not yet expired or used (each remembers its nonce once used).
const MAX_USED: usize = 100_000;
/// Domain separation of the HMAC.
const CONTEXT: &[u8] = b"portcullis consent state v1\0";

/// What a state binds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The principal's identity key.
    pub identity: String,
    pub server: String,
    /// The name as the upstream knows it.
    pub name: String,
    pub method: String,
    pub rule: Option<usize>,
    pub digest: String,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    #[serde(flatten)]
    binding: Binding,
    /// The consent request's id (the one the audit records name).
    request: String,
    /// Unix milliseconds after which no answer counts.
    expires_ms: u64,
    /// Single use.
    nonce: String,
}

/// Why a retry's state is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the requestState is malformed or its signature does not verify")]
    Forged,
    #[error("the requestState was issued for another principal or another call")]
    Mismatch,
    #[error("the requestState has expired: the consent timed out")]
    Expired,
    #[error("the requestState was used already")]
    Replayed,
}

/// A verified state: what it binds, and until when an answer counts.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The id of the consent request the state was issued for.
    pub request: String,
    pub remaining: Duration,
}

/// Signs and checks consent states; remembers the nonces already used.
pub struct StateSigner {
    key: hmac::Key,
    used: Mutex<HashMap<String, u64>>,
}

impl Default for StateSigner {
    fn default() -> Self {
        let mut secret = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret);
        StateSigner {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            used: Mutex::new(HashMap::new()),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl StateSigner {
    fn used(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A state for `binding`, valid for `ttl`.
    pub fn issue(&self, binding: Binding, request: &str, ttl: Duration) -> String {
        let payload = Payload {
            binding,
            request: request.to_owned(),
            expires_ms: now_ms().saturating_add(ttl.as_millis() as u64),
            nonce: crate::ids::random_token(16),
        };
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap_or_default());
        let tag = hmac::sign(&self.key, &[CONTEXT, body.as_bytes()].concat());
        format!(
            "{STATE_PREFIX}{body}.{}",
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    /// Checks a retry's state against the call it comes with, and uses it up.
    pub fn verify(&self, state: &str, expected: &Binding) -> Result<Verified, StateError> {
        if state.len() > MAX_STATE_CHARS {
            return Err(StateError::Forged);
        }
        let rest = state.strip_prefix(STATE_PREFIX).ok_or(StateError::Forged)?;
        let (body, tag) = rest.split_once('.').ok_or(StateError::Forged)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| StateError::Forged)?;
        hmac::verify(&self.key, &[CONTEXT, body.as_bytes()].concat(), &tag)
            .map_err(|_| StateError::Forged)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| StateError::Forged)?;
        let payload: Payload = serde_json::from_slice(&bytes).map_err(|_| StateError::Forged)?;
        if &payload.binding != expected {
            return Err(StateError::Mismatch);
        }
        let now = now_ms();
        if payload.expires_ms <= now {
            return Err(StateError::Expired);
        }
        let mut used = self.used();
        used.retain(|_, expires| *expires > now);
        if used.contains_key(&payload.nonce) {
            return Err(StateError::Replayed);
        }
        if used.len() >= MAX_USED {
            // Cannot remember one more use: refuse rather than allow a replay.
            return Err(StateError::Replayed);
        }
        used.insert(payload.nonce, payload.expires_ms);
        Ok(Verified {
            request: payload.request,
            remaining: Duration::from_millis(payload.expires_ms - now),
        })
    }
}

/// The `input_required` result asking the client's person with `form` (the params of an
/// `elicitation/create`), carrying `state`.
pub fn input_required(form: Value, state: &str) -> Value {
    json!({
        "resultType": "input_required",
        "inputRequests": { INPUT_KEY: { "method": crate::mcp::ELICITATION_CREATE, "params": form } },
        "requestState": state,
    })
}

/// The consent parts of a call's params: a state of ours, and the answer to our question.
#[derive(Debug, Clone, Default)]
pub struct Retry {
    /// `requestState`, when it is one of the gateway's consent states.
    pub state: Option<String>,
    /// `inputResponses["portcullis-consent"]`.
    pub answer: Option<Value>,
}

impl Retry {
    /// From a call's `requestState` and (read only when that state is ours) its
    /// `inputResponses`.
    pub fn new(state: Option<String>, responses: impl FnOnce() -> Option<Value>) -> Retry {
        let state = state.filter(|s| s.starts_with(STATE_PREFIX));
        let answer = state
            .as_ref()
            .and_then(|_| responses()?.get(INPUT_KEY).cloned());
        Retry { state, answer }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> Binding {
        Binding {
            identity: "alice".into(),
            server: "files".into(),
            name: "write_file".into(),
            method: "tools/call".into(),
            rule: Some(1),
            digest: "sha256:aa".into(),
        }
    }

    #[test]
    fn a_state_verifies_once_for_its_own_call() {
        let s = StateSigner::default();
        let state = s.issue(binding(), "r1", Duration::from_secs(60));
        assert!(state.starts_with(STATE_PREFIX));
        let v = s.verify(&state, &binding()).expect("verifies");
        assert_eq!(v.request, "r1");
        assert_eq!(
            s.verify(&state, &binding()).err(),
            Some(StateError::Replayed)
        );
    }

    #[test]
    fn a_state_for_other_arguments_or_another_principal_is_refused() {
        let s = StateSigner::default();
        let state = s.issue(binding(), "r1", Duration::from_secs(60));
        let mut other_args = binding();
        other_args.digest = "sha256:bb".into();
        assert_eq!(
            s.verify(&state, &other_args).err(),
            Some(StateError::Mismatch)
        );
        let mut other_principal = binding();
        other_principal.identity = "mallory".into();
        assert_eq!(
            s.verify(&state, &other_principal).err(),
            Some(StateError::Mismatch)
        );
    }

    #[test]
    fn a_tampered_or_foreign_state_is_refused() {
        let s = StateSigner::default();
        let state = s.issue(binding(), "r1", Duration::from_secs(60));
        // Re-sign nothing: change the payload, keep the tag.
        let (head, tag) = state.rsplit_once('.').expect("has a tag");
        let mut forged_payload: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(head.trim_start_matches(STATE_PREFIX))
                .expect("base64"),
        )
        .expect("json");
        forged_payload["digest"] = json!("sha256:bb");
        let forged = format!(
            "{STATE_PREFIX}{}.{tag}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_payload).expect("json"))
        );
        let mut b = binding();
        b.digest = "sha256:bb".into();
        assert_eq!(s.verify(&forged, &b).err(), Some(StateError::Forged));
        // Another gateway process (another key) issued it.
        let other = StateSigner::default().issue(binding(), "r1", Duration::from_secs(60));
        assert_eq!(s.verify(&other, &binding()).err(), Some(StateError::Forged));
        assert_eq!(
            s.verify("portcullis-consent.x", &binding()).err(),
            Some(StateError::Forged)
        );
    }

    #[test]
    fn an_expired_state_is_refused() {
        let s = StateSigner::default();
        let state = s.issue(binding(), "r1", Duration::ZERO);
        assert_eq!(
            s.verify(&state, &binding()).err(),
            Some(StateError::Expired)
        );
    }

    #[test]
    fn only_our_states_are_read_from_a_retry() {
        let responses = || Some(json!({ "portcullis-consent": { "action": "accept" } }));
        let ours = Retry::new(Some("portcullis-consent.abc".into()), responses);
        assert_eq!(ours.state.as_deref(), Some("portcullis-consent.abc"));
        assert_eq!(ours.answer, Some(json!({ "action": "accept" })));
        let upstream = Retry::new(Some("upstream-state".into()), responses);
        assert!(upstream.state.is_none() && upstream.answer.is_none());
        // The mrtr tokens that park an upstream's questions are not ours either.
        let parked = Retry::new(Some("portcullis.xyz".into()), responses);
        assert!(parked.state.is_none());
    }
}
