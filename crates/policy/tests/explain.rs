//! The explain rendering, pinned on small policies (content and order, not alignment).

mod common;

use common::{globs, rule};
use portcullis_policy::{
    Condition, Effect, Kind, LexicalResolver, PathConstraint, Policy, Principal, PrincipalPattern,
    RateSpec, Request, Root, Selector,
};
use serde_json::json;

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect()
}

fn policy() -> Policy {
    let r1 = rule(0, Some("tickets"), Effect::Allow);
    let mut r2 = rule(1, Some("files"), Effect::Deny);
    r2.tools = globs(&["write_*"]);
    let mut r3 = rule(2, Some("files"), Effect::Allow);
    r3.principals = Some(vec![
        PrincipalPattern::parse("group:admins").expect("pattern"),
    ]);
    let mut r4 = rule(3, Some("files"), Effect::Allow);
    r4.tools = globs(&["read_*"]);
    r4.when = Some(Condition::compile("args.path.startsWith('/srv')").expect("condition"));
    let mut r5 = rule(4, Some("files"), Effect::Allow);
    r5.tools = globs(&["read_*"]);
    r5.constraints.paths = Some(PathConstraint {
        selectors: vec![Selector::parse("args.path").expect("selector")],
        roots: vec![Root::lexical("/home").expect("root")].into(),
    });
    let mut r6 = rule(5, Some("files"), Effect::Allow);
    r6.tools = globs(&["read_file"]);
    r6.scopes = vec!["files:read".into()];
    r6.rate = Some(RateSpec::parse("10/minute").expect("rate"));
    Policy::new(vec![r1, r2, r3, r4, r5, r6])
}

#[test]
fn explain_names_the_deciding_rule_and_why_each_earlier_one_did_not_decide() {
    let p = policy();
    let alice = Principal::oauth("https://idp.example.com", "alice").with_scopes(["files:read"]);
    let args = json!({"path": "/etc/passwd"});
    let d = p.decide(
        &Request::new(&alice, "files", Kind::Tool, "read_file").with_args(&args),
        &LexicalResolver,
    );
    assert_eq!(
        lines(&p.explain(&d)),
        [
            "decision: allow",
            "by: rule 6 (policy.toml:23)",
            "reason: rule 6 (policy.toml:23) allows tool \"read_file\" on server \"files\"",
            "rate: 10/minute",
            "rules tried:",
            "rule 1 (policy.toml:3): skipped: about server \"tickets\"",
            "rule 2 (policy.toml:7): skipped: tool \"read_file\" is not in tools = [write_*]",
            "rule 3 (policy.toml:11): skipped: principal https://idp.example.com|alice is not in principals = [group:admins]",
            "rule 4 (policy.toml:15): skipped: condition is false: args.path.startsWith('/srv')",
            "rule 5 (policy.toml:19): skipped: paths: args.path: args.path is outside the allowed roots",
            "rule 6 (policy.toml:23): matched: allow",
        ]
    );
}

#[test]
fn explain_shows_a_step_up_and_the_default_deny() {
    let p = policy();
    let bob = Principal::oauth("https://idp.example.com", "bob");
    let args = json!({"path": "/home/bob/x"});
    let d = p.decide(
        &Request::new(&bob, "files", Kind::Tool, "read_file").with_args(&args),
        &LexicalResolver,
    );
    let text = lines(&p.explain(&d));
    assert_eq!(text[0], "decision: allow");
    assert_eq!(text[1], "by: rule 5 (policy.toml:19)");
    let elsewhere = json!({"path": "/etc/x"});
    let d = p.decide(
        &Request::new(&bob, "files", Kind::Tool, "read_file").with_args(&elsewhere),
        &LexicalResolver,
    );
    let text = lines(&p.explain(&d));
    assert_eq!(text[0], "decision: insufficient_scope");
    assert_eq!(
        text.last().map(String::as_str),
        Some(
            "rule 6 (policy.toml:23): matched, but the token lacks files:read: insufficient_scope"
        )
    );
    // Without arguments, rule 4's condition cannot be evaluated: deny, fail closed.
    let d = p.decide(
        &Request::new(&bob, "files", Kind::Tool, "read_file"),
        &LexicalResolver,
    );
    assert_eq!(
        lines(&p.explain(&d)).last().map(String::as_str),
        Some(
            "rule 4 (policy.toml:15): condition failed to evaluate: No such key: path: deny (fail closed)"
        )
    );
    let d = p.decide(
        &Request::new(&bob, "files", Kind::Prompt, "greeting"),
        &LexicalResolver,
    );
    assert_eq!(
        lines(&p.explain(&d)),
        [
            "decision: deny",
            "by: default deny",
            "reason: no rule allows prompt \"greeting\" on server \"files\" for https://idp.example.com|bob (default deny)",
            "rules tried:",
            "rule 1 (policy.toml:3): skipped: about server \"tickets\"",
            "rule 2 (policy.toml:7): skipped: does not cover prompts",
            "rule 3 (policy.toml:11): skipped: principal https://idp.example.com|bob is not in principals = [group:admins]",
            "rules 4-6 (policy.toml:15-23): skipped: about other kinds or names",
            "default deny: no rule matched",
        ]
    );
}

#[test]
fn explain_reports_a_condition_error_as_a_fail_closed_deny() {
    let mut r = rule(0, None, Effect::Allow);
    r.when = Some(Condition::compile("args.path.startsWith('/srv')").expect("condition"));
    let p = Policy::new(vec![r]);
    let me = Principal::local("me");
    let d = p.decide(
        &Request::new(&me, "files", Kind::Tool, "x"),
        &LexicalResolver,
    );
    assert_eq!(
        lines(&p.explain(&d)),
        [
            "decision: deny",
            "by: rule 1 (policy.toml:3)",
            "reason: the condition of rule 1 (policy.toml:3) failed to evaluate for tool \"x\" on server \"files\": No such key: path; denied (fail closed)",
            "rules tried:",
            "rule 1 (policy.toml:3): condition failed to evaluate: No such key: path: deny (fail closed)",
        ]
    );
}

#[test]
fn explain_folds_long_runs_of_rules_about_other_servers() {
    let mut rules: Vec<_> = (0..5)
        .map(|i| rule(i, Some("other"), Effect::Allow))
        .collect();
    rules.push(rule(5, Some("files"), Effect::Deny));
    let p = Policy::new(rules);
    let me = Principal::local("me");
    let d = p.decide(
        &Request::new(&me, "files", Kind::Tool, "x"),
        &LexicalResolver,
    );
    assert_eq!(
        lines(&p.explain(&d))[4..],
        [
            "rules 1-5 (policy.toml:3-19): skipped: about other servers",
            "rule 6 (policy.toml:23): matched: deny",
        ]
    );
}
