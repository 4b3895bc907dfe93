//! IP literals in every spelling a resolver would accept.
//!
//! `std`'s parser accepts only dotted-quad IPv4, but the C library's `inet_aton` (which
//! `getaddrinfo` applies before any DNS lookup) also takes `2130706433`, `0177.0.0.1`,
//! `0x7f.1` and `127.1`. A host that one parser calls a name and the resolver calls an address
//! is how allow lists get bypassed, so every host is first put through this parser: if it is an
//! address in any spelling, it is treated as that address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parses `host` as an IP literal: IPv4 in any `inet_aton` spelling, or IPv6 with or without
/// brackets and with an optional zone id (`fe80::1%eth0`, `[fe80::1%25eth0]`). Returns `None`
/// for a host name.
pub fn parse_ip_literal(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if bare.contains(':') {
        let without_zone = bare.split_once('%').map_or(bare, |(addr, _zone)| addr);
        return without_zone.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if bare.len() != host.len() {
        // Brackets hold IPv6 only.
        return None;
    }
    parse_inet_aton(bare).map(IpAddr::V4)
}

/// `inet_aton`: one to four parts separated by dots, each decimal, octal (leading `0`) or
/// hexadecimal (`0x`); the last part fills the bytes the others left.
fn parse_inet_aton(text: &str) -> Option<Ipv4Addr> {
    let mut parts = [0u32; 4];
    let mut count = 0;
    for part in text.split('.') {
        let slot = parts.get_mut(count)?;
        *slot = parse_part(part)?;
        count += 1;
    }
    let (head, last) = match count {
        1 => (&parts[..0], parts[0]),
        2 => (&parts[..1], parts[1]),
        3 => (&parts[..2], parts[2]),
        4 => (&parts[..3], parts[3]),
        _ => return None,
    };
    if head.iter().any(|p| *p > 0xff) {
        return None;
    }
    let last_bits = 8 * (4 - head.len()) as u32;
    if last_bits < 32 && last >> last_bits != 0 {
        return None;
    }
    let mut value = 0u32;
    for (i, p) in head.iter().enumerate() {
        value |= p << (24 - 8 * i as u32);
    }
    Some(Ipv4Addr::from(value | last))
}

fn parse_part(part: &str) -> Option<u32> {
    let (digits, radix) =
        if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            (hex, 16)
        } else if part.len() > 1 && part.starts_with('0') {
            (&part[1..], 8)
        } else {
            (part, 10)
        };
    if digits.is_empty() && radix != 16 {
        return None;
    }
    if !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    if digits.is_empty() {
        // glibc reads a bare "0x" as zero.
        return Some(0);
    }
    u32::from_str_radix(digits, radix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(text: &str) -> Option<IpAddr> {
        text.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    }

    #[test]
    fn every_inet_aton_spelling_of_loopback_is_loopback() {
        for spelling in [
            "127.0.0.1",
            "2130706433",
            "0x7f000001",
            "017700000001",
            "0177.0.0.1",
            "0x7f.0.0.1",
            "0x7f.1",
            "127.1",
            "127.0.1",
            "0x7F.0X0.0.01",
        ] {
            assert_eq!(parse_ip_literal(spelling), v4("127.0.0.1"), "{spelling}");
        }
        assert_eq!(parse_ip_literal("169.254.43518"), v4("169.254.169.254"));
        assert_eq!(parse_ip_literal("0xa9fea9fe"), v4("169.254.169.254"));
    }

    #[test]
    fn ipv6_literals_with_brackets_and_zone_ids_parse() {
        let ll: IpAddr = "fe80::1".parse().unwrap();
        assert_eq!(parse_ip_literal("fe80::1"), Some(ll));
        assert_eq!(parse_ip_literal("[fe80::1]"), Some(ll));
        assert_eq!(parse_ip_literal("[fe80::1%25eth0]"), Some(ll));
        assert_eq!(parse_ip_literal("fe80::1%eth0"), Some(ll));
        assert_eq!(
            parse_ip_literal("[::ffff:127.0.0.1]"),
            Some("::ffff:127.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn names_and_malformed_numbers_are_not_literals() {
        for text in [
            "example.com",
            "1e100.net",
            "127.0.0.1.nip.io",
            "",
            ".",
            "1..1",
            "127.0.0.1.",
            "256.0.0.1",
            "1.2.3.4.5",
            "1.2.65536",
            "4294967296",
            "08.0.0.1",
            "0x1g",
            "[127.0.0.1]",
            "[not-v6]",
            "99999999999999999999999",
        ] {
            assert_eq!(parse_ip_literal(text), None, "{text:?}");
        }
    }
}
