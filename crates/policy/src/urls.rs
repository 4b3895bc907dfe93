//! `urls = [...]` with `hosts = [...]`: a URL argument must point at an allowed host.
//!
//! Values are parsed with the `url` crate, which follows the WHATWG URL standard: the parser
//! of browsers and of most HTTP clients, so the host checked is the host the client will
//! connect to. `https://ok.example.com@evil.com/` has host `evil.com`; backslashes count as
//! slashes; tabs and newlines are dropped; `http://0x7f.1/` is `127.0.0.1`;
//! internationalized names are compared in their punycode form. The scheme must be `http`
//! or `https`. Ports and paths are not constrained.

use std::fmt;
use std::net::IpAddr;

use url::{Host, Url};

/// One entry of `hosts = [...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    text: String,
    kind: HostKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostKind {
    /// This name exactly (lowercase ASCII, no trailing dot).
    Exact(String),
    /// Any name ending in `.` + this (not the name itself).
    Suffix(String),
    /// This address.
    Ip(IpAddr),
}

/// Why a host pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad host \"{text}\": {why}")]
pub struct HostPatternError {
    text: String,
    why: String,
}

impl HostPattern {
    /// Parses `example.com`, `*.example.com`, `10.0.0.5`, `[::1]` (or `::1`).
    pub fn parse(text: &str) -> Result<HostPattern, HostPatternError> {
        let err = |why: &str| HostPatternError {
            text: text.to_owned(),
            why: why.to_owned(),
        };
        if text.contains("://") || text.contains('/') {
            return Err(err("write just the host name, without scheme or path"));
        }
        let (suffix, name) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if name.contains('*') {
            return Err(err(
                "`*` is only allowed as a leading `*.` (e.g. *.example.com)",
            ));
        }
        if let Ok(ip) = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            if suffix {
                return Err(err("`*.` needs a domain name, not an address"));
            }
            return Ok(HostPattern {
                text: text.to_owned(),
                kind: HostKind::Ip(canonical_ip(ip)),
            });
        }
        if name.contains(':') {
            return Err(err(
                "write just the host, without a port (ports are not constrained)",
            ));
        }
        match Host::parse(name) {
            Ok(Host::Domain(d)) => {
                let d = d.strip_suffix('.').unwrap_or(&d).to_owned();
                if d.is_empty() || d.contains(':') {
                    return Err(err("not a host name"));
                }
                Ok(HostPattern {
                    text: text.to_owned(),
                    kind: if suffix {
                        HostKind::Suffix(d)
                    } else {
                        HostKind::Exact(d)
                    },
                })
            }
            Ok(Host::Ipv4(_) | Host::Ipv6(_)) => Err(err(
                "write an IP address in its usual form (dotted decimal IPv4, or IPv6)",
            )),
            Err(e) => Err(err(&e.to_string())),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn matches(&self, host: &Host<&str>) -> bool {
        match (&self.kind, host) {
            (HostKind::Exact(name), Host::Domain(d)) => trim_dot(d) == name,
            (HostKind::Suffix(suffix), Host::Domain(d)) => {
                let d = trim_dot(d);
                d.len() > suffix.len() + 1
                    && d.ends_with(suffix.as_str())
                    && d.as_bytes()[d.len() - suffix.len() - 1] == b'.'
            }
            (HostKind::Ip(ip), Host::Ipv4(a)) => *ip == canonical_ip(IpAddr::V4(*a)),
            (HostKind::Ip(ip), Host::Ipv6(a)) => *ip == canonical_ip(IpAddr::V6(*a)),
            _ => false,
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn trim_dot(d: &str) -> &str {
    d.strip_suffix('.').unwrap_or(d)
}

/// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) compare as the IPv4 address.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Why a URL value did not pass. [`UrlRejection::is_outside`] tells a clean "other host"
/// from a value that could not be judged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRejection {
    /// Not a URL at all.
    #[error("is not a valid URL: {0}")]
    Invalid(String),
    /// Not http or https.
    #[error("has scheme \"{0}\", not http or https")]
    Scheme(String),
    /// No host.
    #[error("has no host")]
    NoHost,
    /// A host not in the list.
    #[error("names a host that is not allowed")]
    HostNotAllowed(String),
}

impl UrlRejection {
    /// Was the value a well-formed http(s) URL for a host simply not on the list?
    pub fn is_outside(&self) -> bool {
        matches!(self, UrlRejection::HostNotAllowed(_))
    }
}

/// Checks one value against `hosts`; returns the host it names.
pub fn check_url(value: &str, hosts: &[HostPattern]) -> Result<String, UrlRejection> {
    let url = Url::parse(value).map_err(|e| UrlRejection::Invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlRejection::Scheme(url.scheme().to_owned()));
    }
    let host = url.host().ok_or(UrlRejection::NoHost)?;
    let shown = url.host_str().unwrap_or_default().to_owned();
    if hosts.iter().any(|h| h.matches(&host)) {
        Ok(shown)
    } else {
        Err(UrlRejection::HostNotAllowed(shown))
    }
}
