//! A `host:port` the proxy may be asked for, and the allow list's entries.
//!
//! Hosts are normalised once, here: lower case, no trailing dot, and an IP in any spelling
//! becomes an [`IpAddr`] (see [`parse_ip_literal`]). Allow-list matching then compares values,
//! so `0x7f.1` asks for exactly what `127.0.0.1` names, and `Example.COM.` what `example.com`
//! names.

use std::fmt;
use std::net::IpAddr;

use crate::address::parse_ip_literal;

/// Why a host or `host:port` is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    #[error("{0:?} is not a host name or IP address")]
    BadHost(String),
    #[error("{0:?} needs a port (host:port)")]
    NoPort(String),
    #[error("{0:?}: the port must be 1 to 65535")]
    BadPort(String),
}

/// A destination host: a DNS name, or an IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// Lower case, without a trailing dot.
    Name(String),
    Ip(IpAddr),
}

impl Host {
    /// Parses a host as written in a request or a config: a name, an IP literal in any
    /// spelling, or a bracketed IPv6 address.
    pub fn parse(text: &str) -> Result<Host, DestinationError> {
        let bad = || DestinationError::BadHost(text.to_owned());
        let trimmed = text.strip_suffix('.').unwrap_or(text);
        if let Some(ip) = parse_ip_literal(trimmed) {
            return Ok(Host::Ip(ip));
        }
        let valid = !trimmed.is_empty()
            && trimmed.len() <= 253
            && !trimmed.starts_with('.')
            && !trimmed.contains("..")
            && trimmed
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !valid {
            return Err(bad());
        }
        Ok(Host::Name(trimmed.to_ascii_lowercase()))
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]"),
            Host::Ip(IpAddr::V4(v4)) => write!(f, "{v4}"),
        }
    }
}

/// A host and port: an allow-list entry, or what a request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    pub host: Host,
    pub port: u16,
}

impl Destination {
    /// From a host (name or IP literal; IPv6 with or without brackets) and a port, as the
    /// sandbox profile's allow list stores them.
    pub fn new(host: &str, port: u16) -> Result<Destination, DestinationError> {
        if port == 0 {
            return Err(DestinationError::BadPort(format!("{host}:0")));
        }
        Ok(Destination {
            host: Host::parse(host)?,
            port,
        })
    }

    /// Parses the authority form `host:port` or `[v6]:port` (a CONNECT target, or a config
    /// entry). The port is required.
    pub fn parse(text: &str) -> Result<Destination, DestinationError> {
        let (host, port) = if text.starts_with('[') {
            let end = text
                .find(']')
                .ok_or_else(|| DestinationError::BadHost(text.to_owned()))?;
            let port = text[end + 1..]
                .strip_prefix(':')
                .ok_or_else(|| DestinationError::NoPort(text.to_owned()))?;
            (&text[..=end], port)
        } else {
            text.rsplit_once(':')
                .ok_or_else(|| DestinationError::NoPort(text.to_owned()))?
        };
        if host.contains(':') && !host.starts_with('[') {
            return Err(DestinationError::BadHost(text.to_owned()));
        }
        let port = parse_port(port).ok_or_else(|| DestinationError::BadPort(text.to_owned()))?;
        Destination::new(host, port)
    }
}

/// A port as written: 1 to 65535, digits only (no sign, no spaces).
pub(crate) fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u16>().ok().filter(|p| *p != 0)
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_normalised_so_spellings_compare_equal() {
        assert_eq!(
            Destination::parse("Example.COM.:443").unwrap(),
            Destination::parse("example.com:443").unwrap()
        );
        assert_eq!(
            Destination::parse("0x7f.1:8080").unwrap(),
            Destination::new("127.0.0.1", 8080).unwrap()
        );
        assert_eq!(
            Destination::parse("[::1]:80").unwrap(),
            Destination::new("::1", 80).unwrap()
        );
        assert_eq!(
            Destination::parse("[::1]:80").unwrap().to_string(),
            "[::1]:80"
        );
    }

    #[test]
    fn malformed_authorities_are_refused() {
        for bad in [
            "example.com",
            "example.com:",
            "example.com:0",
            "example.com:65536",
            "example.com:+80",
            "example.com: 80",
            "::1:80",
            "[::1]80",
            "[::1",
            "exa mple.com:80",
            "user@example.com:80",
            ":80",
            "a..b:80",
        ] {
            assert!(Destination::parse(bad).is_err(), "{bad:?}");
        }
    }
}
