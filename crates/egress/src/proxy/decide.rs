//! The decision: is this destination allowed, and at which addresses.
//!
//! The order matters. The allow list is checked first, so a name not on it is never even
//! resolved (resolution itself leaks, and costs). A listed name is resolved once; every
//! address is checked, and one blocked address refuses the whole name (a name that answers
//! both a public and a private address is a rebinding setup, not an accident). The checked
//! addresses are the only ones connected to: there is no second lookup that could answer
//! differently.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::destination::{Destination, Host};
use super::event::Reason;
use super::resolve::{Resolve, resolve_bounded};
use crate::address::{AddressClass, classify, is_metadata_host};

/// A destination that passed: the addresses to try, in order.
#[derive(Debug)]
pub(crate) struct Approved {
    pub addrs: Vec<SocketAddr>,
    pub resolved: Vec<IpAddr>,
}

/// A destination that did not, with what its name resolved to (for the audit).
#[derive(Debug)]
pub(crate) struct Refused {
    pub reason: Reason,
    pub resolved: Vec<IpAddr>,
}

pub(crate) async fn check(
    allow: &[Destination],
    resolver: &dyn Resolve,
    resolve_timeout: Duration,
    dest: &Destination,
) -> Result<Approved, Refused> {
    let refuse = |reason, resolved| Refused { reason, resolved };
    if !allow.contains(dest) {
        return Err(refuse(Reason::NotOnAllowList, Vec::new()));
    }
    let name = match &dest.host {
        // The operator wrote this address: it is allowed whatever its range.
        Host::Ip(ip) => {
            return Ok(Approved {
                addrs: vec![SocketAddr::new(*ip, dest.port)],
                resolved: Vec::new(),
            });
        }
        Host::Name(name) => name,
    };
    if is_metadata_host(name) {
        return Err(refuse(Reason::MetadataHost, Vec::new()));
    }
    let resolved = match resolve_bounded(resolver, name, dest.port, resolve_timeout).await {
        Ok(resolved) => resolved,
        Err(why) => return Err(refuse(Reason::ResolveFailed(why), Vec::new())),
    };
    if resolved.is_empty() {
        return Err(refuse(Reason::NoAddresses, resolved));
    }
    for ip in &resolved {
        if let AddressClass::Blocked(why) = classify(*ip) {
            let reason = Reason::BlockedAddress { address: *ip, why };
            return Err(refuse(reason, resolved));
        }
    }
    Ok(Approved {
        addrs: resolved
            .iter()
            .map(|ip| SocketAddr::new(*ip, dest.port))
            .collect(),
        resolved,
    })
}

#[cfg(test)]
mod tests {
    use std::io;

    use futures::future::BoxFuture;

    use super::*;

    /// Answers every name with the same addresses.
    struct Fixed(Vec<IpAddr>);

    impl Resolve for Fixed {
        fn resolve<'a>(&'a self, _: &'a str, _: u16) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
            let ips = self.0.clone();
            Box::pin(async move { Ok(ips) })
        }
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter()
            .map(|i| i.parse().expect("test address"))
            .collect()
    }

    #[tokio::test]
    async fn a_listed_name_with_only_public_addresses_is_approved_at_exactly_those() {
        let dest = Destination::parse("api.example.com:443").expect("dest");
        let resolver = Fixed(ips(&[
            "93.184.216.34",
            "2606:2800:220:1::1",
            "93.184.216.34",
        ]));
        let approved = check(
            std::slice::from_ref(&dest),
            &resolver,
            Duration::from_secs(1),
            &dest,
        )
        .await
        .expect("approved");
        assert_eq!(
            approved.addrs,
            vec![
                "93.184.216.34:443".parse::<SocketAddr>().expect("addr"),
                "[2606:2800:220:1::1]:443".parse().expect("addr"),
            ]
        );
    }

    #[tokio::test]
    async fn an_ip_literal_entry_is_taken_as_meant_without_resolution() {
        let dest = Destination::parse("10.1.2.3:5432").expect("dest");
        let resolver = Fixed(ips(&["8.8.8.8"]));
        let approved = check(
            std::slice::from_ref(&dest),
            &resolver,
            Duration::from_secs(1),
            &dest,
        )
        .await
        .expect("approved");
        assert_eq!(
            approved.addrs,
            vec!["10.1.2.3:5432".parse::<SocketAddr>().expect("addr")]
        );
        assert!(approved.resolved.is_empty());
    }

    #[tokio::test]
    async fn a_resolver_that_never_answers_is_bounded() {
        struct Never;
        impl Resolve for Never {
            fn resolve<'a>(&'a self, _: &'a str, _: u16) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
                Box::pin(std::future::pending())
            }
        }
        let dest = Destination::parse("slow.example.com:443").expect("dest");
        let refused = check(
            std::slice::from_ref(&dest),
            &Never,
            Duration::from_millis(50),
            &dest,
        )
        .await
        .expect_err("refused");
        assert!(
            matches!(refused.reason, Reason::ResolveFailed(_)),
            "{:?}",
            refused.reason
        );
    }
}
