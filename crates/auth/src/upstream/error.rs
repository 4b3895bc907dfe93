//! Why an upstream credential could not be built or produced.

use std::time::Duration;

use crate::secret::SecretError;

use super::spec::SpecError;

/// Why an upstream credential could not be built or produced. Every message names the
/// variable, file or URL involved; none carries a secret or a token (server-provided error
/// text is cut, cleaned, and scrubbed of the secrets of the request it answers).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("invalid credential: {0}")]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("the credential from {source_name} cannot be an HTTP header value")]
    NotAHeaderValue { source_name: String },
    #[error(
        "this upstream's credential is a token exchange, which needs the client's access \
         token as its subject, and the request has none"
    )]
    SubjectTokenRequired,
    #[error("the client's access token is longer than {limit} bytes")]
    SubjectTokenTooLarge { limit: usize },
    #[error("token endpoint {url} could not be reached: {reason}")]
    TokenEndpointUnreachable { url: String, reason: String },
    #[error("token endpoint {url} did not answer within {timeout:?}")]
    TokenEndpointTimeout { url: String, timeout: Duration },
    #[error("token endpoint {url} answered with more than {limit} bytes")]
    TokenResponseTooLarge { url: String, limit: usize },
    #[error("token endpoint {url} refused the request (HTTP {status}): {error}{}",
        description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    OAuth {
        url: String,
        status: u16,
        /// The OAuth error code (`invalid_client`, `invalid_grant`, …).
        error: String,
        description: Option<String>,
    },
    #[error("token endpoint {url} answered HTTP {status}")]
    TokenEndpointStatus { url: String, status: u16 },
    #[error("token endpoint {url} sent an unusable token response: {reason}")]
    InvalidTokenResponse { url: String, reason: String },
    #[error(
        "token endpoint {url} issued a token of type {token_type:?}; only Bearer tokens can be \
         presented to an upstream"
    )]
    UnsupportedTokenType { url: String, token_type: String },
    #[error(
        "the token endpoint failed recently; next attempt in {retry_in:?} (last error: {last})"
    )]
    BackingOff {
        retry_in: Duration,
        last: Box<CredentialError>,
    },
}
