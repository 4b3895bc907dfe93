//! Resolve once, check every address, hand on only the checked ones.
//!
//! The connector asks [`GuardedResolver`] for a host name's addresses and connects only to
//! what it returns: there is no second lookup that a rebinding DNS server could answer
//! differently. One blocked address refuses the whole name (a name answering both a public
//! and a private address is a rebinding setup, not an accident), unless `egress.allow` opens
//! that address on that port, or the name itself on that port.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Uri;

use super::policy::EgressPolicy;
use super::refusal::{Refusal, Rule};
use crate::address::{AddressClass, classify};
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
        let refuse = |rule| Refusal::new(uri, rule);
        let ips = resolve_bounded(self.resolver.as_ref(), name, port, self.timeout)
            .await
            .map_err(|why| refuse(Rule::ResolveFailed(why)))?;
        if ips.is_empty() {
            return Err(refuse(Rule::NoAddresses));
        }
        let name_opened = self.policy.opens_name(name, port);
        for ip in &ips {
            if name_opened || self.policy.opens_address(*ip, port) {
                continue;
            }
            if let AddressClass::Blocked(why) = classify(*ip) {
                return Err(refuse(Rule::BlockedAddress(why)).at(*ip));
            }
        }
        Ok(ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect())
    }
}
