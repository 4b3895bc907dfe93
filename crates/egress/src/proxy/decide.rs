//! The decision: is this destination allowed, and at which addresses.
//!
//! Two lists decide, in this order. The server's own allow list (`sandbox.network.allow`)
//! says what this server may ask for: a destination not exactly on it is refused, and a name
//! not on it is never even resolved (resolution itself leaks, and costs). Then the gateway's
//! egress policy (`[egress]`, the [`EgressPolicy`] its own outbound client is guarded with)
//! judges where the connection would go, with the guard's own checks
//! ([`EgressPolicy::check_host`], and [`resolve_checked`] for a name): a blocked address is
//! refused unless `egress.allow` opens it, a metadata name unless `egress.allow` names it. A
//! listed name is resolved once; every address is checked, and one blocked address refuses
//! the whole name. The checked addresses are the only ones connected to: there is no second
//! lookup that could answer differently.
//!
//! An IP literal on the server's list goes through the policy too. It used to be taken as
//! meant whatever its range, but that made the answer depend on the spelling: `10.1.2.3:443`
//! passed where `idp.internal:443`, resolving to that very address, was refused. And the
//! gateway already does not take a destination written in a server's config as opening an
//! internal address (a remote server's `url = "http://127.0.0.1:3001/mcp"` needs
//! `egress.allow` as well): the proxy's connections leave from the gateway's own network, so
//! which of its internal addresses are reachable is one decision, made in `[egress]`, where
//! `portcullis check` names each opening. The server's list only narrows it.

use std::net::{IpAddr, SocketAddr};

use super::ProxyConfig;
use super::destination::{Destination, Host};
use super::event::Reason;
use super::resolve::Resolve;
use crate::guard::resolve_checked;

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
    config: &ProxyConfig,
    resolver: &dyn Resolve,
    dest: &Destination,
) -> Result<Approved, Refused> {
    if !config.allow.contains(dest) {
        return Err(Refused {
            reason: Reason::NotOnAllowList,
            resolved: Vec::new(),
        });
    }
    if let Err(denial) = config.policy.check_host(&dest.host, dest.port) {
        return Err(Refused {
            reason: Reason::Refused(denial),
            resolved: Vec::new(),
        });
    }
    let name = match &dest.host {
        Host::Ip(ip) => {
            return Ok(Approved {
                addrs: vec![SocketAddr::new(*ip, dest.port)],
                resolved: Vec::new(),
            });
        }
        Host::Name(name) => name,
    };
    match resolve_checked(
        &config.policy,
        resolver,
        config.resolve_timeout,
        name,
        dest.port,
    )
    .await
    {
        Ok(resolved) => Ok(Approved {
            addrs: resolved
                .iter()
                .map(|ip| SocketAddr::new(*ip, dest.port))
                .collect(),
            resolved,
        }),
        Err(refused) => Err(Refused {
            reason: Reason::Refused(refused.denial),
            resolved: refused.resolved,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::Arc;
    use std::time::Duration;

    use futures::future::BoxFuture;

    use super::*;
    use crate::address::Range;
    use crate::guard::{EgressPolicy, Rule};

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

    /// The server's list `dest` alone, and the policy opening `open` (`egress.allow`).
    fn config(dest: &Destination, open: &[&str]) -> ProxyConfig {
        let policy = EgressPolicy::new(open, &[] as &[&str]).expect("policy");
        ProxyConfig::new(vec![dest.clone()], Arc::new(policy))
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter()
            .map(|a| a.parse().expect("test socket address"))
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
        let approved = check(&config(&dest, &[]), &resolver, &dest)
            .await
            .expect("approved");
        assert_eq!(
            approved.addrs,
            addrs(&["93.184.216.34:443", "[2606:2800:220:1::1]:443"])
        );
    }

    #[tokio::test]
    async fn an_ip_literal_entry_to_a_blocked_range_needs_egress_allow_too() {
        let dest = Destination::parse("10.1.2.3:5432").expect("dest");
        let resolver = Fixed(ips(&["8.8.8.8"]));
        let refused = check(&config(&dest, &[]), &resolver, &dest)
            .await
            .expect_err("refused without egress.allow");
        match refused.reason {
            Reason::Refused(denial) => {
                assert!(
                    matches!(denial.rule, Rule::BlockedAddress(why) if why.range == Range::Private),
                    "{denial:?}"
                );
                assert_eq!(denial.address, Some(ips(&["10.1.2.3"])[0]));
            }
            other => panic!("{other:?}"),
        }
        for open in ["10.1.2.3/32", "10.0.0.0/8", "10.1.2.3:5432"] {
            let approved = check(&config(&dest, &[open]), &resolver, &dest)
                .await
                .unwrap_or_else(|e| panic!("{open}: {e:?}"));
            assert_eq!(approved.addrs, addrs(&["10.1.2.3:5432"]), "{open}");
            assert!(approved.resolved.is_empty(), "a literal is not resolved");
        }
        // Another port of the address is not this one.
        assert!(
            check(&config(&dest, &["10.1.2.3:5433"]), &resolver, &dest)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_listed_name_resolving_to_a_private_address_is_approved_when_egress_allow_opens_it() {
        let dest = Destination::parse("idp.internal:443").expect("dest");
        let resolver = Fixed(ips(&["10.1.2.3"]));
        for open in ["10.1.2.3/32", "10.1.2.3:443", "idp.internal:443"] {
            let approved = check(&config(&dest, &[open]), &resolver, &dest)
                .await
                .unwrap_or_else(|e| panic!("{open}: {e:?}"));
            assert_eq!(approved.addrs, addrs(&["10.1.2.3:443"]), "{open}");
            assert_eq!(approved.resolved, ips(&["10.1.2.3"]), "{open}");
        }
        for open in ["10.1.2.4/32", "10.1.2.3:444", "idp.internal:444"] {
            let refused = check(&config(&dest, &[open]), &resolver, &dest)
                .await
                .expect_err(open);
            assert_eq!(refused.reason.code(), "blocked_address", "{open}");
            assert_eq!(refused.resolved, ips(&["10.1.2.3"]), "{open}");
        }
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
        let mut config = config(&dest, &[]);
        config.resolve_timeout = Duration::from_millis(50);
        let refused = check(&config, &Never, &dest).await.expect_err("refused");
        assert_eq!(
            refused.reason.code(),
            "resolve_failed",
            "{:?}",
            refused.reason
        );
    }
}
