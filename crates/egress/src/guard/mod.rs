//! The SSRF guard: which URLs the gateway may fetch, and where the connection may go.
//!
//! Every URL the gateway fetches can come from someone else (an upstream's `WWW-Authenticate`,
//! an authorization server's metadata, a redirect). The guard decides in two places, and a
//! request must pass both:
//!
//! - [`EgressGuard::check_url`], before the request: `https` only (`http` for the dev hosts
//!   in `http_hosts`), no userinfo, no port 0, no metadata host names, and IP literals in any
//!   spelling (see [`crate::address::parse_ip_literal`]) judged by [`crate::address::classify`];
//! - the [`GuardedConnector`], when the connection is opened: it repeats `check_url` on the
//!   exact URI hyper connects for, resolves a name once through the [`GuardedResolver`],
//!   refuses it if any address is blocked, connects only to the checked addresses and checks
//!   the connected peer is one of them.
//!
//! Blocked addresses and names are reachable only when [`EgressPolicy`] opens them. Every
//! refusal is a [`Refusal`] with the (redacted) URL, the address and the [`Rule`], for the
//! audit. Redirects are never followed by the connector; [`redirect::next_hop`] turns a
//! redirect into a new request that goes through all of the above again.

mod connector;
mod policy;
pub mod redirect;
mod refusal;
mod resolver;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use http::uri::Scheme;

pub use connector::{ConnectFailure, GuardedConnector};
pub use policy::{AllowEntry, EgressPolicy, PolicyError};
pub use refusal::{Denial, Refusal, Rule};
pub use resolver::GuardedResolver;
pub(crate) use resolver::resolve_checked;

use crate::proxy::{Host, Resolve, SystemResolver};

/// The guarded client's bounds. [`GuardLimits::default`] gives the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardLimits {
    /// Time for a name to resolve.
    pub resolve_timeout: Duration,
    /// Time for a whole request (connect, send, response head, and a body read with
    /// `bytes_limited`) when the request sets none.
    pub total_timeout: Duration,
    /// Largest response body `bytes_limited` returns, whatever limit the caller passes.
    pub max_response_bytes: usize,
    /// Most redirects `send_following` follows for one request.
    pub max_redirects: usize,
}

impl Default for GuardLimits {
    fn default() -> Self {
        GuardLimits {
            resolve_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(30),
            max_response_bytes: 4 * 1024 * 1024,
            max_redirects: 5,
        }
    }
}

/// Where a checked URL goes: its normalised host and effective port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: Host,
    pub port: u16,
}

/// The policy, the resolver and the bounds, shared by the checks and the connector. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct EgressGuard {
    policy: Arc<EgressPolicy>,
    resolver: GuardedResolver,
    limits: GuardLimits,
}

impl EgressGuard {
    /// A guard resolving with the system resolver.
    pub fn new(policy: EgressPolicy, limits: GuardLimits) -> Self {
        EgressGuard::with_resolver(policy, limits, Arc::new(SystemResolver))
    }

    /// A guard resolving with `resolver` (tests answer names from a table).
    pub fn with_resolver(
        policy: EgressPolicy,
        limits: GuardLimits,
        resolver: Arc<dyn Resolve>,
    ) -> Self {
        let policy = Arc::new(policy);
        let resolver = GuardedResolver::new(Arc::clone(&policy), resolver, limits.resolve_timeout);
        EgressGuard {
            policy,
            resolver,
            limits,
        }
    }

    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    pub fn limits(&self) -> GuardLimits {
        self.limits
    }

    /// Parses `url` and checks it with [`check_url`](Self::check_url).
    pub fn check_str(&self, url: &str) -> Result<Uri, Refusal> {
        let uri: Uri = url.parse().map_err(|e: http::uri::InvalidUri| {
            Refusal::for_text(url, Rule::InvalidUrl(e.to_string()))
        })?;
        self.check_url(&uri)?;
        Ok(uri)
    }

    /// Everything that can be decided without resolving a name: scheme, userinfo, host, port,
    /// IP literals in any spelling, metadata names. A name that passes is still resolved and
    /// checked by the connector.
    pub fn check_url(&self, uri: &Uri) -> Result<Target, Refusal> {
        let refuse = |rule| Refusal::new(uri, rule);
        let scheme = uri
            .scheme()
            .ok_or_else(|| refuse(Rule::InvalidUrl("no scheme".into())))?;
        let https = if *scheme == Scheme::HTTPS {
            true
        } else if *scheme == Scheme::HTTP {
            false
        } else {
            return Err(refuse(Rule::Scheme(scheme.as_str().to_owned())));
        };
        let authority = uri
            .authority()
            .ok_or_else(|| refuse(Rule::InvalidUrl("no host".into())))?;
        let host = Host::parse(authority.host()).map_err(|_| refuse(Rule::BadHost))?;
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        // Where the URL points is judged first, so the audit names the blocked address or
        // metadata host even when another rule (userinfo, plain http) also applies.
        self.policy
            .check_host(&host, port)
            .map_err(|denial| Refusal::denied(uri, denial))?;
        if authority.as_str().contains('@') {
            return Err(refuse(Rule::Userinfo));
        }
        if port == 0 {
            return Err(refuse(Rule::PortZero));
        }
        if !https && !self.policy.allows_plain_http(&host) {
            return Err(refuse(Rule::PlainHttp));
        }
        Ok(Target { host, port })
    }

    /// The checked addresses to connect to for `uri`: [`check_url`](Self::check_url), then,
    /// for a name, one resolution with every address checked.
    pub async fn approve(&self, uri: &Uri) -> Result<Vec<SocketAddr>, Refusal> {
        let target = self.check_url(uri)?;
        match target.host {
            Host::Ip(ip) => Ok(vec![SocketAddr::new(ip, target.port)]),
            Host::Name(name) => self.resolver.resolve(uri, &name, target.port).await,
        }
    }
}

#[cfg(test)]
mod tests;
