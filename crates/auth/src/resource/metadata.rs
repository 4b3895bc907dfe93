//! OAuth 2.0 Protected Resource Metadata (RFC 9728): how an MCP client learns, from the
//! resource alone, which authorization servers issue tokens for it and with which scopes.

use serde::Serialize;

/// The metadata document served at [`metadata_url`] of the resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProtectedResourceMetadata {
    /// The resource's canonical URL: the audience tokens must carry.
    pub resource: String,
    /// Issuer identifiers of the authorization servers (the MCP spec requires at least one).
    pub authorization_servers: Vec<String>,
    /// The scopes a client needs for basic use; omitted when empty, so that clients omit the
    /// `scope` parameter rather than ask for nothing (MCP authorization §6).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// Always `["header"]`: tokens in the query string or in a form body are refused.
    bearer_methods_supported: [&'static str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
}

impl ProtectedResourceMetadata {
    pub fn new(resource: impl Into<String>, authorization_servers: Vec<String>) -> Self {
        ProtectedResourceMetadata {
            resource: resource.into(),
            authorization_servers,
            scopes_supported: Vec::new(),
            bearer_methods_supported: ["header"],
            resource_name: None,
        }
    }

    pub fn with_scopes(mut self, scopes: Vec<String>) -> Self {
        self.scopes_supported = scopes;
        self
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }
}

/// The RFC 9728 §3.1 well-known URL of a resource's metadata: `/.well-known/oauth-protected-resource`
/// inserted between the host and the path (`https://host/mcp/files` →
/// `https://host/.well-known/oauth-protected-resource/mcp/files`). `resource` is expected in
/// canonical form ([`super::canonical_resource`]); a trailing slash of the path is dropped.
pub fn metadata_url(resource: &str) -> String {
    const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";
    let after_scheme = resource.find("://").map_or(0, |i| i + 3);
    let path_start = resource[after_scheme..]
        .find(['/', '?'])
        .map_or(resource.len(), |i| after_scheme + i);
    let (origin, rest) = resource.split_at(path_start);
    let (path, query) = match rest.find('?') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    format!("{origin}{WELL_KNOWN}{}{query}", path.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_metadata_url_inserts_the_well_known_path_before_the_resource_path() {
        assert_eq!(
            metadata_url("https://host/mcp/files"),
            "https://host/.well-known/oauth-protected-resource/mcp/files"
        );
        assert_eq!(
            metadata_url("https://host:8443"),
            "https://host:8443/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            metadata_url("https://host/"),
            "https://host/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            metadata_url("https://host/mcp?tenant=a"),
            "https://host/.well-known/oauth-protected-resource/mcp?tenant=a"
        );
    }

    #[test]
    fn the_document_has_the_rfc_9728_members_and_only_header_bearer_method() {
        let doc = ProtectedResourceMetadata::new(
            "https://mcp.example.com/mcp/files",
            vec!["https://idp.example.com/realms/acme".into()],
        )
        .with_scopes(vec!["mcp:tools".into(), "files:read".into()])
        .with_name("Files");
        assert_eq!(
            serde_json::to_value(&doc).unwrap(),
            json!({
                "resource": "https://mcp.example.com/mcp/files",
                "authorization_servers": ["https://idp.example.com/realms/acme"],
                "scopes_supported": ["mcp:tools", "files:read"],
                "bearer_methods_supported": ["header"],
                "resource_name": "Files",
            })
        );
    }

    #[test]
    fn empty_scopes_and_no_name_are_omitted() {
        let doc = ProtectedResourceMetadata::new("https://h/mcp", vec!["https://as".into()]);
        let v = serde_json::to_value(&doc).unwrap();
        assert_eq!(
            v,
            json!({
                "resource": "https://h/mcp",
                "authorization_servers": ["https://as"],
                "bearer_methods_supported": ["header"],
            })
        );
    }
}
