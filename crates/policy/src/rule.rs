//! Rules: what a rule says, and which targets it matches.

use std::fmt;
use std::sync::Arc;

use crate::condition::Condition;
use crate::constraints::ArgConstraints;
use crate::glob::Glob;
use crate::principal::{Principal, PrincipalPattern, any_matches};
use crate::rate::RateSpec;

/// What a name refers to. MCP has three kinds of named things a host may be allowed to
/// see or use, and a rule can target each separately.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A tool, by its name (`tools/list`, `tools/call`).
    Tool,
    /// A prompt, by its name (`prompts/list`, `prompts/get`).
    Prompt,
    /// A resource or resource template, by its URI (`resources/list`, `resources/read`).
    Resource,
}

impl Kind {
    /// Every kind, in the order they are reported.
    pub const ALL: [Kind; 3] = [Kind::Tool, Kind::Prompt, Kind::Resource];

    /// The config key that lists names of this kind in a rule (`tools`, `prompts`,
    /// `resources`).
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Tool => "tools",
            Kind::Prompt => "prompts",
            Kind::Resource => "resources",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Tool => "tool",
            Kind::Prompt => "prompt",
            Kind::Resource => "resource",
        })
    }
}

/// What a matching rule decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// The target may be listed and used.
    Allow,
    /// The target is hidden from lists and refused when used.
    Deny,
    /// The target is listed; each use is held until a person approves it.
    Consent,
}

impl Effect {
    /// `allow`, `deny`, `consent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
            Effect::Consent => "consent",
        }
    }

    /// Can a rule with this effect let a call through (now or after consent)?
    pub fn permits(self) -> bool {
        matches!(self, Effect::Allow | Effect::Consent)
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a rule came from, so that logs and `portcullis explain` can point a person at the
/// line that decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleOrigin {
    /// Zero-based position of the rule in its source (the n-th `[[rules]]` table).
    pub index: usize,
    /// The file (or other source) the rule was read from, if any.
    pub file: Option<Arc<str>>,
    /// One-based line of the rule in that file, if known.
    pub line: Option<usize>,
}

impl RuleOrigin {
    /// An origin that only knows the rule's position (rules built in code, tests).
    pub fn index(index: usize) -> Self {
        RuleOrigin {
            index,
            file: None,
            line: None,
        }
    }
}

/// `rule 3 (quickstart.toml:14)`: one-based, as people count rules in a file.
impl fmt::Display for RuleOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule {}", self.index + 1)?;
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, " ({file}:{line})"),
            (Some(file), None) => write!(f, " ({file})"),
            (None, Some(line)) => write!(f, " (line {line})"),
            (None, None) => Ok(()),
        }
    }
}

/// How much of one kind's namespace a rule covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage<'r> {
    /// The rule does not apply to this kind at all.
    None,
    /// The rule applies to the names matching one of these globs.
    Names(&'r [Glob]),
    /// The rule applies to every name of this kind.
    Every,
}

/// One policy rule. A rule matches a target when every one of its matchers does: server,
/// names, principals, condition, argument constraints. Scopes do not decide whether the rule
/// matches: they decide whether a matching allow (or consent) rule lets the caller through
/// or answers "insufficient scope".
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The upstream server the rule is about; `None` means every server.
    pub server: Option<String>,
    /// Tool names the rule covers.
    pub tools: Option<Vec<Glob>>,
    /// Prompt names the rule covers.
    pub prompts: Option<Vec<Glob>>,
    /// Resource URIs the rule covers.
    pub resources: Option<Vec<Glob>>,
    /// The callers the rule is about (any of them); `None` means everyone.
    pub principals: Option<Vec<PrincipalPattern>>,
    /// Scopes the caller's token must carry for an allow or consent rule to let it through.
    pub scopes: Vec<String>,
    /// A CEL condition that must hold.
    pub when: Option<Condition>,
    /// Constraints on the call's arguments.
    pub constraints: ArgConstraints,
    /// The rate limit of what this rule allows (per principal × server × tool).
    pub rate: Option<RateSpec>,
    /// What the rule decides when it matches.
    pub effect: Effect,
    /// Where the rule was written.
    pub origin: RuleOrigin,
}

impl Rule {
    /// A rule with the given effect that matches everything; narrow it by setting fields.
    pub fn new(effect: Effect, origin: RuleOrigin) -> Self {
        Rule {
            server: None,
            tools: None,
            prompts: None,
            resources: None,
            principals: None,
            scopes: Vec::new(),
            when: None,
            constraints: ArgConstraints::default(),
            rate: None,
            effect,
            origin,
        }
    }

    /// The name list for `kind`, as written.
    pub fn names(&self, kind: Kind) -> Option<&[Glob]> {
        match kind {
            Kind::Tool => self.tools.as_deref(),
            Kind::Prompt => self.prompts.as_deref(),
            Kind::Resource => self.resources.as_deref(),
        }
    }

    /// Does the rule list names of no kind at all? Such a rule covers every kind and name.
    pub fn lists_nothing(&self) -> bool {
        self.tools.is_none() && self.prompts.is_none() && self.resources.is_none()
    }

    /// The kinds the rule covers.
    pub fn kinds(&self) -> impl Iterator<Item = Kind> + '_ {
        Kind::ALL
            .into_iter()
            .filter(|&k| self.coverage(k) != Coverage::None)
    }

    /// Does the rule apply to `server`?
    pub fn matches_server(&self, server: &str) -> bool {
        self.server.as_deref().is_none_or(|s| s == server)
    }

    /// How much of `kind` the rule covers, servers aside. A rule that lists no kind covers
    /// all of them; one that lists some covers only those, and only the names matched.
    pub fn coverage(&self, kind: Kind) -> Coverage<'_> {
        if self.lists_nothing() {
            return Coverage::Every;
        }
        match self.names(kind) {
            None => Coverage::None,
            Some(globs) if globs.iter().any(Glob::is_match_all) => Coverage::Every,
            Some(globs) => Coverage::Names(globs),
        }
    }

    /// Does the rule match this server, kind and name? (Principals, condition and
    /// constraints aside.)
    pub fn matches(&self, server: &str, kind: Kind, name: &str) -> bool {
        self.matches_server(server) && self.matches_name(kind, name)
    }

    /// Does the rule cover this kind and name?
    pub fn matches_name(&self, kind: Kind, name: &str) -> bool {
        match self.coverage(kind) {
            Coverage::None => false,
            Coverage::Every => true,
            Coverage::Names(globs) => globs.iter().any(|g| g.matches(name)),
        }
    }

    /// Is the rule about `principal`?
    pub fn matches_principal(&self, principal: &Principal) -> bool {
        self.principals
            .as_deref()
            .is_none_or(|patterns| any_matches(patterns, principal))
    }

    /// Does the rule apply to every call on what it covers, whoever makes it and whatever
    /// the arguments (no principals, condition or argument constraints)?
    pub fn is_unconditional(&self) -> bool {
        self.principals.is_none() && self.when.is_none() && self.constraints.is_empty()
    }

    /// Does whether the rule applies depend on the call's arguments (its condition uses
    /// `args`, or it has argument constraints)? Such a rule cannot be settled at list time.
    pub fn depends_on_args(&self) -> bool {
        self.when.as_ref().is_some_and(|c| c.uses("args")) || !self.constraints.is_empty()
    }
}
