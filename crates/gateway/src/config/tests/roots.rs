//! `servers.<name>.roots`, and rule `paths` without `roots`: inside the roots of the server
//! the call goes to, or a config error when a server the rule covers has none.

use portcullis_policy::{Kind, LexicalResolver, Principal, Request};
use serde_json::json;

use super::{error, ok};

const SERVERS: &str = "[servers.files]\ncommand = [\"files-server\"]\nroots = [\"/srv/files\"]\n\n[servers.docs]\ncommand = [\"docs-server\"]\nroots = [\"/srv/docs\", \"/srv/shared\"]\n\n";

fn allowed(config: &super::Config, server: &str, path: &str) -> bool {
    let me = Principal::local("me");
    let args = json!({ "path": path });
    let req = Request::new(&me, server, Kind::Tool, "read").with_args(&args);
    config.policy.decide(&req, &LexicalResolver).is_allowed()
}

#[test]
fn a_rule_naming_its_server_holds_paths_inside_that_servers_roots() {
    let c = ok(&format!(
        "{SERVERS}[[rules]]\nserver = \"docs\"\npaths = [\"args.path\"]\neffect = \"allow\"\n"
    ));
    assert!(allowed(&c, "docs", "/srv/docs/a.md"));
    assert!(allowed(&c, "docs", "/srv/shared/b.md"));
    assert!(!allowed(&c, "docs", "/srv/files/a"));
    assert!(!allowed(&c, "docs", "/srv/docs/../files/a"));
    assert!(
        c.render_effective_policy()
            .contains("paths: args.path in /srv/docs, /srv/shared"),
        "{}",
        c.render_effective_policy()
    );
}

#[test]
fn a_rule_for_every_server_holds_paths_inside_the_roots_of_the_server_called() {
    let c = ok(&format!(
        "{SERVERS}[[rules]]\npaths = [\"args.path\"]\neffect = \"allow\"\n"
    ));
    assert!(allowed(&c, "files", "/srv/files/a"));
    assert!(
        !allowed(&c, "files", "/srv/docs/a"),
        "another server's root"
    );
    assert!(allowed(&c, "docs", "/srv/docs/a"));
    assert!(
        !allowed(&c, "docs", "/srv/files/a"),
        "another server's root"
    );
    assert!(
        c.render_effective_policy()
            .contains("paths: args.path in the roots of the server called")
    );
}

#[test]
fn paths_without_roots_on_a_server_without_roots_is_an_error() {
    let config = format!(
        "{SERVERS}[servers.scratch]\ncommand = [\"scratch\"]\n\n[[rules]]\nserver = \"scratch\"\npaths = [\"args.path\"]\neffect = \"allow\"\n"
    );
    assert_eq!(
        error(&config),
        "14:9: `paths` in rule 1 has no `roots`, so the paths must stay inside the roots of server \"scratch\", which has none: set servers.scratch.roots, or give the rule `roots`"
    );
    // A rule for every server covers that one too.
    let config = format!(
        "{SERVERS}[servers.scratch]\ncommand = [\"scratch\"]\n\n[[rules]]\npaths = [\"args.path\"]\neffect = \"deny\"\n"
    );
    assert_eq!(
        error(&config),
        "13:9: `paths` in rule 1 has no `roots` and no `server`, so the paths must stay inside the roots of the server called, but \"scratch\" has none: set their `roots`, name the rule's `server`, or give the rule `roots`"
    );
    // The rule's own roots need nothing of the server.
    let c = ok(&format!(
        "{SERVERS}[servers.scratch]\ncommand = [\"scratch\"]\n\n[[rules]]\nserver = \"scratch\"\npaths = [\"args.path\"]\nroots = [\"/tmp\"]\neffect = \"allow\"\n"
    ));
    assert!(allowed(&c, "scratch", "/tmp/x"));
}

#[test]
fn a_server_root_the_path_checker_cannot_use_is_refused() {
    assert_eq!(
        error("[servers.files]\ncommand = [\"files-server\"]\nroots = [\"/srv/a\\\\b\"]\n"),
        "3:10: servers.files.roots: \"/srv/a\\b\" cannot be a root: it contains a backslash, a path separator on some systems"
    );
    assert_eq!(
        error("[servers.files]\ncommand = [\"files-server\"]\nroots = [\"srv\"]\n"),
        "3:10: servers.files.roots: \"srv\" must be an absolute path"
    );
}
