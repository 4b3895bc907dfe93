//! The parts of a rule beyond server and names: each error at its exact line and column,
//! and what valid parts become.

use portcullis_policy::{Effect, Kind, LexicalResolver, Principal, Request, Verdict};
use serde_json::json;

use super::{SERVER, error, errors, ok};

/// A rule on `files` with `body` (one key per line) and `effect`, after [`SERVER`]: the
/// `[[rules]]` line is line 3, `body` starts on line 4.
fn rule(body: &str, effect: &str) -> String {
    format!("{SERVER}[[rules]]\n{body}\neffect = \"{effect}\"\n")
}

#[test]
fn a_rule_with_every_part_loads() {
    let config = ok(&rule(
        "server = \"files\"\ntools = [\"fetch\"]\nprincipals = [\"sub:alice\", \"group:admins\"]\nwhen = 'args.path.startsWith(\"/srv/\")'\nscopes = [\"files:read\", \"files:read\"]\npaths = [\"args.path\"]\nroots = [\"/srv\"]\nurls = [\"args.url\"]\nhosts = [\"*.example.com\"]\nmax_arg_bytes = \"1KiB\"\nrate = \"10/minute\"\nburst = 3",
        "allow",
    ));
    let r = &config.policy.rules()[0];
    assert_eq!(r.principals.as_ref().map(Vec::len), Some(2));
    assert_eq!(r.scopes, ["files:read"]);
    assert_eq!(
        r.when.as_ref().map(|c| c.source()),
        Some("args.path.startsWith(\"/srv/\")")
    );
    assert_eq!(r.constraints.max_arg_bytes, Some(1024));
    assert_eq!(
        r.rate.map(|r| r.to_string()),
        Some("10/minute, burst 3".into())
    );
    let alice = Principal::oauth("https://idp", "alice").with_scopes(["files:read"]);
    let args = json!({"path": "/srv/a", "url": "https://api.example.com/x"});
    let d = config.policy.decide(
        &Request::new(&alice, "files", Kind::Tool, "fetch").with_args(&args),
        &LexicalResolver,
    );
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
    let bob = Principal::oauth("https://idp", "bob").with_groups(["admins"]);
    let d = config.policy.decide(
        &Request::new(&bob, "files", Kind::Tool, "fetch").with_args(&args),
        &LexicalResolver,
    );
    assert_eq!(
        d.verdict,
        Verdict::InsufficientScope {
            missing: vec!["files:read".into()]
        }
    );
    let consent = ok(&rule("server = \"files\"", "consent"));
    assert_eq!(consent.policy.rules()[0].effect, Effect::Consent);
}

#[test]
fn cel_syntax_errors_point_into_the_expression() {
    let e = error(&rule("when = 'args.path.startsWith('", "allow"));
    assert!(
        e.starts_with("4:30: condition of rule 1: Syntax error: mismatched input '<EOF>'"),
        "{e}"
    );
    // A multi-line literal string: line 2, column 3 of the expression.
    let e = error(&rule(
        "when = '''\n  args.x == 1 &&\n  usr == 2'''",
        "allow",
    ));
    assert_eq!(
        e,
        "6:3: condition of rule 1: unknown variable `usr` (known: principal, server, tool, prompt, resource, args, session, transport)"
    );
    // With escapes in the string, the error points at the value.
    let e = error(&rule("when = \"usr == \\\"x\\\"\"", "allow"));
    assert!(
        e.starts_with("4:8: condition of rule 1: unknown variable `usr`"),
        "{e}"
    );
}

#[test]
fn unknown_variables_are_named_with_the_known_ones() {
    assert_eq!(
        error(&rule(
            "tools = [\"x\"]\nwhen = 'args.a == 1 && user.name == \"x\"'",
            "allow"
        )),
        "5:24: condition of rule 1: unknown variable `user` (known: principal, server, tool, prompt, resource, args, session, transport)"
    );
}

#[test]
fn kind_variables_need_a_rule_about_that_kind_only() {
    assert_eq!(
        error(&rule("when = 'tool.name == \"x\"'", "allow")),
        "4:8: the condition of rule 1 uses `tool`, which is only defined when deciding on a tool, but the rule covers tools, prompts and resources: give it `tools = [...]` and no other kind"
    );
    assert_eq!(
        error(&rule(
            "tools = [\"*\"]\nprompts = [\"*\"]\nwhen = 'prompt.name == \"x\"'",
            "allow"
        )),
        "6:8: the condition of rule 1 uses `prompt`, which is only defined when deciding on a prompt, but the rule covers tools and prompts: give it `prompts = [...]` and no other kind"
    );
    assert!(
        super::parse(&rule(
            "tools = [\"*\"]\nwhen = 'tool.name == \"x\"'",
            "allow"
        ))
        .is_ok()
    );
    assert!(
        super::parse(&rule(
            "resources = [\"*\"]\nwhen = 'resource.uri.startsWith(\"x\")'",
            "deny"
        ))
        .is_ok()
    );
}

#[test]
fn principals_are_checked_one_by_one() {
    assert_eq!(
        errors(&rule(
            "principals = [\"sub:alice\", \"alice\", \"group:[\"]",
            "allow"
        )),
        [
            "4:28: unknown principal pattern \"alice\": write sub:<subject>, iss:<issuer>, client:<client id>, group:<group>, local:<user> or anonymous (rule 1)",
            "4:37: bad glob in principal pattern \"group:[\": unclosed `[` at character 1 (escape a literal bracket as `\\[`) (rule 1)",
        ]
    );
    assert_eq!(
        error(&rule("principals = []", "allow")),
        "4:14: `principals = []` in rule 1 matches no one: list at least one, or leave the key out"
    );
    assert_eq!(
        error(&rule("principals = [\"sub:\"]", "allow")),
        "4:15: principal pattern \"sub:\" names nothing after the `:` (use `*` for any) (rule 1)"
    );
}

#[test]
fn scopes_are_checked() {
    assert_eq!(
        error(&rule("scopes = [\"files:read\"]", "deny")),
        "4:10: `scopes` in rule 1 has no effect on a deny rule: scopes are what an allow or consent rule requires of the caller's token"
    );
    assert_eq!(
        error(&rule("scopes = [\"files read\"]", "allow")),
        "4:11: invalid scope \"files read\" in rule 1: a scope is printable ASCII without spaces, quotes or backslashes"
    );
    assert_eq!(
        error(&rule("scopes = []", "allow")),
        "4:10: `scopes = []` in rule 1 requires nothing: list at least one, or leave the key out"
    );
}

#[test]
fn paths_and_roots_come_together_and_are_checked() {
    assert_eq!(
        error(&rule("paths = [\"args.path\"]", "allow")),
        "4:9: `paths` in rule 1 has no `roots` and no `server`, so the paths must stay inside the roots of the server called, but \"files\" has none: set their `roots`, name the rule's `server`, or give the rule `roots`"
    );
    assert_eq!(
        error(&rule("roots = [\"/srv\"]", "allow")),
        "4:9: `roots` in rule 1 needs `paths`: the arguments that must stay inside them (e.g. paths = [\"args.path\"])"
    );
    assert_eq!(
        errors(&rule(
            "paths = [\"path\", \"args.items[x]\"]\nroots = [\"srv\", \"/srv/a\\\\b\"]",
            "allow"
        )),
        [
            "4:10: bad selector \"path\": a selector starts with `args` (or is `uri`) (write e.g. args.path, args.items[*].path or uri) (rule 1)",
            "4:18: bad selector \"args.items[x]\": inside [ ] write `*` or a list index (write e.g. args.path, args.items[*].path or uri) (rule 1)",
            "5:10: root \"srv\" in rule 1 is not an absolute path",
            "5:17: bad root \"/srv/a\\b\" in rule 1: it contains a backslash, a path separator on some systems",
        ]
    );
    assert_eq!(
        error(&rule(
            "tools = [\"read\"]\npaths = [\"uri\"]\nroots = [\"/srv\"]",
            "allow"
        )),
        "5:10: `uri` in rule 1 is the URI of a resource, but the rule covers tools: give it `resources = [...]` and no other kind"
    );
    assert_eq!(
        error(&rule("paths = []\nroots = [\"/srv\"]", "allow")),
        "4:9: `paths = []` in rule 1 checks nothing: list at least one, or leave the key out"
    );
    let c = ok(&rule(
        "resources = [\"file:///srv/*\"]\npaths = [\"uri\"]\nroots = [\"/srv/../srv/data/\"]",
        "allow",
    ));
    let roots = &c.policy.rules()[0]
        .constraints
        .paths
        .as_ref()
        .and_then(|p| p.roots.for_server("files").map(<[_]>::to_vec));
    assert_eq!(
        roots
            .as_deref()
            .map(|r| r[0].written().display().to_string()),
        Some("/srv/data".to_owned())
    );
}

#[test]
fn urls_and_hosts_come_together_and_are_checked() {
    assert_eq!(
        error(&rule("urls = [\"args.url\"]", "allow")),
        "4:8: `urls` in rule 1 needs `hosts`: the hosts the URLs may point at"
    );
    assert_eq!(
        error(&rule("hosts = [\"example.com\"]", "allow")),
        "4:9: `hosts` in rule 1 needs `urls`: the arguments that must point at them (e.g. urls = [\"args.url\"])"
    );
    assert_eq!(
        errors(&rule(
            "urls = [\"args.url\"]\nhosts = [\"a.*.com\", \"example.com:443\"]",
            "allow"
        )),
        [
            "5:10: bad host \"a.*.com\": `*` is only allowed as a leading `*.` (e.g. *.example.com) (rule 1)",
            "5:21: bad host \"example.com:443\": write just the host, without a port (ports are not constrained) (rule 1)",
        ]
    );
}

#[test]
fn max_arg_bytes_is_a_positive_size_on_permitting_rules() {
    assert_eq!(
        error(&rule("max_arg_bytes = 0", "allow")),
        "4:17: max_arg_bytes in rule 1 must be more than 0"
    );
    assert_eq!(
        error(&rule("max_arg_bytes = \"1TB\"", "allow")),
        "4:17: invalid size \"1TB\" for max_arg_bytes in rule 1: unknown size unit \"TB\" (use B, KiB, MiB, GiB, KB, MB, GB, or K, M, G for KiB, MiB, GiB)"
    );
    assert_eq!(
        error(&rule("max_arg_bytes = 100", "deny")),
        "4:17: `max_arg_bytes` in rule 1 has no effect on a deny rule: put the limit on the allow or consent rules"
    );
}

#[test]
fn rates_and_bursts_are_checked() {
    assert_eq!(
        error(&rule("rate = \"10/min\"", "allow")),
        "4:8: unknown rate unit \"min\" in \"10/min\": use second, minute or hour (rule 1)"
    );
    assert_eq!(
        error(&rule("rate = \"10\"", "allow")),
        "4:8: invalid rate \"10\": write <count>/<unit> with unit second, minute or hour, e.g. \"10/minute\" (rule 1)"
    );
    assert_eq!(
        error(&rule("burst = 5", "allow")),
        "4:9: `burst` in rule 1 needs `rate` (e.g. rate = \"10/minute\")"
    );
    assert_eq!(
        error(&rule("rate = \"1/second\"\nburst = 0", "allow")),
        "5:9: burst must be between 1 and 1000000, not 0 (rule 1)"
    );
    assert_eq!(
        error(&rule("rate = \"1/second\"", "deny")),
        "4:8: `rate` in rule 1 has no effect on a deny rule: a rate limits what an allow or consent rule lets through"
    );
}

#[test]
fn every_problem_of_a_rule_is_reported_at_once() {
    let text = rule(
        "principals = [\"bob\"]\nwhen = 'nope'\npaths = [\"args.p\"]\nrate = \"x\"",
        "allow",
    );
    assert_eq!(errors(&text).len(), 4, "{:#?}", errors(&text));
}
