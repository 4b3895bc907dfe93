//! Warnings: settings that loosen a secure default, and policy that cannot do what it
//! looks like it does. They are printed by `portcullis check` and logged at startup.

use portcullis_policy::{Coverage, Effect, Glob, Kind, Principal, Rule};

use super::{Config, Instances, Upstream, net};

pub(crate) fn collect(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let g = &config.gateway;
    if !g.listens_on_loopback() {
        out.push(format!(
            "gateway.listen = {} is beyond loopback: other machines can connect to the gateway",
            g.listen
        ));
    }
    if let Some(url) = &g.public_url
        && url.starts_with("http://")
        && !net::url_is_loopback(url)
    {
        out.push(format!(
            "gateway.public_url {url} is plain http: clients reach the gateway unencrypted"
        ));
    }
    if !g.allowed_origins.is_empty() {
        out.push(format!(
            "gateway.allowed_origins lets browser pages from {} call the gateway, besides loopback origins",
            g.allowed_origins.join(", ")
        ));
    }
    if !g.allowed_hosts.is_empty() {
        out.push(format!(
            "gateway.allowed_hosts accepts Host {} besides loopback names{}",
            g.allowed_hosts.join(", "),
            if g.public_url.is_some() {
                " and public_url's host"
            } else {
                ""
            }
        ));
    }
    for server in config.servers.values() {
        match &server.upstream {
            Upstream::Stdio(s) if s.instances == Instances::Shared => out.push(format!(
                "server \"{}\" uses instances = \"shared\": one process serves every session, so sessions may see each other's state",
                server.name
            )),
            Upstream::Http(h) if h.url.starts_with("http://") && !net::url_is_loopback(&h.url) => {
                out.push(format!(
                    "server \"{}\" is reached over plain http at {}: requests and responses travel unencrypted",
                    server.name, h.url
                ))
            }
            _ => {}
        }
    }
    let rules = config.policy.rules();
    for rule in rules {
        if rule.effect == Effect::Allow && rule.server.is_none() && rule.lists_nothing() {
            out.push(format!(
                "{} allows every tool, prompt and resource on every server",
                rule.origin
            ));
        }
    }
    for (i, rule) in rules.iter().enumerate() {
        let deciders = shadowing(&rules[..i], rule);
        if !deciders.is_empty() {
            out.push(format!(
                "{} can never match: {} already decide{} everything it covers",
                rule.origin,
                deciders.join(", "),
                if deciders.len() == 1 { "s" } else { "" }
            ));
        }
    }
    let nobody = Principal::anonymous();
    for name in config.servers.keys() {
        if !Kind::ALL
            .into_iter()
            .any(|kind| config.policy.may_expose(&nobody, name, kind))
        {
            out.push(format!(
                "server \"{name}\": no rule allows anything on it, so default deny hides it entirely"
            ));
        }
    }
    out
}

/// The earlier rules that together decide every target `rule` could match, or nothing if
/// some target is left for `rule`. A name of kind K is decided early when an earlier rule for
/// the same server (or for every server) covers all of K, or lists the very same glob.
fn shadowing(earlier: &[Rule], rule: &Rule) -> Vec<String> {
    let applies = |e: &&Rule| e.server.is_none() || e.server == rule.server;
    let mut deciders: Vec<&Rule> = Vec::new();
    for kind in Kind::ALL {
        let decides = |e: &&Rule, glob: Option<&Glob>| match (e.coverage(kind), glob) {
            (Coverage::Every, _) => true,
            (Coverage::Names(theirs), Some(glob)) => theirs.contains(glob),
            _ => false,
        };
        let needed: Vec<Option<&Glob>> = match rule.coverage(kind) {
            Coverage::None => continue,
            Coverage::Every => vec![None],
            Coverage::Names(globs) => globs.iter().map(Some).collect(),
        };
        for glob in needed {
            match earlier.iter().filter(applies).find(|e| decides(e, glob)) {
                Some(e) => deciders.push(e),
                None => return Vec::new(),
            }
        }
    }
    deciders.sort_by_key(|e| e.origin.index);
    deciders.dedup_by_key(|e| e.origin.index);
    deciders.iter().map(|e| e.origin.to_string()).collect()
}
