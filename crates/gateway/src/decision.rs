//! The decision log: one structured line per policy decision.
//!
//! Every decision is a `tracing` event on the `portcullis::decision` target with principal,
//! session, transport, server, method, name, verdict and the rule that decided (or
//! `default deny`). This is the operator's live view; the record that counts is the audit
//! trail ([`crate::audit`]).

use portcullis_policy::{Decision, Policy};

/// Logs one decision: the decision names the principal, server and name it is about.
pub fn log(policy: &Policy, session: &str, transport: &str, method: &str, decision: &Decision) {
    let rule = describe_rule(policy, decision);
    tracing::info!(
        target: "portcullis::decision",
        principal = %decision.principal,
        session,
        transport,
        server = decision.server.as_str(),
        method,
        name = decision.name.as_str(),
        decision = decision.verdict.as_str(),
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
