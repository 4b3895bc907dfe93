//! `credential = { oauth = { … } }`: what the operator pins of a per-user OAuth client;
//! everything else is discovered from the server (see `crate::client`).

use std::path::PathBuf;

use serde::Deserialize;

use super::spec::{SecretSource, SpecError, one_secret_source};
use super::validate::{validate_optional, validate_scope};

/// How a pre-registered client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreRegisteredAuth {
    /// A public client: PKCE alone protects the code.
    None,
    ClientSecretBasic,
    ClientSecretPost,
}

/// `oauth = { … }`: per-user authorization at the upstream's own authorization server.
/// Everything is discovered (MCP authorization, 2025-11-25); the table only pins what the
/// operator knows better: a client registered by hand, and the scope to ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawUserOAuth")]
pub struct UserOAuthSpec {
    /// A client registered at the authorization server by hand (else the gateway's client
    /// ID metadata document, else dynamic registration).
    pub client_id: Option<String>,
    pub client_secret: Option<SecretSource>,
    /// Default: `client_secret_basic` with a secret, `none` without.
    pub auth_method: Option<PreRegisteredAuth>,
    /// Space-separated scopes to ask for instead of the challenge's or the metadata's.
    pub scope: Option<String>,
}

impl UserOAuthSpec {
    pub(super) fn validate(&self) -> Result<(), SpecError> {
        if self.client_id.as_deref() == Some("") {
            return Err(SpecError::new("client_id is empty"));
        }
        if self.client_id.is_none() && self.client_secret.is_some() {
            return Err(SpecError::new(
                "a client secret without `client_id`: name the pre-registered client",
            ));
        }
        if let Some(source) = &self.client_secret {
            source.validate()?;
        }
        match (self.auth_method, &self.client_secret) {
            (Some(PreRegisteredAuth::None), Some(_)) => {
                return Err(SpecError::new(
                    "auth_method = \"none\" is a public client: it has no secret",
                ));
            }
            (
                Some(PreRegisteredAuth::ClientSecretBasic | PreRegisteredAuth::ClientSecretPost),
                None,
            ) => {
                return Err(SpecError::new(
                    "this auth_method needs the client secret: give `secret_env` or `secret_file`",
                ));
            }
            _ => {}
        }
        validate_optional(self.scope.as_deref(), validate_scope)
    }

    /// The token endpoint authentication of the pre-registered client.
    pub fn auth(&self) -> PreRegisteredAuth {
        self.auth_method.unwrap_or(if self.client_secret.is_some() {
            PreRegisteredAuth::ClientSecretBasic
        } else {
            PreRegisteredAuth::None
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUserOAuth {
    client_id: Option<String>,
    secret_env: Option<String>,
    secret_file: Option<PathBuf>,
    auth_method: Option<PreRegisteredAuth>,
    scope: Option<String>,
}

impl TryFrom<RawUserOAuth> for UserOAuthSpec {
    type Error = SpecError;
    fn try_from(raw: RawUserOAuth) -> Result<Self, SpecError> {
        let client_secret = match (raw.secret_env, raw.secret_file) {
            (None, None) => None,
            (env, file) => Some(one_secret_source(env, file)?),
        };
        let spec = UserOAuthSpec {
            client_id: raw.client_id,
            client_secret,
            auth_method: raw.auth_method,
            scope: raw.scope,
        };
        spec.validate()?;
        Ok(spec)
    }
}
