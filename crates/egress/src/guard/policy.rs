//! What an operator opened on purpose: `egress.allow` and the plain-http dev hosts.
//!
//! Everything the address rules block stays blocked unless an entry here names it. Entries
//! are parsed into values once (networks, addresses, normalised names), so matching compares
//! values and never strings: `0x7f.1:8080` opens exactly what `127.0.0.1:8080` opens.

use std::fmt;
use std::net::IpAddr;

use super::refusal::{Denial, Rule};
use crate::address::{AddressClass, classify, is_metadata_host};
use crate::proxy::{Destination, DestinationError, Host};

/// Why an `egress.allow` or `http_hosts` entry cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("egress.allow entry {0:?}: the part before '/' must be an IP address")]
    NetworkNotAnAddress(String),
    #[error(
        "egress.allow entry {0:?}: the prefix length must be 0 to 32 (IPv4) or 0 to 128 (IPv6)"
    )]
    BadPrefix(String),
    #[error(
        "egress.allow entry {0:?}: a network must have no host bits set (write the network \
         address, e.g. 10.0.0.0/8)"
    )]
    HostBitsSet(String),
    #[error(
        "egress.allow entry {0:?}: a host name needs a port (\"idp.internal:443\"); an address \
         is written as \"10.1.2.3/32\" or \"10.1.2.3:8080\""
    )]
    NameWithoutPort(String),
    #[error("egress.allow entry {entry:?}: {source}")]
    BadDestination {
        entry: String,
        #[source]
        source: DestinationError,
    },
    #[error("http_hosts entry {entry:?}: {source}")]
    BadHttpHost {
        entry: String,
        #[source]
        source: DestinationError,
    },
}

/// One `egress.allow` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowEntry {
    /// `10.1.2.3/32`, `fd00::/8`: every address in the network, on every port.
    Network { base: IpAddr, prefix: u8 },
    /// `127.0.0.1:8080`, `[fd00::1]:443`: one address on one port.
    Address { ip: IpAddr, port: u16 },
    /// `idp.internal:443`: one name on one port, wherever it resolves (the operator vouches
    /// for the name, so its private addresses are accepted).
    Name { name: String, port: u16 },
}

impl AllowEntry {
    /// Parses `a.b.c.d/len`, `v6/len`, a bare address (its `/32` or `/128`), `ip:port`,
    /// `[v6]:port` or `name:port`.
    pub fn parse(text: &str) -> Result<AllowEntry, PolicyError> {
        let text = text.trim();
        if let Some((addr, len)) = text.split_once('/') {
            let base = addr
                .parse::<IpAddr>()
                .map_err(|_| PolicyError::NetworkNotAnAddress(text.to_owned()))?;
            let max = if base.is_ipv4() { 32 } else { 128 };
            let prefix = len
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max && !len.starts_with('+'))
                .ok_or_else(|| PolicyError::BadPrefix(text.to_owned()))?;
            if mask(base, prefix) != base {
                return Err(PolicyError::HostBitsSet(text.to_owned()));
            }
            return Ok(AllowEntry::Network { base, prefix });
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            let prefix = if ip.is_ipv4() { 32 } else { 128 };
            return Ok(AllowEntry::Network { base: ip, prefix });
        }
        let looks_like_name_only = !text.contains(':');
        let dest = Destination::parse(text).map_err(|source| {
            if looks_like_name_only {
                PolicyError::NameWithoutPort(text.to_owned())
            } else {
                PolicyError::BadDestination {
                    entry: text.to_owned(),
                    source,
                }
            }
        })?;
        Ok(match dest.host {
            Host::Ip(ip) => AllowEntry::Address {
                ip,
                port: dest.port,
            },
            Host::Name(name) => AllowEntry::Name {
                name,
                port: dest.port,
            },
        })
    }
}

impl fmt::Display for AllowEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowEntry::Network { base, prefix } => write!(f, "{base}/{prefix}"),
            AllowEntry::Address { ip, port } => write!(f, "{}:{port}", Host::Ip(*ip)),
            AllowEntry::Name { name, port } => write!(f, "{name}:{port}"),
        }
    }
}

/// The operator's exceptions to the egress rules. The default opens nothing: only public
/// addresses over `https`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    allow: Vec<AllowEntry>,
    http_hosts: Vec<Host>,
}

impl EgressPolicy {
    /// From the config's strings: `allow` entries (see [`AllowEntry::parse`]) and the hosts
    /// that may be reached over plain `http` (names or IP literals, without ports). The first
    /// bad entry is the error.
    pub fn new<A: AsRef<str>, H: AsRef<str>>(
        allow: &[A],
        http_hosts: &[H],
    ) -> Result<EgressPolicy, PolicyError> {
        let allow = allow
            .iter()
            .map(|e| AllowEntry::parse(e.as_ref()))
            .collect::<Result<_, _>>()?;
        let http_hosts = http_hosts
            .iter()
            .map(|h| {
                Host::parse(h.as_ref().trim()).map_err(|source| PolicyError::BadHttpHost {
                    entry: h.as_ref().to_owned(),
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(EgressPolicy { allow, http_hosts })
    }

    pub fn allow(&self) -> &[AllowEntry] {
        &self.allow
    }

    pub fn http_hosts(&self) -> &[Host] {
        &self.http_hosts
    }

    /// Whether plain `http` may be used to reach `host`.
    pub fn allows_plain_http(&self, host: &Host) -> bool {
        self.http_hosts.contains(host)
    }

    /// Whether an entry opens `ip` on `port` (a network containing it, or the address and
    /// port exactly).
    pub fn opens_address(&self, ip: IpAddr, port: u16) -> bool {
        self.allow.iter().any(|entry| match entry {
            AllowEntry::Network { base, prefix } => mask(ip, *prefix) == *base,
            AllowEntry::Address { ip: a, port: p } => *a == ip && *p == port,
            AllowEntry::Name { .. } => false,
        })
    }

    /// Whether an entry opens the name `name` (normalised, as [`Host::Name`] holds it) on
    /// `port`, whatever it resolves to.
    pub fn opens_name(&self, name: &str, port: u16) -> bool {
        self.allow.iter().any(|entry| {
            matches!(entry, AllowEntry::Name { name: n, port: p } if n == name && *p == port)
        })
    }
}

/// The address rules with the operator's exceptions: the one decision the guarded client and
/// the sandbox's proxy both make, so a destination is judged the same whichever of them
/// connects to it.
impl EgressPolicy {
    /// What can be decided about `host` on `port` before any resolution: an IP literal the
    /// address rules block is refused unless an entry opens it; a cloud metadata name is
    /// refused unless an entry opens that name on that port. Any other name passes, to be
    /// resolved and checked with [`check_resolved`](Self::check_resolved).
    pub fn check_host(&self, host: &Host, port: u16) -> Result<(), Denial> {
        match host {
            Host::Ip(ip) => match classify(*ip) {
                AddressClass::Blocked(why) if !self.opens_address(*ip, port) => {
                    Err(Denial::at(Rule::BlockedAddress(why), *ip))
                }
                _ => Ok(()),
            },
            Host::Name(name) if is_metadata_host(name) && !self.opens_name(name, port) => {
                Err(Denial::new(Rule::MetadataHost(name.clone())))
            }
            Host::Name(_) => Ok(()),
        }
    }

    /// The addresses `name` resolved to, checked for `port`: an entry opening the name on
    /// that port passes them all; otherwise one blocked address no entry opens refuses the
    /// whole name (a name answering both a public and a private address is a rebinding
    /// setup, not an accident), naming that address.
    pub fn check_resolved(&self, name: &str, port: u16, ips: &[IpAddr]) -> Result<(), Denial> {
        if ips.is_empty() {
            return Err(Denial::new(Rule::NoAddresses));
        }
        if self.opens_name(name, port) {
            return Ok(());
        }
        ips.iter()
            .try_for_each(|ip| self.check_host(&Host::Ip(*ip), port))
    }
}

/// `ip` with all but its first `prefix` bits cleared. An IPv4 address never matches an IPv6
/// network or the reverse (the families are compared by the caller's `==`).
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let keep = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4((bits & keep).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let keep = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6((bits & keep).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    #[test]
    fn every_entry_form_parses_to_its_value() {
        let policy = EgressPolicy::new(
            &[
                "10.1.2.3/32",
                "fd00::/8",
                "idp.internal:443",
                "127.0.0.1:8080",
                "[fd00:ec2::254]:80",
                "192.168.7.9",
                "Upper.Example.:8443",
            ],
            &["127.0.0.1", "dev.local"],
        )
        .expect("policy");
        assert_eq!(
            policy
                .allow()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [
                "10.1.2.3/32",
                "fd00::/8",
                "idp.internal:443",
                "127.0.0.1:8080",
                "[fd00:ec2::254]:80",
                "192.168.7.9/32",
                "upper.example:8443",
            ]
        );
        assert!(policy.allows_plain_http(&Host::Name("dev.local".into())));
        assert!(policy.allows_plain_http(&Host::Ip(ip("127.0.0.1"))));
        assert!(!policy.allows_plain_http(&Host::Name("example.com".into())));
    }

    #[test]
    fn networks_match_by_prefix_and_addresses_by_port() {
        let policy = EgressPolicy::new(
            &["10.0.0.0/8", "fd00::/8", "127.0.0.1:8080"],
            &[] as &[&str],
        )
        .expect("policy");
        assert!(policy.opens_address(ip("10.200.3.4"), 1));
        assert!(!policy.opens_address(ip("11.0.0.1"), 443));
        assert!(policy.opens_address(ip("fd12::1"), 443));
        assert!(!policy.opens_address(ip("fe80::1"), 443));
        assert!(policy.opens_address(ip("127.0.0.1"), 8080));
        assert!(!policy.opens_address(ip("127.0.0.1"), 8081));
        // The IPv4-mapped form of an opened address is a different address.
        assert!(!policy.opens_address(ip("::ffff:10.0.0.1"), 443));
        let all = EgressPolicy::new(&["0.0.0.0/0"], &[] as &[&str]).expect("policy");
        assert!(all.opens_address(ip("169.254.169.254"), 80));
        assert!(!all.opens_address(ip("::1"), 80));
    }

    #[test]
    fn bad_entries_are_refused_with_the_reason() {
        type Expect = fn(&PolicyError) -> bool;
        let cases: &[(&str, Expect)] = &[
            ("idp.internal", |e| {
                matches!(e, PolicyError::NameWithoutPort(_))
            }),
            ("10.1.2.3/33", |e| matches!(e, PolicyError::BadPrefix(_))),
            ("fd00::/129", |e| matches!(e, PolicyError::BadPrefix(_))),
            ("10.1.2.3/+8", |e| matches!(e, PolicyError::BadPrefix(_))),
            ("10.1.2.3/", |e| matches!(e, PolicyError::BadPrefix(_))),
            ("10.1.2.3/8", |e| matches!(e, PolicyError::HostBitsSet(_))),
            ("example.com/8", |e| {
                matches!(e, PolicyError::NetworkNotAnAddress(_))
            }),
            ("idp.internal:0", |e| {
                matches!(e, PolicyError::BadDestination { .. })
            }),
            ("idp.internal:99999", |e| {
                matches!(e, PolicyError::BadDestination { .. })
            }),
            ("user@idp.internal:443", |e| {
                matches!(e, PolicyError::BadDestination { .. })
            }),
            ("", |e| matches!(e, PolicyError::NameWithoutPort(_))),
        ];
        for (entry, expected) in cases {
            let err = EgressPolicy::new(&[*entry], &[] as &[&str]).expect_err(entry);
            assert!(expected(&err), "{entry:?}: {err}");
            assert!(err.to_string().contains(entry), "{err}");
        }
        assert!(matches!(
            EgressPolicy::new(&[] as &[&str], &["bad host"]),
            Err(PolicyError::BadHttpHost { .. })
        ));
    }
}
