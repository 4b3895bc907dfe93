//! `[[rules]]` to [`Policy`]: server references and globs checked, origins recorded; the
//! other parts of a rule are checked in `rule_parts`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use portcullis_policy::{Glob, Kind, Policy, Rule, RuleOrigin};

use super::diagnostic::{Issues, LineIndex};
use super::raw::{RawRule, RawRuleAt, SpannedList};
use super::rule_parts::{self, RawParts, RuleInfo};
use super::{ServerConfig, VirtualConfig};

/// `known: files, tickets`, or a hint when nothing is configured.
pub(crate) fn known_list(known: &BTreeSet<&str>) -> String {
    if known.is_empty() {
        "no servers are configured".to_owned()
    } else {
        format!(
            "known: {}",
            known.iter().copied().collect::<Vec<_>>().join(", ")
        )
    }
}

/// Builds the policy; a rule with any problem is reported and left out (the config then
/// fails to load as a whole, so a partial policy is never used).
pub(crate) fn policy(
    raw: Vec<RawRuleAt>,
    known: &BTreeSet<&str>,
    servers: &BTreeMap<String, ServerConfig>,
    virtuals: &BTreeMap<String, VirtualConfig>,
    file: Arc<str>,
    lines: &LineIndex<'_>,
    issues: &mut Issues,
) -> Policy {
    let mut rules = Vec::new();
    let roots_by_server = super::roots::by_server(servers);
    for RawRuleAt { index, span, rule } in raw {
        let number = index + 1;
        let mut ok = true;
        let RawRule {
            server,
            tools,
            prompts,
            resources,
            principals,
            when,
            scopes,
            paths,
            roots,
            urls,
            hosts,
            max_arg_bytes,
            rate,
            burst,
            effect,
            consent: _,
        } = rule;
        if let Some(server) = &server {
            let s = server.get_ref();
            if virtuals.contains_key(s) && !known.contains(s.as_str()) {
                issues.at(
                    server.span(),
                    format!(
                        "\"{s}\" in rule {number} is a virtual server: rules name the servers it joins ({})",
                        known_list(known)
                    ),
                );
                ok = false;
            } else if !known.contains(s.as_str()) {
                issues.at(
                    server.span(),
                    format!(
                        "unknown server \"{s}\" in rule {number} ({})",
                        known_list(known)
                    ),
                );
                ok = false;
            }
        }
        let mut globs = |kind: Kind, list: Option<SpannedList>| -> Option<Vec<Glob>> {
            let list = list?;
            if list.get_ref().is_empty() {
                issues.at(
                    list.span(),
                    format!(
                        "`{} = []` in rule {number} matches nothing: list at least one name or glob, or leave the key out",
                        kind.plural()
                    ),
                );
                ok = false;
            }
            let mut out = Vec::new();
            for pattern in list.into_inner() {
                match Glob::new(pattern.get_ref()) {
                    Ok(g) => out.push(g),
                    Err(e) => {
                        issues.at(
                            pattern.span(),
                            format!("bad glob \"{}\" in rule {number}: {e}", pattern.get_ref()),
                        );
                        ok = false;
                    }
                }
            }
            Some(out)
        };
        let tools = globs(Kind::Tool, tools);
        let prompts = globs(Kind::Prompt, prompts);
        let resources = globs(Kind::Resource, resources);
        let listed = [
            (Kind::Tool, tools.is_some()),
            (Kind::Prompt, prompts.is_some()),
            (Kind::Resource, resources.is_some()),
        ];
        let kinds: Vec<Kind> = if listed.iter().any(|(_, l)| *l) {
            listed.iter().filter(|(_, l)| *l).map(|(k, _)| *k).collect()
        } else {
            Kind::ALL.to_vec()
        };
        let info = RuleInfo {
            number,
            effect,
            kinds,
            lines,
            named_server: server.is_some(),
            server_roots: super::roots::for_rule(
                server.as_ref().map(|s| s.get_ref().as_str()),
                servers,
                &roots_by_server,
            ),
        };
        let raw_parts = RawParts {
            principals,
            when,
            scopes,
            paths,
            roots,
            urls,
            hosts,
            max_arg_bytes,
            rate,
            burst,
        };
        let parts = rule_parts::parts(raw_parts, &info, issues);
        if let (true, Some(parts)) = (ok, parts) {
            rules.push(Rule {
                server: server.map(|s| s.into_inner()),
                tools,
                prompts,
                resources,
                principals: parts.principals,
                scopes: parts.scopes,
                when: parts.when,
                constraints: parts.constraints,
                rate: parts.rate,
                effect: info.effect.into_inner(),
                origin: RuleOrigin {
                    index,
                    file: Some(file.clone()),
                    line: Some(lines.line(span.start)),
                },
            });
        }
    }
    Policy::new(rules)
}
