//! The bearer token of a request (RFC 6750 §2.1), taken from the `Authorization` header only.
//!
//! The parser is strict on purpose: a request whose credentials can be read two ways (two
//! headers, odd spacing, a token in the query string as well) is refused rather than guessed
//! at, because the gateway and whatever sits behind or in front of it might guess differently.

use std::fmt;

use http::HeaderMap;
use http::header::AUTHORIZATION;

/// The largest token accepted (16 KiB). JWT access tokens are a few KiB at most; anything
/// larger is refused before a single byte of it is decoded, so a flood of huge tokens costs
/// a length comparison each.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A bearer token as presented. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    /// The token. Pass it to the validator; never log or format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken([redacted])")
    }
}

/// An `Authorization` header that cannot be used. The HTTP layer answers 400
/// `invalid_request` for it, except [`MalformedAuthorization::TooLarge`], which RFC 6750
/// treats as an invalid token (401 `invalid_token`; see
/// [`MalformedAuthorization::is_invalid_token`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MalformedAuthorization {
    #[error("more than one Authorization header")]
    Repeated,
    #[error("the Authorization scheme is not Bearer")]
    NotBearer,
    #[error("the Authorization header is not `Bearer <token68>`")]
    Syntax,
    #[error("the bearer token is over {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
}

impl MalformedAuthorization {
    /// Whether the header was well formed but the token unacceptable (401 `invalid_token`)
    /// rather than the request malformed (400 `invalid_request`).
    pub fn is_invalid_token(&self) -> bool {
        matches!(self, MalformedAuthorization::TooLarge)
    }
}

const SCHEME: &str = "Bearer";

/// The bearer token of a request: `Ok(None)` when there is no `Authorization` header;
/// otherwise exactly one header of the form `Bearer <token68>` (scheme case-insensitive, one
/// space).
pub fn parse_bearer(headers: &HeaderMap) -> Result<Option<BearerToken>, MalformedAuthorization> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(MalformedAuthorization::Repeated);
    }
    let bytes = value.as_bytes();
    // Checked before anything else looks at the bytes.
    if bytes.len() > SCHEME.len() + 1 + MAX_TOKEN_BYTES {
        return Err(MalformedAuthorization::TooLarge);
    }
    let scheme_len = bytes.iter().position(|&b| b == b' ').unwrap_or(bytes.len());
    if !bytes[..scheme_len].eq_ignore_ascii_case(SCHEME.as_bytes()) {
        return Err(if bytes[..scheme_len].is_empty() {
            MalformedAuthorization::Syntax
        } else {
            MalformedAuthorization::NotBearer
        });
    }
    let token = bytes.get(scheme_len + 1..).unwrap_or_default();
    if !is_token68(token) {
        return Err(MalformedAuthorization::Syntax);
    }
    // token68 is ASCII, so this cannot fail; fail closed all the same.
    let token = std::str::from_utf8(token).map_err(|_| MalformedAuthorization::Syntax)?;
    Ok(Some(BearerToken(token.to_owned())))
}

/// `token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="` (RFC 9110 §11.2).
fn is_token68(token: &[u8]) -> bool {
    let body_len = token.len() - token.iter().rev().take_while(|&&b| b == b'=').count();
    body_len > 0
        && token[..body_len].iter().all(|&b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// Whether the query string carries an `access_token` parameter (RFC 6750 §2.3). The MCP
/// authorization spec forbids tokens in URIs (they end up in logs and `Referer` headers), so
/// the gateway refuses such requests instead of ignoring the parameter. Percent-encoded and
/// differently cased names count too.
pub fn token_in_query(uri: &http::Uri) -> bool {
    let Some(query) = uri.query() else {
        return false;
    };
    form_urlencoded::parse(query.as_bytes())
        .any(|(name, _)| name.eq_ignore_ascii_case("access_token"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    fn parse(values: &[&[u8]]) -> Result<Option<String>, MalformedAuthorization> {
        parse_bearer(&headers(values)).map(|t| t.map(|t| t.expose().to_owned()))
    }

    #[test]
    fn no_header_means_no_token() {
        assert_eq!(parse(&[]), Ok(None));
    }

    #[test]
    fn a_bearer_token_is_read_with_any_scheme_case() {
        assert_eq!(
            parse(&[b"Bearer abc.DEF-_~+/=="]),
            Ok(Some("abc.DEF-_~+/==".into()))
        );
        assert_eq!(parse(&[b"bearer x"]), Ok(Some("x".into())));
        assert_eq!(parse(&[b"BEARER x"]), Ok(Some("x".into())));
    }

    #[test]
    fn two_authorization_headers_are_refused() {
        assert_eq!(
            parse(&[b"Bearer a", b"Bearer a"]),
            Err(MalformedAuthorization::Repeated)
        );
    }

    #[test]
    fn other_schemes_are_refused() {
        for v in [
            &b"Basic dXNlcjpwYXNz"[..],
            b"DPoP abc",
            b"Bearerx abc",
            b"Token",
        ] {
            assert_eq!(parse(&[v]), Err(MalformedAuthorization::NotBearer), "{v:?}");
        }
    }

    #[test]
    fn bad_token_syntax_is_refused() {
        for v in [
            &b"Bearer"[..],
            b"Bearer ",
            b"Bearer  abc",
            b"Bearer abc def",
            b"Bearer a,b",
            b"Bearer a=b",
            b"Bearer ===",
            b"Bearer \"abc\"",
            b"Bearer a\tb",
            b"Bearer caf\xc3\xa9",
            b" abc",
        ] {
            assert!(parse(&[v]).is_err(), "{v:?} must be refused");
        }
    }

    #[test]
    fn a_64_kib_token_is_refused_as_too_large() {
        let mut v = b"Bearer ".to_vec();
        v.extend(std::iter::repeat_n(b'a', 64 * 1024));
        let err = parse(&[&v]).unwrap_err();
        assert_eq!(err, MalformedAuthorization::TooLarge);
        assert!(err.is_invalid_token());
        // The bound itself is accepted.
        let mut ok = b"Bearer ".to_vec();
        ok.extend(std::iter::repeat_n(b'a', MAX_TOKEN_BYTES));
        assert_eq!(parse(&[&ok]).unwrap().unwrap().len(), MAX_TOKEN_BYTES);
        assert!(!MalformedAuthorization::Syntax.is_invalid_token());
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let t = parse_bearer(&headers(&[b"Bearer s3cr3t-token"]))
            .unwrap()
            .unwrap();
        assert!(!format!("{t:?}").contains("s3cr3t"));
    }

    #[test]
    fn an_access_token_in_the_query_string_is_detected() {
        let yes = [
            "/mcp?access_token=abc",
            "/mcp?x=1&access_token=",
            "/mcp?access%5Ftoken=abc",
            "/mcp?ACCESS_TOKEN=abc",
        ];
        for u in yes {
            assert!(token_in_query(&u.parse().unwrap()), "{u}");
        }
        let no = [
            "/mcp",
            "/mcp?x=access_token",
            "/mcp?access_tokens=1",
            "/access_token",
        ];
        for u in no {
            assert!(!token_in_query(&u.parse().unwrap()), "{u}");
        }
    }
}
