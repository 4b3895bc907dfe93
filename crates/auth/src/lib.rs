//! Authentication for Portcullis, both ways.
//!
//! - [`resource`]: the gateway as an OAuth 2.1 resource server. It validates the bearer
//!   tokens MCP clients present (JWT access tokens per RFC 9068, keys from the issuer's JWKS,
//!   optional RFC 7662 introspection), publishes RFC 9728 protected resource metadata, and
//!   builds the `WWW-Authenticate` challenges of the MCP authorization spec.
//! - [`upstream`]: the credentials the gateway presents to remote MCP servers. Each server
//!   has its own; the client's token is never one of them.
//! - [`client`]: the gateway as an OAuth client of a remote MCP server's authorization
//!   server, acting for one user (authorization code with PKCE, discovery, registration).
//! - [`secret`]: a type for secret strings that never prints.
//! - [`vault`]: the key and the sealing (AES-256-GCM) of what the gateway keeps for users
//!   at rest: OAuth grants and client registrations.
//!
//! All network access goes through `portcullis-egress`, the gateway's one outbound client.

pub mod client;
pub mod resource;
pub mod secret;
pub mod upstream;
pub mod vault;

/// Whether `host` (as in a URL: a name, an IPv4 address, or an IPv6 address in brackets)
/// is this machine: `localhost` or a loopback address. Plain http, which exposes what it
/// carries, is allowed only there.
#[must_use]
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
