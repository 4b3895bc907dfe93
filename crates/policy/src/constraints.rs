//! Constraints on a call's arguments that need no CEL: `paths` inside `roots`, `urls` on
//! `hosts`, and `max_arg_bytes`.
//!
//! A `paths` constraint's roots are the rule's own, or — when the rule leaves `roots` out —
//! those of the server the call goes to ([`PathRoots::OfServer`]). A server with no roots
//! there has nothing inside: each of its values is unverifiable, so an allow rule never
//! lets it through and a deny rule applies (fail closed).
//!
//! On an allow or consent rule a constraint is a requirement: the rule applies only when
//! every selected value passes. On a deny rule it says which calls the deny is about: the
//! rule applies when some selected value is inside its roots (or on its hosts), **and also
//! when a value cannot be judged** (missing, not a string, malformed, unresolvable), so a
//! malformed value never slips past a deny. Constraints of different keys combine with
//! "and" on both kinds of rule.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

use serde_json::Value;

use crate::paths::{PathResolver, Root, check_path};
use crate::selector::Selector;
use crate::urls::{HostPattern, check_url};

/// `paths = [...]` with `roots = [...]` (or without, see [`PathRoots::OfServer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathConstraint {
    /// The argument values to check.
    pub selectors: Vec<Selector>,
    /// The directories they must stay inside.
    pub roots: PathRoots,
}

/// The directories a `paths` constraint holds values inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathRoots {
    /// The rule's own `roots` (at least one).
    Listed(Vec<Root>),
    /// The rule has no `roots`: the roots of the server the call goes to, by server name.
    /// A server missing from the map has none, and no value of it can be judged inside.
    OfServer(Arc<BTreeMap<String, Vec<Root>>>),
}

impl PathRoots {
    /// The roots that hold for a call to `server`; `None` when there are none to check
    /// against.
    pub fn for_server(&self, server: &str) -> Option<&[Root]> {
        let roots = match self {
            PathRoots::Listed(roots) => roots.as_slice(),
            PathRoots::OfServer(by_server) => by_server.get(server)?.as_slice(),
        };
        (!roots.is_empty()).then_some(roots)
    }
}

impl From<Vec<Root>> for PathRoots {
    fn from(roots: Vec<Root>) -> Self {
        PathRoots::Listed(roots)
    }
}

/// `urls = [...]` with `hosts = [...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlConstraint {
    /// The argument values to check.
    pub selectors: Vec<Selector>,
    /// The hosts they may point at (at least one).
    pub hosts: Vec<HostPattern>,
}

/// Every argument constraint of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArgConstraints {
    /// `paths` and `roots`.
    pub paths: Option<PathConstraint>,
    /// `urls` and `hosts`.
    pub urls: Option<UrlConstraint>,
    /// `max_arg_bytes`: the largest serialized (compact JSON) arguments.
    pub max_arg_bytes: Option<u64>,
}

/// The outcome of checking a rule's constraints on one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Check {
    /// The rule applies. For a deny rule, `unverifiable` names a value that could not be
    /// judged, when that is why it applies.
    Applies {
        unverifiable: Option<(String, String)>,
    },
    /// The rule does not apply: `which` constraint, and why.
    DoesNotApply { which: String, why: String },
}

/// One selected value, judged.
enum Judged {
    Inside,
    Outside(String),
    Unverifiable(String),
}

impl ArgConstraints {
    /// Does the rule constrain arguments at all?
    pub fn is_empty(&self) -> bool {
        self.paths.is_none() && self.urls.is_none() && self.max_arg_bytes.is_none()
    }

    /// Checks the call's arguments (and, for `uri` selectors, the resource's URI): size,
    /// then URLs, then paths. `permits` is the rule's kind: an allow or consent rule needs
    /// every value inside; a deny rule applies when some value is inside or cannot be
    /// judged (and, with `max_arg_bytes`, when the arguments are larger). `server` is the
    /// server the call goes to (for roots taken from it).
    pub(crate) fn check(
        &self,
        permits: bool,
        args: Option<&Value>,
        uri: Option<&str>,
        server: &str,
        resolver: &dyn PathResolver,
    ) -> Check {
        if let Some(max) = self.max_arg_bytes {
            let size = args.map_or(0, serialized_len);
            if (size > max) == permits {
                return Check::DoesNotApply {
                    which: "max_arg_bytes".to_owned(),
                    why: if permits {
                        format!("the arguments are {size} bytes, more than {max}")
                    } else {
                        format!("the arguments are {size} bytes, not more than {max}")
                    },
                };
            }
        }
        let mut unverifiable = None;
        let groups = self
            .urls
            .iter()
            .map(|u| (&u.selectors, Against::Hosts(&u.hosts)))
            .chain(
                self.paths
                    .iter()
                    .map(|p| (&p.selectors, Against::Roots(p.roots.for_server(server)))),
            );
        for (selectors, against) in groups {
            let (key, place) = match against {
                Against::Hosts(_) => ("urls", "on the allowed hosts"),
                Against::Roots(_) => ("paths", "inside the roots"),
            };
            let mut any_applies = false;
            for selector in selectors {
                let which = format!("{key}: {selector}");
                for sel in selector.select(args, uri) {
                    let judged = match sel.value {
                        Err(why) => Judged::Unverifiable(why),
                        Ok(value) => against.judge(value, resolver),
                    };
                    match judged {
                        Judged::Inside => any_applies = true,
                        Judged::Outside(why) | Judged::Unverifiable(why) if permits => {
                            return Check::DoesNotApply {
                                which,
                                why: format!("{} {why}", sel.at),
                            };
                        }
                        Judged::Outside(_) => {}
                        Judged::Unverifiable(why) => {
                            any_applies = true;
                            unverifiable.get_or_insert_with(|| {
                                (which.clone(), format!("{} {why}", sel.at))
                            });
                        }
                    }
                }
            }
            if !permits && !any_applies {
                let all = selectors
                    .iter()
                    .map(Selector::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                return Check::DoesNotApply {
                    which: format!("{key}: {all}"),
                    why: format!("no value of {all} is {place}"),
                };
            }
        }
        Check::Applies { unverifiable }
    }
}

/// What selected values are checked against.
#[derive(Clone, Copy)]
enum Against<'a> {
    Hosts(&'a [HostPattern]),
    /// `None`: the server the call goes to has no roots.
    Roots(Option<&'a [Root]>),
}

impl Against<'_> {
    fn judge(self, value: &str, resolver: &dyn PathResolver) -> Judged {
        let result = match self {
            Against::Hosts(hosts) => check_url(value, hosts)
                .map(drop)
                .map_err(|e| (e.is_outside(), e.to_string())),
            Against::Roots(None) => Err((
                false,
                "cannot be checked: the server has no roots".to_owned(),
            )),
            Against::Roots(Some(roots)) => check_path(value, roots, resolver)
                .map(drop)
                .map_err(|e| (e.is_outside(), e.to_string())),
        };
        match result {
            Ok(()) => Judged::Inside,
            Err((true, why)) => Judged::Outside(why),
            Err((false, why)) => Judged::Unverifiable(why),
        }
    }
}

/// The length of `v` serialized as compact JSON, without building the string.
pub(crate) fn serialized_len(v: &Value) -> u64 {
    struct Count(u64);
    impl io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, v);
    count.0
}
