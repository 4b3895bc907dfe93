//! Finding a remote MCP server's authorization server (MCP authorization §4): its protected
//! resource metadata (RFC 9728), then the authorization server's metadata (RFC 8414 / OIDC
//! Discovery, through [`crate::resource::discover`], which checks `issuer` exactly).
//!
//! Both documents can lie, so: the metadata's `resource` must cover the server URL (a
//! document for another resource would have the user's token issued for it), and an
//! authorization server that does not advertise PKCE `S256` is refused, as the spec requires.

use http::Uri;
use portcullis_egress::EgressClient;
use serde_json::{Map, Value};

use super::challenge::BearerChallenge;
use super::error::OAuthClientError;
use crate::resource::fetch::{self, Bounds, FetchError};
use crate::resource::{
    AuthorizationServerMetadata, DiscoveryConfig, canonical_resource, metadata_url,
};

/// RFC 9728 protected resource metadata, the members the client uses.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceMetadata {
    /// Canonical form of the document's `resource`: the `resource` parameter sent to the
    /// authorization server, and the audience of the tokens.
    pub resource: String,
    pub authorization_servers: Vec<String>,
    pub scopes_supported: Option<Vec<String>>,
    /// Where it was read.
    pub url: String,
}

/// An authorization server the client may use: discovered, issuer-checked, PKCE `S256`.
#[derive(Debug, Clone)]
pub struct AuthorizationServer {
    pub metadata: AuthorizationServerMetadata,
    pub authorization_endpoint: Uri,
    pub token_endpoint: Uri,
    pub registration_endpoint: Option<Uri>,
    /// RFC 9207: the authorization response carries `iss`, and it must be checked.
    pub iss_parameter_supported: bool,
    /// The Client ID Metadata Document draft: a URL may serve as `client_id`.
    pub client_id_metadata_document_supported: bool,
}

impl AuthorizationServer {
    pub fn issuer(&self) -> &str {
        &self.metadata.issuer
    }
}

/// What discovery found for one server.
#[derive(Debug, Clone)]
pub struct Discovered {
    pub resource: ResourceMetadata,
    pub server: AuthorizationServer,
}

/// The URLs of the protected resource metadata of `server_url`, in the order they must be
/// tried: the challenge's `resource_metadata` alone when it has one, else the path-inserted
/// well-known URL, then the root one.
pub fn resource_metadata_urls(
    server_url: &str,
    challenge: Option<&BearerChallenge>,
) -> Result<Vec<Uri>, OAuthClientError> {
    if let Some(url) = challenge.and_then(|c| c.resource_metadata.as_deref()) {
        return Ok(vec![fetch::endpoint(url)?]);
    }
    let canonical = canonical_resource(server_url)?;
    let path_inserted = metadata_url(&canonical);
    let root = metadata_url(&origin_of(&canonical));
    let mut urls = vec![fetch::endpoint(&path_inserted)?];
    if root != path_inserted {
        urls.push(fetch::endpoint(&root)?);
    }
    Ok(urls)
}

/// `scheme://host[:port]` of a canonical resource URL.
fn origin_of(canonical: &str) -> String {
    let after_scheme = canonical.find("://").map_or(0, |i| i + 3);
    let end = canonical[after_scheme..]
        .find(['/', '?'])
        .map_or(canonical.len(), |i| after_scheme + i);
    canonical[..end].to_owned()
}

/// Whether the metadata's `resource` covers `server_url` (both canonical): the same origin,
/// and the server's path is the resource's path or below it on a segment boundary. This is
/// the comparison of the MCP SDKs: a document at the root well-known URL names the origin,
/// and one for `/mcp` must not be accepted for `/mcpevil` or another host.
pub fn resource_covers(resource: &str, server_url: &str) -> bool {
    let (Ok(resource), Ok(server)) = (canonical_resource(resource), canonical_resource(server_url))
    else {
        return false;
    };
    if resource.contains('?') {
        return resource == server;
    }
    let origin = origin_of(&resource);
    if origin_of(&server) != origin {
        return false;
    }
    let server_path = server[origin.len()..].split('?').next().unwrap_or("");
    let resource_path = &resource[origin.len()..];
    resource_path.is_empty()
        || server_path == resource_path
        || server_path
            .strip_prefix(resource_path)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Fetches the protected resource metadata of `server_url` ([`resource_metadata_urls`]): the
/// first URL answering `200` with a JSON object is used; an error status tries the next; a
/// transport failure stops.
pub async fn discover_resource(
    egress: &EgressClient,
    server_url: &str,
    challenge: Option<&BearerChallenge>,
    config: &DiscoveryConfig,
) -> Result<ResourceMetadata, OAuthClientError> {
    let bounds = Bounds {
        timeout: config.timeout,
        max_body_bytes: config.max_body_bytes,
    };
    let mut last = String::from("nothing tried");
    for url in resource_metadata_urls(server_url, challenge)? {
        match fetch::get_json(egress, &url, &bounds).await {
            Ok((_, document)) => return parse_resource_metadata(server_url, &url, &document),
            Err(FetchError::Status(status)) => last = format!("{url}: HTTP {}", status.as_u16()),
            Err(FetchError::NotJson) => last = format!("{url}: not a JSON object"),
            Err(source) => {
                return Err(OAuthClientError::Fetch {
                    url: url.to_string(),
                    source: Box::new(source),
                });
            }
        }
    }
    Err(OAuthClientError::NoResourceMetadata {
        server: server_url.to_owned(),
        last,
    })
}

fn parse_resource_metadata(
    server_url: &str,
    url: &Uri,
    document: &Map<String, Value>,
) -> Result<ResourceMetadata, OAuthClientError> {
    let invalid = |reason| OAuthClientError::InvalidResourceMetadata {
        url: url.to_string(),
        reason,
    };
    let found = document
        .get("resource")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("no resource"))?;
    if !resource_covers(found, server_url) {
        return Err(OAuthClientError::ResourceMismatch {
            url: url.to_string(),
            expected: server_url.to_owned(),
            found: found.to_owned(),
        });
    }
    let authorization_servers = strings(document.get("authorization_servers"))
        .ok_or_else(|| invalid("authorization_servers is not a list of strings"))?
        .unwrap_or_default();
    if authorization_servers.is_empty() {
        return Err(invalid("no authorization_servers"));
    }
    let scopes_supported = strings(document.get("scopes_supported"))
        .ok_or_else(|| invalid("scopes_supported is not a list of strings"))?;
    Ok(ResourceMetadata {
        resource: canonical_resource(found)?,
        authorization_servers,
        scopes_supported,
        url: url.to_string(),
    })
}

/// `None` for the wrong type, `Some(None)` when absent.
fn strings(value: Option<&Value>) -> Option<Option<Vec<String>>> {
    match value {
        None | Some(Value::Null) => Some(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some),
        Some(_) => None,
    }
}

/// Fetches and checks the metadata of `issuer`: exact `issuer` ([`crate::resource::discover`]),
/// PKCE `S256`, and usable authorization and token endpoints.
pub async fn discover_authorization_server(
    egress: &EgressClient,
    issuer: &str,
    config: &DiscoveryConfig,
) -> Result<AuthorizationServer, OAuthClientError> {
    let metadata = crate::resource::discover(egress, issuer, config).await?;
    authorization_server(metadata)
}

/// The checks on discovered metadata, apart from fetching it.
pub(crate) fn authorization_server(
    metadata: AuthorizationServerMetadata,
) -> Result<AuthorizationServer, OAuthClientError> {
    let doc = &metadata.document;
    let s256 = doc
        .get("code_challenge_methods_supported")
        .and_then(Value::as_array)
        .is_some_and(|m| m.iter().any(|v| v.as_str() == Some("S256")));
    if !s256 {
        return Err(OAuthClientError::PkceS256NotSupported {
            issuer: metadata.issuer.clone(),
        });
    }
    let missing = |endpoint| OAuthClientError::MissingEndpoint {
        issuer: metadata.issuer.clone(),
        endpoint,
    };
    let authorization_endpoint = fetch::endpoint(
        metadata
            .authorization_endpoint
            .as_deref()
            .ok_or_else(|| missing("authorization_endpoint"))?,
    )?;
    let token_endpoint = fetch::endpoint(
        metadata
            .token_endpoint
            .as_deref()
            .ok_or_else(|| missing("token_endpoint"))?,
    )?;
    let registration_endpoint = match doc.get("registration_endpoint").and_then(Value::as_str) {
        Some(url) => Some(fetch::endpoint(url)?),
        None => None,
    };
    let flag = |name| doc.get(name).and_then(Value::as_bool) == Some(true);
    Ok(AuthorizationServer {
        iss_parameter_supported: flag("authorization_response_iss_parameter_supported"),
        client_id_metadata_document_supported: flag("client_id_metadata_document_supported"),
        authorization_endpoint,
        token_endpoint,
        registration_endpoint,
        metadata,
    })
}

/// The whole discovery for `server_url` after its 401: resource metadata, then the first
/// authorization server it names (RFC 9728 §7.6 leaves the choice to the client).
pub async fn discover(
    egress: &EgressClient,
    server_url: &str,
    challenge: Option<&BearerChallenge>,
    config: &DiscoveryConfig,
) -> Result<Discovered, OAuthClientError> {
    let resource = discover_resource(egress, server_url, challenge, config).await?;
    let issuer = resource.authorization_servers[0].clone();
    let server = discover_authorization_server(egress, &issuer, config).await?;
    Ok(Discovered { resource, server })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn urls(server: &str, challenge: Option<&BearerChallenge>) -> Vec<String> {
        resource_metadata_urls(server, challenge)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn resource_metadata_urls_are_path_inserted_then_root() {
        assert_eq!(
            urls("https://mcp.example.com/public/mcp", None),
            [
                "https://mcp.example.com/.well-known/oauth-protected-resource/public/mcp",
                "https://mcp.example.com/.well-known/oauth-protected-resource",
            ]
        );
        assert_eq!(
            urls("https://mcp.example.com/", None),
            ["https://mcp.example.com/.well-known/oauth-protected-resource"]
        );
    }

    #[test]
    fn the_challenges_resource_metadata_is_the_only_url_tried() {
        let c = BearerChallenge {
            resource_metadata: Some("https://meta.example.com/prm/x".into()),
            ..Default::default()
        };
        assert_eq!(
            urls("https://mcp.example.com/mcp", Some(&c)),
            ["https://meta.example.com/prm/x"]
        );
        // And it is held to the endpoint rules: no plain http to a remote host.
        let c = BearerChallenge {
            resource_metadata: Some("http://169.254.169.254/latest".into()),
            ..Default::default()
        };
        assert!(resource_metadata_urls("https://mcp.example.com/mcp", Some(&c)).is_err());
    }

    #[test]
    fn the_resource_must_cover_the_server_url() {
        let s = "https://mcp.example.com/mcp";
        for ok in [
            "https://mcp.example.com/mcp",
            "HTTPS://MCP.example.com:443/mcp/",
            "https://mcp.example.com",
        ] {
            assert!(resource_covers(ok, s), "{ok}");
        }
        assert!(resource_covers("https://h/a", "https://h/a/b"));
        for bad in [
            "https://evil.example.com/mcp",
            "https://mcp.example.com:8443/mcp",
            "http://mcp.example.com/mcp",
            "https://mcp.example.com/mc",
            "https://mcp.example.com/mcp/other",
            "https://mcp.example.com/mcp?x=1",
            "not a url",
        ] {
            assert!(!resource_covers(bad, s), "{bad}");
        }
    }

    #[test]
    fn metadata_for_another_resource_is_refused() {
        let url: Uri = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
            .parse()
            .unwrap();
        let doc = json!({"resource": "https://other.example.com/mcp", "authorization_servers": ["https://as"]});
        let err = parse_resource_metadata(
            "https://mcp.example.com/mcp",
            &url,
            doc.as_object().unwrap(),
        )
        .unwrap_err();
        assert!(
            matches!(err, OAuthClientError::ResourceMismatch { .. }),
            "{err}"
        );
        let doc = json!({"resource": "https://mcp.example.com/mcp", "authorization_servers": []});
        assert!(matches!(
            parse_resource_metadata(
                "https://mcp.example.com/mcp",
                &url,
                doc.as_object().unwrap()
            ),
            Err(OAuthClientError::InvalidResourceMetadata { .. })
        ));
        let doc = json!({"resource": "https://mcp.example.com/mcp/", "authorization_servers": ["https://as"], "scopes_supported": ["a"]});
        let m = parse_resource_metadata(
            "https://mcp.example.com/mcp",
            &url,
            doc.as_object().unwrap(),
        )
        .unwrap();
        assert_eq!(m.resource, "https://mcp.example.com/mcp");
        assert_eq!(m.scopes_supported, Some(vec!["a".to_owned()]));
    }

    fn as_metadata(extra: Value) -> AuthorizationServerMetadata {
        let mut document = json!({
            "issuer": "https://as.example.com",
            "authorization_endpoint": "https://as.example.com/authorize",
            "token_endpoint": "https://as.example.com/token",
        });
        for (k, v) in extra.as_object().unwrap() {
            document[k] = v.clone();
        }
        let document = document.as_object().unwrap().clone();
        let s = |k: &str| document.get(k).and_then(Value::as_str).map(str::to_owned);
        AuthorizationServerMetadata {
            issuer: s("issuer").unwrap(),
            jwks_uri: None,
            introspection_endpoint: None,
            token_endpoint: s("token_endpoint"),
            authorization_endpoint: s("authorization_endpoint"),
            scopes_supported: None,
            document,
        }
    }

    #[test]
    fn an_authorization_server_without_pkce_s256_is_refused() {
        for methods in [json!(null), json!([]), json!(["plain"]), json!("S256")] {
            let err = authorization_server(as_metadata(
                json!({"code_challenge_methods_supported": methods}),
            ))
            .unwrap_err();
            assert!(
                matches!(err, OAuthClientError::PkceS256NotSupported { .. }),
                "{methods}: {err}"
            );
        }
        let ok = authorization_server(as_metadata(json!({
            "code_challenge_methods_supported": ["plain", "S256"],
            "authorization_response_iss_parameter_supported": true,
            "registration_endpoint": "https://as.example.com/reg",
        })))
        .unwrap();
        assert!(ok.iss_parameter_supported);
        assert!(!ok.client_id_metadata_document_supported);
        assert!(ok.registration_endpoint.is_some());
    }

    #[test]
    fn dangerous_endpoint_urls_in_metadata_are_refused() {
        for bad in [
            "javascript:alert(1)",
            "http://as.example.com/authorize",
            "file:///x",
        ] {
            let err = authorization_server(as_metadata(json!({
                "code_challenge_methods_supported": ["S256"],
                "authorization_endpoint": bad,
            })))
            .unwrap_err();
            assert!(
                matches!(err, OAuthClientError::InvalidEndpoint(_)),
                "{bad}: {err}"
            );
        }
    }
}
