//! Removing the client's credentials from headers bound upstream.

use http::HeaderMap;
use http::HeaderName;
use http::header::{AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION};

/// Removes every value of `Authorization`, `Cookie`, `Proxy-Authorization` and of each
/// `extra` header (the configured `auth.strip_headers`) from `headers`.
///
/// The gateway calls it on anything it copies from a client request to an upstream request:
/// the client's token is for the gateway alone (MCP authorization §11.8, no token
/// passthrough), and the upstream gets its own credential instead.
pub fn strip_client_credentials(headers: &mut HeaderMap, extra: &[HeaderName]) {
    for name in [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION]
        .iter()
        .chain(extra)
    {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn client_credentials_are_removed_in_every_spelling_and_repetition() {
        let mut h = HeaderMap::new();
        h.append(
            "Authorization",
            HeaderValue::from_static("Bearer client-token"),
        );
        h.append("authorization", HeaderValue::from_static("Bearer second"));
        h.append("COOKIE", HeaderValue::from_static("sid=1"));
        h.append("cookie", HeaderValue::from_static("sid=2"));
        h.append(
            "proxy-authorization",
            HeaderValue::from_static("Basic eA=="),
        );
        h.append("x-api-key", HeaderValue::from_static("client-key"));
        h.append("accept", HeaderValue::from_static("application/json"));
        strip_client_credentials(&mut h, &[HeaderName::from_static("x-api-key")]);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["accept"], "application/json");
    }

    #[test]
    fn other_headers_are_kept() {
        let mut h = HeaderMap::new();
        h.insert(
            "mcp-protocol-version",
            HeaderValue::from_static("2025-11-25"),
        );
        h.insert("x-api-key", HeaderValue::from_static("k"));
        strip_client_credentials(&mut h, &[]);
        assert_eq!(h.len(), 2);
    }
}
