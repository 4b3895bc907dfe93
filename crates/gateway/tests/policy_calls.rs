//! Rules over arguments and principals, through real calls: the official Python SDK client
//! talks to the gateway (over Streamable HTTP and over stdio) and the gateway to a Python SDK
//! server with real file tools (`peers/files_upstream.py`). A refused call must not reach the
//! server: its journal of calls is the proof, and so are files that were not written.

mod support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::{Gateway, PeerSummary, PeerTarget};

const POLICY_DENIED: i64 = -32011;

/// A directory tree for the file tools: `root/` with a public file, a notes directory and a
/// symbolic link pointing out of it; `outside/` with a secret.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("notes")).expect("build the test tree");
        std::fs::create_dir_all(root.join("sub")).expect("build the test tree");
        std::fs::create_dir_all(&outside).expect("build the test tree");
        std::fs::write(root.join("public.txt"), "public text").expect("build the test tree");
        std::fs::write(outside.join("secret.txt"), "TOP-SECRET-CONTENT")
            .expect("build the test tree");
        std::os::unix::fs::symlink(&outside, root.join("link-out")).expect("build the test tree");
        Tree { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn path(&self, rel: &str) -> String {
        format!("{}/{rel}", self.dir.path().display())
    }

    fn journal(&self) -> PathBuf {
        self.dir.path().join("journal.jsonl")
    }

    /// What reached the server: one entry per call.
    fn journaled(&self) -> Vec<Value> {
        std::fs::read_to_string(self.journal())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("journal line"))
            .collect()
    }

    /// Whether any call that reached the server carried `needle` in its arguments.
    fn reached(&self, needle: &str) -> bool {
        self.journaled()
            .iter()
            .any(|e| e["args"].to_string().contains(needle))
    }
}

fn config(tree: &Tree, principal: &str) -> String {
    let root = tree.root();
    format!(
        r#"
[servers.files]
command = ["{python}", "{script}", "--journal", "{journal}"]
pinning = "off"
sandbox = {{ write = ["{base}"] }}

[[rules]]
server = "files"
tools = ["read_file"]
effect = "allow"
paths = ["args.path"]
roots = ["{root}"]

[[rules]]
server = "files"
tools = ["write_note"]
effect = "allow"
principals = ["{principal}"]
paths = ["args.path"]
roots = ["{root}/notes"]

[[rules]]
server = "files"
tools = ["open_url"]
effect = "allow"
urls = ["args.url"]
hosts = ["docs.example.com", "*.internal.example"]

[[rules]]
server = "files"
tools = ["search"]
effect = "deny"
when = 'args.query.contains("password")'

[[rules]]
server = "files"
tools = ["search"]
effect = "allow"
when = '!has(args.limit) || args.limit <= 50'
max_arg_bytes = 200

[[rules]]
server = "files"
resources = ["file:///*"]
effect = "allow"
paths = ["uri"]
roots = ["{root}"]
"#,
        python = support::python().display(),
        script = support::peer_script("files_upstream.py").display(),
        journal = tree.journal().display(),
        base = tree.dir.path().display(),
        root = root.display(),
    )
}

fn run(target: &PeerTarget, mode: &str, calls: &Value) -> PeerSummary {
    PeerSummary(support::run_python_client(
        "calls",
        mode,
        target,
        &["--calls", &calls.to_string()],
    ))
}

fn tool(step: &str, name: &str, args: Value) -> Value {
    json!({ "step": step, "tool": name, "args": args })
}

#[track_caller]
fn assert_denied(s: &PeerSummary, step: &str, why: &str) {
    let err = s.error(step);
    assert_eq!(
        err["code"],
        POLICY_DENIED,
        "{}",
        s.explain(step, "not a policy refusal")
    );
    let message = err["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(why),
        "{}",
        s.explain(step, &format!("the refusal does not say {why:?}"))
    );
}

/// Every traversal attempt on `read_file`, over HTTP: only the two calls inside the root
/// reach the server, and the secret is never read.
#[test]
fn path_traversal_through_a_tool_argument_never_reaches_the_server() {
    let tree = Tree::new();
    let gw = Gateway::start(&config(&tree, "anonymous"));
    let target = PeerTarget::Url(gw.url("files"));
    let inside = tree.path("root/public.txt");
    let attempts = [
        ("dotdot", tree.path("root/../outside/secret.txt")),
        (
            "dotdot inside",
            tree.path("root/sub/../../outside/secret.txt"),
        ),
        ("absolute", "/etc/passwd".to_owned()),
        ("symlink out", tree.path("root/link-out/secret.txt")),
        (
            "symlink then dotdot",
            tree.path("root/link-out/../outside/secret.txt"),
        ),
        // U+2215 DIVISION SLASH and U+FF0E FULLWIDTH FULL STOP: look like `/` and `.`.
        (
            "lookalike slash",
            tree.path("root/..\u{2215}outside\u{2215}secret.txt"),
        ),
        (
            "lookalike dots",
            tree.path("root/\u{ff0e}\u{ff0e}/outside/secret.txt"),
        ),
        ("relative", "../outside/secret.txt".to_owned()),
        ("nul byte", format!("{}\u{0}", tree.path("root/public.txt"))),
    ];
    let mut calls = vec![tool("inside", "read_file", json!({ "path": inside }))];
    for (step, path) in &attempts {
        calls.push(tool(step, "read_file", json!({ "path": path })));
    }
    calls.push(tool("not a string", "read_file", json!({ "path": 42 })));
    let s = run(&target, "legacy", &Value::Array(calls));

    assert_eq!(s.text("inside"), "public text");
    for (step, _) in &attempts {
        assert_denied(&s, step, "refused by policy");
        let text = s.error(step).to_string();
        assert!(!text.contains("TOP-SECRET"), "{text}");
    }
    // A value of the wrong type is the schema's to refuse: a tool error the model can fix.
    let wrong = s.ok("not a string");
    assert_eq!(wrong["isError"], true, "{wrong}");
    let journal = tree.journaled();
    assert_eq!(
        journal.len(),
        1,
        "only the call inside the root may arrive: {journal:?}"
    );
    assert_eq!(journal[0]["args"]["path"], inside);
}

/// A refusal says which rule did not apply and why, so the model can correct the call.
#[test]
fn a_refused_path_says_why() {
    let tree = Tree::new();
    let gw = Gateway::start(&config(&tree, "anonymous"));
    let target = PeerTarget::Url(gw.url("files"));
    let calls = json!([tool(
        "symlink out",
        "read_file",
        json!({ "path": tree.path("root/link-out/secret.txt") })
    )]);
    let s = run(&target, "2026-07-28", &calls);
    let message = s.error("symlink out")["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("args.path"), "{message}");
    assert!(message.contains("outside"), "{message}");
}

/// Resource URIs get the same checks: percent-encoded dot segments, links and paths out of
/// the root are refused; the URI inside is read.
#[test]
fn path_traversal_through_a_resource_uri_is_refused() {
    let tree = Tree::new();
    let gw = Gateway::start(&config(&tree, "anonymous"));
    let target = PeerTarget::Url(gw.url("files"));
    let uri = |p: &str| format!("file://{p}");
    let calls = json!([
        { "step": "inside", "resource": uri(&tree.path("root/public.txt")) },
        { "step": "encoded dotdot", "resource": uri(&tree.path("root/%2e%2e/outside/secret.txt")) },
        { "step": "encoded slash", "resource": uri(&tree.path("root/..%2foutside/secret.txt")) },
        { "step": "double encoded", "resource": uri(&tree.path("root/%252e%252e/outside/secret.txt")) },
        { "step": "symlink out", "resource": uri(&tree.path("root/link-out/secret.txt")) },
        { "step": "outside", "resource": "file:///etc/passwd" },
    ]);
    let s = run(&target, "legacy", &calls);
    let read = s.ok("inside");
    assert_eq!(read["contents"][0]["text"], "public text", "{read}");
    for step in [
        "encoded dotdot",
        "encoded slash",
        "double encoded",
        "symlink out",
        "outside",
    ] {
        let err = s.error(step).to_string();
        assert!(!err.contains("TOP-SECRET"), "{err}");
    }
    let journal = tree.journaled();
    assert_eq!(
        journal.len(),
        1,
        "only the URI inside the root may arrive: {journal:?}"
    );
    assert!(!tree.reached("secret"), "{journal:?}");
}

/// Conditions over arguments (CEL), URL hosts and argument size, over HTTP with a
/// 2026-07-28 client.
#[test]
fn conditions_over_arguments_decide_each_call() {
    let tree = Tree::new();
    let gw = Gateway::start(&config(&tree, "anonymous"));
    let target = PeerTarget::Url(gw.url("files"));
    let calls = json!([
        { "step": "list", "list": "tools" },
        tool("search ok", "search", json!({ "query": "gateways", "limit": 5 })),
        tool("search default limit", "search", json!({ "query": "gateways" })),
        tool("search too many", "search", json!({ "query": "gateways", "limit": 500 })),
        tool("search password", "search", json!({ "query": "admin password" })),
        tool("search too large", "search", json!({ "query": "x".repeat(300) })),
        tool("url ok", "open_url", json!({ "url": "https://docs.example.com/a" })),
        tool("url subdomain", "open_url", json!({ "url": "https://wiki.internal.example/b" })),
        tool("url other host", "open_url", json!({ "url": "https://evil.example.net/c" })),
        tool("url userinfo trick", "open_url", json!({ "url": "https://docs.example.com@evil.example.net/" })),
        tool("url metadata", "open_url", json!({ "url": "http://169.254.169.254/latest/meta-data" })),
    ]);
    let s = run(&target, "2026-07-28", &calls);
    let listed = support::item_names(s.ok("list"), "tools", "name");
    for name in ["read_file", "search", "open_url"] {
        assert!(
            listed.iter().any(|n| n == name),
            "conditions on args never hide {name}: {listed:?}"
        );
    }
    assert_eq!(s.text("search ok"), "5 results for gateways");
    assert_eq!(s.text("search default limit"), "10 results for gateways");
    assert_denied(&s, "search too many", "refused by policy");
    assert_denied(&s, "search password", "denies");
    assert_denied(&s, "search too large", "max_arg_bytes");
    assert_eq!(s.text("url ok"), "opened https://docs.example.com/a");
    assert_eq!(
        s.text("url subdomain"),
        "opened https://wiki.internal.example/b"
    );
    for step in ["url other host", "url userinfo trick", "url metadata"] {
        assert_denied(&s, step, "refused by policy");
    }
    assert!(!tree.reached("password"));
    assert!(!tree.reached("evil"));
    assert!(!tree.reached("169.254"));
    assert_eq!(tree.journaled().len(), 4, "{:?}", tree.journaled());
}

fn local_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .expect("the test user has a name")
}

/// Over stdio the principal is the local user, by uid: a rule for that user allows, a rule
/// for someone else hides the tool — and `$USER` does not change who you are.
#[test]
fn stdio_principal_is_the_local_user_and_rules_match_it() {
    let tree = Tree::new();
    let me = local_user();
    let note = |name: &str| tree.path(&format!("root/notes/{name}"));

    // The rule names this user: the note is written.
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("mine.toml");
    std::fs::write(&mine, config(&tree, &format!("local:{me}"))).unwrap();
    let calls = json!([
        tool(
            "write",
            "write_note",
            json!({ "path": note("a.txt"), "text": "hello" })
        ),
        tool(
            "write outside",
            "write_note",
            json!({ "path": tree.path("root/public.txt"), "text": "overwritten" })
        ),
    ]);
    let s = run(
        &PeerTarget::portcullis_stdio("files", &mine),
        "legacy",
        &calls,
    );
    assert_eq!(s.text("write"), "wrote 5 characters");
    assert_eq!(std::fs::read_to_string(note("a.txt")).unwrap(), "hello");
    assert_denied(&s, "write outside", "refused by policy");
    assert_eq!(
        std::fs::read_to_string(tree.path("root/public.txt")).unwrap(),
        "public text"
    );

    // The rule names someone else: the tool is not even there for this user, and setting
    // USER to that name does not help.
    let theirs = dir.path().join("theirs.toml");
    std::fs::write(&theirs, config(&tree, "local:someone-else")).unwrap();
    let calls = json!([
        { "step": "list", "list": "tools" },
        tool("write", "write_note", json!({ "path": note("b.txt"), "text": "hello" })),
    ]);
    let mut target = PeerTarget::portcullis_stdio("files", &theirs);
    if let PeerTarget::Stdio(argv) = &mut target {
        // The SDK passes USER through to the gateway it launches.
        argv.splice(0..0, ["/usr/bin/env".into(), "USER=someone-else".into()]);
    }
    let s = run(&target, "legacy", &calls);
    let listed = support::item_names(s.ok("list"), "tools", "name");
    assert!(!listed.iter().any(|n| n == "write_note"), "{listed:?}");
    let err = s.error("write");
    assert_eq!(err["message"], "Unknown tool: write_note", "{err}");
    assert!(!Path::new(&note("b.txt")).exists());
}
