//! `portcullis check`: the effective policy, as a person reads it.
//!
//! Server by server and kind by kind, the rules that can decide a name there, in the order
//! they are tried, each with its origin and what else narrows it (principals, condition,
//! argument constraints, scopes, rate), then the default deny. Rules that can no longer be
//! reached (an earlier unconditional rule already covers every name) are marked, so the
//! output answers "what happens to a tool called X on server Y" without re-reading the
//! whole file.

use std::fmt::Write as _;

use portcullis_policy::{Coverage, Kind, PathRoots, Rule};

use super::units::{format_duration, format_size};
use super::{Config, FailureMode, ServerConfig, Upstream};

/// What narrows a rule beyond server and names, as ` [principals: …; when: …; …]`, or
/// nothing.
pub(crate) fn narrowing(rule: &Rule) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(principals) = &rule.principals {
        let shown: Vec<String> = principals.iter().map(ToString::to_string).collect();
        parts.push(format!("principals: {}", shown.join(", ")));
    }
    if let Some(when) = &rule.when {
        let one_line: Vec<&str> = when.source().split_whitespace().collect();
        parts.push(format!("when: {}", one_line.join(" ")));
    }
    if let Some(p) = &rule.constraints.paths {
        let selectors: Vec<&str> = p.selectors.iter().map(|s| s.as_str()).collect();
        let roots = match &p.roots {
            PathRoots::Listed(roots) => roots
                .iter()
                .map(|r| r.written().display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            PathRoots::OfServer(_) => "the roots of the server called".to_owned(),
        };
        parts.push(format!("paths: {} in {roots}", selectors.join(", ")));
    }
    if let Some(u) = &rule.constraints.urls {
        let selectors: Vec<&str> = u.selectors.iter().map(|s| s.as_str()).collect();
        let hosts: Vec<&str> = u.hosts.iter().map(|h| h.as_str()).collect();
        parts.push(format!(
            "urls: {} on {}",
            selectors.join(", "),
            hosts.join(", ")
        ));
    }
    if let Some(max) = rule.constraints.max_arg_bytes {
        parts.push(format!("max_arg_bytes: {}", format_size(max)));
    }
    if !rule.scopes.is_empty() {
        parts.push(format!("scopes: {}", rule.scopes.join(", ")));
    }
    if let Some(rate) = rule.rate {
        parts.push(format!("rate: {rate}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" [{}]", parts.join("; "))
    }
}

pub(crate) fn effective_policy(config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Effective policy of {}", config.source);
    let _ = writeln!(
        out,
        "Rules are tried in order; the first that matches decides; nothing matched: deny."
    );
    if let Some(rate) = config.limits.rate {
        let _ = writeln!(
            out,
            "Default rate limit per principal, server and tool: {rate} (a rule's own rate replaces it)."
        );
    }
    if config.servers.is_empty() {
        let _ = writeln!(out, "\nNo servers are configured.");
    }
    for server in config.servers.values() {
        server_section(&mut out, config, server);
    }
    for v in config.virtuals.values() {
        let _ = writeln!(
            out,
            "\nvirtual \"{}\" at /mcp/{}: joins {}; on upstream failure: {}",
            v.name,
            v.name,
            v.servers.join(", "),
            match v.on_upstream_failure {
                FailureMode::Omit => "omit the failed server",
                FailureMode::Fail => "fail the request",
            }
        );
        let _ = writeln!(
            out,
            "  each member's own rules (above) decide; tools and prompts appear as <server>.<name>"
        );
        let width = v.servers.iter().map(String::len).max().unwrap_or(0);
        for member in &v.servers {
            let kinds: Vec<String> = Kind::ALL
                .into_iter()
                .map(|kind| {
                    let shown = config.policy.could_expose(member, kind);
                    match (shown, kind) {
                        (false, _) => format!("{} hidden", kind.plural()),
                        (true, Kind::Resource) => "resources by URI".to_owned(),
                        (true, _) => format!("{} as {member}.<{kind}>", kind.plural()),
                    }
                })
                .collect();
            let _ = writeln!(out, "  {member:<width$}  {}", kinds.join("; "));
        }
    }
    out
}

fn server_section(out: &mut String, config: &Config, server: &ServerConfig) {
    let how = match &server.upstream {
        Upstream::Stdio(s) => format!(
            "stdio: {}",
            s.command
                .iter()
                .map(|a| if a.contains(char::is_whitespace) || a.is_empty() {
                    format!("{a:?}")
                } else {
                    a.clone()
                })
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Upstream::Http(h) => format!("http: {}", h.url),
    };
    let _ = writeln!(
        out,
        "\nserver \"{}\" at /mcp/{} ({how}; timeout {})",
        server.name,
        server.name,
        format_duration(server.timeout)
    );
    for kind in Kind::ALL {
        let _ = writeln!(out, "  {}:", kind.plural());
        let mut lines: Vec<(String, String, String)> = Vec::new();
        let mut covered_by: Option<&Rule> = None;
        for rule in config
            .policy
            .rules()
            .iter()
            .filter(|r| r.matches_server(&server.name))
        {
            let coverage = rule.coverage(kind);
            let names = match coverage {
                Coverage::None => continue,
                Coverage::Every if rule.lists_nothing() => "every name".to_owned(),
                Coverage::Every | Coverage::Names(_) => rule
                    .names(kind)
                    .unwrap_or_default()
                    .iter()
                    .map(|g| g.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            let mut origin = rule.origin.to_string();
            if rule.server.is_none() {
                origin.push_str(", any server");
            }
            if let Some(earlier) = covered_by {
                let _ = write!(origin, "; never reached: {} decides first", earlier.origin);
            }
            origin.push_str(&narrowing(rule));
            lines.push((rule.effect.to_string(), names, origin));
            if coverage == Coverage::Every && covered_by.is_none() && rule.is_unconditional() {
                covered_by = Some(rule);
            }
        }
        if covered_by.is_none() {
            let rest = if lines.is_empty() {
                "every name"
            } else {
                "anything else"
            };
            lines.push(("deny".into(), rest.into(), "default deny".into()));
        }
        let width = lines.iter().map(|l| l.1.chars().count()).max().unwrap_or(0);
        let effect_width = lines.iter().map(|l| l.0.len()).max().unwrap_or(0);
        for (effect, names, origin) in lines {
            let _ = writeln!(
                out,
                "    {effect:<effect_width$}  {names:<width$}  {origin}"
            );
        }
    }
}
