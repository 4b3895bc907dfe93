//! Resolve once, check every address, hand on only the checked ones.
//!
//! The connector asks [`GuardedResolver`] for a host name's addresses and connects only to
//! what it returns: there is no second lookup that a rebinding DNS server could answer
//! differently. One blocked address refuses the whole name (a name answering both a public
//! and a private address is a rebinding setup, not an accident), unless `egress.allow` opens
//! that address on that port, or the name itself on that port.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::Uri;

use super::policy::EgressPolicy;
use super::refusal::{Denial, Refusal, Rule};
use crate::proxy::resolve_bounded;
use crate::proxy::{Resolve, SystemResolver};

/// Resolves host names for the guarded client, and refuses names that lead somewhere blocked.
#[derive(Clone)]
pub struct GuardedResolver {
    policy: Arc<EgressPolicy>,
    resolver: Arc<dyn Resolve>,
    timeout: Duration,
}

impl fmt::Debug for GuardedResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedResolver")
            .field("policy", &self.policy)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl GuardedResolver {
    /// With the system resolver.
    pub fn system(policy: Arc<EgressPolicy>, timeout: Duration) -> Self {
        GuardedResolver::new(policy, Arc::new(SystemResolver), timeout)
    }

    /// With any resolver (tests map names to loopback listeners with a table).
    pub fn new(policy: Arc<EgressPolicy>, resolver: Arc<dyn Resolve>, timeout: Duration) -> Self {
        GuardedResolver {
            policy,
            resolver,
            timeout,
        }
    }

    /// The addresses of `name` (normalised, not an IP literal) on `port`, each checked. `uri`
    /// is only for the refusal.
    pub async fn resolve(
        &self,
        uri: &Uri,
        name: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, Refusal> {
        match resolve_checked(
            &self.policy,
            self.resolver.as_ref(),
            self.timeout,
            name,
            port,
        )
        .await
        {
            Ok(ips) => Ok(ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect()),
            Err(refused) => Err(Refusal::denied(uri, refused.denial)),
        }
    }
}

/// A name [`resolve_checked`] refused, with what it resolved to (for the audit: empty when
/// the resolution itself failed).
#[derive(Debug)]
pub(crate) struct NameRefused {
    pub denial: Denial,
    pub resolved: Vec<IpAddr>,
}

/// Resolves `name` once (bounded by `timeout`) and checks every address with
/// [`EgressPolicy::check_resolved`]. What it returns is all the caller may connect to: the
/// guarded client's connector and the sandbox's proxy both go through here, so neither can
/// resolve or judge a name differently from the other.
pub(crate) async fn resolve_checked(
    policy: &EgressPolicy,
    resolver: &dyn Resolve,
    timeout: Duration,
    name: &str,
    port: u16,
) -> Result<Vec<IpAddr>, NameRefused> {
    let resolved = resolve_bounded(resolver, name, port, timeout)
        .await
        .map_err(|why| NameRefused {
            denial: Denial::new(Rule::ResolveFailed(why)),
            resolved: Vec::new(),
        })?;
    match policy.check_resolved(name, port, &resolved) {
        Ok(()) => Ok(resolved),
        Err(denial) => Err(NameRefused { denial, resolved }),
    }
}
