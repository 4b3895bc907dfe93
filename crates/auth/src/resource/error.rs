//! Why a bearer token was refused.
//!
//! The variants are distinct so that audits and tests can tell the attacks apart; what goes
//! back to the client is only [`TokenError::error_description`], a fixed sentence per
//! variant. No variant carries any part of the token: a token must never reach a log line or
//! a response through an error message.

/// Why a token was refused. Every variant is answered with 401 `invalid_token`, except
/// [`TokenError::KeysUnavailable`] and [`TokenError::IntrospectionFailed`], which are this
/// side's failures (see [`TokenError::is_temporary`]); all of them refuse the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a well-formed token: bad base64url or JSON, duplicate member names, a JWE, an
    /// unknown `typ`, a claim of the wrong type, or an opaque token with no introspection.
    #[error("the token is malformed")]
    Malformed,
    /// The signature does not verify with the issuer's key for the token's `kid`.
    #[error("the token signature is invalid")]
    InvalidSignature,
    /// No key of the issuer's JWKS matches the token's `kid`, even after a refetch.
    #[error("the token is signed with a key the issuer does not publish")]
    UnknownKey,
    /// The header `alg` is `none`, symmetric, unknown, not configured, or does not fit the key.
    #[error("the token's signing algorithm is not allowed")]
    AlgorithmNotAllowed,
    /// `iss` is not one of the configured issuers.
    #[error("the token was issued by an issuer that is not trusted")]
    WrongIssuer,
    /// `aud` does not contain this resource.
    #[error("the token was issued for another resource")]
    WrongAudience,
    /// `exp` has passed (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// A claim this resource needs is absent: `exp`, `sub`, `aud`, `iss`, or one of the
    /// configured required claims (the name comes from the code or the configuration).
    #[error("the token lacks the required claim {0:?}")]
    MissingClaim(String),
    /// The header carries `jku`, `x5u`, `jwk` or `crit`: a token that names its own key (or
    /// demands extensions) is refused outright, never followed.
    #[error("the token carries the forbidden header {0:?}")]
    ForbiddenHeader(&'static str),
    /// The issuer's keys could not be fetched and no usable cached keys remain.
    #[error("the issuer's signing keys are unavailable")]
    KeysUnavailable,
    /// Introspection answered `active: false` (or an unusable token type).
    #[error("the token is not active")]
    Inactive,
    /// Over [`crate::resource::MAX_TOKEN_BYTES`]; refused before any parsing.
    #[error("the token is too large")]
    TooLarge,
    /// The introspection endpoint could not be reached or gave an unusable answer.
    #[error("token introspection failed")]
    IntrospectionFailed,
}

impl TokenError {
    /// The OAuth error code for the `WWW-Authenticate` challenge (RFC 6750 §3.1).
    pub fn error_code(&self) -> &'static str {
        "invalid_token"
    }

    /// A fixed description, safe for `error_description` in a `WWW-Authenticate` header: it
    /// never contains token content, and stays inside RFC 6750's character set.
    pub fn error_description(&self) -> &'static str {
        match self {
            TokenError::Malformed => "The access token is malformed",
            TokenError::InvalidSignature => "The access token signature is invalid",
            TokenError::UnknownKey => "The access token is signed with an unknown key",
            TokenError::AlgorithmNotAllowed => "The access token signing algorithm is not allowed",
            TokenError::WrongIssuer => "The access token issuer is not trusted",
            TokenError::WrongAudience => "The access token was not issued for this resource",
            TokenError::Expired => "The access token expired",
            TokenError::NotYetValid => "The access token is not valid yet",
            TokenError::MissingClaim(_) => "The access token lacks a required claim",
            TokenError::ForbiddenHeader(_) => "The access token header is not accepted",
            TokenError::KeysUnavailable => "The issuer signing keys are unavailable",
            TokenError::Inactive => "The access token is not active",
            TokenError::TooLarge => "The access token is too large",
            TokenError::IntrospectionFailed => "The access token could not be checked",
        }
    }

    /// Whether the refusal comes from this side (keys or introspection unreachable) rather
    /// than from the token. The request is refused either way; the HTTP layer may answer 503
    /// instead of 401 so that clients do not throw away a good token.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            TokenError::KeysUnavailable | TokenError::IntrospectionFailed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<TokenError> {
        vec![
            TokenError::Malformed,
            TokenError::InvalidSignature,
            TokenError::UnknownKey,
            TokenError::AlgorithmNotAllowed,
            TokenError::WrongIssuer,
            TokenError::WrongAudience,
            TokenError::Expired,
            TokenError::NotYetValid,
            TokenError::MissingClaim("sub".into()),
            TokenError::ForbiddenHeader("jku"),
            TokenError::KeysUnavailable,
            TokenError::Inactive,
            TokenError::TooLarge,
            TokenError::IntrospectionFailed,
        ]
    }

    #[test]
    fn descriptions_fit_rfc_6750_error_description_characters() {
        for e in all() {
            let d = e.error_description();
            assert!(!d.is_empty());
            assert!(
                d.bytes()
                    .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)),
                "{d:?}"
            );
            assert_eq!(e.error_code(), "invalid_token");
        }
    }

    #[test]
    fn only_server_side_failures_are_temporary() {
        let temporary: Vec<_> = all().into_iter().filter(|e| e.is_temporary()).collect();
        assert_eq!(
            temporary,
            vec![TokenError::KeysUnavailable, TokenError::IntrospectionFailed]
        );
    }
}
