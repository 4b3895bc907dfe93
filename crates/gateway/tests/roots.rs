//! `servers.<name>.roots`, end to end: the official Python SDK client (with roots of its own,
//! or without the capability), Portcullis, and the bundled fixture server, whose `roots` tool
//! asks its client for roots and answers with the URIs it was given.
//!
//! The upstream must be told exactly the configured roots, narrowed by the client's when the
//! client has some — in the stateful era (a `roots/list` request the gateway answers), in
//! 2026-07-28 (an `input_required` round), and across the two — and a rule's `paths` without
//! `roots` must keep path arguments inside the server's roots, `..` and symbolic links
//! included.

mod support;

use std::path::{Path, PathBuf};

use portcullis_gateway::roots::file_uri;
use serde_json::{Value, json};
use support::{FixtureHttp, Gateway, PeerSummary, PeerTarget, run_python_peer};

/// A temporary tree: the server's two roots (one whose name needs percent-encoding), the
/// parent of the first and a directory inside the second (both for the client), one outside
/// both, and a symbolic link from inside the first root to the outside one.
struct Tree {
    _dir: tempfile::TempDir,
    work: PathBuf,
    proj: PathBuf,
    data: PathBuf,
    data_sub: PathBuf,
    outside: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().canonicalize().expect("canonical tempdir");
        let work = base.join("work");
        let proj = work.join("proj");
        let data = base.join("data dir%");
        let data_sub = data.join("sub");
        let outside = base.join("outside");
        for d in [&proj, &data_sub, &outside] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::os::unix::fs::symlink(&outside, proj.join("escape")).expect("symlink");
        Tree {
            _dir: dir,
            work,
            proj,
            data,
            data_sub,
            outside,
        }
    }

    /// The config: `server` (a `[servers.demo]` table without roots) with the two roots;
    /// `roots` allowed; `echo` allowed when its message is a path inside the server's roots.
    fn config(&self, server: &str) -> String {
        format!(
            "{server}roots = [{:?}, {:?}]\n\n[[rules]]\nserver = \"demo\"\ntools = [\"roots\"]\neffect = \"allow\"\n\n[[rules]]\nserver = \"demo\"\ntools = [\"echo\"]\npaths = [\"args.message\"]\neffect = \"allow\"\n",
            self.proj, self.data
        )
    }

    /// The client's roots: the parent of the first root (so that root is kept), a directory
    /// inside the second (kept instead of it), and one outside both (dropped).
    fn client_roots(&self) -> Value {
        json!([
            { "uri": file_uri(&self.work), "name": "work" },
            { "uri": file_uri(&self.data_sub), "name": "sub" },
            { "uri": file_uri(&self.outside), "name": "outside" },
        ])
    }

    /// What the upstream sees without client roots: the configured roots.
    fn configured(&self) -> String {
        format!("{}\n{}", file_uri(&self.proj), file_uri(&self.data))
    }

    /// What it sees narrowed by [`Tree::client_roots`].
    fn narrowed(&self) -> String {
        format!("{}\n{}", file_uri(&self.proj), file_uri(&self.data_sub))
    }
}

/// Runs `tests/peers/roots_client.py`: `roots` is the client's list, or `None` for a client
/// without the roots capability.
fn run(mode: &str, target: &PeerTarget, roots: Option<&Value>, calls: &Value) -> PeerSummary {
    let roots = roots.map_or_else(|| "none".to_owned(), Value::to_string);
    let calls = calls.to_string();
    let args = ["--mode", mode, "--roots", &roots, "--calls", &calls];
    let s = PeerSummary(run_python_peer("roots_client.py", &args, target));
    s.assert_clean_run();
    s
}

fn stdio_target(tree: &Tree, server: &str) -> (tempfile::TempDir, PeerTarget) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("portcullis.toml");
    // Written here, not by `StdioGateway`: the loopback egress the HTTP fixture needs is
    // added the same way (see `support::LOOPBACK_EGRESS`).
    std::fs::write(&config, support::with_loopback_egress(&tree.config(server)))
        .expect("write config");
    let target = PeerTarget::portcullis_stdio("demo", &config);
    (dir, target)
}

/// The fixture over stdio, held to the stateful protocol (it speaks both eras; `auto` would
/// pick 2026-07-28 for a 2026-07-28 client).
fn stateful_fixture() -> String {
    format!(
        "{}protocol = \"2025-11-25\"\n",
        support::fixture_stdio_server("demo")
    )
}

/// The fixture over HTTP, held to the stateless protocol; the `[servers.demo]` table.
fn stateless_fixture(upstream: &FixtureHttp) -> String {
    format!(
        "[servers.demo]\nurl = \"{}\"\nprotocol = \"2026-07-28\"\n",
        upstream.url
    )
}

/// Calls `roots` once as a client with [`Tree::client_roots`], once as a client without
/// the capability: the upstream must see the narrowed roots, then the configured ones.
/// Returns how often the first client was asked for its roots.
fn narrowed_then_configured(tree: &Tree, mode: &str, target: &PeerTarget) -> u64 {
    let calls = json!([roots_call("roots")]);
    let with = run(mode, target, Some(&tree.client_roots()), &calls);
    assert_eq!(with.text("roots"), tree.narrowed(), "with client roots");
    let without = run(mode, target, None, &calls);
    assert_eq!(without.text("roots"), tree.configured(), "without");
    requests(&with)
}

fn roots_call(step: &str) -> Value {
    json!({ "step": step, "tool": "roots", "args": {} })
}

fn echo(step: &str, message: impl AsRef<Path>) -> Value {
    json!({ "step": step, "tool": "echo", "args": { "message": message.as_ref() } })
}

fn requests(s: &PeerSummary) -> u64 {
    s.0["roots_requests"].as_u64().expect("roots_requests")
}

#[test]
fn a_client_without_roots_capability_lets_the_upstream_see_exactly_the_configured_roots() {
    let tree = Tree::new();
    let (_dir, target) = stdio_target(&tree, &support::fixture_stdio_server("demo"));
    let s = run("legacy", &target, None, &json!([roots_call("roots")]));
    assert_eq!(s.text("roots"), tree.configured());
}

/// A stateful client's roots are read once by the gateway (the client promised to tell of
/// changes) and narrow what the upstream sees; after `roots/list_changed` they are read
/// again. The upstream's own `roots/list` never reaches the client.
#[test]
fn a_stateful_clients_roots_narrow_the_configured_roots_and_are_read_again_after_a_change() {
    let tree = Tree::new();
    let (_dir, target) = stdio_target(&tree, &support::fixture_stdio_server("demo"));
    let calls = json!([
        roots_call("first"),
        roots_call("second"),
        { "step": "change", "set_roots": [{ "uri": file_uri(&tree.proj.join("src")) }] },
        roots_call("after the change"),
    ]);
    let s = run("legacy", &target, Some(&tree.client_roots()), &calls);
    assert_eq!(s.text("first"), tree.narrowed());
    assert_eq!(s.text("second"), tree.narrowed());
    assert_eq!(
        s.text("after the change"),
        file_uri(&tree.proj.join("src")),
        "the new client root lies inside the first configured root: it is kept instead"
    );
    assert_eq!(requests(&s), 2, "asked once, then once after the change");
}

/// The same over Streamable HTTP: the gateway's question goes on the call's stream.
#[test]
fn a_stateful_client_over_http_narrows_the_configured_roots() {
    let tree = Tree::new();
    let gw = Gateway::start(&tree.config(&support::fixture_stdio_server("demo")));
    let target = PeerTarget::Url(gw.url("demo"));
    let s = run(
        "legacy",
        &target,
        Some(&tree.client_roots()),
        &json!([roots_call("roots")]),
    );
    assert_eq!(s.text("roots"), tree.narrowed());
}

/// A stateless (2026-07-28) upstream asks in an `input_required` result; a stateful client
/// gets no such question: the gateway answers it from the client's roots and retries.
#[test]
fn a_stateless_upstream_gets_the_narrowed_roots_for_a_stateful_client() {
    let tree = Tree::new();
    let upstream = FixtureHttp::start(&[]);
    let (_dir, target) = stdio_target(&tree, &stateless_fixture(&upstream));
    assert_eq!(narrowed_then_configured(&tree, "legacy", &target), 1);
}

/// A 2026-07-28 client over stdio, a stateful upstream: the upstream's `roots/list` in the
/// middle of the call becomes an `input_required` round for the client, whose answer is
/// narrowed before it goes upstream; without the capability the gateway answers alone.
#[test]
fn a_2026_client_with_a_stateful_upstream_narrows_through_input_required() {
    let tree = Tree::new();
    let (_dir, target) = stdio_target(&tree, &stateful_fixture());
    assert_eq!(narrowed_then_configured(&tree, "2026-07-28", &target), 1);
}

/// A 2026-07-28 client and a stateless upstream: the upstream's roots question reaches a
/// client that declared `roots`, and its answer is narrowed on the retry; a client without
/// the capability never sees it (the gateway answers and retries on its own).
#[test]
fn a_2026_client_with_a_stateless_upstream_gets_the_configured_or_narrowed_roots() {
    let tree = Tree::new();
    let upstream = FixtureHttp::start(&[]);
    let gw = Gateway::start(&tree.config(&stateless_fixture(&upstream)));
    let target = PeerTarget::Url(gw.url("demo"));
    assert_eq!(narrowed_then_configured(&tree, "2026-07-28", &target), 1);
}

/// A stateless upstream asking for roots, a name and a greeting in one round, and wanting
/// every answer in the same retry: a client without `roots` is asked only the other two,
/// and the gateway adds the roots on the client's retry. A client with `roots` answers all
/// three, and its roots are narrowed (three of its own, two once narrowed).
#[test]
fn a_round_with_other_questions_reaches_the_client_without_or_with_narrowed_roots() {
    let tree = Tree::new();
    let upstream = FixtureHttp::start(&[]);
    let config = tree.config(&stateless_fixture(&upstream)).replace(
        "tools = [\"roots\"]",
        "tools = [\"roots\", \"test_input_required_result_multiple_inputs\"]",
    );
    let gw = Gateway::start(&config);
    let target = PeerTarget::Url(gw.url("demo"));
    let calls = json!([{ "step": "ask", "tool": "test_input_required_result_multiple_inputs", "args": {} }]);
    let s = run("2026-07-28", &target, None, &calls);
    assert_eq!(s.text("ask"), "Name: Ada; Greeting: hello; Roots: 2");
    let s = run("2026-07-28", &target, Some(&tree.client_roots()), &calls);
    assert_eq!(s.text("ask"), "Name: Ada; Greeting: hello; Roots: 2");
    assert_eq!(requests(&s), 1);
}

/// 2026-07-28 clients over HTTP share one connection to a stateful upstream: one client's
/// roots cannot stand for all of them, so the upstream gets the configured roots and no
/// client is asked.
#[test]
fn a_shared_upstream_connection_gets_the_configured_roots_without_asking_the_client() {
    let tree = Tree::new();
    let gw = Gateway::start(&tree.config(&stateful_fixture()));
    let target = PeerTarget::Url(gw.url("demo"));
    let s = run(
        "2026-07-28",
        &target,
        Some(&tree.client_roots()),
        &json!([roots_call("roots")]),
    );
    assert_eq!(s.text("roots"), tree.configured());
    assert_eq!(requests(&s), 0);
}

/// `paths = ["args.message"]` without `roots`: inside the server's roots, with `..`,
/// symbolic links and `file:` URIs judged as the path checker judges them.
#[test]
fn path_arguments_must_stay_inside_the_servers_roots() {
    let tree = Tree::new();
    let (_dir, target) = stdio_target(&tree, &support::fixture_stdio_server("demo"));
    let inside = tree.proj.join("notes.txt");
    let inside_uri = format!("{}/a.txt", file_uri(&tree.data));
    let calls = json!([
        echo("inside", &inside),
        echo("inside as a file URI", &inside_uri),
        echo("outside", tree.outside.join("x")),
        echo(
            "dot-dot escape",
            format!("{}/../../outside/x", tree.proj.display())
        ),
        echo("symlink escape", tree.proj.join("escape/x")),
        echo("sibling prefix", format!("{}-other/x", tree.proj.display())),
    ]);
    let s = run("legacy", &target, None, &calls);
    assert_eq!(s.text("inside"), inside.display().to_string());
    assert_eq!(s.text("inside as a file URI"), inside_uri);
    for step in [
        "outside",
        "dot-dot escape",
        "symlink escape",
        "sibling prefix",
    ] {
        let e = s.error(step);
        assert_eq!(e["code"], -32011, "{step}: {e}");
        let message = e["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("refused by policy:"),
            "{step}: {message}"
        );
    }
}
