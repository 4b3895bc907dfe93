//! `when` conditions: compiled once, evaluated per decision, fail closed.

mod common;

use common::{globs, rule};
use portcullis_policy::{
    Condition, Decision, Effect, Kind, LexicalResolver, Policy, Principal, Request, StepOutcome,
    Verdict,
};
use serde_json::{Value, json};

fn cond(src: &str) -> Condition {
    Condition::compile(src).unwrap_or_else(|e| panic!("{src}: {e}"))
}

/// A policy: rule 0 allows `tool` on `files` when `src` holds; rule 1 allows everything.
fn guarded(src: &str, effect: Effect) -> Policy {
    let mut r = rule(0, Some("files"), effect);
    r.tools = globs(&["*"]);
    r.when = Some(cond(src));
    let mut fallback = rule(1, None, Effect::Allow);
    fallback.tools = globs(&["*"]);
    Policy::new(vec![r, fallback])
}

fn decide(p: &Policy, who: &Principal, args: Option<&Value>) -> Decision {
    let mut req = Request::new(who, "files", Kind::Tool, "read_file").in_session("s-1", "http");
    req.args = args;
    p.decide(&req, &LexicalResolver)
}

fn alice() -> Principal {
    Principal::oauth("https://idp.example.com", "alice")
        .with_client("app")
        .with_scopes(["files:read"])
        .with_groups(["staff"])
        .with_claims(
            json!({"dept": "eng", "level": 3})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        )
}

#[test]
fn syntax_errors_name_line_and_column_in_the_expression() {
    let e = Condition::compile("args.path.startsWith(").unwrap_err();
    assert_eq!((e.line, e.column), (1, 22));
    assert!(e.message.starts_with("Syntax error"), "{}", e.message);
    let e = Condition::compile("true &&\n  )").unwrap_err();
    assert_eq!((e.line, e.column), (2, 3));
}

#[test]
fn unknown_variables_are_refused_with_the_known_ones() {
    let e = Condition::compile("args.x == 1 && user.name == 'a'").unwrap_err();
    assert_eq!(
        e.to_string(),
        "1:16: unknown variable `user` (known: principal, server, tool, prompt, resource, args, session, transport)"
    );
    // Macro variables are in scope in their macro only.
    assert!(Condition::compile("args.items.all(x, x.size() > 0)").is_ok());
    assert!(Condition::compile("args.items.all(x, true) && x == 1").is_err());
    // Type names and the optional namespace are not variables.
    assert!(Condition::compile("type(args.n) == int || optional.none().hasValue()").is_ok());
}

#[test]
fn nesting_length_and_emptiness_are_bounded() {
    assert!(Condition::compile("args.a.all(x, args.b.exists(y, x == y))").is_ok());
    let e = Condition::compile("args.a.all(x, args.b.all(y, args.c.all(z, x == z)))").unwrap_err();
    assert!(e.message.contains("nest more than 2 deep"), "{}", e.message);
    assert!(Condition::compile(&"true && ".repeat(600)).is_err());
    assert_eq!(
        Condition::compile("  ").unwrap_err().message,
        "the condition is empty"
    );
}

#[test]
fn conditions_report_what_they_use() {
    let c = cond("args.path.startsWith('/srv') && principal.sub == 'a'");
    assert!(c.uses("args") && c.uses("principal") && !c.uses("tool"));
    assert!(cond("tool.annotations.readOnlyHint == true").uses_annotations());
    assert!(!cond("tool.name == 'x'").uses_annotations());
    assert_eq!(
        c.source(),
        "args.path.startsWith('/srv') && principal.sub == 'a'"
    );
}

#[test]
fn conditions_decide_over_arguments_and_principal() {
    let p = guarded(
        "args.path.startsWith('/srv/') && principal.sub == 'alice'",
        Effect::Deny,
    );
    let d = decide(&p, &alice(), Some(&json!({"path": "/srv/x"})));
    assert_eq!((d.verdict.clone(), d.rule), (Verdict::Deny, Some(0)));
    let d = decide(&p, &alice(), Some(&json!({"path": "/home/x"})));
    assert_eq!((d.verdict.clone(), d.rule), (Verdict::Allow, Some(1)));
    assert_eq!(d.trace[0].outcome, StepOutcome::ConditionFalse);
}

#[test]
fn every_variable_is_bound() {
    let who = alice();
    for src in [
        "principal.sub == 'alice'",
        "principal.iss == 'https://idp.example.com'",
        "principal.client_id == 'app'",
        "'files:read' in principal.scopes",
        "'staff' in principal.groups",
        "principal.claims.dept == 'eng' && principal.claims.level >= 3",
        "server == 'files'",
        "tool.name == 'read_file'",
        "size(tool.annotations) == 0",
        "args.n < 10 && args.n > 4",
        "args.big > 0u",
        "args.ratio > 0.5",
        "args.tags.exists(t, t == 'x')",
        "args.path.matches('^/srv/[a-z]+$')",
        "args.path.lowerAscii() == '/srv/abc'",
        "session.id == 's-1'",
        "transport == 'http'",
        "has(args.path) && !has(args.missing)",
    ] {
        let p = guarded(src, Effect::Allow);
        let args = json!({"path": "/srv/abc", "n": 5, "big": 18446744073709551615u64, "ratio": 0.75, "tags": ["x"]});
        let d = decide(&p, &who, Some(&args));
        assert_eq!(d.rule, Some(0), "{src}: {}", d.reason);
    }
    // Without arguments, `args` is an empty map.
    assert_eq!(
        decide(&guarded("size(args) == 0", Effect::Allow), &who, None).rule,
        Some(0)
    );
    // Anonymous and local callers.
    let anon = guarded(
        "principal.iss == null && principal.client_id == null",
        Effect::Allow,
    );
    assert_eq!(decide(&anon, &Principal::anonymous(), None).rule, Some(0));
    let local = guarded(
        "principal.iss == 'local' && principal.sub == 'bob'",
        Effect::Allow,
    );
    assert_eq!(decide(&local, &Principal::local("bob"), None).rule, Some(0));
}

#[test]
fn an_evaluation_error_denies_even_before_a_later_allow() {
    for (src, why) in [
        ("args.missing == 'x'", "No such key: missing"),
        ("args.path + 1 == 2", "Unsupported binary operator"),
        (
            "args.path",
            "the condition evaluated to a string, not a bool",
        ),
        (
            "nosuchfunction(args.path)",
            "Undeclared reference to 'nosuchfunction'",
        ),
        (
            "prompt.name == 'x'",
            "`prompt` is not defined when deciding on a tool",
        ),
    ] {
        let p = guarded(src, Effect::Allow);
        let d = decide(&p, &alice(), Some(&json!({"path": "/srv/x"})));
        assert_eq!(
            (d.verdict.clone(), d.rule),
            (Verdict::Deny, Some(0)),
            "{src}"
        );
        assert!(d.reason.contains(why), "{src}: {}", d.reason);
        assert!(d.reason.ends_with("denied (fail closed)"), "{}", d.reason);
        assert!(
            matches!(&d.trace[0].outcome, StepOutcome::ConditionError { msg } if msg.contains(why))
        );
    }
}

#[test]
fn oversized_arguments_are_not_evaluated() {
    let p = guarded("size(args.items) > 0", Effect::Allow);
    let big: Vec<u32> = (0..20_000).collect();
    let d = decide(&p, &alice(), Some(&json!({"items": big})));
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(d.reason.contains("more than 10000 values"), "{}", d.reason);
}

#[test]
fn at_list_time_argument_conditions_show_allowed_tools_and_skip_denies() {
    let who = alice();
    let allow = guarded("args.path.startsWith('/srv')", Effect::Allow);
    assert!(allow.visible(&who, "files", Kind::Tool, "read_file", None));
    let mut deny = rule(0, Some("files"), Effect::Deny);
    deny.when = Some(cond("args.path.startsWith('/etc')"));
    let p = Policy::new(vec![deny, rule(1, None, Effect::Allow)]);
    assert!(p.visible(&who, "files", Kind::Tool, "read_file", None));
    // Conditions that do not depend on the call are evaluated at list time.
    let p = guarded("principal.sub == 'bob'", Effect::Deny);
    assert!(p.visible(&who, "files", Kind::Tool, "x", None));
    let p = guarded("principal.sub == 'alice'", Effect::Deny);
    assert!(!p.visible(&who, "files", Kind::Tool, "x", None));
    // An error hides.
    let p = guarded("principal.claims.nope == 1", Effect::Allow);
    assert!(!p.visible(&who, "files", Kind::Tool, "x", None));
}

#[test]
fn tool_annotations_are_available_and_untrusted() {
    let p = guarded(
        "has(tool.annotations.readOnlyHint) && tool.annotations.readOnlyHint",
        Effect::Allow,
    );
    let who = alice();
    let ro = json!({"readOnlyHint": true});
    let req = Request::new(&who, "files", Kind::Tool, "x").with_annotations(&ro);
    assert_eq!(p.decide(&req, &LexicalResolver).rule, Some(0));
    assert_eq!(
        p.decide(
            &Request::new(&who, "files", Kind::Tool, "x"),
            &LexicalResolver
        )
        .rule,
        Some(1)
    );
    assert!(p.visible(&who, "files", Kind::Tool, "x", Some(&ro)));
}
