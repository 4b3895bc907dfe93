//! Roots in the config: `servers.<name>.roots` checked as the path checker will use them,
//! and what a rule's `paths` without `roots` is held inside — the roots of the server the
//! call goes to.
//!
//! A rule that names its `server` takes that server's roots as written in the config; a
//! rule for every server takes, at each call, the roots of the server called. Either way a
//! server the rule can reach must have roots: a rule whose paths could meet a server
//! without any is a config error rather than a rule that silently never allows (or, for a
//! deny, always applies).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use portcullis_policy::{PathRejection, PathRoots, Root};

use super::ServerConfig;
use super::SystemPaths;
use super::diagnostic::Issues;
use super::raw::SpannedList;

/// Reports each entry of `servers.<name>.roots` that cannot be a root of the path checker
/// (a backslash, a control or look-alike character…): no path argument could ever be
/// judged inside it. Relative entries are reported where the list is read.
pub(super) fn check_server_roots(list: &SpannedList, key: &str, issues: &mut Issues) {
    for entry in list.get_ref() {
        match Root::new(entry.get_ref(), &SystemPaths) {
            Ok(_) | Err(PathRejection::Relative) => {}
            Err(e) => issues.at(
                entry.span(),
                format!("{key}: \"{}\" cannot be a root: it {e}", entry.get_ref()),
            ),
        }
    }
}

/// The roots of every configured server that has some, as the policy checks paths against
/// them.
pub(super) fn by_server(
    servers: &BTreeMap<String, ServerConfig>,
) -> Arc<BTreeMap<String, Vec<Root>>> {
    let map = servers
        .iter()
        .filter(|(_, s)| !s.roots.is_empty())
        .map(|(name, s)| (name.clone(), policy_roots(&s.roots)))
        .collect();
    Arc::new(map)
}

/// A server's roots as policy roots. An entry the checker cannot use was reported by
/// [`check_server_roots`] (the config then fails to load); it is left out here.
fn policy_roots(roots: &[PathBuf]) -> Vec<Root> {
    roots
        .iter()
        .filter_map(|p| Root::new(p.to_str()?, &SystemPaths).ok())
        .collect()
}

/// What a rule's `paths` without `roots` is held inside.
#[derive(Debug, Clone)]
pub(crate) enum RuleRoots {
    /// The roots of the server(s) the rule covers.
    Found(PathRoots),
    /// Servers the rule covers that have no roots.
    Missing(Vec<String>),
    /// The rule names a server that is unknown or itself broken: already reported.
    Unknown,
}

/// The roots a rule for `server` (or for every server) holds its paths inside when it has
/// no `roots` of its own.
pub(super) fn for_rule(
    server: Option<&str>,
    servers: &BTreeMap<String, ServerConfig>,
    by_server: &Arc<BTreeMap<String, Vec<Root>>>,
) -> RuleRoots {
    match server {
        Some(name) => match (servers.get(name), by_server.get(name)) {
            (None, _) => RuleRoots::Unknown,
            (Some(_), Some(roots)) => RuleRoots::Found(PathRoots::Listed(roots.clone())),
            (Some(_), None) => RuleRoots::Missing(vec![name.to_owned()]),
        },
        None => {
            let missing: Vec<String> = servers
                .keys()
                .filter(|name| !by_server.contains_key(*name))
                .cloned()
                .collect();
            if missing.is_empty() {
                RuleRoots::Found(PathRoots::OfServer(by_server.clone()))
            } else {
                RuleRoots::Missing(missing)
            }
        }
    }
}

/// The error for a rule whose `paths` have no roots to stay inside.
pub(super) fn missing_message(rule: usize, named_server: bool, missing: &[String]) -> String {
    if named_server {
        let server = missing.first().map(String::as_str).unwrap_or_default();
        format!(
            "`paths` in rule {rule} has no `roots`, so the paths must stay inside the roots of server \"{server}\", which has none: set servers.{server}.roots, or give the rule `roots`"
        )
    } else {
        let names = missing
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "`paths` in rule {rule} has no `roots` and no `server`, so the paths must stay inside the roots of the server called, but {names} {} none: set their `roots`, name the rule's `server`, or give the rule `roots`",
            if missing.len() == 1 { "has" } else { "have" }
        )
    }
}
