//! `gateway.tls` and `gateway.behind_proxy`: how clients reach the front door.
//!
//! Both are checked when the config loads, not when the first client arrives. The
//! certificate and key are read, parsed and matched against each other, so a key that
//! belongs to another certificate is an error naming its line rather than a failed
//! handshake later. Trusted proxy addresses are parsed strictly: an empty list, a range
//! with host bits set or one as wide as the whole internet is a mistake that would trust
//! too little or far too much.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::GatewayConfig;
use super::diagnostic::Issues;
use super::raw::SpannedList;
use super::sections::relative_to;
use crate::transport::http::tls::{TlsFileError, load_certified_key};

/// `gateway.tls` as written.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a tls table such as { cert = \"fullchain.pem\", key = \"key.pem\" }"
)]
pub(crate) struct RawTls {
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
}

/// `gateway.behind_proxy` as written.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a behind_proxy table such as { trusted = [\"127.0.0.1\", \"10.0.0.0/8\"] }"
)]
pub(crate) struct RawBehindProxy {
    pub trusted: SpannedList,
}

/// `gateway.tls`: the PEM files the front door terminates TLS with. They were readable and
/// matched when the config loaded; the listener loads them again, and again whenever they
/// change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (a `fullchain.pem`).
    pub cert: PathBuf,
    /// The private key of the leaf certificate (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// `gateway.behind_proxy`: the reverse proxies whose forwarding headers are believed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BehindProxy {
    /// Addresses and ranges a trusted proxy connects from; never empty.
    pub trusted: Vec<IpRange>,
}

impl BehindProxy {
    /// Is `peer` one of the trusted proxies?
    pub fn trusts(&self, peer: IpAddr) -> bool {
        self.trusted.iter().any(|r| r.contains(peer))
    }
}

/// An address or CIDR range (`10.0.0.0/8`, `fd00::/8`, `127.0.0.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Parses an address (a range of one) or `address/prefix`, with no host bits set.
    pub(crate) fn parse(text: &str) -> Result<IpRange, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| {
            format!(
                "invalid proxy address \"{text}\": expected an IP address or a CIDR range such as 10.0.0.0/8 or fd00::/8"
            )
        })?;
        if let IpAddr::V6(v6) = network
            && v6.to_ipv4_mapped().is_some()
        {
            return Err(format!(
                "proxy address \"{text}\" is IPv4-mapped IPv6: write the IPv4 address"
            ));
        }
        let width = width(network);
        let prefix = match prefix {
            None => width,
            Some(p) => match p.parse::<u8>() {
                // Digits only: `u8::from_str` would also take `+8`.
                Ok(n) if n <= width && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => {
                    return Err(format!(
                        "invalid prefix length in \"{text}\": expected 1 to {width}"
                    ));
                }
            },
        };
        if prefix == 0 {
            return Err(format!(
                "\"{text}\" trusts every address: anyone could forge X-Forwarded-* headers; list your proxies' addresses"
            ));
        }
        if network.is_unspecified() {
            return Err(format!(
                "\"{text}\" is not an address a proxy connects from"
            ));
        }
        let range = IpRange { network, prefix };
        if bits(network) & !mask(prefix, width) != 0 {
            return Err(format!(
                "\"{text}\" has bits set beyond its /{prefix} prefix: did you mean {}?",
                IpRange {
                    network: from_bits(network, bits(network) & mask(prefix, width)),
                    prefix,
                }
            ));
        }
        Ok(range)
    }

    /// Does the range hold `ip`? An IPv4-mapped IPv6 address (how a dual-stack socket
    /// reports an IPv4 peer) counts as the IPv4 address it maps.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        if ip.is_ipv4() != self.network.is_ipv4() {
            return false;
        }
        let m = mask(self.prefix, width(ip));
        bits(ip) & m == bits(self.network) & m
    }
}

/// `10.0.0.0/8`, or the bare address for a range of one.
impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix == width(self.network) {
            write!(f, "{}", self.network)
        } else {
            write!(f, "{}/{}", self.network, self.prefix)
        }
    }
}

/// The IPv4 address an IPv4-mapped IPv6 address stands for; any other address unchanged.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn width(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_bits(like: IpAddr, bits: u128) -> IpAddr {
    match like {
        // Only ever called with bits of an IPv4 address masked down: they fit.
        IpAddr::V4(_) => IpAddr::V4(u32::try_from(bits).unwrap_or(0).into()),
        IpAddr::V6(_) => IpAddr::V6(bits.into()),
    }
}

/// The network mask of a `/prefix` in an address `width` bits wide: `prefix` ones, then
/// zeros, in the low `width` bits.
fn mask(prefix: u8, width: u8) -> u128 {
    let prefix = u32::from(prefix.min(width));
    let ones = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    ones >> (128 - u32::from(width))
}

/// A `Host` header value (`host` or `host:port`, IPv6 in brackets) checked with the grammar
/// of `gateway.allowed_hosts` and lowercased; `None` when it is not one.
pub fn host_value(text: &str) -> Option<String> {
    super::net::host(text).ok()
}

/// `gateway.tls`: both files named, readable, and a matching pair. Relative paths are
/// relative to the config file's directory, like every other path in the file.
pub(crate) fn tls(raw: RawTls, base: Option<&Path>, issues: &mut Issues) -> Option<TlsFiles> {
    let mut path = |value: &Spanned<String>, key: &str| {
        let text = value.get_ref();
        if text.is_empty() || text.contains('\0') {
            issues.at(
                value.span(),
                format!("gateway.tls.{key} must be the path of a PEM file"),
            );
            None
        } else {
            Some(relative_to(base, text))
        }
    };
    let files = TlsFiles {
        cert: path(&raw.cert, "cert")?,
        key: path(&raw.key, "key")?,
    };
    match load_certified_key(&files) {
        Ok(_) => Some(files),
        Err(e) => {
            let span = match e {
                TlsFileError::Certificate { .. } => raw.cert.span(),
                TlsFileError::PrivateKey { .. } | TlsFileError::Mismatch { .. } => raw.key.span(),
            };
            issues.at(span, format!("gateway.tls: {e}"));
            None
        }
    }
}

/// `gateway.behind_proxy`: at least one trusted address, each valid.
pub(crate) fn behind_proxy(raw: RawBehindProxy, issues: &mut Issues) -> Option<BehindProxy> {
    let list = raw.trusted;
    if list.get_ref().is_empty() {
        issues.at(
            list.span(),
            "gateway.behind_proxy.trusted must name at least one proxy address or range",
        );
        return None;
    }
    let mut trusted = Vec::new();
    let mut ok = true;
    for entry in list.into_inner() {
        match IpRange::parse(entry.get_ref().trim()) {
            Ok(r) if !trusted.contains(&r) => trusted.push(r),
            Ok(_) => {}
            Err(e) => {
                issues.at(entry.span(), format!("gateway.behind_proxy.trusted: {e}"));
                ok = false;
            }
        }
    }
    ok.then_some(BehindProxy { trusted })
}

impl GatewayConfig {
    /// How clients reach the front door, for `portcullis check`: TLS on or off, and whose
    /// forwarding headers are believed.
    pub fn front_door_summary(&self) -> Vec<String> {
        let tls = match &self.tls {
            Some(files) => format!(
                "TLS: on (TLS 1.2 and 1.3; certificate {}, key {}; reloaded when they change)",
                files.cert.display(),
                files.key.display()
            ),
            None => "TLS: off (plain HTTP)".to_owned(),
        };
        let proxy = match &self.behind_proxy {
            Some(p) => format!(
                "Behind a proxy: Forwarded and X-Forwarded-* are believed from {} only",
                p.trusted
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => "Behind a proxy: no (Forwarded and X-Forwarded-* are ignored)".to_owned(),
        };
        vec![tls, proxy]
    }
}

/// Warnings about the transport: plain HTTP on a network.
pub(crate) fn warnings(g: &GatewayConfig, out: &mut Vec<String>) {
    if !g.listens_on_loopback() && g.tls.is_none() && g.behind_proxy.is_none() {
        out.push(format!(
            "gateway.listen = {} serves plain HTTP beyond loopback: tokens and messages cross the network unencrypted; set gateway.tls, or gateway.behind_proxy when a TLS proxy sits in front",
            g.listen
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_contain_their_addresses_only() {
        let r = IpRange::parse("10.0.0.0/8").unwrap();
        assert!(r.contains(ip("10.255.1.2")));
        assert!(!r.contains(ip("11.0.0.1")));
        assert!(r.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped peer");
        let one = IpRange::parse("127.0.0.1").unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let v6 = IpRange::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let odd = IpRange::parse("192.168.1.128/25").unwrap();
        assert!(odd.contains(ip("192.168.1.200")) && !odd.contains(ip("192.168.1.127")));
        assert_eq!(odd.to_string(), "192.168.1.128/25");
        assert_eq!(one.to_string(), "127.0.0.1");
    }

    #[test]
    fn ranges_that_trust_too_much_or_are_misspelt_are_refused() {
        for (text, why) in [
            ("0.0.0.0/0", "every address"),
            ("::/0", "every address"),
            ("10.1.0.0/8", "did you mean 10.0.0.0/8"),
            ("10.0.0.0/33", "prefix length"),
            ("10.0.0.0/+8", "prefix length"),
            ("10.0.0.0/", "prefix length"),
            ("proxy.internal", "invalid proxy address"),
            ("0.0.0.0", "not an address a proxy connects from"),
            ("::ffff:10.0.0.1", "IPv4-mapped"),
        ] {
            let err = IpRange::parse(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn masks_cover_whole_widths() {
        assert_eq!(mask(32, 32), u128::from(u32::MAX));
        assert_eq!(mask(8, 32), 0xff00_0000);
        assert_eq!(mask(128, 128), u128::MAX);
        assert_eq!(mask(1, 128), 1u128 << 127);
    }
}
