//! Warnings appear exactly when a default is loosened or a rule cannot do anything.

use super::{SERVER, ok};

fn warnings(text: &str) -> Vec<String> {
    ok(text).warnings()
}

/// A server with an allow rule, so the "nothing allowed" warning stays out of the way.
const ALLOWED: &str = "[servers.files]\ncommand = [\"x\"]\n[[rules]]\nserver = \"files\"\ntools = [\"read_*\"]\neffect = \"allow\"\n";

#[test]
fn secure_defaults_produce_no_warning() {
    assert!(warnings(ALLOWED).is_empty());
    assert!(warnings("").is_empty());
}

#[test]
fn listening_beyond_loopback_warns() {
    let w = warnings(&format!(
        "[gateway]\nlisten = \"0.0.0.0:8440\"\ninsecure_no_auth = true\n{ALLOWED}"
    ));
    assert_eq!(
        w,
        [
            "gateway.listen = 0.0.0.0:8440 is beyond loopback: other machines can connect to the gateway",
            "gateway.listen = 0.0.0.0:8440 serves plain HTTP beyond loopback: tokens and messages cross the network unencrypted; set gateway.tls, or gateway.behind_proxy when a TLS proxy sits in front",
            "gateway.insecure_no_auth = true: requests are not authenticated, so anyone who can reach the gateway acts as the same anonymous caller",
        ]
    );
    let with_auth = warnings(&format!(
        "[gateway]\nlisten = \"0.0.0.0:8440\"\n[auth]\nissuer = \"https://idp.example.com\"\n{ALLOWED}"
    ));
    assert_eq!(
        with_auth,
        [
            "gateway.listen = 0.0.0.0:8440 is beyond loopback: other machines can connect to the gateway",
            "gateway.listen = 0.0.0.0:8440 serves plain HTTP beyond loopback: tokens and messages cross the network unencrypted; set gateway.tls, or gateway.behind_proxy when a TLS proxy sits in front",
        ]
    );
    assert!(warnings(&format!("[gateway]\nlisten = \"[::1]:1\"\n{ALLOWED}")).is_empty());
}

#[test]
fn extra_origins_and_hosts_warn() {
    let w = warnings(&format!(
        "[gateway]\nallowed_origins = [\"https://app.example.com\"]\nallowed_hosts = [\"mcp.example.com\"]\n{ALLOWED}"
    ));
    assert_eq!(
        w,
        [
            "gateway.allowed_origins lets browser pages from https://app.example.com call the gateway, besides loopback origins",
            "gateway.allowed_hosts accepts Host mcp.example.com besides loopback names",
        ]
    );
}

#[test]
fn plain_http_beyond_loopback_warns() {
    let w = warnings(&format!(
        "[gateway]\npublic_url = \"http://mcp.example.com\"\n{ALLOWED}[servers.t]\nurl = \"http://tickets.internal/mcp\"\n[servers.l]\nurl = \"http://localhost:3000/mcp\"\n[[rules]]\neffect = \"allow\"\nserver = \"t\"\n[[rules]]\neffect = \"allow\"\nserver = \"l\"\n"
    ));
    assert_eq!(
        w,
        [
            "gateway.public_url http://mcp.example.com is plain http: clients reach the gateway unencrypted",
            "server \"t\" is reached over plain http at http://tickets.internal/mcp: requests and responses travel unencrypted",
        ]
    );
}

#[test]
fn shared_instances_warn() {
    let w = warnings(
        "[servers.files]\ncommand = [\"x\"]\ninstances = \"shared\"\n[[rules]]\nserver = \"files\"\ntools = [\"x\"]\neffect = \"allow\"\n",
    );
    assert_eq!(
        w,
        [
            "server \"files\" uses instances = \"shared\": one process serves every session, so sessions may see each other's state"
        ]
    );
}

#[test]
fn definition_pinning_turned_off_warns() {
    let w = warnings(&ALLOWED.replace(
        "command = [\"x\"]\n",
        "command = [\"x\"]\ndefinitions = \"off\"\n",
    ));
    assert_eq!(
        w,
        [
            "server \"files\" has definitions = \"off\": a tool whose description or schema changes after it was trusted (a rug pull), or that reappears under another name, is listed and callable at once"
        ]
    );
    assert!(
        warnings(&ALLOWED.replace(
            "command = [\"x\"]\n",
            "command = [\"x\"]\ndefinitions = \"strict\"\n"
        ))
        .is_empty()
    );
}

#[test]
fn a_rule_shadowed_by_an_earlier_match_all_warns() {
    let text = format!(
        "{SERVER}[[rules]]\nserver = \"files\"\ntools = [\"*\"]\neffect = \"deny\"\n\n[[rules]]\nserver = \"files\"\ntools = [\"read_*\"]\neffect = \"allow\"\n\n[[rules]]\nprompts = [\"*\"]\neffect = \"allow\"\n"
    );
    assert_eq!(
        warnings(&text),
        [
            "rule 2 (test.toml:8) can never match: rule 1 (test.toml:3) already decides everything it covers"
        ]
    );
}

#[test]
fn a_rule_repeating_earlier_globs_warns_and_names_every_decider() {
    let text = format!(
        "{SERVER}[[rules]]\ntools = [\"a\"]\neffect = \"allow\"\n[[rules]]\nserver = \"files\"\ntools = [\"b\"]\neffect = \"deny\"\n[[rules]]\nserver = \"files\"\ntools = [\"b\", \"a\"]\neffect = \"deny\"\n"
    );
    assert_eq!(
        warnings(&text),
        [
            "rule 3 (test.toml:10) can never match: rule 1 (test.toml:3), rule 2 (test.toml:6) already decide everything it covers"
        ]
    );
}

#[test]
fn a_rule_only_partly_covered_does_not_warn() {
    let text = format!(
        "{SERVER}[[rules]]\nserver = \"files\"\ntools = [\"*\"]\neffect = \"allow\"\n[[rules]]\nserver = \"files\"\ntools = [\"x\"]\nprompts = [\"y\"]\neffect = \"deny\"\n"
    );
    assert!(warnings(&text).is_empty(), "{:#?}", warnings(&text));
    // A rule for one server does not shadow a rule for every server.
    let text = format!(
        "{SERVER}[[rules]]\nserver = \"files\"\neffect = \"allow\"\n[[rules]]\ntools = [\"x\"]\neffect = \"deny\"\n"
    );
    assert!(warnings(&text).is_empty(), "{:#?}", warnings(&text));
}

#[test]
fn a_server_nothing_is_allowed_on_warns() {
    let text = format!("{ALLOWED}[servers.tickets]\nurl = \"https://t.example.com/mcp\"\n");
    assert_eq!(
        warnings(&text),
        ["server \"tickets\": no rule allows anything on it, so default deny hides it entirely"]
    );
}

#[test]
fn an_allow_everything_rule_warns() {
    let text = format!("{SERVER}[[rules]]\neffect = \"allow\"\n");
    assert_eq!(
        warnings(&text),
        ["rule 1 (test.toml:3) allows every tool, prompt and resource on every server"]
    );
}

#[test]
fn rules_that_cannot_do_what_they_look_like_warn() {
    let text = format!(
        "{ALLOWED}[[rules]]\nserver = \"files\"\ntools = [\"write_*\"]\nwhen = 'args.path.startsWith(\"/etc\")'\neffect = \"deny\"\n[[rules]]\nserver = \"files\"\ntools = [\"edit\"]\neffect = \"consent\"\n[[rules]]\nserver = \"files\"\ntools = [\"*\"]\nwhen = 'has(tool.annotations.readOnlyHint) && tool.annotations.readOnlyHint'\neffect = \"allow\"\n[[rules]]\nserver = \"files\"\nresources = [\"file:///srv/*\"]\neffect = \"allow\"\n"
    );
    assert_eq!(
        warnings(&text),
        [
            "rule 2 (test.toml:7) denies by the call's arguments, which are unknown until the call: it cannot hide what it denies from tools/list",
            "rule 4 (test.toml:16) trusts tool.annotations, which the upstream server supplies: a server can claim readOnlyHint for a tool that writes",
            "rule 5 (test.toml:21) allows file: resources by glob alone: a URI with .. or %2e%2e can match the glob and name a file elsewhere; add paths = [\"uri\"] and roots",
            "rule 3 (test.toml:12) can never be approved on \"files\": no consent channel there can reach a person ([approvals] is not configured; a client's own answer only refuses without consent.trust_elicitation = true; tty needs portcullis stdio)",
        ]
    );
    let guarded = format!(
        "{ALLOWED}[[rules]]\nserver = \"files\"\nresources = [\"file:///srv/*\"]\npaths = [\"uri\"]\nroots = [\"/srv\"]\neffect = \"allow\"\n"
    );
    assert!(warnings(&guarded).is_empty(), "{:#?}", warnings(&guarded));
}

#[test]
fn conditional_rules_do_not_shadow_and_principals_do_not_hide_a_server() {
    let text = format!(
        "{SERVER}[[rules]]\nserver = \"files\"\nprincipals = [\"group:admins\"]\neffect = \"allow\"\n[[rules]]\nserver = \"files\"\ntools = [\"read_*\"]\nwhen = 'principal.sub != \"x\"'\neffect = \"allow\"\n[[rules]]\nserver = \"files\"\ntools = [\"read_*\"]\neffect = \"deny\"\n"
    );
    assert!(warnings(&text).is_empty(), "{:#?}", warnings(&text));
}

#[test]
fn audit_settings_that_loosen_defaults_warn() {
    let w = warnings(&format!(
        "[audit]\ninclude_args = true\nmirror = \"stdout\"\n{ALLOWED}"
    ));
    assert_eq!(
        w,
        [
            "audit.include_args = true keeps every call's arguments, which may hold secrets, in the audit log",
            "audit.mirror = \"stdout\" would mix audit lines into the MCP stream of `portcullis stdio`: use it with `portcullis serve` only",
        ]
    );
}
