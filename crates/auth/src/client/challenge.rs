//! Reading an upstream's `WWW-Authenticate` challenge (RFC 9110 §11.6.1, RFC 6750 §3,
//! RFC 9728 §5.1): the client's half of [`crate::resource::challenge`].
//!
//! The header comes from the remote server, so the parser is bounded and never fails: what
//! it cannot read is skipped. Only the `Bearer` challenge is used; other schemes in the same
//! header (`Basic realm=…, Bearer …`) are stepped over.

use http::HeaderMap;
use http::header::WWW_AUTHENTICATE;

/// Header text beyond this many bytes (per value) is not read.
const MAX_CHALLENGE_BYTES: usize = 8 * 1024;

/// The parameters of a `Bearer` challenge the OAuth client acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BearerChallenge {
    /// RFC 9728: where the protected resource metadata is.
    pub resource_metadata: Option<String>,
    /// The scopes this request needs (space-separated), authoritative for it.
    pub scope: Option<String>,
    /// `invalid_token`, `insufficient_scope`, …
    pub error: Option<String>,
    pub error_description: Option<String>,
}

impl BearerChallenge {
    /// Whether this is the 403 step-up challenge (RFC 6750 §3.1 `insufficient_scope`).
    pub fn is_insufficient_scope(&self) -> bool {
        self.error.as_deref() == Some("insufficient_scope")
    }
}

/// The first `Bearer` challenge among the `WWW-Authenticate` headers, if any. A parameter
/// given twice keeps its first value.
pub fn parse_bearer_challenge(headers: &HeaderMap) -> Option<BearerChallenge> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|text| {
            let text = cut(text, MAX_CHALLENGE_BYTES);
            parse_challenges(text)
                .into_iter()
                .find(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, params)| bearer(params))
        })
}

fn bearer(params: Vec<(String, String)>) -> BearerChallenge {
    let mut c = BearerChallenge::default();
    for (name, value) in params {
        let slot = match name.as_str() {
            "resource_metadata" => &mut c.resource_metadata,
            "scope" => &mut c.scope,
            "error" => &mut c.error,
            "error_description" => &mut c.error_description,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value);
        }
    }
    c
}

fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `challenge = auth-scheme [ 1*SP ( token68 / #auth-param ) ]`, several separated by commas.
/// A token followed by `=` is a parameter of the current challenge; any other token starts a
/// new challenge (a token68 is read as a scheme with no parameters, which is harmless).
fn parse_challenges(text: &str) -> Vec<(String, Vec<(String, String)>)> {
    let bytes = text.as_bytes();
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < bytes.len() && matches!(bytes[*i], b' ' | b'\t') {
            *i += 1;
        }
    };
    while i < bytes.len() {
        while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b',') {
            i += 1;
        }
        let name = read_token(bytes, &mut i);
        if name.is_empty() {
            i += 1; // not a token character: step over it
            continue;
        }
        skip_ws(&mut i);
        if bytes.get(i) == Some(&b'=') {
            i += 1;
            skip_ws(&mut i);
            let value = if bytes.get(i) == Some(&b'"') {
                read_quoted(bytes, &mut i)
            } else {
                read_token(bytes, &mut i)
            };
            if let Some((_, params)) = out.last_mut() {
                params.push((name.to_ascii_lowercase(), value));
            }
        } else {
            out.push((name, Vec::new()));
        }
    }
    out
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn read_token(bytes: &[u8], i: &mut usize) -> String {
    let start = *i;
    while *i < bytes.len() && is_tchar(bytes[*i]) {
        *i += 1;
    }
    String::from_utf8_lossy(&bytes[start..*i]).into_owned()
}

/// A quoted-string from its opening quote; quoted-pairs unescaped. An unterminated string
/// ends at the end of the text.
fn read_quoted(bytes: &[u8], i: &mut usize) -> String {
    *i += 1;
    let mut out = Vec::new();
    while *i < bytes.len() {
        match bytes[*i] {
            b'"' => {
                *i += 1;
                break;
            }
            b'\\' if *i + 1 < bytes.len() => {
                out.push(bytes[*i + 1]);
                *i += 2;
            }
            b => {
                out.push(b);
                *i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::challenge;
    use http::HeaderValue;

    fn parse(values: &[&str]) -> Option<BearerChallenge> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                WWW_AUTHENTICATE,
                HeaderValue::from_bytes(v.as_bytes()).unwrap(),
            );
        }
        parse_bearer_challenge(&h)
    }

    #[test]
    fn the_resource_servers_own_challenges_read_back() {
        let prm = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
        let mut h = HeaderMap::new();
        h.insert(
            WWW_AUTHENTICATE,
            challenge::insufficient_scope(prm, "files:read files:write"),
        );
        let c = parse_bearer_challenge(&h).unwrap();
        assert!(c.is_insufficient_scope());
        assert_eq!(c.scope.as_deref(), Some("files:read files:write"));
        assert_eq!(c.resource_metadata.as_deref(), Some(prm));
        h.insert(
            WWW_AUTHENTICATE,
            challenge::unauthorized(prm, Some("mcp:tools"), None),
        );
        let c = parse_bearer_challenge(&h).unwrap();
        assert_eq!(c.error, None);
        assert_eq!(c.scope.as_deref(), Some("mcp:tools"));
    }

    #[test]
    fn the_bearer_challenge_is_found_among_other_schemes_and_values() {
        let c = parse(&[
            r#"Basic realm="x", Negotiate abc==, Bearer realm="y", scope="a b", resource_metadata="https://h/prm""#,
        ])
        .unwrap();
        assert_eq!(c.scope.as_deref(), Some("a b"));
        assert_eq!(c.resource_metadata.as_deref(), Some("https://h/prm"));
        let c = parse(&[r#"Basic realm="x""#, r#"bearer error=invalid_token"#]).unwrap();
        assert_eq!(c.error.as_deref(), Some("invalid_token"));
        assert_eq!(parse(&[r#"Basic realm="x""#]), None);
    }

    #[test]
    fn quoted_pairs_are_unescaped_and_the_first_of_a_repeated_parameter_wins() {
        let c = parse(&[r#"Bearer scope="a\"b", scope="evil", error_description="x\\y"#]).unwrap();
        assert_eq!(c.scope.as_deref(), Some("a\"b"));
        assert_eq!(c.error_description.as_deref(), Some("x\\y"));
    }

    #[test]
    fn garbage_never_panics() {
        for v in [
            "Bearer",
            "Bearer =",
            "Bearer a=\"",
            "=,=,\"",
            "Bearer ,,, x = ",
            "é Bearer",
        ] {
            let _ = parse(&[v]);
        }
        assert_eq!(parse(&["Bearer"]), Some(BearerChallenge::default()));
    }
}
