//! The canonical URI of a protected resource (RFC 8707 §2, MCP authorization §8.1).
//!
//! Tokens are audience-bound to this string and compared with it exactly, so there must be
//! one spelling per resource: the one written in `aud`, in the RFC 9728 `resource` member and
//! in the `resource` parameter clients send to the authorization server.

/// Why a URL cannot name a protected resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url:?} is not a valid resource URL: {reason}")]
pub struct InvalidResourceUrl {
    pub url: String,
    pub reason: &'static str,
}

/// The canonical form of a resource URL: lowercase scheme and host, the default port
/// dropped, the path kept without trailing slashes, the query kept. Refused: a scheme other
/// than `http`/`https`, no host, user information, an invalid port, and a fragment (RFC 8707
/// forbids one; stripping it silently would hide a configuration mistake).
pub fn canonical_resource(url: &str) -> Result<String, InvalidResourceUrl> {
    let invalid = |reason| InvalidResourceUrl {
        url: url.to_owned(),
        reason,
    };
    // `http::Uri` drops fragments without a word, so look before it does.
    if url.contains('#') {
        return Err(invalid("a resource URL has no fragment"));
    }
    let uri: http::Uri = url.parse().map_err(|_| invalid("not an absolute URL"))?;
    let scheme = match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("https") => "https",
        Some(s) if s.eq_ignore_ascii_case("http") => "http",
        Some(_) => return Err(invalid("the scheme must be http or https")),
        None => return Err(invalid("not an absolute URL (no scheme)")),
    };
    let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
    if authority.as_str().contains('@') {
        return Err(invalid("user information is not allowed"));
    }
    let host = authority.host().to_ascii_lowercase();
    if host.is_empty() {
        return Err(invalid("no host"));
    }
    let port = match uri.port_u16() {
        Some(0) => return Err(invalid("port 0 is not a port")),
        Some(p) => Some(p),
        // An authority longer than its host has a port part that did not parse.
        None if authority.as_str().len() != authority.host().len() => {
            return Err(invalid("invalid port"));
        }
        None => None,
    };
    let default_port = if scheme == "https" { 443 } else { 80 };
    let mut out = format!("{scheme}://{host}");
    if let Some(p) = port.filter(|&p| p != default_port) {
        out.push(':');
        out.push_str(&p.to_string());
    }
    out.push_str(uri.path().trim_end_matches('/'));
    if let Some(q) = uri.query() {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_examples_are_canonical_already() {
        for u in [
            "https://mcp.example.com/mcp",
            "https://mcp.example.com",
            "https://mcp.example.com:8443",
            "https://mcp.example.com/server/mcp",
        ] {
            assert_eq!(canonical_resource(u).unwrap(), u);
        }
    }

    #[test]
    fn scheme_and_host_are_lowercased_and_the_path_is_kept() {
        assert_eq!(
            canonical_resource("HTTPS://MCP.Example.COM/Mcp/Files").unwrap(),
            "https://mcp.example.com/Mcp/Files"
        );
    }

    #[test]
    fn default_ports_and_trailing_slashes_are_dropped() {
        assert_eq!(canonical_resource("https://h:443/").unwrap(), "https://h");
        assert_eq!(
            canonical_resource("http://h:80/mcp/").unwrap(),
            "http://h/mcp"
        );
        assert_eq!(
            canonical_resource("http://h:443/mcp").unwrap(),
            "http://h:443/mcp"
        );
        assert_eq!(canonical_resource("https://h:80").unwrap(), "https://h:80");
        assert_eq!(
            canonical_resource("https://h/mcp//").unwrap(),
            "https://h/mcp"
        );
        assert_eq!(
            canonical_resource("http://[::1]:8440/mcp").unwrap(),
            "http://[::1]:8440/mcp"
        );
        assert_eq!(
            canonical_resource("https://h/mcp?v=1").unwrap(),
            "https://h/mcp?v=1"
        );
    }

    #[test]
    fn urls_that_cannot_name_a_resource_are_refused() {
        for u in [
            "mcp.example.com",
            "https://mcp.example.com#fragment",
            "https://mcp.example.com/mcp#",
            "ftp://h/x",
            "https://user@h/x",
            "https://h:0/x",
            "https://h:99999/x",
            "https://h:/x",
            "/mcp",
            "",
        ] {
            assert!(canonical_resource(u).is_err(), "{u} must be refused");
        }
    }
}
