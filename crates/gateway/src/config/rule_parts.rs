//! The parts of a `[[rules]]` table beyond server and names: `principals`, `when`, `scopes`,
//! `paths`/`roots`, `urls`/`hosts`, `max_arg_bytes`, `rate`/`burst`. Each problem is an
//! issue at the offending value; CEL errors point into the expression when it is written
//! without escapes.

use std::ops::Range;

use portcullis_policy::{
    ArgConstraints, Condition, Effect, HostPattern, Kind, PathConstraint, PathRejection, PathRoots,
    PrincipalPattern, RateSpec, Root, Selector, UrlConstraint,
};
use toml::Spanned;

use super::SystemPaths;
use super::diagnostic::{Issues, LineIndex};
use super::raw::SpannedList;
use super::roots::RuleRoots;
use super::sections;
use super::units::RawSize;

/// The raw parts, moved out of the rule.
pub(crate) struct RawParts {
    pub principals: Option<SpannedList>,
    pub when: Option<Spanned<String>>,
    pub scopes: Option<SpannedList>,
    pub paths: Option<SpannedList>,
    pub roots: Option<SpannedList>,
    pub urls: Option<SpannedList>,
    pub hosts: Option<SpannedList>,
    pub max_arg_bytes: Option<Spanned<RawSize>>,
    pub rate: Option<Spanned<String>>,
    pub burst: Option<Spanned<i64>>,
}

/// The checked parts.
#[derive(Default)]
pub(crate) struct Parts {
    pub principals: Option<Vec<PrincipalPattern>>,
    pub when: Option<Condition>,
    pub scopes: Vec<String>,
    pub constraints: ArgConstraints,
    pub rate: Option<RateSpec>,
}

/// What the checks need to know about the rule.
pub(crate) struct RuleInfo<'a> {
    /// One-based rule number, for messages.
    pub number: usize,
    pub effect: Spanned<Effect>,
    /// The kinds the rule covers.
    pub kinds: Vec<Kind>,
    pub lines: &'a LineIndex<'a>,
    /// Whether the rule names its `server`.
    pub named_server: bool,
    /// What `paths` without `roots` stay inside: the roots of the server(s) covered.
    pub server_roots: RuleRoots,
}

/// Checks every part; `None` when any is wrong (each problem is already an issue).
pub(crate) fn parts(raw: RawParts, rule: &RuleInfo<'_>, issues: &mut Issues) -> Option<Parts> {
    let before = issues.len();
    let n = rule.number;
    let effect = *rule.effect.get_ref();
    let mut parts = Parts::default();

    if let Some(list) = raw.principals {
        parts.principals = Some(
            nonempty(list, "principals", "matches no one", n, issues)
                .into_iter()
                .filter_map(|p| match PrincipalPattern::parse(p.get_ref()) {
                    Ok(pattern) => Some(pattern),
                    Err(e) => {
                        issues.at(p.span(), format!("{e} (rule {n})"));
                        None
                    }
                })
                .collect(),
        );
    }

    if let Some(when) = raw.when {
        parts.when = condition(&when, rule, issues);
    }

    if let Some(list) = raw.scopes {
        if !effect.permits() {
            issues.at(
                list.span(),
                format!(
                    "`scopes` in rule {n} has no effect on a deny rule: scopes are what an allow or consent rule requires of the caller's token"
                ),
            );
        }
        for scope in nonempty(list, "scopes", "requires nothing", n, issues) {
            let s = scope.get_ref();
            let valid = !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
            if !valid {
                issues.at(
                    scope.span(),
                    format!(
                        "invalid scope \"{s}\" in rule {n}: a scope is printable ASCII without spaces, quotes or backslashes"
                    ),
                );
            } else if !parts.scopes.contains(s) {
                parts.scopes.push(scope.into_inner());
            }
        }
    }

    parts.constraints.paths = paths(raw.paths, raw.roots, rule, issues);
    parts.constraints.urls = urls(raw.urls, raw.hosts, rule, issues);
    if let Some(size) = raw.max_arg_bytes {
        parts.constraints.max_arg_bytes = max_arg_bytes(&size, effect, n, issues);
    }

    if let Some(rate) = &raw.rate
        && !effect.permits()
    {
        issues.at(
            rate.span(),
            format!(
                "`rate` in rule {n} has no effect on a deny rule: a rate limits what an allow or consent rule lets through"
            ),
        );
    }
    parts.rate = sections::rate(
        raw.rate.as_ref(),
        raw.burst.as_ref(),
        &format!("rule {n}"),
        &format!("`burst` in rule {n} needs `rate` (e.g. rate = \"10/minute\")"),
        issues,
    );

    (issues.len() == before).then_some(parts)
}

/// The elements of a list that must not be empty.
fn nonempty(
    list: SpannedList,
    key: &str,
    consequence: &str,
    n: usize,
    issues: &mut Issues,
) -> Vec<Spanned<String>> {
    if list.get_ref().is_empty() {
        issues.at(
            list.span(),
            format!(
                "`{key} = []` in rule {n} {consequence}: list at least one, or leave the key out"
            ),
        );
    }
    list.into_inner()
}

/// The kinds `tool`, `prompt`, `resource` are bound for.
const KIND_VARIABLES: [(&str, Kind); 3] = [
    ("tool", Kind::Tool),
    ("prompt", Kind::Prompt),
    ("resource", Kind::Resource),
];

/// `tools`, `tools and prompts`, `tools, prompts and resources`.
fn kinds_text(kinds: &[Kind]) -> String {
    let names: Vec<&str> = kinds.iter().map(|k| k.plural()).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

fn condition(
    when: &Spanned<String>,
    rule: &RuleInfo<'_>,
    issues: &mut Issues,
) -> Option<Condition> {
    let n = rule.number;
    let c = match Condition::compile(when.get_ref()) {
        Ok(c) => c,
        Err(e) => {
            let at = expression_offset(
                rule.lines.text(),
                when.span(),
                when.get_ref(),
                e.line,
                e.column,
            );
            issues.at(at..at, format!("condition of rule {n}: {}", e.message));
            return None;
        }
    };
    for (var, kind) in KIND_VARIABLES {
        if c.uses(var) && rule.kinds != [kind] {
            issues.at(
                when.span(),
                format!(
                    "the condition of rule {n} uses `{var}`, which is only defined when deciding on a {kind}, but the rule covers {}: give it `{} = [...]` and no other kind",
                    kinds_text(&rule.kinds),
                    kind.plural()
                ),
            );
            return None;
        }
    }
    Some(c)
}

/// The byte offset in the file of (line, column) of a string value's content, when the
/// value is written without escapes (so the text between the quotes is the value); else
/// the start of the value.
pub(crate) fn expression_offset(
    text: &str,
    span: Range<usize>,
    value: &str,
    line: usize,
    column: usize,
) -> usize {
    let raw = text.get(span.clone()).unwrap_or_default();
    let mut start = span.start;
    if raw.starts_with("'''") || raw.starts_with("\"\"\"") {
        start += 3;
        // TOML drops a newline right after the opening delimiter.
        if text[start..].starts_with("\r\n") {
            start += 2;
        } else if text[start..].starts_with('\n') {
            start += 1;
        }
    } else if raw.starts_with('\'') || raw.starts_with('"') {
        start += 1;
    } else {
        return span.start;
    }
    if text.get(start..start + value.len()) != Some(value) {
        return span.start;
    }
    let mut offset = 0;
    for (i, l) in value.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let within: usize = l
                .chars()
                .take(column.saturating_sub(1))
                .map(char::len_utf8)
                .sum();
            return start + offset + within;
        }
        offset += l.len();
    }
    start + value.len()
}

/// `paths` with `roots`, or without: then inside the roots of the server called.
fn paths(
    paths: Option<SpannedList>,
    roots: Option<SpannedList>,
    rule: &RuleInfo<'_>,
    issues: &mut Issues,
) -> Option<PathConstraint> {
    let n = rule.number;
    let (paths, roots) = match (paths, roots) {
        (None, None) => return None,
        (Some(p), None) => {
            let roots = match &rule.server_roots {
                RuleRoots::Found(roots) => roots.clone(),
                RuleRoots::Missing(servers) => {
                    issues.at(
                        p.span(),
                        super::roots::missing_message(n, rule.named_server, servers),
                    );
                    return None;
                }
                RuleRoots::Unknown => return None,
            };
            let selectors = selectors(p, "paths", rule, issues);
            return Some(PathConstraint { selectors, roots });
        }
        (None, Some(r)) => {
            issues.at(
                r.span(),
                format!(
                    "`roots` in rule {n} needs `paths`: the arguments that must stay inside them (e.g. paths = [\"args.path\"])"
                ),
            );
            return None;
        }
        (Some(p), Some(r)) => (p, r),
    };
    let selectors = selectors(paths, "paths", rule, issues);
    let roots: Vec<Root> = nonempty(roots, "roots", "allows no path", n, issues)
        .into_iter()
        .filter_map(|r| match Root::new(r.get_ref(), &SystemPaths) {
            Ok(root) => Some(root),
            Err(PathRejection::Relative) => {
                issues.at(
                    r.span(),
                    format!(
                        "root \"{}\" in rule {n} is not an absolute path",
                        r.get_ref()
                    ),
                );
                None
            }
            Err(e) => {
                issues.at(
                    r.span(),
                    format!("bad root \"{}\" in rule {n}: it {e}", r.get_ref()),
                );
                None
            }
        })
        .collect();
    Some(PathConstraint {
        selectors,
        roots: PathRoots::Listed(roots),
    })
}

/// `urls` with `hosts`.
fn urls(
    urls: Option<SpannedList>,
    hosts: Option<SpannedList>,
    rule: &RuleInfo<'_>,
    issues: &mut Issues,
) -> Option<UrlConstraint> {
    let n = rule.number;
    let (urls, hosts) = match (urls, hosts) {
        (None, None) => return None,
        (Some(u), None) => {
            issues.at(
                u.span(),
                format!("`urls` in rule {n} needs `hosts`: the hosts the URLs may point at"),
            );
            return None;
        }
        (None, Some(h)) => {
            issues.at(
                h.span(),
                format!(
                    "`hosts` in rule {n} needs `urls`: the arguments that must point at them (e.g. urls = [\"args.url\"])"
                ),
            );
            return None;
        }
        (Some(u), Some(h)) => (u, h),
    };
    let selectors = selectors(urls, "urls", rule, issues);
    let hosts = nonempty(hosts, "hosts", "allows no URL", n, issues)
        .into_iter()
        .filter_map(|h| match HostPattern::parse(h.get_ref()) {
            Ok(host) => Some(host),
            Err(e) => {
                issues.at(h.span(), format!("{e} (rule {n})"));
                None
            }
        })
        .collect();
    Some(UrlConstraint { selectors, hosts })
}

fn selectors(
    list: SpannedList,
    key: &str,
    rule: &RuleInfo<'_>,
    issues: &mut Issues,
) -> Vec<Selector> {
    let n = rule.number;
    nonempty(list, key, "checks nothing", n, issues)
        .into_iter()
        .filter_map(|s| match Selector::parse(s.get_ref()) {
            Ok(sel) if sel.is_uri() && rule.kinds != [Kind::Resource] => {
                issues.at(
                    s.span(),
                    format!(
                        "`uri` in rule {n} is the URI of a resource, but the rule covers {}: give it `resources = [...]` and no other kind",
                        kinds_text(&rule.kinds)
                    ),
                );
                None
            }
            Ok(sel) => Some(sel),
            Err(e) => {
                issues.at(s.span(), format!("{e} (rule {n})"));
                None
            }
        })
        .collect()
}

fn max_arg_bytes(
    size: &Spanned<RawSize>,
    effect: Effect,
    n: usize,
    issues: &mut Issues,
) -> Option<u64> {
    if !effect.permits() {
        issues.at(
            size.span(),
            format!(
                "`max_arg_bytes` in rule {n} has no effect on a deny rule: put the limit on the allow or consent rules"
            ),
        );
        return None;
    }
    match size.get_ref().bytes() {
        Ok(0) => issues.at(
            size.span(),
            format!("max_arg_bytes in rule {n} must be more than 0"),
        ),
        Ok(bytes) => return Some(bytes),
        Err(e) => {
            let shown = match size.get_ref() {
                RawSize::Bytes(b) => b.to_string(),
                RawSize::Text(t) => format!("\"{t}\""),
            };
            issues.at(
                size.span(),
                format!("invalid size {shown} for max_arg_bytes in rule {n}: {e}"),
            );
        }
    }
    None
}
