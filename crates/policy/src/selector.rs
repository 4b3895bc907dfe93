//! Selectors: which argument values a `paths` or `urls` constraint checks.
//!
//! ```text
//! selector := ("args" step+ | "uri") ["?"]
//! step     := "." key        a member of an object: [A-Za-z0-9_-]+
//!           | "[" digits "]" one element of a list (zero-based)
//!           | "[*]"          every element of a list
//! ```
//!
//! `args.path`, `args.options.root`, `args.items[*].path`, `args.paths[*]`, `args.argv[0]`;
//! `uri` is the URI of the resource a rule is about (`resources/read`). Every value a
//! selector reaches must be a string; a missing member, a missing list, a `null` or a number
//! where a string is expected fails the constraint (a `[*]` over an empty list selects
//! nothing and so passes). A trailing `?` makes the value optional: a missing member (or
//! `null`) anywhere along the way then selects nothing, instead of failing; a value of the
//! wrong type still fails.

use std::fmt;

use serde_json::Value;

/// Most steps in one selector.
pub const MAX_SELECTOR_STEPS: usize = 16;
/// Most values one selector may reach in one call; more fails the constraint.
pub const MAX_SELECTED: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
    Each,
}

/// A parsed selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    text: String,
    /// `None` for `uri`.
    steps: Option<Vec<Step>>,
    /// Written with a trailing `?`: a missing value selects nothing.
    optional: bool,
}

/// Why a selector was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad selector \"{text}\": {why} (write e.g. args.path, args.items[*].path or uri)")]
pub struct SelectorError {
    text: String,
    why: String,
}

/// One value a selector reached, or why it reached none there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selected<'a> {
    /// Where, concretely: `args.items[2].path`.
    pub at: String,
    /// The string, or why there is none.
    pub value: Result<&'a str, String>,
}

impl Selector {
    /// Parses a selector.
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let err = |why: &str| SelectorError {
            text: text.to_owned(),
            why: why.to_owned(),
        };
        let (body, optional) = match text.strip_suffix('?') {
            Some(body) => (body, true),
            None => (text, false),
        };
        if body == "uri" {
            return Ok(Selector {
                text: text.to_owned(),
                steps: None,
                optional,
            });
        }
        let rest = body
            .strip_prefix("args")
            .ok_or_else(|| err("a selector starts with `args` (or is `uri`)"))?;
        let mut steps = Vec::new();
        let mut rest = rest;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('.') {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                    .unwrap_or(after.len());
                if end == 0 {
                    return Err(err("expected a member name after `.`"));
                }
                steps.push(Step::Key(after[..end].to_owned()));
                rest = &after[end..];
            } else if let Some(after) = rest.strip_prefix('[') {
                let (inside, after) = after.split_once(']').ok_or_else(|| err("unclosed `[`"))?;
                if inside == "*" {
                    steps.push(Step::Each);
                } else if !inside.is_empty() && inside.bytes().all(|b| b.is_ascii_digit()) {
                    let i = inside.parse().map_err(|_| err("index too large"))?;
                    steps.push(Step::Index(i));
                } else {
                    return Err(err("inside [ ] write `*` or a list index"));
                }
                rest = after;
            } else {
                return Err(err("expected `.name`, `[*]` or `[index]`"));
            }
        }
        if steps.is_empty() {
            return Err(err(
                "`args` alone is not a string: name a member, as in args.path",
            ));
        }
        if steps.len() > MAX_SELECTOR_STEPS {
            return Err(err(&format!("more than {MAX_SELECTOR_STEPS} steps")));
        }
        Ok(Selector {
            text: text.to_owned(),
            steps: Some(steps),
            optional,
        })
    }

    /// The selector as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Is this the `uri` selector (the resource's URI)?
    pub fn is_uri(&self) -> bool {
        self.steps.is_none()
    }

    /// Was it written with a trailing `?` (a missing value selects nothing)?
    pub fn is_optional(&self) -> bool {
        self.optional
    }

    /// The strings this selector reaches in a call with arguments `args` (no arguments is
    /// an empty object) about resource `uri` (for resources).
    pub(crate) fn select<'a>(
        &self,
        args: Option<&'a Value>,
        uri: Option<&'a str>,
    ) -> Vec<Selected<'a>> {
        let Some(steps) = &self.steps else {
            if uri.is_none() && self.optional {
                return Vec::new();
            }
            return vec![Selected {
                at: "uri".to_owned(),
                value: uri.ok_or_else(|| "only a resource has a uri".to_owned()),
            }];
        };
        let mut out = Vec::new();
        // A call without arguments: every member is missing.
        let mut frontier: Vec<(String, Option<&'a Value>)> = vec![("args".to_owned(), args)];
        for step in steps {
            let mut next = Vec::new();
            for (at, value) in frontier {
                let value = match value {
                    Some(Value::Null) | None if self.optional => continue,
                    Some(value) => value,
                    None => {
                        next.push((at, None));
                        continue;
                    }
                };
                match (step, value) {
                    (Step::Key(k), Value::Object(map)) => {
                        next.push((format!("{at}.{k}"), map.get(k)))
                    }
                    (Step::Index(i), Value::Array(items)) => {
                        next.push((format!("{at}[{i}]"), items.get(*i)))
                    }
                    (Step::Each, Value::Array(items)) => {
                        for (i, item) in items.iter().enumerate() {
                            if next.len() + out.len() >= MAX_SELECTED {
                                out.push(Selected {
                                    at: format!("{at}[*]"),
                                    value: Err(format!("selects more than {MAX_SELECTED} values")),
                                });
                                return out;
                            }
                            next.push((format!("{at}[{i}]"), Some(item)));
                        }
                    }
                    (step, other) => out.push(Selected {
                        value: Err(format!(
                            "is {}, not {}",
                            json_type(other),
                            match step {
                                Step::Key(_) => "an object",
                                Step::Index(_) | Step::Each => "a list",
                            }
                        )),
                        at,
                    }),
                }
            }
            frontier = next;
        }
        for (at, value) in frontier {
            let value = match value {
                Some(Value::Null) | None if self.optional => continue,
                Some(Value::String(s)) => Ok(s.as_str()),
                Some(other) => Err(format!("is {}, not a string", json_type(other))),
                None => Err("is missing".to_owned()),
            };
            out.push(Selected { at, value });
        }
        out
    }
}

/// `a string`, `a number`, ... for messages.
pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
