//! How the gateway gets a `client_id` at an authorization server (MCP authorization §5), in
//! the spec's order: a pre-registered client from the configuration; else, when the server
//! advertises `client_id_metadata_document_supported`, the URL of the gateway's own Client
//! ID Metadata Document (it serves [`ClientIdMetadataDocument`]); else Dynamic Client
//! Registration (RFC 7591) at the server's `registration_endpoint`.
//!
//! A registration is valid at one issuer only: the caller keys what it stores by issuer.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, Uri, header};
use portcullis_egress::{EgressClient, EgressRequest};
use serde::Serialize;
use serde_json::Value;

use super::discovery::AuthorizationServer;
use super::error::OAuthClientError;
use super::token::{ClientAuth, ClientIdentity, SendError, send_bounded};
use crate::resource::{fetch, json};
use crate::secret::Secret;
use crate::upstream::token_endpoint::scrub;

/// The largest registration response read.
const MAX_REGISTRATION_RESPONSE_BYTES: usize = 64 * 1024;
/// How long a registration may take.
const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(10);

/// The gateway's Client ID Metadata Document: served at `client_id`, which is its own URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientIdMetadataDocument {
    pub client_id: String,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    /// `none`: the gateway is a public client here; PKCE protects the code.
    pub token_endpoint_auth_method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
}

impl ClientIdMetadataDocument {
    /// The document for `client_id` (an `https` URL with a path, where it will be served),
    /// refusing what the draft does not allow.
    pub fn new(
        client_id: &str,
        client_name: &str,
        redirect_uris: Vec<String>,
    ) -> Result<Self, OAuthClientError> {
        let invalid = |reason| OAuthClientError::InvalidClientIdUrl {
            url: client_id.to_owned(),
            reason,
        };
        let uri: Uri = fetch::endpoint(client_id).map_err(|e| invalid(e.reason))?;
        if uri.scheme_str() != Some("https") {
            return Err(invalid("must be https"));
        }
        if matches!(uri.path(), "" | "/") {
            return Err(invalid("must have a path"));
        }
        if redirect_uris.is_empty() {
            return Err(invalid("no redirect_uris"));
        }
        for r in &redirect_uris {
            fetch::endpoint(r).map_err(|e| OAuthClientError::InvalidRedirectUri {
                url: r.clone(),
                reason: e.reason,
            })?;
        }
        Ok(ClientIdMetadataDocument {
            client_id: client_id.to_owned(),
            client_name: client_name.to_owned(),
            redirect_uris,
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            response_types: vec!["code".into()],
            token_endpoint_auth_method: "none".into(),
            client_uri: None,
        })
    }
}

/// Which registration to use with one authorization server.
#[derive(Debug, Clone)]
pub enum RegistrationChoice {
    PreRegistered(ClientIdentity),
    /// The document's URL is the `client_id`, a public client.
    MetadataDocument(ClientIdentity),
    /// Register at this endpoint ([`register_dynamic`]).
    Dynamic {
        endpoint: Uri,
    },
}

/// The spec's order: pre-registered, else a metadata document if the server supports them,
/// else DCR if it has a registration endpoint, else nothing possible.
pub fn choose_registration(
    pre_registered: Option<&ClientIdentity>,
    document: Option<&ClientIdMetadataDocument>,
    server: &AuthorizationServer,
) -> Result<RegistrationChoice, OAuthClientError> {
    if let Some(client) = pre_registered {
        return Ok(RegistrationChoice::PreRegistered(client.clone()));
    }
    if let Some(doc) = document.filter(|_| server.client_id_metadata_document_supported) {
        return Ok(RegistrationChoice::MetadataDocument(
            ClientIdentity::public(doc.client_id.clone()),
        ));
    }
    if let Some(endpoint) = &server.registration_endpoint {
        return Ok(RegistrationChoice::Dynamic {
            endpoint: endpoint.clone(),
        });
    }
    Err(OAuthClientError::NoRegistration {
        issuer: server.issuer().to_owned(),
    })
}

/// An RFC 7591 registration request for the gateway: a `web` application (it runs on a
/// server and redirects a browser), public, authorization code with refresh.
#[derive(Debug, Clone, Serialize)]
pub struct DynamicRegistrationRequest {
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    pub application_type: String,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub token_endpoint_auth_method: String,
}

impl DynamicRegistrationRequest {
    pub fn new(client_name: &str, redirect_uris: Vec<String>) -> Self {
        DynamicRegistrationRequest {
            client_name: client_name.to_owned(),
            redirect_uris,
            application_type: "web".into(),
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            response_types: vec!["code".into()],
            token_endpoint_auth_method: "none".into(),
        }
    }
}

impl DynamicRegistrationRequest {
    /// Keeps only the grant types `server` says it supports (`grant_types_supported`; all
    /// when it says nothing): an authorization server without refresh tokens refuses a
    /// registration that asks for them.
    pub fn for_server(mut self, server: &AuthorizationServer) -> Self {
        if let Some(supported) = server
            .metadata
            .document
            .get("grant_types_supported")
            .and_then(Value::as_array)
        {
            self.grant_types
                .retain(|g| supported.iter().any(|s| s.as_str() == Some(g)));
        }
        self
    }
}

/// Registers at `endpoint` (RFC 7591 §3): `201` with a `client_id`, and a `client_secret`
/// when the server made the client confidential after all.
pub async fn register_dynamic(
    egress: &EgressClient,
    endpoint: &Uri,
    request: &DynamicRegistrationRequest,
) -> Result<ClientIdentity, OAuthClientError> {
    let url = endpoint.to_string();
    let failed = |reason: String| OAuthClientError::Registration {
        url: url.clone(),
        reason,
    };
    let body = serde_json::to_vec(request).map_err(|e| failed(e.to_string()))?;
    let mut req = EgressRequest::new(Method::POST, endpoint.clone());
    req.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    req.body = Bytes::from(body);
    let (status, body) = send_bounded(
        egress,
        req,
        REGISTRATION_TIMEOUT,
        MAX_REGISTRATION_RESPONSE_BYTES,
    )
    .await
    .map_err(|e| match e {
        SendError::Timeout => failed(format!("no answer within {REGISTRATION_TIMEOUT:?}")),
        SendError::Egress(e) => failed(e.to_string()),
    })?;
    let doc = json::strict_object(&body).ok();
    let text = |name: &str| {
        doc.as_ref()
            .and_then(|d| d.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if status != StatusCode::CREATED && status != StatusCode::OK {
        let error = text("error").map(|e| scrub(&e, &[])).unwrap_or_default();
        let description = text("error_description")
            .map(|d| format!(": {}", scrub(&d, &[])))
            .unwrap_or_default();
        return Err(failed(format!(
            "HTTP {} {error}{description}",
            status.as_u16()
        )));
    }
    let client_id = text("client_id")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| failed("no client_id in the response".into()))?;
    let auth = match text("client_secret").filter(|s| !s.is_empty()) {
        None => ClientAuth::None,
        Some(secret) => match text("token_endpoint_auth_method").as_deref() {
            Some("client_secret_post") => ClientAuth::ClientSecretPost(Secret::new(secret)),
            _ => ClientAuth::ClientSecretBasic(Secret::new(secret)),
        },
    };
    Ok(ClientIdentity { client_id, auth })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::AuthorizationServerMetadata;

    fn server(cimd: bool, registration: bool) -> AuthorizationServer {
        AuthorizationServer {
            metadata: AuthorizationServerMetadata {
                issuer: "https://as.example.com".into(),
                jwks_uri: None,
                introspection_endpoint: None,
                token_endpoint: None,
                authorization_endpoint: None,
                scopes_supported: None,
                document: Default::default(),
            },
            authorization_endpoint: "https://as.example.com/authorize".parse().unwrap(),
            token_endpoint: "https://as.example.com/token".parse().unwrap(),
            registration_endpoint: registration
                .then(|| "https://as.example.com/register".parse().unwrap()),
            iss_parameter_supported: true,
            client_id_metadata_document_supported: cimd,
        }
    }

    fn document() -> ClientIdMetadataDocument {
        ClientIdMetadataDocument::new(
            "https://gw.example.com/oauth/client.json",
            "Portcullis",
            vec!["https://gw.example.com/oauth/callback".into()],
        )
        .unwrap()
    }

    #[test]
    fn the_metadata_document_serializes_with_its_own_url_as_client_id() {
        assert_eq!(
            serde_json::to_value(document()).unwrap(),
            serde_json::json!({
                "client_id": "https://gw.example.com/oauth/client.json",
                "client_name": "Portcullis",
                "redirect_uris": ["https://gw.example.com/oauth/callback"],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
            })
        );
    }

    #[test]
    fn a_client_id_url_must_be_https_with_a_path() {
        let cb = || vec!["https://gw.example.com/cb".to_owned()];
        for bad in [
            "https://gw.example.com",
            "https://gw.example.com/",
            "http://127.0.0.1/c.json",
            "gw.example.com/c.json",
        ] {
            assert!(
                ClientIdMetadataDocument::new(bad, "P", cb()).is_err(),
                "{bad}"
            );
        }
        assert!(
            ClientIdMetadataDocument::new("https://gw.example.com/c.json", "P", vec![]).is_err()
        );
        assert!(
            ClientIdMetadataDocument::new(
                "https://gw.example.com/c.json",
                "P",
                vec!["http://evil.example/cb".into()]
            )
            .is_err()
        );
    }

    #[test]
    fn registration_follows_the_spec_order() {
        let pre = ClientIdentity::public("pre-1");
        let doc = document();
        assert!(matches!(
            choose_registration(Some(&pre), Some(&doc), &server(true, true)).unwrap(),
            RegistrationChoice::PreRegistered(c) if c.client_id == "pre-1"
        ));
        assert!(matches!(
            choose_registration(None, Some(&doc), &server(true, true)).unwrap(),
            RegistrationChoice::MetadataDocument(c) if c.client_id == doc.client_id
        ));
        assert!(matches!(
            choose_registration(None, Some(&doc), &server(false, true)).unwrap(),
            RegistrationChoice::Dynamic { .. }
        ));
        assert!(matches!(
            choose_registration(None, None, &server(true, true)).unwrap(),
            RegistrationChoice::Dynamic { .. }
        ));
        assert!(matches!(
            choose_registration(None, Some(&doc), &server(false, false)),
            Err(OAuthClientError::NoRegistration { .. })
        ));
    }
}
