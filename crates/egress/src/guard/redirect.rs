//! Redirects: followed only when the caller asks, each hop a new, fully checked request.
//!
//! A `Location` is a URL chosen by the server that answered, so it is checked exactly like a
//! URL from the caller (an allowed host redirecting to `169.254.169.254` is the classic SSRF).
//! When the next hop is on another origin, the caller's credentials (`Authorization`,
//! `Cookie`, `Proxy-Authorization`) are dropped: they were meant for the first origin only.

use http::header::{self, HeaderMap, HeaderName};
use http::uri::{Authority, Scheme};
use http::{Method, StatusCode, Uri};

use super::EgressGuard;
use super::refusal::{Refusal, Rule};
use crate::EgressRequest;
use crate::proxy::Host;

/// Headers that carry the caller's credentials for one origin.
const CREDENTIALS: [HeaderName; 3] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::PROXY_AUTHORIZATION,
];

/// Headers that describe a body; dropped when a redirect turns the request into a `GET`.
const BODY_HEADERS: [HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_ENCODING,
    header::TRANSFER_ENCODING,
];

/// Whether `status` is a redirect that names its target in `Location`.
pub fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The request to send next after `request` got `status` with `headers`, or `None` when the
/// answer is not a redirect. The new URL must pass [`EgressGuard::check_url`] (the connector
/// checks its addresses when it connects); a refusal names that URL. The method becomes `GET`
/// without a body on `303` (except `HEAD`) and for a `POST` on `301` and `302`, as browsers
/// do; `307` and `308` keep method and body. Credentials go only to the same origin.
pub fn next_hop(
    guard: &EgressGuard,
    request: &EgressRequest,
    status: StatusCode,
    headers: &HeaderMap,
) -> Result<Option<EgressRequest>, Refusal> {
    if !is_redirect(status) {
        return Ok(None);
    }
    let bad = |why: &str| Refusal::new(&request.uri, Rule::BadRedirect(why.to_owned()));
    let location = headers
        .get(header::LOCATION)
        .ok_or_else(|| bad("no Location header"))?
        .to_str()
        .map_err(|_| bad("Location is not ASCII"))?;
    let uri =
        resolve_reference(&request.uri, location).ok_or_else(|| bad("Location is not a URL"))?;
    guard.check_url(&uri)?;
    let mut next = request.clone();
    let becomes_get = match status {
        StatusCode::SEE_OTHER => request.method != Method::HEAD,
        StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND => request.method == Method::POST,
        _ => false,
    };
    if becomes_get {
        next.method = Method::GET;
        next.body = bytes::Bytes::new();
        for name in &BODY_HEADERS {
            next.headers.remove(name);
        }
    }
    next.headers.remove(header::HOST);
    if !same_origin(&request.uri, &uri) {
        for name in &CREDENTIALS {
            next.headers.remove(name);
        }
    }
    next.uri = uri;
    Ok(Some(next))
}

/// Scheme, host (normalised, so `Example.com.` is `example.com`) and effective port equal.
pub fn same_origin(a: &Uri, b: &Uri) -> bool {
    fn origin(uri: &Uri) -> Option<(Scheme, Host, u16)> {
        let scheme = uri.scheme()?.clone();
        let host = Host::parse(uri.host()?).ok()?;
        let default = if scheme == Scheme::HTTPS { 443 } else { 80 };
        Some((scheme, host, uri.port_u16().unwrap_or(default)))
    }
    match (origin(a), origin(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// `location` resolved against `base` (RFC 3986 §5.2, without dot-segment removal, which
/// cannot change the origin): absolute, scheme-relative `//host/…`, absolute-path `/…`,
/// query-only `?…`, or a relative path. The fragment is dropped.
fn resolve_reference(base: &Uri, location: &str) -> Option<Uri> {
    let location = location.split('#').next().unwrap_or_default().trim();
    if location.is_empty() {
        return None;
    }
    let has_scheme = location
        .split_once(':')
        .is_some_and(|(scheme, _)| is_scheme(scheme));
    if has_scheme {
        return location.parse().ok();
    }
    let scheme = base.scheme_str()?;
    let authority: &Authority = base.authority()?;
    let text = if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else if location.starts_with('?') {
        format!("{scheme}://{authority}{}{location}", base.path())
    } else {
        let path = base.path();
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        let dir = if dir.is_empty() { "/" } else { dir };
        format!("{scheme}://{authority}{dir}{location}")
    };
    text.parse().ok()
}

/// RFC 3986: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> Uri {
        text.parse().expect("test uri")
    }

    #[test]
    fn every_reference_form_resolves_against_the_base() {
        let base = uri("https://api.example.com/a/b/c?x=1");
        let cases = [
            ("https://other.example/z", "https://other.example/z"),
            ("//cdn.example/p", "https://cdn.example/p"),
            ("/root", "https://api.example.com/root"),
            ("?y=2", "https://api.example.com/a/b/c?y=2"),
            ("d", "https://api.example.com/a/b/d"),
            ("d#frag", "https://api.example.com/a/b/d"),
            ("HTTP://169.254.169.254/", "http://169.254.169.254/"),
        ];
        for (location, expected) in cases {
            let got = resolve_reference(&base, location).expect(location);
            assert_eq!(got.to_string(), expected, "{location}");
        }
        assert!(resolve_reference(&base, "").is_none());
        assert!(resolve_reference(&base, "#only").is_none());
        assert!(resolve_reference(&base, "http://exa mple/").is_none());
    }

    #[test]
    fn origins_compare_normalised_hosts_and_effective_ports() {
        assert!(same_origin(
            &uri("https://Example.com./a"),
            &uri("https://example.com:443/b")
        ));
        assert!(!same_origin(
            &uri("https://example.com/"),
            &uri("http://example.com/")
        ));
        assert!(!same_origin(
            &uri("https://example.com/"),
            &uri("https://example.com:8443/")
        ));
        assert!(!same_origin(
            &uri("https://example.com/"),
            &uri("https://example.com.evil/")
        ));
        assert!(same_origin(
            &uri("http://127.0.0.1:80/"),
            &uri("http://0x7f.1/")
        ));
    }
}
