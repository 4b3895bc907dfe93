//! Reading a JWK Set (RFC 7517) into verification keys.
//!
//! Only what can verify an access token survives: asymmetric signature keys (RSA of 2048 to
//! 8192 bits, EC P-256 and P-384, Ed25519). Symmetric (`oct`) keys are dropped: a JWKS is
//! public, so an HMAC key in it is a key anyone can sign with. Encryption keys (`use` other
//! than `sig`, or `key_ops` without `verify`) and keys this crate cannot use are skipped one
//! by one rather than failing the set, so that one exotic key does not take down validation.

use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

use super::json;

/// The longest `kid` kept (a longer one is not a key identifier anyone uses).
pub const MAX_KID_BYTES: usize = 256;

/// The kinds of key kept, each with the algorithms it may verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl KeyType {
    /// The algorithms a key of this type verifies: the header `alg` must be one of them, so
    /// an RSA key can never be used as an HMAC secret or with a curve algorithm.
    pub fn algorithms(self) -> &'static [Algorithm] {
        match self {
            KeyType::Rsa => &[
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
            KeyType::EcP256 => &[Algorithm::ES256],
            KeyType::EcP384 => &[Algorithm::ES384],
            KeyType::Ed25519 => &[Algorithm::EdDSA],
        }
    }
}

/// One public key of an issuer.
#[derive(Clone)]
pub struct VerificationKey {
    pub kid: Option<String>,
    pub key_type: KeyType,
    /// The JWK's `alg`, when it pins one.
    pub alg: Option<Algorithm>,
    pub key: DecodingKey,
}

impl VerificationKey {
    /// Whether this key may verify a token signed with `alg`.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        self.key_type.algorithms().contains(&alg) && self.alg.is_none_or(|a| a == alg)
    }
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("key_type", &self.key_type)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Why a JWK Set was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwkSetError {
    #[error("the document has no \"keys\" array")]
    NoKeys,
    #[error("the set has {found} keys, over the limit of {limit}")]
    TooManyKeys { found: usize, limit: usize },
}

/// The usable keys of a JWK Set document. The set is refused if it is not a set or holds
/// more than `max_keys` entries; individual unusable keys are skipped.
pub fn parse_jwk_set(
    document: &Map<String, Value>,
    max_keys: usize,
) -> Result<Vec<VerificationKey>, JwkSetError> {
    let Some(Value::Array(entries)) = document.get("keys") else {
        return Err(JwkSetError::NoKeys);
    };
    if entries.len() > max_keys {
        return Err(JwkSetError::TooManyKeys {
            found: entries.len(),
            limit: max_keys,
        });
    }
    Ok(entries
        .iter()
        .filter_map(|e| e.as_object().and_then(parse_jwk))
        .collect())
}

fn parse_jwk(jwk: &Map<String, Value>) -> Option<VerificationKey> {
    let text = |name: &str| match jwk.get(name) {
        None => Some(None),
        Some(Value::String(s)) => Some(Some(s.as_str())),
        Some(_) => None,
    };
    if text("use")?.is_some_and(|u| u != "sig") {
        return None;
    }
    if let Some(ops) = jwk.get("key_ops") {
        let ops = ops.as_array()?;
        if !ops.iter().any(|o| o.as_str() == Some("verify")) {
            return None;
        }
    }
    let kid = match text("kid")? {
        Some(k) if k.len() > MAX_KID_BYTES => return None,
        k => k.map(str::to_owned),
    };
    let alg = match text("alg")? {
        Some(a) => Some(a.parse::<Algorithm>().ok()?),
        None => None,
    };
    let (key_type, key) = match text("kty")?? {
        "RSA" => {
            let n = json::base64url(text("n")??).ok()?;
            let e = json::base64url(text("e")??).ok()?;
            let bits = significant_bytes(&n) * 8;
            if !(2048..=8192).contains(&bits) || !(1..=8).contains(&significant_bytes(&e)) {
                return None;
            }
            (KeyType::Rsa, DecodingKey::from_rsa_raw_components(&n, &e))
        }
        "EC" => {
            let (key_type, len) = match text("crv")?? {
                "P-256" => (KeyType::EcP256, 32),
                "P-384" => (KeyType::EcP384, 48),
                _ => return None,
            };
            let (x, y) = (text("x")??, text("y")??);
            if json::base64url(x).ok()?.len() != len || json::base64url(y).ok()?.len() != len {
                return None;
            }
            (key_type, DecodingKey::from_ec_components(x, y).ok()?)
        }
        "OKP" => {
            if text("crv")?? != "Ed25519" {
                return None;
            }
            let x = text("x")??;
            if json::base64url(x).ok()?.len() != 32 {
                return None;
            }
            (KeyType::Ed25519, DecodingKey::from_ed_components(x).ok()?)
        }
        // "oct" and everything else.
        _ => return None,
    };
    let key = VerificationKey {
        kid,
        key_type,
        alg,
        key,
    };
    // A JWK whose `alg` does not fit its own type is inconsistent: drop it.
    if alg.is_some_and(|a| !key.accepts(a)) {
        return None;
    }
    Some(key)
}

fn significant_bytes(bytes: &[u8]) -> usize {
    bytes.len() - bytes.iter().take_while(|&&b| b == 0).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(bytes: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn rsa(kid: &str) -> Value {
        let mut n = vec![0xC5u8; 256];
        n[255] = 0x01;
        json!({"kty": "RSA", "kid": kid, "n": b64(&n), "e": "AQAB"})
    }

    fn keys(set: Value) -> Vec<VerificationKey> {
        parse_jwk_set(set.as_object().unwrap(), 100).unwrap()
    }

    #[test]
    fn asymmetric_signature_keys_are_kept() {
        let ks = keys(json!({"keys": [
            rsa("r1"),
            {"kty": "EC", "crv": "P-256", "kid": "e1", "x": b64(&[1; 32]), "y": b64(&[2; 32]), "use": "sig"},
            {"kty": "EC", "crv": "P-384", "kid": "e2", "x": b64(&[1; 48]), "y": b64(&[2; 48])},
            {"kty": "OKP", "crv": "Ed25519", "kid": "o1", "x": b64(&[3; 32]), "alg": "EdDSA"},
        ]}));
        let types: Vec<_> = ks
            .iter()
            .map(|k| (k.kid.as_deref().unwrap(), k.key_type))
            .collect();
        assert_eq!(
            types,
            [
                ("r1", KeyType::Rsa),
                ("e1", KeyType::EcP256),
                ("e2", KeyType::EcP384),
                ("o1", KeyType::Ed25519)
            ]
        );
        assert!(ks[0].accepts(Algorithm::PS256));
        assert!(!ks[0].accepts(Algorithm::HS256));
        assert!(!ks[1].accepts(Algorithm::ES384));
        assert!(ks[3].accepts(Algorithm::EdDSA));
    }

    #[test]
    fn symmetric_encryption_and_odd_keys_are_skipped() {
        let ks = keys(json!({"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": rsa("x")["n"], "e": "AQAB"},
            {"kty": "RSA", "kid": "ops", "key_ops": ["encrypt"], "n": rsa("x")["n"], "e": "AQAB"},
            {"kty": "RSA", "kid": "small", "n": b64(&[0xC5; 128]), "e": "AQAB"},
            {"kty": "RSA", "kid": "bad-alg", "alg": "ES256", "n": rsa("x")["n"], "e": "AQAB"},
            {"kty": "RSA", "kid": "unknown-alg", "alg": "RSA-OAEP", "n": rsa("x")["n"], "e": "AQAB"},
            {"kty": "EC", "crv": "P-521", "kid": "p521", "x": b64(&[1; 66]), "y": b64(&[2; 66])},
            {"kty": "EC", "crv": "P-256", "kid": "short", "x": b64(&[1; 31]), "y": b64(&[2; 32])},
            {"kty": "OKP", "crv": "X25519", "kid": "x", "x": b64(&[3; 32])},
            {"kty": "RSA", "kid": 7, "n": rsa("x")["n"], "e": "AQAB"},
            {"kty": "RSA", "kid": "k".repeat(MAX_KID_BYTES + 1), "n": rsa("x")["n"], "e": "AQAB"},
            "not an object",
            rsa("good"),
        ]}));
        assert_eq!(ks.len(), 1);
        assert_eq!(ks[0].kid.as_deref(), Some("good"));
    }

    #[test]
    fn a_pinned_alg_restricts_the_key() {
        let mut jwk = rsa("r");
        jwk["alg"] = json!("RS256");
        let ks = keys(json!({ "keys": [jwk] }));
        assert!(ks[0].accepts(Algorithm::RS256));
        assert!(!ks[0].accepts(Algorithm::PS256));
    }

    #[test]
    fn sets_that_are_not_sets_or_too_large_are_refused() {
        assert_eq!(
            parse_jwk_set(json!({"key": []}).as_object().unwrap(), 10).unwrap_err(),
            JwkSetError::NoKeys
        );
        let many: Vec<Value> = (0..11).map(|i| rsa(&i.to_string())).collect();
        assert_eq!(
            parse_jwk_set(json!({ "keys": many }).as_object().unwrap(), 10).unwrap_err(),
            JwkSetError::TooManyKeys {
                found: 11,
                limit: 10
            }
        );
    }

    #[test]
    fn debug_output_names_the_key_but_not_its_material() {
        let ks = keys(json!({ "keys": [rsa("r1")] }));
        let d = format!("{:?}", ks[0]);
        assert!(d.contains("r1") && d.contains("Rsa"), "{d}");
        assert!(!d.contains("xQ"), "{d}");
    }
}
