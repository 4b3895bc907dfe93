//! The decision log: one structured line per policy decision.
//!
//! This is the first cut of the audit trail: every allow and deny is a `tracing` event on
//! the `portcullis::decision` target with principal, session, transport, server, method,
//! name, effect and the rule that decided (or `default` for the default deny).

use portcullis_policy::{Decision, Policy, Principal};

pub struct DecisionRecord<'a> {
    pub principal: &'a Principal,
    pub session: &'a str,
    pub transport: &'a str,
    pub server: &'a str,
    pub method: &'a str,
    pub name: &'a str,
    pub decision: &'a Decision,
}

pub fn log(policy: &Policy, r: &DecisionRecord<'_>) {
    let effect = r.decision.verdict.as_str();
    let rule = describe_rule(policy, r.decision);
    tracing::info!(
        target: "portcullis::decision",
        principal = %r.principal,
        session = r.session,
        transport = r.transport,
        server = r.server,
        method = r.method,
        name = r.name,
        decision = effect,
        rule = %rule,
        "decision"
    );
}

/// `rule 3 (quickstart.toml:21)`, or `default deny`.
pub fn describe_rule(policy: &Policy, decision: &Decision) -> String {
    let Some(index) = decision.rule else {
        return "default deny".to_owned();
    };
    let Some(rule) = policy.rules().get(index) else {
        return format!("rule {}", index + 1);
    };
    match (&rule.origin.file, rule.origin.line) {
        (Some(file), Some(line)) => format!("rule {} ({file}:{line})", index + 1),
        _ => format!("rule {}", index + 1),
    }
}
