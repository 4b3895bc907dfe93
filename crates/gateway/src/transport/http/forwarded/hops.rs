//! The hop lists of forwarding headers: `X-Forwarded-For` and RFC 7239 `Forwarded`,
//! parsed strictly and walked back from the nearest proxy to the client.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, header};

use super::{BadForwarding, Scheme};
use crate::config::{BehindProxy, canonical_ip, host_value};

/// Most proxy hops walked back from the peer to find the client.
const MAX_HOPS: usize = 32;

/// What a trusted proxy said about the client.
#[derive(Debug)]
pub(super) struct ProxyView {
    pub client: IpAddr,
    pub scheme: Option<Scheme>,
    pub host: Option<String>,
}

/// Walks proxy hops from the nearest (last) back: past trusted proxies, the first address
/// that is not trusted is the client. An unknown or hidden hop stops the walk at the last
/// address vouched for. Returns the client and the index of the hop it was found at.
fn walk(hops: &[Option<IpAddr>], trust: &BehindProxy, peer: IpAddr) -> (IpAddr, Option<usize>) {
    let mut client = peer;
    let mut at = None;
    for (i, hop) in hops.iter().enumerate().rev().take(MAX_HOPS) {
        at = Some(i);
        match hop {
            Some(ip) => {
                client = canonical_ip(*ip);
                if !trust.trusts(client) {
                    break;
                }
            }
            None => break,
        }
    }
    (client, at)
}

/// Every comma-separated value of every line of a header, in order.
fn list_values<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> Result<Vec<&'a str>, BadForwarding> {
    let mut out = Vec::new();
    for line in headers.get_all(name) {
        let line = line.to_str().map_err(|_| BadForwarding::Malformed(name))?;
        out.extend(line.split(',').map(str::trim));
    }
    Ok(out)
}

/// The one value of a header a proxy sets (not appends to).
fn single<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> Result<Option<&'a str>, BadForwarding> {
    let values = list_values(headers, name)?;
    match values.as_slice() {
        [] => Ok(None),
        [""] => Err(BadForwarding::Malformed(name)),
        [one] => Ok(Some(one)),
        _ => Err(BadForwarding::Ambiguous(name)),
    }
}

/// An address as proxies write it: `192.0.2.1`, `2001:db8::1`, `[2001:db8::1]`, with or
/// without a port. `unknown` and obfuscated names (`_hidden`) are `None`.
fn node_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            text.strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse().ok())
        })
}

pub(super) fn x_forwarded_view(
    headers: &HeaderMap,
    trust: &BehindProxy,
    peer: IpAddr,
) -> Result<ProxyView, BadForwarding> {
    let hops: Vec<Option<IpAddr>> = list_values(headers, "x-forwarded-for")?
        .into_iter()
        .map(node_ip)
        .collect();
    let (client, _) = walk(&hops, trust, peer);
    let scheme = single(headers, "x-forwarded-proto")?
        .map(|p| Scheme::parse(p).ok_or(BadForwarding::Malformed("X-Forwarded-Proto")))
        .transpose()?;
    let host = single(headers, "x-forwarded-host")?
        .map(|h| host_value(h).ok_or(BadForwarding::Malformed("X-Forwarded-Host")))
        .transpose()?;
    Ok(ProxyView {
        client,
        scheme,
        host,
    })
}

/// One element of `Forwarded`: the parameters this gateway reads.
#[derive(Debug, Default, PartialEq, Eq)]
struct Element {
    r#for: Option<String>,
    proto: Option<String>,
    host: Option<String>,
}

/// RFC 7239 `Forwarded`: the element at the hop where the client was found tells the
/// client, and the scheme and host it used to reach the first trusted proxy.
pub(super) fn forwarded_view(
    headers: &HeaderMap,
    trust: &BehindProxy,
    peer: IpAddr,
) -> Result<ProxyView, BadForwarding> {
    let mut elements = Vec::new();
    for line in headers.get_all(header::FORWARDED) {
        let line = line
            .to_str()
            .map_err(|_| BadForwarding::Malformed("Forwarded"))?;
        elements.extend(parse_forwarded(line).ok_or(BadForwarding::Malformed("Forwarded"))?);
    }
    let hops: Vec<Option<IpAddr>> = elements
        .iter()
        .map(|e| e.r#for.as_deref().and_then(node_ip))
        .collect();
    let (client, at) = walk(&hops, trust, peer);
    let Some(element) = at.and_then(|i| elements.get(i)) else {
        return Ok(ProxyView {
            client,
            scheme: None,
            host: None,
        });
    };
    let scheme = element
        .proto
        .as_deref()
        .map(|p| Scheme::parse(p).ok_or(BadForwarding::Malformed("Forwarded")))
        .transpose()?;
    let host = element
        .host
        .as_deref()
        .map(|h| host_value(h).ok_or(BadForwarding::Malformed("Forwarded")))
        .transpose()?;
    Ok(ProxyView {
        client,
        scheme,
        host,
    })
}

/// Splits a `Forwarded` line into elements (`,`) of `name=value` pairs (`;`), values being
/// tokens or quoted strings. `None` when it does not parse.
fn parse_forwarded(line: &str) -> Option<Vec<Element>> {
    let mut elements = Vec::new();
    let mut element = Element::default();
    let mut rest = line.trim_start();
    loop {
        let (name, after) = rest.split_once('=')?;
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return None;
        }
        let after = after.trim_start();
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => quoted_string(quoted)?,
            None => {
                let end = after.find([';', ',']).unwrap_or(after.len());
                let (v, a) = after.split_at(end);
                let v = v.trim();
                if !v.chars().all(is_token_char) {
                    return None;
                }
                (v.to_owned(), a)
            }
        };
        let slot = match name.to_ascii_lowercase().as_str() {
            "for" => Some(&mut element.r#for),
            "proto" => Some(&mut element.proto),
            "host" => Some(&mut element.host),
            _ => None,
        };
        if let Some(slot) = slot {
            if slot.is_some() {
                // A parameter twice in one element is malformed (RFC 7239 §4).
                return None;
            }
            *slot = Some(value);
        }
        let after = after.trim_start();
        match after.as_bytes().first() {
            None => {
                elements.push(element);
                return Some(elements);
            }
            Some(b';') => rest = after[1..].trim_start(),
            Some(b',') => {
                elements.push(std::mem::take(&mut element));
                rest = after[1..].trim_start();
            }
            Some(_) => return None,
        }
    }
}

/// A character of an unquoted value: an RFC 7230 token character, or `:`, `[` and `]`,
/// which proxies write unquoted in `host=name:port` although RFC 7239 asks for quotes.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~:[]".contains(c)
}

/// The rest of a quoted string after its opening quote: its value and what follows.
fn quoted_string(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[i + 1..])),
            '\\' => value.push(chars.next()?.1),
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_values_parse_as_rfc_7239_writes_them() {
        let parsed =
            parse_forwarded(r#"for=192.0.2.60;proto=http;by=203.0.113.43, for="\"quoted\"""#)
                .unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].r#for.as_deref(), Some("192.0.2.60"));
        assert_eq!(parsed[0].proto.as_deref(), Some("http"));
        assert_eq!(parsed[1].r#for.as_deref(), Some("\"quoted\""));
        for bad in ["", "for", "=x", "for=1.2.3.4 junk", "for=1;;", "fo r=1"] {
            assert!(parse_forwarded(bad).is_none(), "{bad:?}");
        }
        assert_eq!(node_ip("unknown"), None);
        assert_eq!(node_ip("_hidden"), None);
        assert_eq!(node_ip("192.0.2.1:80"), Some(ip("192.0.2.1")));
        assert_eq!(node_ip("[2001:db8::1]"), Some(ip("2001:db8::1")));
    }
}
