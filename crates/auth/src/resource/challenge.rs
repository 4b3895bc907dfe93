//! `WWW-Authenticate` challenges (RFC 6750 §3, RFC 9728 §5.1, MCP authorization §10).
//!
//! Every value is written as a quoted-string. Characters a value's grammar does not allow
//! are removed rather than escaped into the header: RFC 6750 allows neither `"` nor `\` nor
//! anything outside printable ASCII in `scope`, `error` and `error_description`, and a
//! control character (CR, LF) in any value would be header injection. The URL of the
//! metadata may contain `"` or `\` in principle; those are escaped as quoted-pairs.

use http::HeaderValue;

/// The challenge of a 401: no token, or an invalid or expired one.
///
/// `resource_metadata` is the RFC 9728 metadata URL ([`super::metadata_url`]); `scope` the
/// scopes the request needs (MCP authorization §6: a client requests them first); `error` a
/// code and description, given only when a token was presented (RFC 6750 §3.1: a request
/// with no credentials gets no error code).
pub fn unauthorized(
    resource_metadata: &str,
    scope: Option<&str>,
    error: Option<(&str, &str)>,
) -> HeaderValue {
    let mut c = Challenge::new();
    c.url_param("resource_metadata", resource_metadata);
    if let Some(scope) = scope {
        c.param("scope", scope);
    }
    if let Some((code, description)) = error {
        c.param("error", code);
        c.param("error_description", description);
    }
    c.finish()
}

/// The challenge of a 403 when the token lacks scopes: `scope` is what the request needs
/// (the scopes still required plus the new ones, per the spec's step-up guidance).
pub fn insufficient_scope(resource_metadata: &str, scope: &str) -> HeaderValue {
    let mut c = Challenge::new();
    c.param("error", "insufficient_scope");
    c.param("scope", scope);
    c.url_param("resource_metadata", resource_metadata);
    c.finish()
}

/// The challenge of a 400 for a malformed `Authorization` header (RFC 6750 §3.1
/// `invalid_request`).
pub fn invalid_request(resource_metadata: &str, description: &str) -> HeaderValue {
    let mut c = Challenge::new();
    c.param("error", "invalid_request");
    c.param("error_description", description);
    c.url_param("resource_metadata", resource_metadata);
    c.finish()
}

struct Challenge {
    text: String,
    params: usize,
}

impl Challenge {
    fn new() -> Self {
        Challenge {
            text: String::from("Bearer"),
            params: 0,
        }
    }

    fn start(&mut self, name: &str) {
        self.text
            .push_str(if self.params == 0 { " " } else { ", " });
        self.params += 1;
        self.text.push_str(name);
        self.text.push_str("=\"");
    }

    /// A parameter under RFC 6750's grammar: `%x20-21 / %x23-5B / %x5D-7E`. Empty values
    /// (after removal) are left out.
    fn param(&mut self, name: &str, value: &str) {
        let allowed = |c: &char| matches!(*c, '\x20'..='\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E');
        let clean: String = value.chars().filter(allowed).collect();
        if clean.trim().is_empty() {
            return;
        }
        self.start(name);
        self.text.push_str(&clean);
        self.text.push('"');
    }

    /// A URL parameter as an RFC 9110 quoted-string: printable ASCII, `"` and `\` escaped.
    fn url_param(&mut self, name: &str, value: &str) {
        self.start(name);
        for c in value.chars().filter(|c| matches!(*c, '\x20'..='\x7E')) {
            if matches!(c, '"' | '\\') {
                self.text.push('\\');
            }
            self.text.push(c);
        }
        self.text.push('"');
    }

    fn finish(self) -> HeaderValue {
        // Only printable ASCII was written, so this cannot fail; a bare `Bearer` is still a
        // valid challenge if it somehow did.
        HeaderValue::from_str(&self.text).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRM: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp/files";

    fn s(v: HeaderValue) -> String {
        v.to_str().unwrap().to_owned()
    }

    #[test]
    fn a_request_without_a_token_gets_no_error_code() {
        assert_eq!(
            s(unauthorized(PRM, Some("mcp:tools files:read"), None)),
            format!(r#"Bearer resource_metadata="{PRM}", scope="mcp:tools files:read""#)
        );
        assert_eq!(
            s(unauthorized(PRM, None, None)),
            format!(r#"Bearer resource_metadata="{PRM}""#)
        );
    }

    #[test]
    fn an_invalid_token_gets_the_error_and_description() {
        assert_eq!(
            s(unauthorized(
                PRM,
                Some("mcp:tools"),
                Some(("invalid_token", "The access token expired"))
            )),
            format!(
                r#"Bearer resource_metadata="{PRM}", scope="mcp:tools", error="invalid_token", error_description="The access token expired""#
            )
        );
    }

    #[test]
    fn insufficient_scope_names_the_scopes_needed() {
        assert_eq!(
            s(insufficient_scope(PRM, "tickets:read tickets:write")),
            format!(
                r#"Bearer error="insufficient_scope", scope="tickets:read tickets:write", resource_metadata="{PRM}""#
            )
        );
    }

    #[test]
    fn invalid_request_carries_its_description() {
        assert_eq!(
            s(invalid_request(PRM, "Malformed Authorization header")),
            format!(
                r#"Bearer error="invalid_request", error_description="Malformed Authorization header", resource_metadata="{PRM}""#
            )
        );
    }

    #[test]
    fn header_injection_through_a_description_is_impossible() {
        let v = s(unauthorized(
            PRM,
            Some("a\"b\\c"),
            Some(("invalid_token", "bad\r\nSet-Cookie: x=\"1\"\u{0}é")),
        ));
        assert!(
            v.ends_with(
                r#"scope="abc", error="invalid_token", error_description="badSet-Cookie: x=1""#
            ),
            "{v}"
        );
    }

    #[test]
    fn quotes_in_the_metadata_url_are_escaped_and_controls_removed() {
        let v = s(unauthorized("https://h/a\"b\\c\r\n", None, None));
        assert_eq!(v, r#"Bearer resource_metadata="https://h/a\"b\\c""#);
    }

    #[test]
    fn an_empty_scope_is_left_out() {
        assert_eq!(
            s(unauthorized(PRM, Some(""), None)),
            format!(r#"Bearer resource_metadata="{PRM}""#)
        );
    }
}
