//! `resources/read` (and `subscribe`) URIs against what the upstream listed: the URIs of
//! `resources/list` exactly, or a match of a `uriTemplate` of `resources/templates/list`.
//!
//! Templates follow RFC 6570 expansion, read backwards: what a variable may expand to is what
//! it may match.
//! - `{var}` (simple expansion) percent-encodes everything but unreserved characters, so it
//!   matches `A-Z a-z 0-9 - . _ ~` and `%XX` only: **never `/`**, `?` or `#`, so it stays
//!   inside one path segment. Several variables (`{x,y}`) or explode (`{x*}`) add `,` (and `=`).
//! - `{+var}` (reserved) and `{#var}` (fragment) also pass reserved characters through, so they
//!   may span segments: a server that means "a path" writes `file:///{+path}`.
//! - `{/var}`, `{.var}`, `{;var}`, `{?var}`, `{&var}` match their prefix and separator followed
//!   by simple-expansion text, once per variable (any number of times when exploded).
//! - The prefix modifier (`{var:3}`) is accepted and not enforced (shorter text matches anyway).
//!
//! Characters outside ASCII must be percent-encoded, as the RFC expands them. A URI matched
//! through a template must not contain a `.` or `..` path segment, even percent-encoded
//! (`%2e%2e%2f`): a normalized URI never needs one, and a naive server would follow it.
//! Listed URIs match exactly, byte for byte. A template that does not parse matches nothing.

use regex::Regex;
use std::collections::HashSet;

const UNRESERVED: &str = r"[A-Za-z0-9\-._~]|%[0-9A-Fa-f]{2}";
const RESERVED: &str = r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2}";

/// The resources an upstream listed, for checking the URIs clients ask for.
#[derive(Debug, Default)]
pub struct ResourceIndex {
    uris: HashSet<String>,
    templates: Vec<Template>,
    unusable: Vec<String>,
}

#[derive(Debug)]
struct Template {
    /// The literal text before the first expression: a cheap first test.
    prefix: String,
    matcher: Regex,
}

impl ResourceIndex {
    /// An index of `uris` (from `resources/list`) and `templates` (the `uriTemplate`s from
    /// `resources/templates/list`).
    pub fn new(
        uris: impl IntoIterator<Item = String>,
        templates: impl IntoIterator<Item = String>,
    ) -> Self {
        let mut index = ResourceIndex {
            uris: uris.into_iter().collect(),
            ..ResourceIndex::default()
        };
        for template in templates {
            match compile(&template) {
                Some(compiled) => index.templates.push(compiled),
                None => index.unusable.push(template),
            }
        }
        index
    }

    /// Whether `uri` was listed, or matches a listed template.
    #[must_use]
    pub fn allows(&self, uri: &str) -> bool {
        if self.uris.contains(uri) {
            return true;
        }
        let mut matching = self
            .templates
            .iter()
            .filter(|t| uri.starts_with(&t.prefix))
            .filter(|t| t.matcher.is_match(uri));
        matching.next().is_some() && !has_dot_segment(uri)
    }

    /// The templates that did not parse (they match nothing), for the log.
    #[must_use]
    pub fn unusable_templates(&self) -> &[String] {
        &self.unusable
    }
}

/// The template as an anchored regular expression, or `None` when it does not parse.
fn compile(template: &str) -> Option<Template> {
    let mut pattern = String::from("^");
    let mut rest = template;
    let prefix = template.split('{').next().unwrap_or_default().to_owned();
    while let Some(open) = rest.find('{') {
        let (literal, after) = rest.split_at(open);
        if literal.contains('}') {
            return None;
        }
        pattern.push_str(&regex::escape(literal));
        let close = after.find('}')?;
        pattern.push_str(&expression(&after[1..close])?);
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return None;
    }
    pattern.push_str(&regex::escape(rest));
    pattern.push('$');
    let matcher = regex::RegexBuilder::new(&pattern)
        .size_limit(1 << 20)
        .build()
        .ok()?;
    Some(Template { prefix, matcher })
}

/// One `{…}` expression, without its braces.
fn expression(body: &str) -> Option<String> {
    let (operator, list) = match body.chars().next()? {
        op @ ('+' | '#' | '.' | '/' | ';' | '?' | '&') => (Some(op), &body[1..]),
        _ => (None, body),
    };
    let mut count = 0usize;
    let mut explode = false;
    for spec in list.split(',') {
        let (name, modifier) = match spec.find([':', '*']) {
            Some(at) => spec.split_at(at),
            None => (spec, ""),
        };
        let name_ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '%'));
        let modifier_ok = match modifier.strip_prefix(':') {
            Some(length) => {
                !length.is_empty()
                    && length.len() <= 4
                    && length.chars().all(|c| c.is_ascii_digit())
            }
            None => modifier.is_empty() || modifier == "*",
        };
        if !name_ok || !modifier_ok {
            return None;
        }
        explode |= modifier == "*";
        count += 1;
    }
    let times = if explode {
        "*".to_owned()
    } else {
        format!("{{0,{count}}}")
    };
    let list_text = if count > 1 || explode {
        format!("(?:{UNRESERVED}|[,=])*")
    } else {
        format!("(?:{UNRESERVED})*")
    };
    let item = format!("(?:{UNRESERVED}|[,=])*");
    Some(match operator {
        None => list_text,
        Some('+') => format!("(?:{RESERVED})*"),
        Some('#') => format!("(?:#(?:{RESERVED})*)?"),
        Some('.') => format!(r"(?:\.{item}){times}"),
        Some('/') => format!("(?:/{item}){times}"),
        Some(';') => format!("(?:;{item}){times}"),
        Some('?') => format!(r"(?:\?(?:{UNRESERVED}|[,=&])*)?"),
        Some(_) => format!("(?:&(?:{UNRESERVED}|[,=&])*)?"),
    })
}

/// Whether `uri`, percent-decoded, has a `.` or `..` segment (split on `/` and `\`).
fn has_dot_segment(uri: &str) -> bool {
    let decoded = uri
        .replace("%2e", ".")
        .replace("%2E", ".")
        .replace("%2f", "/")
        .replace("%2F", "/");
    let decoded = decoded.replace("%5c", "\\").replace("%5C", "\\");
    decoded
        .split(['/', '\\', '?', '#'])
        .any(|segment| segment == "." || segment == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(templates: &[&str]) -> ResourceIndex {
        ResourceIndex::new(
            ["test://static/resource/1".to_owned()],
            templates.iter().map(|t| (*t).to_owned()),
        )
    }

    #[test]
    fn listed_uris_match_exactly() {
        let index = index(&[]);
        assert!(index.allows("test://static/resource/1"));
        assert!(!index.allows("test://static/resource/2"));
        assert!(!index.allows("test://static/resource/1/"));
        assert!(!index.allows("TEST://static/resource/1"));
    }

    #[test]
    fn simple_variables_stay_in_one_segment() {
        let index = index(&["test://static/resource/{id}"]);
        assert!(index.allows("test://static/resource/42"));
        assert!(index.allows("test://static/resource/a-b.c_d~e%20f"));
        assert!(!index.allows("test://static/resource/4/2"));
        assert!(!index.allows("test://static/resource/42?x=1"));
        assert!(!index.allows("test://static/resource/42#frag"));
        assert!(!index.allows("test://static/resource/é"));
        assert!(!index.allows("test://static/other/42"));
    }

    #[test]
    fn reserved_expansion_spans_segments_but_not_dot_segments() {
        let index = index(&["file:///{+path}"]);
        assert!(index.allows("file:///home/me/src/main.rs"));
        assert!(!index.allows("file:///home/me/../../etc/passwd"));
        assert!(!index.allows("file:///home/me/%2e%2e/%2E%2E/etc/passwd"));
        assert!(!index.allows("file:///./etc"));
        assert!(!index.allows("http:///home"));
        // A simple variable carrying an encoded traversal is refused too.
        let index = ResourceIndex::new([], ["repo://{name}/file".to_owned()]);
        assert!(!index.allows("repo://..%2F..%2Fsecret/file"));
        assert!(index.allows("repo://portcullis/file"));
    }

    #[test]
    fn operators() {
        let index = ResourceIndex::new(
            [],
            [
                "api://x{/a,b}{?q,page}".to_owned(),
                "doc://{x,y}{#section}".to_owned(),
                "m://{.ext*}".to_owned(),
            ],
        );
        assert!(index.allows("api://x/one/two?q=rust&page=2"));
        assert!(index.allows("api://x"));
        assert!(!index.allows("api://x/one/two/three"));
        assert!(index.allows("doc://1,2#intro/part"));
        assert!(index.allows("m://.tar.gz"));
    }

    #[test]
    fn malformed_templates_match_nothing() {
        let index = ResourceIndex::new(
            [],
            [
                "a://{".to_owned(),
                "a://{}".to_owned(),
                "a://}{x}".to_owned(),
                "a://{x y}".to_owned(),
                "a://{=x}".to_owned(),
            ],
        );
        assert_eq!(index.unusable_templates().len(), 5);
        assert!(!index.allows("a://x"));
    }
}
