//! Who a request comes from, and which URL it was sent to, through trusted reverse proxies.
//!
//! Behind a reverse proxy the TCP peer is the proxy; the client's address, the scheme it
//! used and the host it asked for arrive in `Forwarded` (RFC 7239) or `X-Forwarded-For`,
//! `X-Forwarded-Proto` and `X-Forwarded-Host`. Those headers say whatever their sender
//! wrote, so they are believed only when the TCP peer is in `gateway.behind_proxy.trusted`;
//! from anyone else they are removed before any handler runs, and the request is taken as
//! coming from its peer. When a trusted proxy sends `Forwarded`, the `X-Forwarded-*`
//! headers are not read.
//!
//! [`middleware`] runs first on every request: it puts a [`ClientOrigin`] in the request's
//! extensions, and makes `Host` the host the client asked for (a trusted proxy's forwarded
//! host, or HTTP/2's `:authority`), so the Host and Origin checks, and everything after
//! them, see the client's view and not the proxy's. The hop lists themselves are read in
//! [`hops`].

mod hops;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use self::hops::{forwarded_view, x_forwarded_view};
use super::plain;
use crate::config::{BehindProxy, GatewayConfig, canonical_ip, host_value};

/// The request headers that carry a proxy's view of the client.
const FORWARDING_HEADERS: [&str; 4] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
];

/// The scheme a client used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn default_port(self) -> &'static str {
        match self {
            Scheme::Http => "80",
            Scheme::Https => "443",
        }
    }

    fn parse(text: &str) -> Option<Scheme> {
        if text.eq_ignore_ascii_case("https") {
            Some(Scheme::Https)
        } else if text.eq_ignore_ascii_case("http") {
            Some(Scheme::Http)
        } else {
            None
        }
    }
}

/// Where a request comes from and what it was addressed to, as far as the gateway can
/// know: one per request, in its extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOrigin {
    /// The TCP peer (IPv4-mapped IPv6 shown as IPv4); unspecified if unknown.
    pub peer: IpAddr,
    /// The client: the peer itself, or the first untrusted address a trusted proxy names.
    pub client: IpAddr,
    /// The scheme the client used: the listener's, or a trusted proxy's.
    pub scheme: Scheme,
    /// The host the client asked for, `host[:port]` lowercased: `Host` (or `:authority`),
    /// or a trusted proxy's forwarded host. `None` when absent or not a valid host.
    pub host: Option<String>,
    /// The peer is a trusted proxy, so client, scheme and host may come from its headers.
    pub via_proxy: bool,
}

impl ClientOrigin {
    /// The origin the client addressed, `scheme://host[:port]` with the scheme's default
    /// port dropped; `None` without a valid host.
    pub fn base_url(&self) -> Option<String> {
        let host = self.host.as_deref()?;
        let host = match host.rsplit_once(':') {
            Some((name, port)) if port == self.scheme.default_port() => name,
            _ => host,
        };
        Some(format!("{}://{host}", self.scheme.as_str()))
    }

    /// The origin [`middleware`] recorded for a request (always there under `serve`).
    pub fn of(extensions: &axum::http::Extensions) -> Option<&ClientOrigin> {
        extensions.get::<ClientOrigin>()
    }
}

/// The external base URL of the gateway for this request, to which `/mcp/<route>` is
/// appended for a route's canonical URL (and token audience): `gateway.public_url` when
/// it is set, since an operator's word beats any header; else the origin the client
/// addressed.
pub fn external_base_url(gateway: &GatewayConfig, origin: &ClientOrigin) -> Option<String> {
    gateway.public_url.clone().or_else(|| origin.base_url())
}

/// A request whose addressing cannot be trusted or understood: answered 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadForwarding {
    #[error("Host and the request's authority name different hosts")]
    AuthorityMismatch,
    #[error("malformed {0} header from a trusted proxy")]
    Malformed(&'static str),
    #[error("{0} from a trusted proxy has several values: the proxy must set it, not append to it")]
    Ambiguous(&'static str),
}

/// What [`middleware`] needs from the config.
#[derive(Debug, Clone)]
pub struct ForwardedPolicy {
    trusted: Option<BehindProxy>,
    /// The listener's own scheme.
    scheme: Scheme,
}

impl ForwardedPolicy {
    pub fn from_config(cfg: &GatewayConfig) -> ForwardedPolicy {
        ForwardedPolicy {
            trusted: cfg.behind_proxy.clone(),
            scheme: if cfg.tls.is_some() {
                Scheme::Https
            } else {
                Scheme::Http
            },
        }
    }

    /// The origin of a request from `peer` (unknown: never trusted) with these headers and
    /// request-target authority (HTTP/2 `:authority`, or an absolute-form target).
    pub fn resolve(
        &self,
        peer: Option<IpAddr>,
        headers: &HeaderMap,
        authority: Option<&str>,
    ) -> Result<ClientOrigin, BadForwarding> {
        let peer_ip = peer.map(canonical_ip);
        let direct = direct_host(headers, authority)?;
        let trust = match (&self.trusted, peer_ip) {
            (Some(t), Some(ip)) if t.trusts(ip) => Some(t),
            _ => None,
        };
        let peer_ip = peer_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let mut origin = ClientOrigin {
            peer: peer_ip,
            client: peer_ip,
            scheme: self.scheme,
            host: direct.and_then(host_value),
            via_proxy: trust.is_some(),
        };
        let Some(trust) = trust else {
            return Ok(origin);
        };
        let view = if headers.contains_key(header::FORWARDED) {
            forwarded_view(headers, trust, peer_ip)?
        } else {
            x_forwarded_view(headers, trust, peer_ip)?
        };
        origin.client = view.client;
        if let Some(scheme) = view.scheme {
            origin.scheme = scheme;
        }
        if view.host.is_some() {
            origin.host = view.host;
        }
        Ok(origin)
    }
}

/// `Host`, or the request target's authority; both present and different is an error
/// (RFC 9113 §8.3.1, RFC 9112 §3.2.2).
fn direct_host<'a>(
    headers: &'a HeaderMap,
    authority: Option<&'a str>,
) -> Result<Option<&'a str>, BadForwarding> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (host, authority) {
        (Some(h), Some(a)) if !h.eq_ignore_ascii_case(a) => Err(BadForwarding::AuthorityMismatch),
        (Some(h), _) => Ok(Some(h)),
        (None, a) => Ok(a),
    }
}

/// Records the request's [`ClientOrigin`], drops forwarding headers from untrusted peers,
/// and sets `Host` to the host the client asked for. A forwarding header a trusted proxy
/// got wrong, or a `Host` that contradicts the request target, is answered 400.
pub async fn middleware(
    State(policy): State<Arc<ForwardedPolicy>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let authority = request.uri().authority().map(|a| a.as_str().to_owned());
    let origin = match policy.resolve(peer, request.headers(), authority.as_deref()) {
        Ok(origin) => origin,
        Err(e) => return plain(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let headers = request.headers_mut();
    if !origin.via_proxy {
        for name in FORWARDING_HEADERS {
            headers.remove(name);
        }
    }
    let replace_host = origin.via_proxy || !headers.contains_key(header::HOST);
    if replace_host
        && let Some(host) = origin.host.as_deref()
        && let Ok(value) = HeaderValue::from_str(host)
    {
        headers.insert(header::HOST, value);
    }
    request.extensions_mut().insert(origin);
    next.run(request).await
}

/// `router` with [`middleware`] in front of every route.
pub fn layer(router: axum::Router, cfg: &GatewayConfig) -> axum::Router {
    let policy = Arc::new(ForwardedPolicy::from_config(cfg));
    router.layer(axum::middleware::from_fn_with_state(policy, middleware))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IpRange;

    fn policy(trusted: &[&str], tls: bool) -> ForwardedPolicy {
        ForwardedPolicy {
            trusted: (!trusted.is_empty()).then(|| BehindProxy {
                trusted: trusted.iter().map(|t| IpRange::parse(t).unwrap()).collect(),
            }),
            scheme: if tls { Scheme::Https } else { Scheme::Http },
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn resolve(p: &ForwardedPolicy, peer: &str, h: &[(&'static str, &str)]) -> ClientOrigin {
        p.resolve(Some(ip(peer)), &headers(h), None).unwrap()
    }

    #[test]
    fn forwarding_headers_from_an_untrusted_peer_change_nothing() {
        let p = policy(&["10.0.0.0/8"], false);
        let o = resolve(
            &p,
            "192.0.2.1",
            &[
                ("host", "gw.example.com:8440"),
                ("x-forwarded-for", "203.0.113.7"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "evil.example.com"),
                ("forwarded", "for=203.0.113.8;host=evil.example.com"),
            ],
        );
        assert_eq!(o.client, ip("192.0.2.1"));
        assert_eq!(o.scheme, Scheme::Http);
        assert_eq!(o.host.as_deref(), Some("gw.example.com:8440"));
        assert!(!o.via_proxy);
        assert_eq!(o.base_url().as_deref(), Some("http://gw.example.com:8440"));
    }

    #[test]
    fn a_spoofed_x_forwarded_for_prefix_does_not_become_the_client() {
        // The client wrote "1.2.3.4" itself; the trusted edge appended the real address.
        let p = policy(&["10.0.0.0/8"], false);
        let o = resolve(
            &p,
            "10.0.0.2",
            &[
                ("host", "internal"),
                ("x-forwarded-for", "1.2.3.4, 203.0.113.7"),
                ("x-forwarded-for", "10.0.0.9"),
                ("x-forwarded-proto", "HTTPS"),
                ("x-forwarded-host", "MCP.example.com:443"),
            ],
        );
        assert_eq!(o.client, ip("203.0.113.7"));
        assert_eq!(o.scheme, Scheme::Https);
        assert_eq!(o.host.as_deref(), Some("mcp.example.com:443"));
        assert!(o.via_proxy);
        assert_eq!(o.base_url().as_deref(), Some("https://mcp.example.com"));
    }

    #[test]
    fn an_unknown_hop_stops_the_walk_at_the_last_trusted_address() {
        let p = policy(&["10.0.0.0/8"], false);
        let o = resolve(
            &p,
            "10.0.0.2",
            &[("x-forwarded-for", "203.0.113.7, garbage, 10.0.0.5")],
        );
        assert_eq!(o.client, ip("10.0.0.5"));
        // No X-Forwarded-For at all: the client is the proxy itself.
        assert_eq!(resolve(&p, "10.0.0.2", &[]).client, ip("10.0.0.2"));
    }

    #[test]
    fn rfc_7239_elements_are_read_at_the_hop_of_the_client() {
        let p = policy(&["10.0.0.0/8", "fd00::/8"], false);
        let o = resolve(
            &p,
            "10.0.0.2",
            &[(
                "forwarded",
                r#"for=1.2.3.4;host=evil.example.com, For="[2001:db8::17]:4711";Proto=https;Host="mcp.example.com", for="[fd00::1]";proto=http;host=internal"#,
            )],
        );
        assert_eq!(o.client, ip("2001:db8::17"));
        assert_eq!(o.scheme, Scheme::Https);
        assert_eq!(o.host.as_deref(), Some("mcp.example.com"));
        // `Forwarded` wins over X-Forwarded-*.
        let o = resolve(
            &p,
            "10.0.0.2",
            &[
                ("forwarded", "for=203.0.113.7;host=a.example.com"),
                ("x-forwarded-host", "b.example.com"),
            ],
        );
        assert_eq!(o.host.as_deref(), Some("a.example.com"));
    }

    #[test]
    fn malformed_or_ambiguous_headers_from_a_trusted_proxy_are_refused() {
        let p = policy(&["127.0.0.1"], true);
        for (h, want) in [
            (
                ("x-forwarded-host", "a.example.com, b.example.com"),
                BadForwarding::Ambiguous("x-forwarded-host"),
            ),
            (
                ("x-forwarded-proto", "ftp"),
                BadForwarding::Malformed("X-Forwarded-Proto"),
            ),
            (
                ("x-forwarded-host", "a.example.com/path"),
                BadForwarding::Malformed("X-Forwarded-Host"),
            ),
            (
                ("forwarded", "for=1.2.3.4;for=5.6.7.8"),
                BadForwarding::Malformed("Forwarded"),
            ),
            (
                ("forwarded", "for=\"unterminated"),
                BadForwarding::Malformed("Forwarded"),
            ),
            (
                ("forwarded", "host=a.example.com;proto=gopher"),
                BadForwarding::Malformed("Forwarded"),
            ),
        ] {
            let err = p
                .resolve(Some(ip("127.0.0.1")), &headers(&[h]), None)
                .unwrap_err();
            assert_eq!(err, want, "{h:?}");
        }
        let mut twice = headers(&[("x-forwarded-proto", "https")]);
        twice.append("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(p.resolve(Some(ip("127.0.0.1")), &twice, None).is_err());
    }

    #[test]
    fn an_unknown_peer_is_never_trusted() {
        let p = policy(&["127.0.0.1"], false);
        let o = p
            .resolve(
                None,
                &headers(&[("x-forwarded-host", "a.example.com")]),
                None,
            )
            .unwrap();
        assert!(!o.via_proxy);
        assert_eq!(o.host, None);
        assert_eq!(o.peer, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    }

    #[test]
    fn a_mapped_ipv4_peer_matches_its_ipv4_range() {
        let p = policy(&["127.0.0.1"], false);
        let o = resolve(
            &p,
            "::ffff:127.0.0.1",
            &[("x-forwarded-for", "203.0.113.7")],
        );
        assert!(o.via_proxy);
        assert_eq!(o.peer, ip("127.0.0.1"));
        assert_eq!(o.client, ip("203.0.113.7"));
    }

    #[test]
    fn the_authority_stands_in_for_host_and_must_agree_with_it() {
        let p = policy(&[], true);
        let o = p
            .resolve(
                Some(ip("127.0.0.1")),
                &HeaderMap::new(),
                Some("LOCALHOST:8443"),
            )
            .unwrap();
        assert_eq!(o.host.as_deref(), Some("localhost:8443"));
        assert_eq!(o.base_url().as_deref(), Some("https://localhost:8443"));
        let h = headers(&[("host", "localhost:8443")]);
        assert!(
            p.resolve(Some(ip("127.0.0.1")), &h, Some("localhost:8443"))
                .is_ok()
        );
        assert_eq!(
            p.resolve(Some(ip("127.0.0.1")), &h, Some("evil.example.com"))
                .unwrap_err(),
            BadForwarding::AuthorityMismatch
        );
    }

    #[test]
    fn public_url_wins_over_what_the_request_says() {
        let o = ClientOrigin {
            peer: ip("10.0.0.2"),
            client: ip("203.0.113.7"),
            scheme: Scheme::Https,
            host: Some("[2001:db8::1]:443".to_owned()),
            via_proxy: true,
        };
        let mut cfg = GatewayConfig::default();
        assert_eq!(
            external_base_url(&cfg, &o).as_deref(),
            Some("https://[2001:db8::1]")
        );
        cfg.public_url = Some("https://mcp.example.com/gw".to_owned());
        assert_eq!(
            external_base_url(&cfg, &o).as_deref(),
            Some("https://mcp.example.com/gw")
        );
        let hostless = ClientOrigin { host: None, ..o };
        assert_eq!(hostless.base_url(), None);
    }
}
