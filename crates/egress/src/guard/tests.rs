//! The guard's decisions on names, with a resolver that answers from a table.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;

use futures::future::BoxFuture;

use super::*;
use crate::address::Range;

struct Table(HashMap<&'static str, Vec<IpAddr>>);

impl Resolve for Table {
    fn resolve<'a>(&'a self, host: &'a str, _: u16) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        let found = self.0.get(host).cloned();
        Box::pin(async move { found.ok_or_else(|| io::Error::other("no such name")) })
    }
}

fn guard(allow: &[&str]) -> EgressGuard {
    let ips = |list: &[&str]| -> Vec<IpAddr> {
        list.iter()
            .map(|i| i.parse().expect("test address"))
            .collect()
    };
    let table = Table(HashMap::from([
        (
            "public.example",
            ips(&["93.184.216.34", "2606:2800:220:1::1"]),
        ),
        ("idp.internal", ips(&["10.1.2.3"])),
        ("mixed.example", ips(&["93.184.216.34", "10.9.9.9"])),
        ("empty.example", Vec::new()),
    ]));
    let policy = EgressPolicy::new(allow, &[] as &[&str]).expect("policy");
    EgressGuard::with_resolver(policy, GuardLimits::default(), Arc::new(table))
}

fn uri(text: &str) -> Uri {
    text.parse().expect("test uri")
}

#[tokio::test]
async fn a_public_name_is_approved_at_every_address_it_resolves_to() {
    let addrs = guard(&[])
        .approve(&uri("https://public.example/x"))
        .await
        .expect("approved");
    assert_eq!(
        addrs,
        [
            "93.184.216.34:443".parse::<SocketAddr>().expect("addr"),
            "[2606:2800:220:1::1]:443".parse().expect("addr"),
        ]
    );
}

#[tokio::test]
async fn one_private_answer_refuses_the_whole_name_and_names_the_address() {
    let refusal = guard(&[])
        .approve(&uri("https://mixed.example/"))
        .await
        .expect_err("refused");
    assert_eq!(refusal.address, Some("10.9.9.9".parse().expect("ip")));
    assert!(matches!(refusal.rule, Rule::BlockedAddress(r) if r.range == Range::Private));
    assert_eq!(refusal.rule.code(), "blocked_address");
}

#[tokio::test]
async fn a_name_entry_opens_its_private_addresses_on_its_port_only() {
    let g = guard(&["idp.internal:443"]);
    let addrs = g
        .approve(&uri("https://idp.internal/token"))
        .await
        .expect("opened");
    assert_eq!(addrs, ["10.1.2.3:443".parse::<SocketAddr>().expect("addr")]);
    let refusal = g
        .approve(&uri("https://idp.internal:8443/token"))
        .await
        .expect_err("other port");
    assert!(matches!(refusal.rule, Rule::BlockedAddress(_)));
}

#[tokio::test]
async fn a_network_entry_opens_the_addresses_a_name_resolves_to() {
    let g = guard(&["10.0.0.0/8"]);
    assert!(g.approve(&uri("https://idp.internal/")).await.is_ok());
    assert!(g.approve(&uri("https://mixed.example/")).await.is_ok());
}

#[tokio::test]
async fn unresolvable_and_empty_names_are_refused() {
    let g = guard(&[]);
    let none = g.approve(&uri("https://nowhere.example/")).await;
    assert!(matches!(
        none,
        Err(Refusal {
            rule: Rule::ResolveFailed(_),
            ..
        })
    ));
    let empty = g.approve(&uri("https://empty.example/")).await;
    assert!(matches!(
        empty,
        Err(Refusal {
            rule: Rule::NoAddresses,
            ..
        })
    ));
}

#[test]
fn the_default_policy_allows_public_https_and_nothing_else_in_clear() {
    let g = guard(&[]);
    let target = g
        .check_url(&uri("https://Public.Example.:8443/p"))
        .expect("ok");
    assert_eq!(target.host, Host::Name("public.example".into()));
    assert_eq!(target.port, 8443);
    assert!(g.check_url(&uri("https://93.184.216.34/")).is_ok());
    let refusal = g
        .check_url(&uri("http://public.example/"))
        .expect_err("http");
    assert_eq!(refusal.rule, Rule::PlainHttp);
}
