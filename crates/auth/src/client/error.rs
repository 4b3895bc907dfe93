//! Why the OAuth client could not go on.

use crate::resource::{DiscoveryError, FetchError, InvalidEndpoint, InvalidResourceUrl};
use crate::upstream::CredentialError;

/// Why discovery, authorization, registration or a token request failed. No variant carries
/// a token, a code, a verifier or a client secret; text from the authorization server is
/// cleaned and cut before it gets here.
#[derive(Debug, thiserror::Error)]
pub enum OAuthClientError {
    #[error("invalid MCP server URL: {0}")]
    InvalidServerUrl(#[from] InvalidResourceUrl),
    #[error(transparent)]
    InvalidEndpoint(#[from] InvalidEndpoint),
    #[error("could not fetch {url}: {source}")]
    Fetch {
        url: String,
        #[source]
        source: Box<FetchError>,
    },
    #[error("no protected resource metadata for {server} (last: {last})")]
    NoResourceMetadata { server: String, last: String },
    #[error("the protected resource metadata at {url} is unusable: {reason}")]
    InvalidResourceMetadata { url: String, reason: &'static str },
    #[error("the metadata at {url} is for resource {found:?}, which does not cover {expected:?}")]
    ResourceMismatch {
        url: String,
        expected: String,
        found: String,
    },
    #[error(transparent)]
    Discovery(Box<DiscoveryError>),
    #[error(
        "authorization server {issuer} does not advertise PKCE S256 \
         (code_challenge_methods_supported); refusing to use it"
    )]
    PkceS256NotSupported { issuer: String },
    #[error("authorization server {issuer} advertises no {endpoint}")]
    MissingEndpoint {
        issuer: String,
        endpoint: &'static str,
    },
    #[error("{url:?} is not an acceptable redirect URI: {reason}")]
    InvalidRedirectUri { url: String, reason: &'static str },
    #[error("{limit} authorizations are already pending; try again later")]
    TooManyPending { limit: usize },
    #[error("the authorization callback has no state")]
    MissingState,
    #[error("the authorization callback's state is unknown or was already used")]
    UnknownState,
    #[error("the authorization callback's state has expired")]
    ExpiredState,
    #[error("the authorization callback repeats the parameter {0:?}")]
    RepeatedParameter(String),
    #[error(
        "the authorization response names issuer {found:?}, not {expected:?} (RFC 9207 mix-up \
         defence)"
    )]
    IssuerMismatch {
        expected: String,
        found: Option<String>,
    },
    #[error("the authorization server refused: {error}{}",
        description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    AuthorizationDenied {
        error: String,
        description: Option<String>,
    },
    #[error("the authorization callback has no code")]
    MissingCode,
    #[error(transparent)]
    Token(Box<CredentialError>),
    #[error("no refresh token to refresh with")]
    NoRefreshToken,
    #[error("the server still asks for more scope after {attempts} step-up attempts; giving up")]
    StepUpLimit { attempts: u32 },
    #[error("the server asks for scope {scope:?}, which was already granted; not retrying")]
    StepUpLoop { scope: String },
    #[error("the 403 challenge is not insufficient_scope or names no scope")]
    NotAScopeChallenge,
    #[error(
        "no way to register with {issuer}: no pre-registered client, no client ID metadata \
         document support, no registration endpoint"
    )]
    NoRegistration { issuer: String },
    #[error("invalid client ID metadata document URL {url:?}: {reason}")]
    InvalidClientIdUrl { url: String, reason: &'static str },
    #[error("dynamic client registration at {url} failed: {reason}")]
    Registration { url: String, reason: String },
}

// The large sources are boxed so that every `Result` of this module stays small.
impl From<DiscoveryError> for OAuthClientError {
    fn from(e: DiscoveryError) -> Self {
        OAuthClientError::Discovery(Box::new(e))
    }
}

impl From<CredentialError> for OAuthClientError {
    fn from(e: CredentialError) -> Self {
        OAuthClientError::Token(Box::new(e))
    }
}
