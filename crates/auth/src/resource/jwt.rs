//! The JOSE layer of a JWT access token: header checks and the signature.
//!
//! The header is read by this module, not by a library's permissive model of it, because the
//! header is attacker-controlled and every field the token uses to pick its own verification
//! is an attack: `alg: none` and HMAC-with-the-public-key (`alg` confusion), `jku`/`x5u`
//! (fetch my key from my server), `jwk` (here is my key), `kid` as a path or URL. So:
//! - `alg` must be one of the configured asymmetric algorithms, and fit the key found;
//! - a token carrying `jku`, `x5u` or `jwk` is refused outright, never followed; `x5c` is
//!   never read; `crit` is refused, since no extension is understood (RFC 7515 §4.1.11);
//! - `kid` is only a lookup key into the issuer's cached JWKS;
//! - `typ`, when present, must be `at+jwt`, `application/at+jwt` or `JWT`;
//! - duplicate member names and JWE (`enc`) are refused.

use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use super::error::TokenError;
use super::json;
use super::jwk::{MAX_KID_BYTES, VerificationKey};

/// A JWS compact token split and parsed, its signature not yet checked. `Debug` shows the
/// header's `alg` and `kid` only.
pub struct UnverifiedJwt<'a> {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub claims: Map<String, Value>,
    signing_input: &'a str,
    signature_b64: &'a str,
}

impl std::fmt::Debug for UnverifiedJwt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnverifiedJwt")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Whether the token has the JWS compact shape (three dot-separated parts). Anything else is
/// treated as opaque.
pub fn is_jws_compact(token: &str) -> bool {
    token.bytes().filter(|&b| b == b'.').count() == 2
}

/// Splits and parses the token and checks its header against `allowed`.
pub fn parse<'a>(token: &'a str, allowed: &[Algorithm]) -> Result<UnverifiedJwt<'a>, TokenError> {
    let (signing_input, signature_b64) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let (header_b64, payload_b64) = signing_input.split_once('.').ok_or(TokenError::Malformed)?;
    let decode = |part| json::base64url(part).map_err(|_| TokenError::Malformed);
    let header = json::strict_object(&decode(header_b64)?).map_err(|_| TokenError::Malformed)?;
    let (alg, kid) = check_header(&header, allowed)?;
    let claims = json::strict_object(&decode(payload_b64)?).map_err(|_| TokenError::Malformed)?;
    if decode(signature_b64)?.is_empty() {
        return Err(TokenError::Malformed);
    }
    Ok(UnverifiedJwt {
        alg,
        kid,
        claims,
        signing_input,
        signature_b64,
    })
}

fn check_header(
    header: &Map<String, Value>,
    allowed: &[Algorithm],
) -> Result<(Algorithm, Option<String>), TokenError> {
    // Refused before `alg` is even looked at: a token that tries to name its own key says
    // enough about itself.
    for name in ["jku", "x5u", "jwk", "crit"] {
        if header.contains_key(name) {
            return Err(TokenError::ForbiddenHeader(name));
        }
    }
    if header.contains_key("enc") {
        return Err(TokenError::Malformed);
    }
    let alg = match header.get("alg") {
        Some(Value::String(a)) => a
            .parse::<Algorithm>()
            .map_err(|_| TokenError::AlgorithmNotAllowed)?,
        _ => return Err(TokenError::Malformed),
    };
    if !allowed.contains(&alg) {
        return Err(TokenError::AlgorithmNotAllowed);
    }
    match header.get("typ") {
        None => {}
        Some(Value::String(t))
            if ["at+jwt", "application/at+jwt", "jwt"]
                .iter()
                .any(|ok| t.eq_ignore_ascii_case(ok)) => {}
        Some(_) => return Err(TokenError::Malformed),
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) if !k.is_empty() && k.len() <= MAX_KID_BYTES => Some(k.clone()),
        Some(_) => return Err(TokenError::Malformed),
    };
    Ok((alg, kid))
}

/// Checks the signature with `key`, which the caller found for this token's issuer and `kid`.
pub fn verify_signature(jwt: &UnverifiedJwt<'_>, key: &VerificationKey) -> Result<(), TokenError> {
    if !key.accepts(jwt.alg) {
        return Err(TokenError::AlgorithmNotAllowed);
    }
    match jsonwebtoken::crypto::verify(
        jwt.signature_b64,
        jwt.signing_input.as_bytes(),
        &key.key,
        jwt.alg,
    ) {
        Ok(true) => Ok(()),
        Ok(false) | Err(_) => Err(TokenError::InvalidSignature),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    const ALLOWED: &[Algorithm] = &[Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

    fn token(header: &str, claims: &str) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    fn parse_header(header: Value) -> Result<(Algorithm, Option<String>), TokenError> {
        let t = token(&header.to_string(), r#"{"sub":"a"}"#);
        parse(&t, ALLOWED).map(|j| (j.alg, j.kid))
    }

    #[test]
    fn the_jws_shape_is_three_parts() {
        assert!(is_jws_compact("a.b.c"));
        assert!(!is_jws_compact("opaque-token"));
        assert!(!is_jws_compact("a.b.c.d.e"));
        assert!(!is_jws_compact("a.b"));
    }

    #[test]
    fn a_good_header_yields_alg_and_kid() {
        for typ in ["at+jwt", "application/at+jwt", "JWT", "AT+JWT"] {
            assert_eq!(
                parse_header(json!({"alg": "RS256", "kid": "k1", "typ": typ})),
                Ok((Algorithm::RS256, Some("k1".into())))
            );
        }
        assert_eq!(
            parse_header(json!({"alg": "EdDSA"})),
            Ok((Algorithm::EdDSA, None))
        );
    }

    #[test]
    fn alg_none_in_any_spelling_is_not_allowed() {
        for alg in ["none", "None", "NONE", "nOnE"] {
            assert_eq!(
                parse_header(json!({"alg": alg})),
                Err(TokenError::AlgorithmNotAllowed)
            );
        }
    }

    #[test]
    fn symmetric_unknown_and_unconfigured_algorithms_are_not_allowed() {
        for alg in ["HS256", "HS512", "rs256", "ES512", "PS256", ""] {
            assert_eq!(
                parse_header(json!({"alg": alg})),
                Err(TokenError::AlgorithmNotAllowed),
                "{alg}"
            );
        }
        assert_eq!(parse_header(json!({"alg": 1})), Err(TokenError::Malformed));
        assert_eq!(
            parse_header(json!({"kid": "k"})),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn headers_that_name_their_own_key_are_refused_outright() {
        for (name, value) in [
            ("jku", json!("https://evil.example/jwks")),
            ("x5u", json!("https://evil.example/cert")),
            ("jwk", json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"})),
            ("crit", json!(["exp"])),
        ] {
            let mut h = json!({"alg": "RS256", "kid": "k1"});
            h[name] = value;
            assert!(
                matches!(parse_header(h), Err(TokenError::ForbiddenHeader(n)) if n == name),
                "{name}"
            );
        }
    }

    #[test]
    fn unexpected_typ_kid_jwe_and_duplicates_are_malformed() {
        assert_eq!(
            parse_header(json!({"alg": "RS256", "typ": "dpop+jwt"})),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            parse_header(json!({"alg": "RS256", "kid": 7})),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            parse_header(json!({"alg": "RS256", "kid": ""})),
            Err(TokenError::Malformed)
        );
        let long = "k".repeat(MAX_KID_BYTES + 1);
        assert_eq!(
            parse_header(json!({"alg": "RS256", "kid": long})),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            parse_header(json!({"alg": "RS256", "enc": "A256GCM"})),
            Err(TokenError::Malformed)
        );
        let dup = token(r#"{"alg":"RS256","alg":"none"}"#, r#"{"sub":"a"}"#);
        assert_eq!(parse(&dup, ALLOWED).unwrap_err(), TokenError::Malformed);
        let dup = token(r#"{"alg":"RS256"}"#, r#"{"sub":"a","sub":"b"}"#);
        assert_eq!(parse(&dup, ALLOWED).unwrap_err(), TokenError::Malformed);
    }

    #[test]
    fn bad_encodings_are_malformed() {
        let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#);
        let c = URL_SAFE_NO_PAD.encode(r#"{"sub":"a"}"#);
        for t in [
            format!("{h}.{c}."),
            format!("{h}.{c}.c2ln="),
            format!("{h}.!!.c2ln"),
            format!("{h}=.{c}.c2ln"),
            format!(".{c}.c2ln"),
            format!("{h}.{}.c2ln", URL_SAFE_NO_PAD.encode("[1]")),
        ] {
            assert_eq!(
                parse(&t, ALLOWED).unwrap_err(),
                TokenError::Malformed,
                "{t}"
            );
        }
    }
}
