//! The policy: an ordered list of rules, evaluated first match wins, default deny.

use crate::principal::Principal;
use crate::rule::{Coverage, Effect, Kind, Rule};

/// The thing a caller wants to see or use: a name of some kind on an upstream server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    /// The configured server name (not a virtual server: a virtual's members are decided
    /// each under its own name).
    pub server: &'a str,
    /// What `name` refers to.
    pub kind: Kind,
    /// The tool or prompt name, or the resource URI, as the upstream knows it.
    pub name: &'a str,
}

/// The outcome of a decision, with the rule that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Allow or deny.
    pub effect: Effect,
    /// Position in [`Policy::rules`] of the deciding rule; `None` when no rule matched and
    /// the default deny applied.
    pub rule: Option<usize>,
}

impl Decision {
    /// The decision when no rule matches.
    pub const DEFAULT_DENY: Decision = Decision {
        effect: Effect::Deny,
        rule: None,
    };

    /// Is the target allowed?
    pub fn is_allowed(&self) -> bool {
        self.effect == Effect::Allow
    }
}

/// Host control: which tools, prompts and resources each caller may see and use.
///
/// Rules are checked in order and the first that matches decides; when none matches, the
/// answer is deny. Default deny is what makes a policy safe to write incrementally: a
/// server that gains a new tool (or is swapped for a malicious one) exposes nothing until
/// a person writes a rule for it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    rules: Vec<Rule>,
}

impl Policy {
    /// A policy from rules in evaluation order.
    pub fn new(rules: Vec<Rule>) -> Self {
        Policy { rules }
    }

    /// Which rule decides `target` for `principal`, and how. Pure and cheap: each rule is a
    /// few string comparisons and bounded-time glob matches.
    pub fn decide(&self, principal: &Principal, target: &Target) -> Decision {
        // Principals do not narrow rules yet; the parameter is here so that callers already
        // pass who is asking.
        let _ = principal;
        self.rules
            .iter()
            .position(|rule| rule.matches(target.server, target.kind, target.name))
            .map_or(Decision::DEFAULT_DENY, |i| Decision {
                effect: self.rules[i].effect,
                rule: Some(i),
            })
    }

    /// Is `target` allowed for `principal`?
    pub fn allows(&self, principal: &Principal, target: &Target) -> bool {
        self.decide(principal, target).is_allowed()
    }

    /// Could any name of `kind` on `server` be allowed? Used to drop a whole capability from
    /// `initialize` and to skip asking an upstream for a list nobody may see.
    ///
    /// The answer may over-approximate (an allow for `a*` behind a deny for `a*` still says
    /// yes, and list filtering then removes every entry) but never under-approximates: when
    /// it says no, no name of that kind can be allowed.
    pub fn may_expose(&self, principal: &Principal, server: &str, kind: Kind) -> bool {
        let _ = principal;
        for rule in self.rules.iter().filter(|r| r.matches_server(server)) {
            match (rule.effect, rule.coverage(kind)) {
                (_, Coverage::None) => {}
                (Effect::Allow, Coverage::Every) => return true,
                (Effect::Allow, Coverage::Names(globs)) if !globs.is_empty() => return true,
                (Effect::Allow, Coverage::Names(_)) => {}
                (Effect::Deny, Coverage::Every) => return false,
                (Effect::Deny, Coverage::Names(_)) => {}
            }
        }
        false
    }

    /// The rules, in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}
