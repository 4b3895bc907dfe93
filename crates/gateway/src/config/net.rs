//! Checks for network values: listen addresses, URLs, origins and Host values.
//!
//! These feed the gateway's front-door checks (Origin and Host validation against DNS
//! rebinding, the canonical URL used as token audience), so they are normalized here, once,
//! into exactly the form the gateway compares against: lowercase scheme and host, default
//! port dropped, IPv6 in brackets. The URL grammar accepted is deliberately narrow
//! (`http(s)://host[:port][/path][?query]`, ASCII host names): a config is written by a
//! person, and anything more exotic is more likely a mistake than a need.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `127.0.0.1:8440`, `[::1]:8440`. Host names are refused: what a name resolves to can
/// change, and the bind address decides who can reach the gateway at all.
pub(crate) fn listen_address(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!(
            "invalid listen address \"{text}\": expected an IP address and port such as 127.0.0.1:8440 or [::1]:8440"
        )
    })
}

/// An absolute http(s) URL, split and normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpUrl {
    /// `http` or `https`, lowercase.
    pub scheme: &'static str,
    /// Lowercase host name, IPv4 address, or bracketed IPv6 address.
    pub host: String,
    /// The port, when given and not the scheme's default.
    pub port: Option<u16>,
    /// Everything after the authority: path and query, as written (may be empty).
    pub rest: String,
}

impl HttpUrl {
    /// Parses `text`; `what` names the key for messages.
    pub(crate) fn parse(text: &str, what: &str) -> Result<HttpUrl, String> {
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "{what} must not contain spaces or control characters: {text:?}"
            ));
        }
        let Some((scheme, after)) = text.split_once("://") else {
            return Err(format!(
                "invalid URL \"{text}\" for {what}: expected an absolute URL such as https://host/path"
            ));
        };
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => "http",
            "https" => "https",
            _ => {
                return Err(format!(
                    "{what} must be an http:// or https:// URL, not \"{text}\""
                ));
            }
        };
        if after.contains('#') {
            return Err(format!("{what} must not have a #fragment: \"{text}\""));
        }
        let end = after.find(['/', '?']).unwrap_or(after.len());
        let (authority, rest) = after.split_at(end);
        if authority.contains('@') {
            return Err(format!(
                "{what} must not carry credentials (user:password@): \"{text}\""
            ));
        }
        if authority.is_empty() {
            return Err(format!("{what} must name a host: \"{text}\""));
        }
        let (host, port) = host_port(authority)
            .map_err(|why| format!("invalid host in {what} \"{text}\": {why}"))?;
        let default_port = if scheme == "https" { 443 } else { 80 };
        Ok(HttpUrl {
            scheme,
            host,
            port: port.filter(|&p| p != default_port),
            rest: rest.to_owned(),
        })
    }

    /// `host[:port]`, as a client sends it in `Host` for this URL.
    pub(crate) fn authority(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    /// `scheme://host[:port]`: the URL's origin, as browsers serialize it.
    pub(crate) fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.authority())
    }

    /// Is the host a loopback address or `localhost`?
    pub(crate) fn is_loopback(&self) -> bool {
        let bare = self.host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => ip_is_loopback(ip),
            Err(_) => bare == "localhost" || bare.ends_with(".localhost"),
        }
    }
}

/// `gateway.public_url`: the canonical URL clients use (token audience, metadata). Stored
/// without a trailing slash so routes can be appended as `{public_url}/mcp/<name>`.
pub(crate) fn public_url(text: &str) -> Result<String, String> {
    let url = HttpUrl::parse(text, "gateway.public_url")?;
    if url.rest.contains('?') {
        return Err(format!(
            "gateway.public_url must not have a ?query: \"{text}\""
        ));
    }
    Ok(format!(
        "{}{}",
        url.origin(),
        url.rest.trim_end_matches('/')
    ))
}

/// `gateway.client_metadata_url`: an OAuth client id that is a URL (the Client ID Metadata
/// Document draft): `https`, with a path, without query or fragment.
pub(crate) fn client_metadata_url(text: &str) -> Result<String, String> {
    const KEY: &str = "gateway.client_metadata_url";
    let url = HttpUrl::parse(text, KEY)?;
    if url.scheme != "https" {
        return Err(format!(
            "{KEY} must be https (authorization servers fetch it): \"{text}\""
        ));
    }
    if url.rest.contains('?') || url.rest.contains('#') {
        return Err(format!(
            "{KEY} must not have a ?query or #fragment: \"{text}\""
        ));
    }
    if matches!(url.rest.as_str(), "" | "/") {
        return Err(format!(
            "{KEY} needs a path (e.g. /oauth/client-metadata.json): \"{text}\""
        ));
    }
    Ok(format!("{}{}", url.origin(), url.rest))
}

/// `servers.<name>.url`: a Streamable HTTP endpoint, normalized.
pub(crate) fn upstream_url(text: &str, what: &str) -> Result<String, String> {
    let url = HttpUrl::parse(text, what)?;
    let rest = if url.rest.is_empty() { "/" } else { &url.rest };
    Ok(format!("{}{rest}", url.origin()))
}

/// Is the URL's host a loopback address or `localhost`? (False for an invalid URL.)
pub(crate) fn url_is_loopback(text: &str) -> bool {
    HttpUrl::parse(text, "url").is_ok_and(|u| u.is_loopback())
}

/// `host[:port]` of a URL, the port only when it is not the scheme's default: what a
/// client sends in `Host` for that URL.
pub(crate) fn url_host(text: &str) -> Option<String> {
    HttpUrl::parse(text, "url").ok().map(|u| u.authority())
}

/// `gateway.allowed_origins`: an exact origin, `scheme://host[:port]`, normalized the way
/// browsers serialize `Origin` (lowercase host, default port dropped).
pub(crate) fn origin(text: &str) -> Result<String, String> {
    if text == "null" || text.contains('*') {
        return Err(format!(
            "allowed origin \"{text}\" is not an exact origin: list each origin as scheme://host[:port]"
        ));
    }
    let url = HttpUrl::parse(text, "an allowed origin")?;
    if !(url.rest.is_empty() || url.rest == "/") {
        return Err(format!(
            "allowed origin \"{text}\" must be just scheme://host[:port], with no path or query"
        ));
    }
    Ok(url.origin())
}

/// `gateway.allowed_hosts`: a `Host` header value, `host` or `host:port`, lowercased.
pub(crate) fn host(text: &str) -> Result<String, String> {
    let bad = |why: &str| format!("invalid allowed host \"{text}\": {why}");
    if text.contains("://") {
        return Err(bad("write just the host (and :port), without a scheme"));
    }
    let (host, port) = host_port(text).map_err(|why| bad(&why))?;
    Ok(match port {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}

/// Splits and checks `host[:port]`: a DNS name, an IPv4 address, or an IPv6 address in
/// brackets. Non-ASCII names must be written in their punycode (`xn--`) form, which is what
/// clients send.
fn host_port(text: &str) -> Result<(String, Option<u16>), String> {
    let lower = text.to_ascii_lowercase();
    let (host, port) = if let Some(rest) = lower.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or("unclosed `[` in an IPv6 address")?;
        ip.parse::<Ipv6Addr>()
            .map_err(|_| "not an IPv6 address inside [ ]")?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("expected :port after ]")?),
        };
        (format!("[{ip}]"), port)
    } else {
        let (name, port) = match lower.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (lower.as_str(), None),
        };
        if name.parse::<Ipv4Addr>().is_err() && !is_dns_name(name) {
            return Err(
                "expected a host name or IP address, optionally with :port (IPv6 in [ ]), and no path"
                    .to_owned(),
            );
        }
        (name.to_owned(), port)
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().map_err(|_| "port out of range")?)
        }
        Some(_) => return Err("the port must be a number".to_owned()),
    };
    Ok((host, port))
}

/// A DNS name: dot-separated labels of letters, digits and `-`, not starting or ending
/// with `-`, each at most 63 characters, at most 253 in all.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn ip_is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Is the listen address reachable only from this machine?
pub(crate) fn is_loopback(addr: &SocketAddr) -> bool {
    ip_is_loopback(addr.ip())
}
