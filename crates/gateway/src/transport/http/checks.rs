//! Transport checks that run before a message is read.
//!
//! `Host` and `Origin` are validated on every request (DNS rebinding: a web page that
//! resolves its own name to 127.0.0.1 must not reach a loopback gateway). Loopback names are
//! always accepted; anything else only when the config names it (`allowed_hosts`,
//! `allowed_origins`, or the host of `public_url`). A request without `Origin` comes from a
//! non-browser client and is allowed.

use axum::http::{HeaderMap, StatusCode, header};

use super::forwarded::ClientOrigin;
use crate::config::GatewayConfig;

const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// The hosts and origins a gateway accepts, resolved once from its config.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    /// Host names (any port), lowercase.
    hosts: Vec<String>,
    /// `host:port` pairs, lowercase.
    host_ports: Vec<String>,
    /// Exact origins, lowercase, no trailing slash.
    origins: Vec<String>,
}

impl HostPolicy {
    pub fn from_config(cfg: &GatewayConfig) -> Self {
        let mut hosts: Vec<String> = LOOPBACK_HOSTS.iter().map(|h| h.to_string()).collect();
        let mut host_ports = Vec::new();
        let mut origins = Vec::new();
        for h in &cfg.allowed_hosts {
            let h = h.to_ascii_lowercase();
            if split_host(&h).1.is_some() {
                host_ports.push(h)
            } else {
                hosts.push(h)
            }
        }
        let ip = cfg.listen.ip();
        if !ip.is_unspecified() && !ip.is_loopback() {
            host_ports.push(cfg.listen.to_string());
        }
        for o in &cfg.allowed_origins {
            origins.push(o.trim_end_matches('/').to_ascii_lowercase());
        }
        if let Some(public) = cfg.public_url.as_deref().and_then(url_origin) {
            let (host, _) = split_host(public.split("://").nth(1).unwrap_or_default());
            hosts.push(host.to_owned());
            origins.push(public);
        }
        HostPolicy {
            hosts,
            host_ports,
            origins,
        }
    }

    pub fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let (name, _) = split_host(&host);
        self.hosts.iter().any(|h| h == name) || self.host_ports.contains(&host)
    }

    pub fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        if self.origins.contains(&origin) {
            return true;
        }
        let Some((scheme, rest)) = origin.split_once("://") else {
            return false;
        };
        if scheme != "http" && scheme != "https" {
            return false;
        }
        let (name, _) = split_host(rest);
        LOOPBACK_HOSTS.contains(&name)
    }

    /// Checks `Host` and `Origin`; the error is the status to answer with.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), (StatusCode, &'static str)> {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        match host {
            None => return Err((StatusCode::BAD_REQUEST, "missing Host header")),
            Some(h) if !self.host_allowed(h) => {
                return Err((StatusCode::FORBIDDEN, "Host not allowed"));
            }
            Some(_) => {}
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let ok = origin.to_str().ok().is_some_and(|o| self.origin_allowed(o));
            if !ok {
                return Err((StatusCode::FORBIDDEN, "Origin not allowed"));
            }
        }
        Ok(())
    }

    /// [`HostPolicy::check`] against the host the client asked for as `client` records it:
    /// behind a trusted proxy, the forwarded host rather than the proxy's own `Host`. (The
    /// `forwarded` middleware also writes that host into `Host`, so under `serve` both
    /// checks agree.)
    pub fn check_client(
        &self,
        client: &ClientOrigin,
        headers: &HeaderMap,
    ) -> Result<(), (StatusCode, &'static str)> {
        match client.host.as_deref() {
            Some(h) if self.host_allowed(h) => {}
            None if !headers.contains_key(header::HOST) => {
                return Err((StatusCode::BAD_REQUEST, "missing Host header"));
            }
            // Present but not a host at all, or not one of ours.
            _ => return Err((StatusCode::FORBIDDEN, "Host not allowed")),
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let ok = origin.to_str().ok().is_some_and(|o| self.origin_allowed(o));
            if !ok {
                return Err((StatusCode::FORBIDDEN, "Origin not allowed"));
            }
        }
        Ok(())
    }
}

/// Splits `host[:port]` (IPv6 literals in brackets).
fn split_host(s: &str) -> (&str, Option<&str>) {
    if s.starts_with('[') {
        return match s.find(']') {
            Some(end) => {
                let port = s[end + 1..].strip_prefix(':');
                (&s[..=end], port)
            }
            None => (s, None),
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        _ => (s, None),
    }
}

/// `scheme://host[:port]` of an absolute URL, lowercase.
fn url_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    Some(format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase()
    ))
}

/// Whether an `Accept` header admits a media type (wildcards included). An absent header
/// admits everything.
pub fn accepts(headers: &HeaderMap, media: &str) -> bool {
    let Some(accept) = headers.get(header::ACCEPT) else {
        return true;
    };
    let Ok(accept) = accept.to_str() else {
        return false;
    };
    let (kind, _) = media.split_once('/').unwrap_or((media, ""));
    accept.split(',').any(|part| {
        let range = part
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        range == media || range == "*/*" || range == format!("{kind}/*")
    })
}

/// Whether the body is declared as JSON.
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn policy() -> HostPolicy {
        HostPolicy {
            hosts: LOOPBACK_HOSTS
                .iter()
                .map(|h| h.to_string())
                .chain(["mcp.example.com".into()])
                .collect(),
            host_ports: vec!["10.1.2.3:8440".into()],
            origins: vec!["https://app.example.com".into()],
        }
    }

    #[test]
    fn loopback_hosts_pass_with_any_port() {
        let p = policy();
        for h in [
            "localhost",
            "localhost:8440",
            "127.0.0.1:1",
            "[::1]:3000",
            "LOCALHOST:9",
        ] {
            assert!(p.host_allowed(h), "{h}");
        }
    }

    #[test]
    fn rebinding_hosts_are_refused() {
        let p = policy();
        for h in [
            "evil.example.com",
            "evil.example.com:8440",
            "localhost.evil.com",
            "127.0.0.1.nip.io",
            "10.1.2.3:9999",
        ] {
            assert!(!p.host_allowed(h), "{h}");
        }
        assert!(p.host_allowed("10.1.2.3:8440"));
    }

    #[test]
    fn origins_must_be_loopback_or_listed() {
        let p = policy();
        assert!(p.origin_allowed("http://localhost:5173"));
        assert!(p.origin_allowed("https://app.example.com/"));
        assert!(!p.origin_allowed("http://evil.example.com"));
        assert!(!p.origin_allowed("null"));
        assert!(!p.origin_allowed("file://localhost"));
    }

    #[test]
    fn forged_origin_gets_403_and_missing_host_400() {
        let p = policy();
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("localhost:8440"));
        assert!(p.check(&h).is_ok());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example.com"),
        );
        assert_eq!(p.check(&h).unwrap_err().0, StatusCode::FORBIDDEN);
        assert_eq!(
            p.check(&HeaderMap::new()).unwrap_err().0,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn a_forged_forwarded_host_is_checked_like_any_host() {
        let p = policy();
        let client = |host: &str| ClientOrigin {
            peer: "10.0.0.2".parse().unwrap(),
            client: "203.0.113.9".parse().unwrap(),
            scheme: super::super::forwarded::Scheme::Https,
            host: Some(host.to_owned()),
            via_proxy: true,
        };
        let mut h = HeaderMap::new();
        // The proxy's own Host is an internal name the policy does not list.
        h.insert(
            header::HOST,
            HeaderValue::from_static("portcullis.internal:8440"),
        );
        assert!(p.check_client(&client("mcp.example.com"), &h).is_ok());
        assert_eq!(
            p.check_client(&client("evil.example.com"), &h)
                .unwrap_err()
                .0,
            StatusCode::FORBIDDEN
        );
        let mut no_host = client("x");
        no_host.host = None;
        assert_eq!(
            p.check_client(&no_host, &HeaderMap::new()).unwrap_err().0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            p.check_client(&no_host, &h).unwrap_err().0,
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn accept_ranges_with_wildcards() {
        let mut h = HeaderMap::new();
        assert!(accepts(&h, "text/event-stream"));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream;q=0.9"),
        );
        assert!(accepts(&h, "application/json") && accepts(&h, "text/event-stream"));
        h.insert(header::ACCEPT, HeaderValue::from_static("text/html"));
        assert!(!accepts(&h, "application/json"));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert!(accepts(&h, "text/event-stream"));
    }
}
