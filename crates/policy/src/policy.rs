//! The policy: an ordered list of rules, evaluated first match wins, default deny.

use serde_json::Value;

use crate::condition::Bindings;
use crate::constraints::Check;
use crate::index::Index;
use crate::paths::PathResolver;
use crate::principal::Principal;
use crate::rate::RateSpec;
use crate::rule::{Coverage, Effect, Kind, Rule};

/// What one decision is about.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Who asks.
    pub principal: &'a Principal,
    /// The configured server name (a virtual server's members are decided each under its
    /// own name).
    pub server: &'a str,
    /// What `name` refers to.
    pub kind: Kind,
    /// The tool or prompt name, or the resource URI, as the upstream knows it.
    pub name: &'a str,
    /// The call's arguments (`tools/call` arguments, `prompts/get` arguments); `None` for a
    /// call without any.
    pub args: Option<&'a Value>,
    /// The tool's annotations as the upstream listed them: untrusted.
    pub annotations: Option<&'a Value>,
    /// The downstream session id (empty when stateless).
    pub session: &'a str,
    /// `"stdio"` or `"http"`.
    pub transport: &'a str,
}

impl<'a> Request<'a> {
    /// A request without arguments, annotations, session or transport.
    pub fn new(principal: &'a Principal, server: &'a str, kind: Kind, name: &'a str) -> Self {
        Request {
            principal,
            server,
            kind,
            name,
            args: None,
            annotations: None,
            session: "",
            transport: "",
        }
    }

    /// The same request with the call's arguments.
    pub fn with_args(self, args: &'a Value) -> Self {
        Request {
            args: Some(args),
            ..self
        }
    }

    /// The same request with the tool's (untrusted) annotations.
    pub fn with_annotations(self, annotations: &'a Value) -> Self {
        Request {
            annotations: Some(annotations),
            ..self
        }
    }

    /// The same request in session `session` over `transport`.
    pub fn in_session(self, session: &'a str, transport: &'a str) -> Self {
        Request {
            session,
            transport,
            ..self
        }
    }
}

/// A list-time target: a name of some kind on an upstream server (the first cut's API,
/// kept for [`Policy::allows`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    /// The configured server name.
    pub server: &'a str,
    /// What `name` refers to.
    pub kind: Kind,
    /// The tool or prompt name, or the resource URI.
    pub name: &'a str,
}

/// What a decision says to do with the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through.
    Allow,
    /// Refuse it.
    Deny,
    /// Hold it for a person's approval (the gateway's consent channels ask one).
    Consent,
    /// A rule would allow it, but the caller's token lacks these scopes (HTTP: `403
    /// insufficient_scope`, so the client can step up).
    InsufficientScope {
        /// The scopes the rule requires that the token does not carry.
        missing: Vec<String>,
    },
}

impl Verdict {
    /// `allow`, `deny`, `consent`, `insufficient_scope`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::Consent => "consent",
            Verdict::InsufficientScope { .. } => "insufficient_scope",
        }
    }
}

/// Why one rule did or did not decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// The rule is about another server.
    NotThisServer,
    /// The rule does not cover this kind or name.
    NameNotMatched,
    /// The rule is about other principals.
    PrincipalNotMatched,
    /// The rule's condition is false.
    ConditionFalse,
    /// An argument constraint keeps the rule from applying.
    ConstraintFailed {
        /// Which constraint: `paths: args.path`, `urls: args.url`, `max_arg_bytes`.
        which: String,
        /// Why.
        why: String,
    },
    /// The rule matched and decided by its effect.
    Matched,
    /// The rule matched, but the token lacks some of its scopes.
    MissingScopes {
        /// The missing scopes.
        missing: Vec<String>,
    },
    /// The rule's condition failed to evaluate: deny (fail closed).
    ConditionError {
        /// The evaluation error.
        msg: String,
    },
    /// A deny rule applied because a value could not be checked (fail closed).
    ConstraintUnverifiable {
        /// Which constraint.
        which: String,
        /// Why the value could not be checked.
        why: String,
    },
}

/// One rule's part in a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Position of the rule in [`Policy::rules`].
    pub rule: usize,
    /// What happened at it.
    pub outcome: StepOutcome,
}

/// The outcome of a decision, with the rule that made it and how it was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What to do.
    pub verdict: Verdict,
    /// Position in [`Policy::rules`] of the deciding rule; `None` for the default deny.
    pub rule: Option<usize>,
    /// One sentence for logs, errors and the audit record.
    pub reason: String,
    /// The rules that were about this server and name, in order, each with why it did not
    /// decide, and the deciding one last. Rules about other servers or names are left out
    /// ([`Policy::explain`] names them too).
    pub trace: Vec<Step>,
    /// The rate limit of the deciding allow or consent rule, if it has one (the gateway
    /// applies its global default otherwise).
    pub rate: Option<RateSpec>,
    /// The server the decision is about.
    pub server: String,
    /// The kind of target.
    pub kind: Kind,
    /// The tool or prompt name or resource URI.
    pub name: String,
    /// Who asked, as displayed (`local:alice`, `anonymous`, `iss|sub`).
    pub principal: String,
}

impl Decision {
    /// May the call go through now?
    pub fn is_allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }
}

/// Host control: which tools, prompts and resources each caller may see and use.
///
/// Rules are checked in order and the first that matches decides; when none matches, the
/// answer is deny. Default deny is what makes a policy safe to write incrementally: a
/// server that gains a new tool (or is swapped for a malicious one) exposes nothing until
/// a person writes a rule for it.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: Vec<Rule>,
    index: Index,
}

/// Two policies are equal when their rules are.
impl PartialEq for Policy {
    fn eq(&self, other: &Self) -> bool {
        self.rules == other.rules
    }
}

/// `tool "read_file" on server "files"`.
pub(crate) fn describe(kind: Kind, name: &str, server: &str) -> String {
    format!("{kind} {name:?} on server {server:?}")
}

impl Policy {
    /// A policy from rules in evaluation order.
    pub fn new(rules: Vec<Rule>) -> Self {
        let index = Index::new(&rules);
        Policy { rules, index }
    }

    /// The rules, in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Decides a call. The first rule whose server, names, principals, condition and
    /// argument constraints all match decides; no match is deny. A condition that fails to
    /// evaluate denies; a matching allow or consent rule whose scopes the token lacks
    /// answers [`Verdict::InsufficientScope`]. `paths` resolves symbolic links for `paths`
    /// constraints.
    pub fn decide(&self, req: &Request<'_>, paths: &dyn PathResolver) -> Decision {
        let bindings = Bindings::new(req);
        let uri = (req.kind == Kind::Resource).then_some(req.name);
        let mut trace = Vec::new();
        let what = || describe(req.kind, req.name, req.server);
        for (i, needs_glob) in self.index.candidates(req.server, req.kind, req.name) {
            let rule = &self.rules[i];
            if needs_glob && !rule.matches_name(req.kind, req.name) {
                continue;
            }
            let step = |outcome| Step { rule: i, outcome };
            if !rule.matches_principal(req.principal) {
                trace.push(step(StepOutcome::PrincipalNotMatched));
                continue;
            }
            if let Some(condition) = &rule.when {
                match condition.evaluate(&bindings) {
                    Ok(true) => {}
                    Ok(false) => {
                        trace.push(step(StepOutcome::ConditionFalse));
                        continue;
                    }
                    Err(msg) => {
                        let reason = format!(
                            "the condition of {} failed to evaluate for {}: {msg}; denied (fail closed)",
                            rule.origin,
                            what()
                        );
                        trace.push(step(StepOutcome::ConditionError { msg }));
                        return self.finish(req, Verdict::Deny, Some(i), reason, trace);
                    }
                }
            }
            let permits = rule.effect.permits();
            match rule
                .constraints
                .check(permits, req.args, uri, req.server, paths)
            {
                Check::DoesNotApply { which, why } => {
                    trace.push(step(StepOutcome::ConstraintFailed { which, why }));
                    continue;
                }
                Check::Applies {
                    unverifiable: Some((which, why)),
                } => {
                    let reason = format!(
                        "{} denies {}: {which}: {why}, so it cannot be checked (fail closed)",
                        rule.origin,
                        what()
                    );
                    trace.push(step(StepOutcome::ConstraintUnverifiable { which, why }));
                    return self.finish(req, Verdict::Deny, Some(i), reason, trace);
                }
                Check::Applies { unverifiable: None } => {}
            }
            if permits && !rule.scopes.is_empty() {
                let missing = req.principal.missing_scopes(&rule.scopes);
                if !missing.is_empty() {
                    let reason = format!(
                        "{} would {} {}, but the token lacks scope{} {}",
                        rule.origin,
                        rule.effect,
                        what(),
                        if missing.len() == 1 { "" } else { "s" },
                        missing.join(", ")
                    );
                    trace.push(step(StepOutcome::MissingScopes {
                        missing: missing.clone(),
                    }));
                    return self.finish(
                        req,
                        Verdict::InsufficientScope { missing },
                        Some(i),
                        reason,
                        trace,
                    );
                }
            }
            trace.push(step(StepOutcome::Matched));
            let (verdict, reason) = match rule.effect {
                Effect::Allow => (Verdict::Allow, format!("{} allows {}", rule.origin, what())),
                Effect::Deny => (Verdict::Deny, format!("{} denies {}", rule.origin, what())),
                Effect::Consent => (
                    Verdict::Consent,
                    format!("{} requires a person's consent for {}", rule.origin, what()),
                ),
            };
            let mut decision = self.finish(req, verdict, Some(i), reason, trace);
            decision.rate = rule.rate.filter(|_| permits);
            return decision;
        }
        let mut reason = format!(
            "no rule allows {} for {} (default deny)",
            what(),
            req.principal
        );
        self.near_misses(&trace, &mut reason);
        self.finish(req, Verdict::Deny, None, reason, trace)
    }

    /// Appends to a default deny's reason why the allow rules about this name did not apply
    /// (at most three): what the caller must change, in the words of the rule.
    fn near_misses(&self, trace: &[Step], reason: &mut String) {
        let misses = trace.iter().filter_map(|step| {
            let rule = &self.rules[step.rule];
            if !rule.effect.permits() {
                return None;
            }
            match &step.outcome {
                StepOutcome::ConstraintFailed { which, why } => {
                    Some(format!("{} did not apply: {which}: {why}", rule.origin))
                }
                StepOutcome::ConditionFalse => Some(format!(
                    "the condition of {} is false: {}",
                    rule.origin,
                    rule.when.as_ref().map_or("", |c| c.source())
                )),
                _ => None,
            }
        });
        for miss in misses.take(3) {
            reason.push_str("; ");
            reason.push_str(&miss);
        }
    }

    fn finish(
        &self,
        req: &Request<'_>,
        verdict: Verdict,
        rule: Option<usize>,
        reason: String,
        trace: Vec<Step>,
    ) -> Decision {
        Decision {
            verdict,
            rule,
            reason,
            trace,
            rate: None,
            server: req.server.to_owned(),
            kind: req.kind,
            name: req.name.to_owned(),
            principal: req.principal.to_string(),
        }
    }

    /// Is this name listed for `principal` (`tools/list`, `prompts/list`, `resources/list`)?
    ///
    /// The same walk as [`Policy::decide`], with what only a call knows treated as unknown:
    /// a condition that uses `args`, `session` or `transport`, and argument constraints,
    /// count as "could be true" on allow and consent rules (the name is listed; the call
    /// decides) and as "might not apply" on deny rules (the walk goes on). Scopes do not
    /// hide a name: the client must see a tool to step up for it. A condition that fails to
    /// evaluate hides the name (fail closed).
    pub fn visible(
        &self,
        principal: &Principal,
        server: &str,
        kind: Kind,
        name: &str,
        annotations: Option<&Value>,
    ) -> bool {
        let mut req = Request::new(principal, server, kind, name);
        req.annotations = annotations;
        let bindings = Bindings::new(&req);
        for (i, needs_glob) in self.index.candidates(server, kind, name) {
            let rule = &self.rules[i];
            if (needs_glob && !rule.matches_name(kind, name)) || !rule.matches_principal(principal)
            {
                continue;
            }
            let mut unknown = !rule.constraints.is_empty();
            if let Some(condition) = &rule.when {
                if ["args", "session", "transport"]
                    .iter()
                    .any(|v| condition.uses(v))
                {
                    unknown = true;
                } else {
                    match condition.evaluate(&bindings) {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(_) => return false,
                    }
                }
            }
            if unknown && !rule.effect.permits() {
                continue;
            }
            return rule.effect.permits();
        }
        false
    }

    /// Does any rule's condition read `tool.annotations`? When none does, list filtering
    /// need not parse each tool's annotations.
    pub fn reads_annotations(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.when.as_ref().is_some_and(|c| c.uses_annotations()))
    }

    /// Is `target` listed for `principal`? [`Policy::visible`] without annotations.
    pub fn allows(&self, principal: &Principal, target: &Target<'_>) -> bool {
        self.visible(principal, target.server, target.kind, target.name, None)
    }

    /// Could any name of `kind` on `server` be allowed for `principal`? Used to drop a
    /// whole capability from `initialize` and to skip asking an upstream for a list nobody
    /// may see.
    ///
    /// The answer may over-approximate (list filtering then removes every entry) but never
    /// under-approximates: when it says no, no name of that kind can be allowed.
    pub fn may_expose(&self, principal: &Principal, server: &str, kind: Kind) -> bool {
        self.expose(Some(principal), server, kind)
    }

    /// Could any name of `kind` on `server` be allowed for someone? (`portcullis check`.)
    pub fn could_expose(&self, server: &str, kind: Kind) -> bool {
        self.expose(None, server, kind)
    }

    fn expose(&self, principal: Option<&Principal>, server: &str, kind: Kind) -> bool {
        for rule in self.rules.iter().filter(|r| r.matches_server(server)) {
            let coverage = rule.coverage(kind);
            let about_them = match principal {
                Some(p) => rule.matches_principal(p),
                None => true,
            };
            if coverage == Coverage::None || !about_them {
                continue;
            }
            if rule.effect.permits() {
                if coverage != Coverage::Names(&[]) {
                    return true;
                }
            } else if coverage == Coverage::Every
                && rule.when.is_none()
                && rule.constraints.is_empty()
                && (principal.is_some() || rule.principals.is_none())
            {
                return false;
            }
        }
        false
    }
}
