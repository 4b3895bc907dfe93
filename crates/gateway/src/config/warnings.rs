//! Warnings: settings that loosen a secure default, and policy that cannot do what it
//! looks like it does. They are printed by `portcullis check` and logged at startup.

use std::path::{Path, PathBuf};

use portcullis_policy::{Coverage, Effect, Glob, Kind, Rule};
use portcullis_sandbox::Network;

use super::{AuditMirror, Config, Instances, RunMode, ServerConfig, StdioUpstream, Upstream, net};

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
    super::egress::warnings(&config.egress, &mut out);
    super::content::warnings(&config.content, &mut out);
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
        if server
            .scan
            .block
            .is_none_or(|b| b > portcullis_guard::scan::Severity::High)
        {
            out.push(format!(
                "servers.{}.scan.block = \"{}\": tools whose descriptions hide text or instructions for the model at high severity are listed and callable",
                server.name,
                super::ScanPolicy::describe(server.scan.block)
            ));
        }
        if server.definitions == crate::upstream::definitions::DefinitionMode::Off {
            out.push(format!(
                "server \"{}\" has definitions = \"off\": a tool whose description or schema changes after it was trusted (a rug pull), or that reappears under another name, is listed and callable at once",
                server.name
            ));
        }
        if let Upstream::Stdio(s) = &server.upstream {
            sandbox_warnings(server, s, config.run_mode, &home_dirs(), &mut out);
            if let Some(profile) = &s.sandbox {
                super::egress::unreachable_entries(&config.egress, server, profile, &mut out);
            }
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
    let consent_rules: Vec<(usize, String, Vec<String>)> = rules
        .iter()
        .filter(|r| r.effect == Effect::Consent)
        .map(|r| {
            let servers = match &r.server {
                Some(s) => vec![s.clone()],
                None => config.servers.keys().cloned().collect(),
            };
            (r.origin.index, r.origin.to_string(), servers)
        })
        .collect();
    super::consent::warnings(
        &config.consent,
        &consent_rules,
        config.approvals.is_some(),
        config.run_mode == RunMode::Stdio,
        &mut out,
    );
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
/// what it denies, it trusts what a server
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

/// Home-relative directories where keys and tokens live: a sandbox path reaching one of
/// them hands the server the user's credentials.
const CREDENTIAL_DIRS: &[&str] = &[".ssh", ".aws", ".config", ".gnupg"];

/// Explicit loosenings of a local server's sandbox: none at all, the host's network, a
/// sandbox allowed to start without every layer under `serve`, and `read` or `write` paths
/// (the roots, when `write` is not given) that reach the user's credential directories.
fn sandbox_warnings(
    server: &ServerConfig,
    stdio: &StdioUpstream,
    mode: RunMode,
    homes: &[PathBuf],
    out: &mut Vec<String>,
) {
    let name = &server.name;
    let Some(profile) = &stdio.sandbox else {
        out.push(format!(
            "server \"{name}\" has sandbox = \"off\": it runs with every right of the gateway's user (every file, the network, other processes)"
        ));
        return;
    };
    if profile.network == Network::Host {
        out.push(format!(
            "server \"{name}\" has sandbox.network = \"host\": it reaches the whole network unfiltered, loopback services and cloud metadata included"
        ));
    }
    if profile.required == Some(false) && mode == RunMode::Serve {
        out.push(format!(
            "server \"{name}\" has sandbox.required = false: under `serve` it starts even when this kernel cannot enforce every layer of its sandbox"
        ));
    }
    let (write_key, writes) = if profile.write.is_empty() {
        ("roots (its default sandbox.write)", &server.roots)
    } else {
        ("sandbox.write", &profile.write)
    };
    let lists = [
        ("sandbox.read", &profile.read, "read"),
        (write_key, writes, "read and change"),
    ];
    for (key, paths, verb) in lists {
        for path in paths.iter() {
            if let Some(reach) = credential_reach(path, homes) {
                out.push(format!(
                    "server \"{name}\": {key} path {} {reach}: the server can {verb} the keys and tokens kept there",
                    path.display()
                ));
            }
        }
    }
}

/// Whether `path` is inside a credential directory of a home, or holds some.
fn credential_reach(path: &Path, homes: &[PathBuf]) -> Option<String> {
    for home in homes {
        if let Some(dir) = CREDENTIAL_DIRS
            .iter()
            .find(|d| path.starts_with(home.join(d)))
        {
            return Some(format!("is under ~/{dir}"));
        }
        let held: Vec<String> = CREDENTIAL_DIRS
            .iter()
            .filter(|d| home.join(d).starts_with(path))
            .map(|d| format!("~/{d}"))
            .collect();
        if !held.is_empty() {
            return Some(format!("holds {}", held.join(", ")));
        }
    }
    None
}

/// The gateway's home directory, as `HOME` names it and resolved (config paths are
/// resolved when they exist).
fn home_dirs() -> Vec<PathBuf> {
    let Some(home) = std::env::var_os("HOME").map(PathBuf::from) else {
        return Vec::new();
    };
    if !home.is_absolute() || home == Path::new("/") {
        return Vec::new();
    }
    let mut out = vec![home.clone()];
    if let Ok(real) = std::fs::canonicalize(&home)
        && real != home
    {
        out.push(real);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_directories_are_found_inside_and_above() {
        let homes = [PathBuf::from("/home/alice")];
        let reach = |p: &str| credential_reach(Path::new(p), &homes);
        assert_eq!(
            reach("/home/alice/.ssh/id_rsa").as_deref(),
            Some("is under ~/.ssh")
        );
        assert_eq!(
            reach("/home/alice/.config/gcloud").as_deref(),
            Some("is under ~/.config")
        );
        assert_eq!(
            reach("/home/alice").as_deref(),
            Some("holds ~/.ssh, ~/.aws, ~/.config, ~/.gnupg")
        );
        assert!(reach("/home").is_some());
        assert_eq!(reach("/home/alice/projects"), None);
        assert_eq!(reach("/home/alice/.sshx"), None);
        assert_eq!(reach("/srv/data"), None);
    }
}
