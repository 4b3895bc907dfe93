//! The OAuth 2.0 client credentials grant (RFC 6749 §4.4): the gateway's own token for an
//! upstream, one per server, cached and refreshed before it expires.

use http::HeaderValue;
use portcullis_egress::EgressClient;

use super::CredentialError;
use super::spec::ClientCredentialsSpec;
use super::token_cache::TokenSlot;
use super::token_endpoint::TokenEndpoint;
use crate::secret::Secret;

pub(crate) struct ClientCredentialsGrant {
    pub(crate) endpoint: TokenEndpoint,
    scope: Option<String>,
    resource: Option<String>,
    slot: TokenSlot,
}

impl ClientCredentialsGrant {
    pub(crate) fn new(
        spec: &ClientCredentialsSpec,
        client_secret: Secret,
        egress: EgressClient,
    ) -> Result<Self, CredentialError> {
        Ok(ClientCredentialsGrant {
            endpoint: TokenEndpoint::new(&spec.client, client_secret, egress)?,
            scope: spec.scope.clone(),
            resource: spec.resource.clone(),
            slot: TokenSlot::default(),
        })
    }

    /// `Authorization: Bearer <token>`, from the cache or a new grant.
    pub(crate) async fn authorization(&self) -> Result<HeaderValue, CredentialError> {
        self.slot.get(None, || self.fetch()).await
    }

    pub(crate) fn discard(&self) {
        self.slot.discard();
    }

    async fn fetch(&self) -> Result<super::token_endpoint::IssuedToken, CredentialError> {
        let mut params = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &self.scope {
            params.push(("scope", scope));
        }
        if let Some(resource) = &self.resource {
            params.push(("resource", resource));
        }
        self.endpoint.request(&params, &[]).await
    }
}
