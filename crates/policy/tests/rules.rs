//! Principals, scopes, effects, argument constraints and rates in decisions.

mod common;

use common::{FakeFs, globs, rule};
use portcullis_policy::{
    ArgConstraints, Decision, Effect, HostPattern, Kind, LexicalResolver, PathConstraint,
    PathRoots, Policy, Principal, PrincipalPattern, RateSpec, Request, Root, Rule, Selector,
    StepOutcome, UrlConstraint, Verdict,
};
use serde_json::{Value, json};

fn pats(ps: &[&str]) -> Option<Vec<PrincipalPattern>> {
    Some(
        ps.iter()
            .map(|p| PrincipalPattern::parse(p).expect("valid"))
            .collect(),
    )
}

fn call(p: &Policy, who: &Principal, name: &str, args: Value) -> Decision {
    let req = Request::new(who, "files", Kind::Tool, name).with_args(&args);
    p.decide(&req, &LexicalResolver)
}

fn oauth(sub: &str) -> Principal {
    Principal::oauth("https://idp.example.com", sub)
}

#[test]
fn principal_patterns_parse_and_match_their_kind_of_caller_only() {
    let alice = oauth("alice@example.com")
        .with_client("cli")
        .with_groups(["admins"]);
    let local_root = Principal::local("root");
    let remote_root = oauth("root");
    let m = |pat: &str, p: &Principal| PrincipalPattern::parse(pat).expect(pat).matches(p);
    assert!(m("sub:alice@example.com", &alice));
    assert!(m("sub:*@example.com", &alice));
    assert!(!m("sub:*@example.org", &alice));
    assert!(m("iss:https://idp.example.com", &alice));
    assert!(m("client:cli", &alice));
    assert!(m("group:adm*", &alice));
    assert!(!m("group:staff", &alice));
    assert!(m("local:root", &local_root));
    assert!(!m("local:root", &remote_root));
    assert!(!m("sub:root", &local_root));
    assert!(m("sub:root", &remote_root));
    assert!(!m("iss:local", &local_root));
    assert!(m("anonymous", &Principal::anonymous()));
    assert!(!m("anonymous", &local_root));
    assert!(!m("sub:anonymous", &Principal::anonymous()));
    for bad in ["alice", "user:alice", "sub:", "group:[", "Anonymous"] {
        assert!(PrincipalPattern::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(
        PrincipalPattern::parse("user:alice")
            .unwrap_err()
            .to_string(),
        "unknown principal pattern \"user:alice\": write sub:<subject>, iss:<issuer>, client:<client id>, group:<group>, local:<user> or anonymous"
    );
    assert_eq!(
        PrincipalPattern::parse("sub:*@example.com")
            .expect("ok")
            .to_string(),
        "sub:*@example.com"
    );
}

#[test]
fn principals_narrow_a_rule() {
    let mut admins = rule(0, Some("files"), Effect::Allow);
    admins.principals = pats(&["group:admins", "sub:carol"]);
    let p = Policy::new(vec![admins]);
    let admin = oauth("bob").with_groups(["admins"]);
    assert!(call(&p, &admin, "x", json!({})).is_allowed());
    assert!(call(&p, &oauth("carol"), "x", json!({})).is_allowed());
    let d = call(&p, &oauth("dave"), "x", json!({}));
    assert_eq!((d.verdict, d.rule), (Verdict::Deny, None));
    assert_eq!(d.trace[0].outcome, StepOutcome::PrincipalNotMatched);
    assert!(!p.visible(&oauth("dave"), "files", Kind::Tool, "x", None));
    assert!(!p.may_expose(&oauth("dave"), "files", Kind::Tool));
    assert!(p.may_expose(&admin, "files", Kind::Tool));
    assert!(p.could_expose("files", Kind::Tool));
}

#[test]
fn missing_scopes_answer_insufficient_scope_and_do_not_hide() {
    let mut r = rule(0, Some("files"), Effect::Allow);
    r.tools = globs(&["write_*"]);
    r.scopes = vec!["files:write".into(), "files:read".into()];
    let p = Policy::new(vec![r, rule(1, None, Effect::Allow)]);
    let reader = oauth("a").with_scopes(["files:read"]);
    let d = call(&p, &reader, "write_file", json!({}));
    assert_eq!(
        d.verdict,
        Verdict::InsufficientScope {
            missing: vec!["files:write".into()]
        }
    );
    assert_eq!(d.rule, Some(0));
    assert!(
        d.reason.ends_with("but the token lacks scope files:write"),
        "{}",
        d.reason
    );
    assert!(p.visible(&reader, "files", Kind::Tool, "write_file", None));
    let writer = oauth("a").with_scopes(["files:read", "files:write"]);
    assert!(call(&p, &writer, "write_file", json!({})).is_allowed());
    // A local user carries no scopes.
    let d = call(&p, &Principal::local("me"), "write_file", json!({}));
    assert!(matches!(d.verdict, Verdict::InsufficientScope { ref missing } if missing.len() == 2));
}

#[test]
fn consent_rules_decide_consent_and_list_the_tool() {
    let mut r = rule(0, Some("files"), Effect::Consent);
    r.tools = globs(&["write_file"]);
    let p = Policy::new(vec![r]);
    let me = Principal::local("me");
    let d = call(&p, &me, "write_file", json!({}));
    assert_eq!(d.verdict, Verdict::Consent);
    assert!(!d.is_allowed());
    assert!(
        d.reason
            .ends_with("requires a person's consent for tool \"write_file\" on server \"files\""),
        "{}",
        d.reason
    );
    assert!(p.visible(&me, "files", Kind::Tool, "write_file", None));
}

#[test]
fn the_deciding_rules_rate_is_attached() {
    let mut r = rule(0, None, Effect::Allow);
    r.rate = Some(RateSpec::parse("10/minute").expect("rate"));
    let p = Policy::new(vec![r]);
    let d = call(&p, &Principal::local("me"), "x", json!({}));
    assert_eq!(d.rate.map(|r| r.to_string()), Some("10/minute".into()));
}

fn path_rule(index: usize, effect: Effect, roots: &[&str]) -> Rule {
    let mut r = rule(index, Some("files"), effect);
    r.constraints = ArgConstraints {
        paths: Some(PathConstraint {
            selectors: vec![
                Selector::parse("args.path").expect("selector"),
                Selector::parse("args.items[*].path").expect("selector"),
            ],
            roots: roots
                .iter()
                .map(|r| Root::lexical(r).expect("root"))
                .collect::<Vec<_>>()
                .into(),
        }),
        ..ArgConstraints::default()
    };
    r
}

#[test]
fn an_allow_rule_needs_every_selected_path_inside() {
    let p = Policy::new(vec![path_rule(0, Effect::Allow, &["/srv"])]);
    let me = Principal::local("me");
    let ok = json!({"path": "/srv/a", "items": [{"path": "/srv/b"}, {"path": "file:///srv/c"}]});
    assert!(call(&p, &me, "read", ok).is_allowed());
    let d = call(
        &p,
        &me,
        "read",
        json!({"path": "/srv/a", "items": [{"path": "/etc/passwd"}]}),
    );
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(
        d.trace[0].outcome,
        StepOutcome::ConstraintFailed {
            which: "paths: args.items[*].path".into(),
            why: "args.items[0].path is outside the allowed roots".into()
        }
    );
    let d = call(&p, &me, "read", json!({"items": []}));
    assert!(
        matches!(&d.trace[0].outcome, StepOutcome::ConstraintFailed { why, .. } if why == "args.path is missing")
    );
    let d = call(&p, &me, "read", json!({"path": 3, "items": []}));
    assert!(
        matches!(&d.trace[0].outcome, StepOutcome::ConstraintFailed { why, .. } if why == "args.path is a number, not a string")
    );
    // An empty list selects nothing.
    assert!(call(&p, &me, "read", json!({"path": "/srv", "items": []})).is_allowed());
    // Symbolic links are resolved through the resolver.
    let fs = FakeFs::default().with_link("/srv/out", "/etc");
    let args = json!({"path": "/srv/out/passwd", "items": []});
    let req = Request::new(&me, "files", Kind::Tool, "read").with_args(&args);
    assert!(!p.decide(&req, &fs).is_allowed());
    // At list time the tool is shown: the call decides.
    assert!(p.visible(&me, "files", Kind::Tool, "read", None));
}

#[test]
fn a_deny_rule_applies_when_some_path_is_inside_or_cannot_be_judged() {
    let p = Policy::new(vec![
        path_rule(0, Effect::Deny, &["/srv/secret"]),
        rule(1, None, Effect::Allow),
    ]);
    let me = Principal::local("me");
    let d = call(
        &p,
        &me,
        "copy",
        json!({"path": "/tmp/a", "items": [{"path": "/srv/secret/k"}]}),
    );
    assert_eq!((d.verdict, d.rule), (Verdict::Deny, Some(0)));
    let d = call(&p, &me, "copy", json!({"path": "/tmp/a", "items": []}));
    assert_eq!((d.verdict, d.rule), (Verdict::Allow, Some(1)));
    assert_eq!(
        d.trace[0].outcome,
        StepOutcome::ConstraintFailed {
            which: "paths: args.path, args.items[*].path".into(),
            why: "no value of args.path, args.items[*].path is inside the roots".into()
        }
    );
    for unjudgeable in [
        json!({"path": "/srv/secret/../secret/k", "items": []}),
        json!({"path": "relative/k", "items": []}),
        json!({"path": "/srv/secret\u{2215}k", "items": []}),
        json!({"items": []}),
    ] {
        let d = call(&p, &me, "copy", unjudgeable.clone());
        assert_eq!(
            (d.verdict, d.rule),
            (Verdict::Deny, Some(0)),
            "{unjudgeable}"
        );
    }
    let d = call(&p, &me, "copy", json!({"path": "x", "items": []}));
    assert!(matches!(
        d.trace[0].outcome,
        StepOutcome::ConstraintUnverifiable { .. }
    ));
    assert!(
        d.reason.contains("cannot be checked (fail closed)"),
        "{}",
        d.reason
    );
    // A deny rule that depends on arguments does not hide the tool.
    assert!(p.visible(&me, "files", Kind::Tool, "copy", None));
}

#[test]
fn url_and_size_constraints() {
    let mut r = rule(0, Some("files"), Effect::Allow);
    r.constraints = ArgConstraints {
        urls: Some(UrlConstraint {
            selectors: vec![Selector::parse("args.url").expect("selector")],
            hosts: vec![HostPattern::parse("*.example.com").expect("host")],
        }),
        max_arg_bytes: Some(64),
        ..ArgConstraints::default()
    };
    let p = Policy::new(vec![r]);
    let me = Principal::local("me");
    assert!(call(&p, &me, "fetch", json!({"url": "https://a.example.com/"})).is_allowed());
    let d = call(
        &p,
        &me,
        "fetch",
        json!({"url": "https://a.example.com@evil.com/"}),
    );
    assert_eq!(
        d.trace[0].outcome,
        StepOutcome::ConstraintFailed {
            which: "urls: args.url".into(),
            why: "args.url names a host that is not allowed".into()
        }
    );
    let long = json!({"url": format!("https://a.example.com/{}", "x".repeat(64))});
    let d = call(&p, &me, "fetch", long);
    assert!(
        matches!(&d.trace[0].outcome, StepOutcome::ConstraintFailed { which, why }
        if which == "max_arg_bytes" && why.starts_with("the arguments are 96 bytes, more than 64"))
    );
}

#[test]
fn resource_uris_can_be_held_inside_roots() {
    let mut r = rule(0, Some("files"), Effect::Allow);
    r.resources = globs(&["file:///srv/*"]);
    r.constraints.paths = Some(PathConstraint {
        selectors: vec![Selector::parse("uri").expect("selector")],
        roots: vec![Root::lexical("/srv").expect("root")].into(),
    });
    let p = Policy::new(vec![r]);
    let me = Principal::local("me");
    let read = |uri: &str| {
        p.decide(
            &Request::new(&me, "files", Kind::Resource, uri),
            &LexicalResolver,
        )
        .is_allowed()
    };
    assert!(read("file:///srv/a.txt"));
    // The glob alone would match these.
    assert!(!read("file:///srv/../etc/passwd"));
    assert!(!read("file:///srv/%2e%2e/etc/passwd"));
    assert!(!read("file:///srv/a%2f..%2f..%2fetc/passwd"));
}

#[test]
fn optional_selectors_skip_missing_values_but_not_wrong_types() {
    let mut r = rule(0, Some("files"), Effect::Allow);
    r.constraints.paths = Some(PathConstraint {
        selectors: vec![
            Selector::parse("args.path?").expect("selector"),
            Selector::parse("args.paths[*]?").expect("selector"),
        ],
        roots: vec![Root::lexical("/srv").expect("root")].into(),
    });
    let p = Policy::new(vec![r]);
    let me = Principal::local("me");
    assert!(call(&p, &me, "read", json!({"path": "/srv/a"})).is_allowed());
    assert!(call(&p, &me, "read", json!({"paths": ["/srv/a", "/srv/b"]})).is_allowed());
    assert!(call(&p, &me, "read", json!({"path": null})).is_allowed());
    assert!(call(&p, &me, "read", json!({})).is_allowed());
    assert!(!call(&p, &me, "read", json!({"paths": ["/srv/a", "/etc/b"]})).is_allowed());
    assert!(!call(&p, &me, "read", json!({"path": 7})).is_allowed());
    assert!(!call(&p, &me, "read", json!({"paths": "/srv/a"})).is_allowed());
    assert!(Selector::parse("args.path?").expect("ok").is_optional());
    assert!(Selector::parse("args.path??").is_err());
}

#[test]
fn selectors_parse_strictly() {
    for ok in [
        "args.path",
        "args.a-b.c_d",
        "args.items[*].path",
        "args.argv[0]",
        "args.x[*][*]",
        "uri",
    ] {
        assert_eq!(Selector::parse(ok).expect(ok).as_str(), ok);
    }
    for bad in [
        "path",
        "args",
        "args.",
        "args..a",
        "args[x]",
        "args.a[",
        "args.a b",
        "$.path",
        "args.a[-1]",
    ] {
        assert!(Selector::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(
        Selector::parse("path").unwrap_err().to_string(),
        "bad selector \"path\": a selector starts with `args` (or is `uri`) (write e.g. args.path, args.items[*].path or uri)"
    );
}

#[test]
fn rate_specs_parse_and_show() {
    let r = RateSpec::parse("10/minute").expect("rate");
    assert_eq!((r.count, r.burst), (10, 10));
    assert_eq!(r.emission_interval(), std::time::Duration::from_secs(6));
    assert_eq!(r.to_string(), "10/minute");
    let r = r.with_burst(25).expect("burst");
    assert_eq!(r.to_string(), "10/minute, burst 25");
    assert_eq!(r.burst_tolerance(), std::time::Duration::from_secs(144));
    assert_eq!(
        RateSpec::parse("1/second")
            .expect("rate")
            .emission_interval()
            .as_millis(),
        1000
    );
    assert_eq!(
        RateSpec::parse("3600/hour")
            .expect("rate")
            .emission_interval()
            .as_millis(),
        1000
    );
    for bad in [
        "10",
        "10/min",
        "10/minutes",
        "/minute",
        "0/minute",
        "-1/minute",
        "1.5/second",
        "2000000/second",
        "ten/minute",
    ] {
        assert!(RateSpec::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(
        RateSpec::parse("10/min").unwrap_err().to_string(),
        "unknown rate unit \"min\" in \"10/min\": use second, minute or hour"
    );
    assert!(
        RateSpec::parse("1/hour")
            .expect("rate")
            .with_burst(0)
            .is_err()
    );
}

/// A rule without `roots` holds paths inside the roots of the server the call goes to; a
/// server with none has nothing inside (the allow never applies, a deny always does).
#[test]
fn paths_without_rule_roots_stay_inside_the_roots_of_the_called_server() {
    let by_server = std::collections::BTreeMap::from([
        (
            "files".to_owned(),
            vec![Root::lexical("/srv/files").expect("root")],
        ),
        (
            "docs".to_owned(),
            vec![Root::lexical("/srv/docs").expect("root")],
        ),
    ]);
    let of_server = PathRoots::OfServer(std::sync::Arc::new(by_server));
    let constrained = |effect| {
        let mut r = rule(0, None, effect);
        r.constraints.paths = Some(PathConstraint {
            selectors: vec![Selector::parse("args.path").expect("selector")],
            roots: of_server.clone(),
        });
        r
    };
    let me = Principal::local("me");
    let decide = |p: &Policy, server: &str, path: &str| {
        let args = json!({ "path": path });
        let req = Request::new(&me, server, Kind::Tool, "read").with_args(&args);
        p.decide(&req, &LexicalResolver)
    };
    let p = Policy::new(vec![constrained(Effect::Allow)]);
    let on = |server: &str, path: &str| decide(&p, server, path);
    assert!(on("files", "/srv/files/a").is_allowed());
    assert!(on("docs", "/srv/docs/a").is_allowed());
    // Each server's own roots: another server's directory is outside.
    assert!(!on("files", "/srv/docs/a").is_allowed());
    assert!(!on("docs", "/srv/docs/../files/a").is_allowed());
    // A server without roots: nothing can be judged inside, so the allow does not apply.
    let d = on("scratch", "/srv/files/a");
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(
        d.trace[0].outcome,
        StepOutcome::ConstraintFailed {
            which: "paths: args.path".into(),
            why: "args.path cannot be checked: the server has no roots".into()
        }
    );

    let p = Policy::new(vec![
        constrained(Effect::Deny),
        rule(1, None, Effect::Allow),
    ]);
    let on = |server: &str, path: &str| decide(&p, server, path);
    assert_eq!(on("files", "/srv/files/a").rule, Some(0));
    assert_eq!(on("files", "/tmp/a").rule, Some(1));
    // Fail closed: a deny about a server's roots applies when the server has none.
    let d = on("scratch", "/tmp/a");
    assert_eq!((d.verdict, d.rule), (Verdict::Deny, Some(0)));
}
