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
    let w = warnings(&format!("[gateway]\nlisten = \"0.0.0.0:8440\"\n{ALLOWED}"));
    assert_eq!(
        w,
        [
            "gateway.listen = 0.0.0.0:8440 is beyond loopback: other machines can connect to the gateway"
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
