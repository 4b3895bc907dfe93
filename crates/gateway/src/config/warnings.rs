//! Warnings: settings that loosen a secure default, and policy that cannot do what it
//! looks like it does. They are printed by `portcullis check` and logged at startup.

use portcullis_policy::{Coverage, Effect, Glob, Kind, Rule};

use super::{AuditMirror, Config, Instances, Upstream, net};

pub(crate) fn collect(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let g = &config.gateway;
    if !g.listens_on_loopback() {
        out.push(format!(
            "gateway.listen = {} is beyond loopback: other machines can connect to the gateway",
            g.listen
        ));
    }
    super::tls::warnings(g, &mut out);
    if g.insecure_no_auth {
        out.push(
            "gateway.insecure_no_auth = true: requests are not authenticated, so anyone who can reach the gateway acts as the same anonymous caller"
                .to_owned(),
        );
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
    if config.audit.include_args {
        out.push(
            "audit.include_args = true keeps every call's arguments, which may hold secrets, in the audit log"
                .to_owned(),
        );
    }
    if config.audit.mirror == Some(AuditMirror::Stdout) {
        out.push(
            "audit.mirror = \"stdout\" would mix audit lines into the MCP stream of `portcullis stdio`: use it with `portcullis serve` only"
                .to_owned(),
        );
    }
    let rules = config.policy.rules();
    for rule in rules {
        rule_warnings(rule, &mut out);
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
    for name in config.servers.keys() {
        if !Kind::ALL
            .into_iter()
            .any(|kind| config.policy.could_expose(name, kind))
        {
            out.push(format!(
                "server \"{name}\": no rule allows anything on it, so default deny hides it entirely"
            ));
        }
    }
    out
}

/// What one rule says that a person should know: it allows everything, it cannot hide
/// what it denies, it waits for a consent that does not exist yet, it trusts what a server
/// says about itself, or its resource globs can be walked around.
fn rule_warnings(rule: &Rule, out: &mut Vec<String>) {
    let o = &rule.origin;
    if rule.effect == Effect::Allow
        && rule.server.is_none()
        && rule.lists_nothing()
        && rule.is_unconditional()
    {
        out.push(format!(
            "{o} allows every tool, prompt and resource on every server"
        ));
    }
    if rule.effect == Effect::Deny && rule.depends_on_args() {
        out.push(format!(
            "{o} denies by the call's arguments, which are unknown until the call: it cannot hide what it denies from tools/list"
        ));
    }
    if rule.effect == Effect::Consent {
        out.push(format!(
            "{o} asks for a person's consent, which is not available yet: every call it matches is refused with an error"
        ));
    }
    if rule.effect.permits() && rule.when.as_ref().is_some_and(|c| c.uses_annotations()) {
        out.push(format!(
            "{o} trusts tool.annotations, which the upstream server supplies: a server can claim readOnlyHint for a tool that writes"
        ));
    }
    let guards_uri = rule
        .constraints
        .paths
        .as_ref()
        .is_some_and(|p| p.selectors.iter().any(|s| s.is_uri()));
    let file_globs = rule
        .resources
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|g| g.as_str().to_ascii_lowercase().starts_with("file:") && !g.is_literal());
    if rule.effect.permits() && file_globs && !guards_uri {
        out.push(format!(
            "{o} allows file: resources by glob alone: a URI with .. or %2e%2e can match the glob and name a file elsewhere; add paths = [\"uri\"] and roots"
        ));
    }
}

/// The earlier rules that together decide every target `rule` could match, or nothing if
/// some target is left for `rule`. A name of kind K is decided early when an earlier
/// unconditional rule for the same server (or for every server) covers all of K, or lists
/// the very same glob.
fn shadowing(earlier: &[Rule], rule: &Rule) -> Vec<String> {
    let applies =
        |e: &&Rule| (e.server.is_none() || e.server == rule.server) && e.is_unconditional();
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
