//! Credentials the gateway presents to remote MCP servers.
//!
//! Each remote server has its own credential, named in its config ([`CredentialSpec`]);
//! the client's token is never one of them (MCP authorization §11.8 forbids token
//! passthrough). The gateway removes the client's credentials from anything it copies
//! ([`strip_client_credentials`]) and adds the headers an [`UpstreamCredential`] gives it:
//!
//! - a static bearer token or fixed headers, from the environment or a file;
//! - an OAuth client-credentials token, cached and refreshed before it expires;
//! - a token obtained by exchanging the client's token (RFC 8693), cached per subject. The
//!   client's token travels only to the token endpoint, as the `subject_token`.
//!
//! Secrets are read when the credential is built, so a missing variable or file stops the
//! gateway at startup with an error that names it. Token endpoints are reached through the
//! gateway's one outbound client (`portcullis-egress`), with bounded responses and waits.

mod client_credentials;
mod error;
mod spec;
mod strip;
mod token_cache;
pub(crate) mod token_endpoint;
mod token_exchange;
mod user_oauth;
mod validate;

use std::fmt;
use std::time::Duration;

use http::{HeaderName, HeaderValue, header::AUTHORIZATION};
use portcullis_egress::EgressClient;

use crate::secret::Secret;
use client_credentials::ClientCredentialsGrant;
use token_exchange::TokenExchangeGrant;

pub use error::CredentialError;
pub use spec::{
    ACCESS_TOKEN_TYPE, ClientAuthMethod, ClientCredentialsSpec, CredentialSpec, OAuthClientSpec,
    SecretHeaders, SecretSource, SpecError, TokenExchangeSpec,
};
pub use strip::strip_client_credentials;
pub use token_cache::{
    DEFAULT_TOKEN_LIFETIME, INITIAL_BACKOFF, MAX_BACKOFF, MAX_TOKEN_LIFETIME, refresh_after,
};
pub use token_endpoint::{DEFAULT_TOKEN_TIMEOUT, MAX_TOKEN_RESPONSE_BYTES};
pub use token_exchange::{DEFAULT_MAX_SUBJECTS, MAX_SUBJECT_TOKEN_BYTES, TOKEN_EXCHANGE_GRANT};
pub use user_oauth::{PreRegisteredAuth, UserOAuthSpec};

/// The headers to add to an upstream request; values are marked sensitive.
pub type CredentialHeaders = Vec<(HeaderName, HeaderValue)>;

/// One upstream's credential, ready to use. Cheap to call concurrently; wrap it in an `Arc`
/// to share it between connections (the token caches live inside).
pub struct UpstreamCredential {
    kind: Kind,
}

enum Kind {
    Static(CredentialHeaders),
    ClientCredentials(ClientCredentialsGrant),
    TokenExchange(TokenExchangeGrant),
}

impl UpstreamCredential {
    /// Validates the spec and reads its secrets now (env or file), so that a missing one
    /// fails at startup with an error naming it. Token endpoints are not contacted yet.
    pub fn new(spec: &CredentialSpec, egress: EgressClient) -> Result<Self, CredentialError> {
        spec.validate()?;
        let kind = match spec {
            CredentialSpec::BearerEnv(name) => {
                let source = SecretSource::Env(name.clone());
                let value = read(&source)?
                    .bearer_header_value()
                    .map_err(|_| not_a_header(&source))?;
                Kind::Static(vec![(AUTHORIZATION, value)])
            }
            CredentialSpec::BearerFile(path) => {
                let source = SecretSource::File(path.clone());
                let value = read(&source)?
                    .bearer_header_value()
                    .map_err(|_| not_a_header(&source))?;
                Kind::Static(vec![(AUTHORIZATION, value)])
            }
            CredentialSpec::Headers(SecretHeaders(headers)) => {
                let mut out = Vec::with_capacity(headers.len());
                for (name, source) in headers {
                    let value = read(source)?
                        .header_value()
                        .map_err(|_| not_a_header(source))?;
                    out.push((name.clone(), value));
                }
                Kind::Static(out)
            }
            CredentialSpec::ClientCredentials(cc) => {
                let secret = read(&cc.client.client_secret)?;
                Kind::ClientCredentials(ClientCredentialsGrant::new(cc, secret, egress)?)
            }
            CredentialSpec::TokenExchange(te) => {
                let secret = read(&te.client.client_secret)?;
                Kind::TokenExchange(TokenExchangeGrant::new(te, secret, egress)?)
            }
            CredentialSpec::Oauth(_) => {
                return Err(SpecError::new(
                    "`oauth` is a per-user credential: the gateway's user authorization holds it, not an UpstreamCredential",
                )
                .into());
            }
        };
        Ok(UpstreamCredential { kind })
    }

    /// Bounds each token endpoint request, connect to last byte (default
    /// [`DEFAULT_TOKEN_TIMEOUT`]).
    pub fn with_token_timeout(mut self, timeout: Duration) -> Self {
        match &mut self.kind {
            Kind::Static(_) => {}
            Kind::ClientCredentials(g) => g.endpoint.timeout = timeout,
            Kind::TokenExchange(g) => g.endpoint.timeout = timeout,
        }
        self
    }

    /// Bounds how many subjects' exchanged tokens are cached (default
    /// [`DEFAULT_MAX_SUBJECTS`]; at least one).
    pub fn with_max_cached_subjects(mut self, max: usize) -> Self {
        if let Kind::TokenExchange(g) = &mut self.kind {
            g.max_subjects = max.max(1);
        }
        self
    }

    /// Whether [`headers`](Self::headers) needs the client's token (token exchange).
    pub fn needs_subject_token(&self) -> bool {
        matches!(self.kind, Kind::TokenExchange(_))
    }

    /// The headers to add to an upstream request. `subject_token` is the client's access
    /// token: used only by token exchange, where it is sent to the token endpoint and never
    /// to the upstream; the other kinds ignore it.
    pub async fn headers(
        &self,
        subject_token: Option<&str>,
    ) -> Result<CredentialHeaders, CredentialError> {
        match &self.kind {
            Kind::Static(headers) => Ok(headers.clone()),
            Kind::ClientCredentials(g) => Ok(vec![(AUTHORIZATION, g.authorization().await?)]),
            Kind::TokenExchange(g) => {
                let subject = subject_token.ok_or(CredentialError::SubjectTokenRequired)?;
                Ok(vec![(AUTHORIZATION, g.authorization(subject).await?)])
            }
        }
    }

    /// Forgets the cached token (for token exchange, the one of this subject), so the next
    /// [`headers`](Self::headers) fetches a new one. For when the upstream answers 401 to a
    /// token the cache still thought valid. Static credentials have nothing to forget.
    pub fn discard_cached(&self, subject_token: Option<&str>) {
        match &self.kind {
            Kind::Static(_) => {}
            Kind::ClientCredentials(g) => g.discard(),
            Kind::TokenExchange(g) => {
                if let Some(subject) = subject_token {
                    g.discard(subject);
                }
            }
        }
    }
}

fn read(source: &SecretSource) -> Result<Secret, CredentialError> {
    Ok(match source {
        SecretSource::Env(name) => Secret::from_env(name)?,
        SecretSource::File(path) => Secret::from_file(path)?,
    })
}

fn not_a_header(source: &SecretSource) -> CredentialError {
    let source_name = match source {
        SecretSource::Env(name) => format!("environment variable {name}"),
        SecretSource::File(path) => format!("file {}", path.display()),
    };
    CredentialError::NotAHeaderValue { source_name }
}

/// Says what kind of credential and where its token endpoint is; never a value.
impl fmt::Debug for UpstreamCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Static(headers) => f
                .debug_struct("UpstreamCredential::Static")
                .field(
                    "headers",
                    &headers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
                )
                .finish(),
            Kind::ClientCredentials(g) => f
                .debug_struct("UpstreamCredential::ClientCredentials")
                .field("token_url", &g.endpoint.url())
                .finish_non_exhaustive(),
            Kind::TokenExchange(g) => f
                .debug_struct("UpstreamCredential::TokenExchange")
                .field("token_url", &g.endpoint.url())
                .finish_non_exhaustive(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn egress() -> EgressClient {
        EgressClient::new(&Default::default()).unwrap()
    }

    #[test]
    fn a_missing_variable_fails_construction_naming_it() {
        let name = "PORTCULLIS_TEST_UNSET_UPSTREAM_TOKEN_3F2A";
        let err =
            UpstreamCredential::new(&CredentialSpec::BearerEnv(name.into()), egress()).unwrap_err();
        assert!(err.to_string().contains(name), "{err}");
    }

    #[tokio::test]
    async fn a_bearer_env_credential_sends_the_variable_as_a_sensitive_bearer_token() {
        let path = std::env::var("PATH").unwrap();
        let cred =
            UpstreamCredential::new(&CredentialSpec::BearerEnv("PATH".into()), egress()).unwrap();
        assert!(!cred.needs_subject_token());
        let headers = cred.headers(Some("client-token")).await.unwrap();
        assert_eq!(headers.len(), 1);
        assert_eq!(headers[0].0, AUTHORIZATION);
        assert_eq!(headers[0].1, format!("Bearer {path}").as_str());
        assert!(headers[0].1.is_sensitive());
        assert!(!format!("{cred:?}").contains(&path));
    }

    #[tokio::test]
    async fn a_secret_file_with_a_line_break_inside_cannot_inject_a_header() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), "token\r\nX-Admin: yes\n").unwrap();
        let err = UpstreamCredential::new(&CredentialSpec::BearerFile(f.path().into()), egress())
            .unwrap_err();
        assert!(
            matches!(err, CredentialError::NotAHeaderValue { .. }),
            "{err}"
        );
        assert!(!err.to_string().contains("X-Admin"));
    }

    #[tokio::test]
    async fn token_exchange_without_a_subject_token_is_a_clear_error() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), "client-secret").unwrap();
        let spec = CredentialSpec::TokenExchange(TokenExchangeSpec {
            client: OAuthClientSpec {
                token_url: "http://127.0.0.1:9/token".into(),
                client_id: "gw".into(),
                client_secret: SecretSource::File(f.path().into()),
                auth_method: ClientAuthMethod::default(),
            },
            audience: None,
            resource: None,
            scope: None,
            subject_token_type: ACCESS_TOKEN_TYPE.into(),
            requested_token_type: None,
        });
        let cred = UpstreamCredential::new(&spec, egress()).unwrap();
        assert!(cred.needs_subject_token());
        let err = cred.headers(None).await.unwrap_err();
        assert_eq!(err, CredentialError::SubjectTokenRequired);
        assert!(err.to_string().contains("client's access token"));
    }

    #[test]
    fn an_invalid_spec_built_in_code_is_refused() {
        let spec = CredentialSpec::Headers(SecretHeaders(vec![]));
        assert!(matches!(
            UpstreamCredential::new(&spec, egress()),
            Err(CredentialError::Spec(_))
        ));
    }
}
