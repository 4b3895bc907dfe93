//! Decisions and exposure: first match wins, default deny.

use std::sync::Arc;

use portcullis_policy::{
    Decision, Effect, Glob, Kind, LexicalResolver, Policy, Principal, Request, Rule, RuleOrigin,
    Target, Verdict,
};

fn globs(ps: &[&str]) -> Option<Vec<Glob>> {
    Some(ps.iter().map(|p| Glob::new(p).expect("valid")).collect())
}

fn rule(index: usize, server: Option<&str>, effect: Effect) -> Rule {
    let mut r = Rule::new(effect, RuleOrigin::index(index));
    r.server = server.map(str::to_owned);
    r
}

fn tool<'a>(server: &'a str, name: &'a str) -> Target<'a> {
    Target {
        server,
        kind: Kind::Tool,
        name,
    }
}

fn me() -> Principal {
    Principal::local("alice")
}

fn decide(p: &Policy, t: &Target<'_>) -> Decision {
    let me = me();
    p.decide(
        &Request::new(&me, t.server, t.kind, t.name),
        &LexicalResolver,
    )
}

#[test]
fn empty_policy_denies_everything_by_default() {
    let p = Policy::new(vec![]);
    let d = decide(&p, &tool("files", "read"));
    assert_eq!((d.verdict, d.rule), (Verdict::Deny, None));
    assert_eq!(
        d.reason,
        "no rule allows tool \"read\" on server \"files\" for local:alice (default deny)"
    );
    assert!(!p.allows(&me(), &tool("files", "read")));
    for kind in Kind::ALL {
        assert!(!p.may_expose(&me(), "files", kind));
    }
}

#[test]
fn first_matching_rule_decides() {
    let mut deny = rule(0, Some("files"), Effect::Deny);
    deny.tools = globs(&["write_*"]);
    let mut allow = rule(1, Some("files"), Effect::Allow);
    allow.tools = globs(&["*"]);
    let p = Policy::new(vec![deny, allow]);
    let d = decide(&p, &tool("files", "write_file"));
    assert_eq!((d.verdict, d.rule), (Verdict::Deny, Some(0)));
    let d = decide(&p, &tool("files", "read_file"));
    assert!(d.is_allowed());
    assert_eq!((d.verdict, d.rule), (Verdict::Allow, Some(1)));
}

#[test]
fn server_restriction_limits_a_rule_to_that_server() {
    let mut allow = rule(0, Some("files"), Effect::Allow);
    allow.tools = globs(&["*"]);
    let p = Policy::new(vec![allow]);
    assert!(p.allows(&me(), &tool("files", "x")));
    assert!(!p.allows(&me(), &tool("tickets", "x")));
}

#[test]
fn a_rule_listing_no_kind_matches_every_kind_and_name() {
    let p = Policy::new(vec![rule(0, Some("files"), Effect::Allow)]);
    for kind in Kind::ALL {
        let t = Target {
            server: "files",
            kind,
            name: "anything://at/all",
        };
        assert!(p.allows(&me(), &t));
        assert!(p.may_expose(&me(), "files", kind));
    }
}

#[test]
fn a_rule_listing_some_kinds_matches_only_those() {
    let mut r = rule(0, None, Effect::Allow);
    r.prompts = globs(&["greeting"]);
    let p = Policy::new(vec![r]);
    let prompt = Target {
        server: "demo",
        kind: Kind::Prompt,
        name: "greeting",
    };
    assert!(p.allows(&me(), &prompt));
    assert!(!p.allows(&me(), &tool("demo", "greeting")));
    let resource = Target {
        server: "demo",
        kind: Kind::Resource,
        name: "greeting",
    };
    assert!(!p.allows(&me(), &resource));
}

#[test]
fn name_must_match_one_of_the_kinds_globs() {
    let mut r = rule(0, None, Effect::Allow);
    r.tools = globs(&["echo", "add"]);
    let p = Policy::new(vec![r]);
    assert!(p.allows(&me(), &tool("demo", "echo")));
    assert!(p.allows(&me(), &tool("demo", "add")));
    assert!(!p.allows(&me(), &tool("demo", "fail")));
}

#[test]
fn may_expose_is_true_when_an_allow_could_match_some_name() {
    let mut r = rule(0, Some("files"), Effect::Allow);
    r.tools = globs(&["read_*"]);
    let p = Policy::new(vec![r]);
    assert!(p.may_expose(&me(), "files", Kind::Tool));
    assert!(!p.may_expose(&me(), "files", Kind::Prompt));
    assert!(!p.may_expose(&me(), "files", Kind::Resource));
    assert!(!p.may_expose(&me(), "other", Kind::Tool));
}

#[test]
fn may_expose_stops_at_a_deny_covering_the_whole_kind() {
    let mut deny_all_tools = rule(0, None, Effect::Deny);
    deny_all_tools.tools = globs(&["*"]);
    let mut allow = rule(1, Some("files"), Effect::Allow);
    allow.tools = globs(&["read_*"]);
    allow.prompts = globs(&["*"]);
    let p = Policy::new(vec![deny_all_tools, allow]);
    assert!(!p.may_expose(&me(), "files", Kind::Tool));
    assert!(p.may_expose(&me(), "files", Kind::Prompt));

    // A deny that lists nothing covers every kind.
    let p = Policy::new(vec![
        rule(0, Some("files"), Effect::Deny),
        rule(1, None, Effect::Allow),
    ]);
    for kind in Kind::ALL {
        assert!(!p.may_expose(&me(), "files", kind));
        assert!(p.may_expose(&me(), "tickets", kind));
    }
}

#[test]
fn may_expose_walks_past_a_partial_deny() {
    let mut deny = rule(0, Some("files"), Effect::Deny);
    deny.tools = globs(&["write_*"]);
    let mut allow = rule(1, Some("files"), Effect::Allow);
    allow.tools = globs(&["*"]);
    let p = Policy::new(vec![deny, allow]);
    assert!(p.may_expose(&me(), "files", Kind::Tool));
}

#[test]
fn may_expose_ignores_an_allow_with_an_empty_list() {
    let mut r = rule(0, None, Effect::Allow);
    r.tools = Some(vec![]);
    let p = Policy::new(vec![r]);
    assert!(!p.may_expose(&me(), "files", Kind::Tool));
    assert!(!p.allows(&me(), &tool("files", "x")));
}

#[test]
fn may_expose_agrees_with_decide_on_sample_names() {
    // Whenever some name is allowed, may_expose must say yes (never under-approximate).
    let mut a = rule(0, Some("files"), Effect::Deny);
    a.tools = globs(&["*_secret"]);
    let mut b = rule(1, None, Effect::Allow);
    b.tools = globs(&["read_*", "list_*"]);
    b.resources = globs(&["file:///*"]);
    let mut c = rule(2, Some("tickets"), Effect::Deny);
    c.resources = globs(&["**"]);
    let p = Policy::new(vec![a, b, c, rule(3, Some("tickets"), Effect::Allow)]);
    let names = [
        "read_x",
        "list_secret",
        "read_secret",
        "file:///a",
        "x",
        "greeting",
    ];
    for server in ["files", "tickets", "other"] {
        for kind in Kind::ALL {
            let any_allowed = names
                .iter()
                .any(|name| p.allows(&me(), &Target { server, kind, name }));
            if any_allowed {
                assert!(p.may_expose(&me(), server, kind), "{server} {kind}");
            }
        }
    }
    // Rule b (any server) allows `file:///*` before rule c's deny-all is reached.
    assert!(p.may_expose(&me(), "tickets", Kind::Resource));
    assert!(p.may_expose(&me(), "tickets", Kind::Prompt));
    assert!(!p.may_expose(&me(), "other", Kind::Prompt));
}

#[test]
fn kind_and_effect_display_and_serde_names() {
    assert_eq!(Kind::Tool.to_string(), "tool");
    assert_eq!(Kind::Prompt.to_string(), "prompt");
    assert_eq!(Kind::Resource.to_string(), "resource");
    assert_eq!(Kind::Resource.plural(), "resources");
    assert_eq!(Effect::Allow.to_string(), "allow");
    assert_eq!(Effect::Deny.to_string(), "deny");
    assert_eq!(Effect::Consent.to_string(), "consent");
}

#[test]
fn principal_display_forms() {
    assert_eq!(Principal::local("alice").to_string(), "local:alice");
    assert_eq!(Principal::anonymous().to_string(), "anonymous");
    assert!(Principal::anonymous().is_anonymous());
    assert!(!Principal::local("alice").is_anonymous());
    let p = Principal::oauth("https://idp.example.com", "alice").with_client("app");
    assert_eq!(p.to_string(), "https://idp.example.com|alice");
    assert!(p.is_oauth() && !p.is_local());
}

#[test]
fn rule_origin_display_is_one_based_with_file_and_line() {
    let o = RuleOrigin {
        index: 1,
        file: Some(Arc::from("quickstart.toml")),
        line: Some(14),
    };
    assert_eq!(o.to_string(), "rule 2 (quickstart.toml:14)");
    assert_eq!(RuleOrigin::index(0).to_string(), "rule 1");
}

#[test]
fn decision_reports_the_position_of_the_deciding_rule() {
    let mut a = rule(0, Some("other"), Effect::Allow);
    a.tools = globs(&["*"]);
    let b = rule(1, Some("files"), Effect::Deny);
    let p = Policy::new(vec![a, b]);
    let d = decide(&p, &tool("files", "x"));
    assert_eq!(d.rule, Some(1));
    assert_eq!(p.rules()[1].origin.index, 1);
}

#[test]
fn policies_and_decisions_can_be_shared_across_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Policy>();
    shared::<Decision>();
    shared::<Principal>();
}

#[test]
fn principals_from_the_explain_command_line() {
    let p = Principal::from_spec("sub:alice", Some("https://idp.example.com")).expect("ok");
    assert_eq!(p.to_string(), "https://idp.example.com|alice");
    assert_eq!(
        Principal::from_spec("sub:alice", None)
            .expect("ok")
            .issuer
            .as_deref(),
        Some("explain")
    );
    assert_eq!(
        Principal::from_spec("local:bob", None).expect("ok"),
        Principal::local("bob")
    );
    assert_eq!(
        Principal::from_spec("anonymous", None).expect("ok"),
        Principal::anonymous()
    );
    assert!(Principal::from_spec("sub:", None).is_err());
    assert!(Principal::from_spec("group:admins", None).is_err());
}
