//! Which addresses the gateway may connect to on someone else's behalf.
//!
//! Whoever hands the gateway a destination (a sandboxed server through its proxy, an upstream's
//! discovery metadata, a redirect) may be trying to reach what only the gateway's machine can
//! reach: its loopback services, the private network behind it, or the cloud metadata service
//! that hands out credentials. [`classify`] sorts an address into public or blocked, with the
//! range that blocked it. It works on `std::net` addresses only; text is turned into an address
//! by [`parse_ip_literal`] (a real parser for every spelling the C library accepts), never
//! matched as a string, so `0x7f.1`, `2130706433` and `[::ffff:127.0.0.1]` are all loopback.
//!
//! IPv6 addresses that carry an IPv4 address (IPv4-mapped and -compatible, NAT64, 6to4, Teredo)
//! are judged by the IPv4 address inside: a packet to `64:ff9b::a9fe:a9fe` ends up at
//! `169.254.169.254`.

mod literal;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use literal::parse_ip_literal;

/// The verdict on one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// Globally routable: a destination on the internet.
    Public,
    /// Not to be reached unless an operator named the address explicitly.
    Blocked(BlockReason),
}

impl AddressClass {
    pub fn is_blocked(self) -> bool {
        matches!(self, AddressClass::Blocked(_))
    }
}

/// Why an address is blocked: its range, and the IPv6 form it was wrapped in, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockReason {
    pub range: Range,
    /// Set when the blocked range is that of an IPv4 address carried inside an IPv6 one.
    pub embedded_in: Option<Embedding>,
}

impl fmt::Display for BlockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.embedded_in {
            None => write!(f, "{}", self.range),
            Some(e) => write!(f, "{} inside {e}", self.range),
        }
    }
}

/// The special-purpose ranges (IANA's IPv4 and IPv6 special-purpose registries, RFC 6890 and
/// successors) that the gateway refuses to reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// `0.0.0.0`, `::`: connecting to it reaches the local host.
    Unspecified,
    /// `0.0.0.0/8`.
    ThisNetwork,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918: `10/8`, `172.16/12`, `192.168/16`.
    Private,
    /// `100.64.0.0/10` (carrier-grade NAT; Alibaba's metadata service lives here).
    SharedAddressSpace,
    /// `169.254.0.0/16` (AWS, GCP, Azure and Oracle metadata at `169.254.169.254`), `fe80::/10`.
    LinkLocal,
    /// `fec0::/10`, deprecated but still routed locally by some stacks.
    SiteLocal,
    /// `fc00::/7` (AWS's IPv6 metadata service is `fd00:ec2::254`).
    UniqueLocal,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// `198.18.0.0/15`, `2001:2::/48`.
    Benchmarking,
    /// `192.0.0.0/24`.
    ProtocolAssignments,
    /// `192.88.99.0/24`, the deprecated 6to4 relay anycast.
    RelayAnycast,
    /// `64:ff9b:1::/48`, NAT64 prefixes for use inside one network.
    LocalNat64,
    /// `2001:10::/28` and `2001:20::/28` (ORCHID), not routable.
    Orchid,
    /// `240.0.0.0/4`, and IPv6 outside global unicast `2000::/3` (`100::/64` discard-only,
    /// `5f00::/16` and the rest).
    Reserved,
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Range::Unspecified => "the unspecified address",
            Range::ThisNetwork => "\"this network\" (0.0.0.0/8)",
            Range::Loopback => "loopback",
            Range::Private => "a private network (RFC 1918)",
            Range::SharedAddressSpace => "shared address space (100.64.0.0/10)",
            Range::LinkLocal => "link-local (where cloud metadata services live)",
            Range::SiteLocal => "site-local (fec0::/10)",
            Range::UniqueLocal => "unique local (fc00::/7)",
            Range::Multicast => "multicast",
            Range::Broadcast => "broadcast",
            Range::Documentation => "a documentation range",
            Range::Benchmarking => "a benchmarking range",
            Range::ProtocolAssignments => "IETF protocol assignments (192.0.0.0/24)",
            Range::RelayAnycast => "the 6to4 relay anycast range (192.88.99.0/24)",
            Range::LocalNat64 => "local-use NAT64 (64:ff9b:1::/48)",
            Range::Orchid => "ORCHID (not routable)",
            Range::Reserved => "a reserved range",
        })
    }
}

/// The IPv6 forms that carry an IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedding {
    /// `::ffff:a.b.c.d`.
    Ipv4Mapped,
    /// `::a.b.c.d` (deprecated).
    Ipv4Compatible,
    /// `64:ff9b::a.b.c.d` (RFC 6052).
    Nat64,
    /// `2002:aabb:ccdd::/48` (RFC 3056).
    SixToFour,
    /// `2001:0::/32`, either the server or the (obfuscated) client address (RFC 4380).
    Teredo,
}

impl fmt::Display for Embedding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Embedding::Ipv4Mapped => "an IPv4-mapped IPv6 address",
            Embedding::Ipv4Compatible => "an IPv4-compatible IPv6 address",
            Embedding::Nat64 => "a NAT64 address (64:ff9b::/96)",
            Embedding::SixToFour => "a 6to4 address (2002::/16)",
            Embedding::Teredo => "a Teredo address (2001::/32)",
        })
    }
}

/// Classifies one address.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => match v4_range(v4) {
            Some(range) => blocked(range, None),
            None => AddressClass::Public,
        },
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// Host names that reach a cloud metadata service without looking like an address (they
/// resolve to link-local or even public addresses on the instance itself).
pub const METADATA_HOSTS: &[&str] = &[
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.tencentyun.com",
    "metadata.platformequinix.com",
];

/// Whether `name` is a metadata service's host name (compared without case and without the
/// trailing dot of a fully qualified name).
pub fn is_metadata_host(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    METADATA_HOSTS.iter().any(|m| m.eq_ignore_ascii_case(name))
}

fn blocked(range: Range, embedded_in: Option<Embedding>) -> AddressClass {
    AddressClass::Blocked(BlockReason { range, embedded_in })
}

fn v4_range(ip: Ipv4Addr) -> Option<Range> {
    let [a, b, c, _] = ip.octets();
    let range = match (a, b, c) {
        _ if ip.is_unspecified() => Range::Unspecified,
        (0, ..) => Range::ThisNetwork,
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => Range::Private,
        (100, 64..=127, _) => Range::SharedAddressSpace,
        (127, ..) => Range::Loopback,
        (169, 254, _) => Range::LinkLocal,
        (192, 0, 0) => Range::ProtocolAssignments,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Range::Documentation,
        (192, 88, 99) => Range::RelayAnycast,
        (198, 18..=19, _) => Range::Benchmarking,
        (224..=239, ..) => Range::Multicast,
        _ if ip.is_broadcast() => Range::Broadcast,
        (240..=255, ..) => Range::Reserved,
        _ => return None,
    };
    Some(range)
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let s = ip.segments();
    let bits = u128::from(ip);
    let low_v4 = Ipv4Addr::from(bits as u32);
    if ip.is_unspecified() {
        return blocked(Range::Unspecified, None);
    }
    if ip.is_loopback() {
        return blocked(Range::Loopback, None);
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return embedded(v4, Embedding::Ipv4Mapped);
    }
    if bits >> 32 == 0 {
        return embedded(low_v4, Embedding::Ipv4Compatible);
    }
    match s {
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => return embedded(low_v4, Embedding::Nat64),
        [0x64, 0xff9b, 1, ..] => return blocked(Range::LocalNat64, None),
        [0x2002, hi, lo, ..] => {
            let v4 = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
            return embedded(v4, Embedding::SixToFour);
        }
        [0x2001, 0, server_hi, server_lo, _, _, client_hi, client_lo] => {
            // The server address is in the clear; the client's is stored inverted.
            let server = Ipv4Addr::from((u32::from(server_hi) << 16) | u32::from(server_lo));
            let client = Ipv4Addr::from(!((u32::from(client_hi) << 16) | u32::from(client_lo)));
            return match embedded(server, Embedding::Teredo) {
                AddressClass::Public => embedded(client, Embedding::Teredo),
                refused => refused,
            };
        }
        [0x2001, 0x0db8, ..] => return blocked(Range::Documentation, None),
        [0x2001, 2, 0, ..] => return blocked(Range::Benchmarking, None),
        [0x2001, 0x10..=0x2f, ..] => return blocked(Range::Orchid, None),
        [0x3fff, 0..=0x0fff, ..] => return blocked(Range::Documentation, None),
        _ => {}
    }
    let first = s[0];
    let range = if first & 0xfe00 == 0xfc00 {
        Range::UniqueLocal
    } else if first & 0xffc0 == 0xfe80 {
        Range::LinkLocal
    } else if first & 0xffc0 == 0xfec0 {
        Range::SiteLocal
    } else if first & 0xff00 == 0xff00 {
        Range::Multicast
    } else if first & 0xe000 != 0x2000 {
        Range::Reserved
    } else {
        return AddressClass::Public;
    };
    blocked(range, None)
}

fn embedded(v4: Ipv4Addr, via: Embedding) -> AddressClass {
    match v4_range(v4) {
        Some(range) => blocked(range, Some(via)),
        None => AddressClass::Public,
    }
}

#[cfg(test)]
mod tests;
