//! What the gateway's pages share (the OAuth pages, and the approvals page of
//! `consent::approvals`): HTML that escapes what it shows, the headers every page carries
//! (CSP with `frame-ancestors 'none'`, no caching, no sniffing), `__Host-` cookies, and the
//! HMAC tags that bind cookies and CSRF tokens to a link or a `state`.

use aws_lc_rs::hmac;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::UserAuthorization;
use crate::transport::http::checks::HostPolicy;

pub(super) fn sign(ua: &UserAuthorization, parts: &[&str]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &ua.cookie_key);
    URL_SAFE_NO_PAD.encode(hmac::sign(&key, parts.join("\0").as_bytes()).as_ref())
}

/// Constant-time comparison of a presented tag with the one `parts` make.
pub(super) fn verify(ua: &UserAuthorization, parts: &[&str], presented: &str) -> bool {
    let Ok(tag) = URL_SAFE_NO_PAD.decode(presented) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, &ua.cookie_key);
    hmac::verify(&key, parts.join("\0").as_bytes(), &tag).is_ok()
}

/// A remembered consent: bound to the MCP client id and the server.
pub(super) fn consent_tag(ua: &UserAuthorization, client: Option<&str>, server: &str) -> String {
    let tag = sign(ua, &["consent", client.unwrap_or(""), server]);
    tag[..22].to_owned()
}

pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub(crate) fn set_cookie(resp: &mut Response, name: &str, value: &str, max_age: u64) {
    let text = format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age}");
    if let Ok(v) = HeaderValue::from_str(&text) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// `scheme://host[:port]` of a URL.
pub(crate) fn origin_of(url: &str) -> Option<String> {
    let uri: axum::http::Uri = url.parse().ok()?;
    Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?))
}

pub(crate) fn not_found() -> Response {
    message_page(StatusCode::NOT_FOUND, "Not found", "Nothing here.")
}

pub(crate) fn message_page(status: StatusCode, title: &str, text: &str) -> Response {
    page(
        status,
        title,
        &format!(
            "<h1>{}</h1><p id=message>{}</p>",
            escape(title),
            escape(text)
        ),
        None,
    )
}

pub(crate) fn page(
    status: StatusCode,
    title: &str,
    body: &str,
    form_target: Option<&str>,
) -> Response {
    let html = format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>{} · Portcullis</title>\
         <meta name=viewport content=\"width=device-width\"><style>body{{font:16px system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em}}\
         th{{text-align:left;padding-right:1em}}code{{word-break:break-all}}button{{font-size:1em;margin:1em 1em 0 0;padding:.5em 1em}}.note{{color:#555}}</style>\
         </head><body>{body}</body></html>",
        escape(title)
    );
    let mut resp = (status, html).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    harden(&mut resp, form_target);
    resp
}

/// The headers every page carries. `form_target`: the one other origin the consent form's
/// redirect may lead to (CSP `form-action` also governs the redirect after the POST).
pub(crate) fn harden(resp: &mut Response, form_target: Option<&str>) {
    let form_action = match form_target {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // `same-origin`, not `no-referrer`: the latter makes the browser send `Origin: null`
    // with the approval, which the origin check must refuse. Nothing leaves the origin.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// The `Host` check of the MCP endpoints (DNS rebinding), for a page. `Origin` is checked by
/// each form POST itself, against the gateway's own origin: pages are meant for browsers.
pub(crate) fn host_checked(hosts: &HostPolicy, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match host {
        Some(h) if hosts.host_allowed(h) => Ok(()),
        _ => Err(Box::new(message_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "Host not allowed",
        ))),
    }
}

/// A form field that appears exactly once (a repeated field is no answer).
pub(crate) fn form_field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let mut values = form
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str());
    match (values.next(), values.next()) {
        (Some(v), None) => Some(v),
        _ => None,
    }
}

/// HTML-escapes text for an element or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_names_is_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x")</script>&'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
    }

    #[test]
    fn the_origin_of_an_endpoint_drops_path_and_query() {
        assert_eq!(
            origin_of("https://as.example.com:8443/authorize?x=1").as_deref(),
            Some("https://as.example.com:8443")
        );
        assert_eq!(origin_of("not a url"), None);
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-portcullis-flow=xyz; b=2"),
        );
        assert_eq!(cookie(&h, "__Host-portcullis-flow"), Some("xyz"));
        assert_eq!(cookie(&h, "__Host-portcullis"), None);
    }
}
