//! The shape of `portcullis check`'s effective policy.

use super::ok;

const CONFIG: &str = r#"[servers.files]
command = ["files-server", "/srv"]

[servers.tickets]
url = "https://tickets.example.com/mcp"
timeout = "10s"

[virtual.work]
servers = ["files", "tickets"]

[[rules]]
server = "files"
tools = ["write_*"]
effect = "deny"

[[rules]]
server = "files"
tools = ["read_*", "list_*"]
resources = ["file:///srv/*"]
effect = "allow"

[[rules]]
server = "tickets"
effect = "allow"

[[rules]]
tools = ["admin_*"]
effect = "deny"
"#;

/// The output's lines, with runs of spaces collapsed, so the test pins content and order,
/// not alignment.
fn rendered() -> Vec<String> {
    ok(CONFIG)
        .render_effective_policy()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn effective_policy_lists_rules_per_server_and_kind_then_default_deny() {
    let expected = [
        "Effective policy of test.toml",
        "Rules are tried in order; the first that matches decides; nothing matched: deny.",
        "server \"files\" at /mcp/files (stdio: files-server /srv; timeout 1m)",
        "tools:",
        "deny write_* rule 1 (test.toml:11)",
        "allow read_*, list_* rule 2 (test.toml:16)",
        "deny admin_* rule 4 (test.toml:26), any server",
        "deny anything else default deny",
        "prompts:",
        "deny every name default deny",
        "resources:",
        "allow file:///srv/* rule 2 (test.toml:16)",
        "deny anything else default deny",
        "server \"tickets\" at /mcp/tickets (http: https://tickets.example.com/mcp; timeout 10s)",
        "tools:",
        "allow every name rule 3 (test.toml:22)",
        "deny admin_* rule 4 (test.toml:26), any server; never reached: rule 3 (test.toml:22) decides first",
        "prompts:",
        "allow every name rule 3 (test.toml:22)",
        "resources:",
        "allow every name rule 3 (test.toml:22)",
        "virtual \"work\" at /mcp/work: joins files, tickets; on upstream failure: omit the failed server",
        "each member's own rules (above) decide; tools and prompts appear as <server>.<name>",
        "files tools as files.<tool>; prompts hidden; resources by URI",
        "tickets tools as tickets.<tool>; prompts as tickets.<prompt>; resources by URI",
    ];
    assert_eq!(rendered(), expected);
}

#[test]
fn effective_policy_of_an_empty_config_says_there_is_nothing() {
    let out = ok("").render_effective_policy();
    assert!(out.contains("No servers are configured."), "{out}");
}

#[test]
fn effective_policy_columns_are_aligned_within_a_kind() {
    let out = ok(CONFIG).render_effective_policy();
    let tools: Vec<&str> = out
        .lines()
        .skip_while(|l| l.trim() != "tools:")
        .skip(1)
        .take(4)
        .collect();
    let origin_columns: Vec<Option<usize>> = tools
        .iter()
        .map(|l| l.find("rule ").or_else(|| l.find("default deny")))
        .collect();
    assert!(
        origin_columns.windows(2).all(|w| w[0] == w[1]),
        "{tools:#?}"
    );
}

#[test]
fn effective_policy_shows_what_narrows_each_rule() {
    let text = r#"[limits]
rate = "100/minute"

[servers.files]
command = ["files-server"]

[[rules]]
server = "files"
tools = ["*"]
principals = ["group:admins"]
effect = "allow"

[[rules]]
server = "files"
tools = ["read_*"]
when = 'args.path.startsWith("/srv/")'
paths = ["args.path"]
roots = ["/srv"]
urls = ["args.url"]
hosts = ["*.example.com"]
max_arg_bytes = "64KiB"
scopes = ["files:read"]
rate = "10/minute"
burst = 2
effect = "consent"
"#;
    let out: Vec<String> = ok(text)
        .render_effective_policy()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let expected = [
        "Default rate limit per principal, server and tool: 100/minute (a rule's own rate replaces it).",
        "allow * rule 1 (test.toml:7) [principals: group:admins]",
        "consent read_* rule 2 (test.toml:13) [when: args.path.startsWith(\"/srv/\"); paths: args.path in /srv; urls: args.url on *.example.com; max_arg_bytes: 64KiB; scopes: files:read; rate: 10/minute, burst 2]",
        "deny anything else default deny",
    ];
    for line in expected {
        assert!(
            out.iter().any(|l| l == line),
            "missing {line:?} in {out:#?}"
        );
    }
}
