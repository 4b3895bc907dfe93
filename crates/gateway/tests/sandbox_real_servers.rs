//! Real MCP servers inside the sandbox (issue 5): the official
//! `@modelcontextprotocol/server-filesystem` (npm, run with the Node 22 of `.peers`) and
//! `mcp-server-fetch` (PyPI, in `.peers/venv`), each a stdio upstream of the real gateway
//! with the profile it needs, driven by the official Python SDK client
//! (`tests/peers/mcp_client.py`, scenario `calls`).
//!
//! They must work with that profile — the filesystem server in its one directory, the fetch
//! server on its one allowed host through the gateway's proxy — and nothing beyond it: not
//! when the server's own checks would stop the request anyway, and not when they would not
//! (a server told to serve a wider directory than its sandbox binds, a fetch server started
//! with its private-address guard off).
//!
//! Neither server is the gateway's own binary, so launch pinning would refuse them without
//! a `portcullis trust`; these configs say `pinning = "off"` (pinning has its own tests).

mod support;

use std::path::Path;

use serde_json::json;
use support::sandbox::Listener;
use support::{Gateway, PeerSummary, PeerTarget, run_python_client};

fn toml_path(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// `server-filesystem` serving `dirs` (its own allow list, from its command line) as
/// `files`, with `extra` lines in its table, everything allowed by policy.
fn filesystem_config(dirs: &[&Path], extra: &str) -> String {
    let mut command = vec![
        toml_path(&support::node22()),
        toml_path(&support::node_module(
            "@modelcontextprotocol/server-filesystem/dist/index.js",
        )),
    ];
    command.extend(dirs.iter().map(|d| toml_path(d)));
    format!(
        "[servers.files]\ncommand = [{}]\npinning = \"off\"\n{extra}\n\n[[rules]]\nserver = \"files\"\neffect = \"allow\"\n",
        command.join(", ")
    )
}

/// Runs the `calls` of the Python SDK client against route `route` of `gw`.
fn calls(gw: &Gateway, route: &str, calls: serde_json::Value) -> PeerSummary {
    let s = PeerSummary(run_python_client(
        "calls",
        "legacy",
        &PeerTarget::Url(gw.url(route)),
        &["--calls", &calls.to_string()],
    ));
    s.assert_clean_run();
    s
}

/// A tool call that failed, as a tool error (`isError`) or a JSON-RPC error; its text.
#[track_caller]
fn failure_text(s: &PeerSummary, step: &str) -> String {
    let record = s.step(step);
    if let Some(result) = record.get("ok") {
        assert_eq!(
            result["isError"],
            true,
            "{}",
            s.explain(step, "the call succeeded")
        );
        s.text(step)
    } else {
        assert!(
            record.get("error").is_some(),
            "{}",
            s.explain(step, "neither a tool error nor a JSON-RPC error")
        );
        record.to_string()
    }
}

/// A scratch directory outside `/tmp` (the sandbox has a private `/tmp` of its own).
fn host_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir")
}

#[test]
fn server_filesystem_lists_reads_and_writes_in_its_root_and_nothing_else() {
    let base = host_dir();
    let root = base.path().join("root");
    let outside = base.path().join("outside");
    std::fs::create_dir(&root).expect("mkdir");
    std::fs::create_dir(&outside).expect("mkdir");
    std::fs::write(root.join("seed.txt"), "seed content 3f0a").expect("write");
    std::fs::write(outside.join("secret.txt"), "outside secret 77b2").expect("write");
    let gw = Gateway::start(&filesystem_config(
        &[&root],
        &format!("roots = [{}]", toml_path(&root)),
    ));

    let s = calls(
        &gw,
        "files",
        json!([
            {"step": "write", "tool": "write_file",
             "args": {"path": root.join("new.txt"), "content": "written through the sandbox"}},
            {"step": "read", "tool": "read_text_file", "args": {"path": root.join("seed.txt")}},
            {"step": "list", "tool": "list_directory", "args": {"path": root}},
            {"step": "outside", "tool": "read_text_file", "args": {"path": outside.join("secret.txt")}},
            {"step": "write-outside", "tool": "write_file",
             "args": {"path": outside.join("new.txt"), "content": "escaped"}},
        ]),
    );
    s.tool_ok("write");
    assert_eq!(
        std::fs::read_to_string(root.join("new.txt")).expect("the write landed on the host"),
        "written through the sandbox"
    );
    s.tool_ok("read");
    assert!(
        s.text("read").contains("seed content 3f0a"),
        "{}",
        s.text("read")
    );
    s.tool_ok("list");
    let list = s.text("list");
    assert!(
        list.contains("seed.txt") && list.contains("new.txt"),
        "{list}"
    );

    assert!(!failure_text(&s, "outside").contains("outside secret 77b2"));
    failure_text(&s, "write-outside");
    assert!(!outside.join("new.txt").exists(), "a write left the root");
}

#[test]
fn server_filesystem_told_to_serve_a_wider_directory_is_still_held_to_its_sandbox() {
    // The server's own allow list is `base` (a configuration mistake); the sandbox binds only
    // `base/root`. The server's checks pass everything under `base`: only the sandbox stands
    // between it and `base/outside`. (A directory on the command line is data, not part of
    // the server's installation: it is not bound. The server cannot do much here, since it
    // cannot read its own allowed directory; that is the mistake showing, not a leak.)
    let base = host_dir();
    let root = base.path().join("root");
    let outside = base.path().join("outside");
    std::fs::create_dir(&root).expect("mkdir");
    std::fs::create_dir(&outside).expect("mkdir");
    std::fs::write(outside.join("secret.txt"), "outside secret 5d19").expect("write");
    let gw = Gateway::start(&filesystem_config(
        &[base.path()],
        &format!("sandbox = {{ write = [{}] }}", toml_path(&root)),
    ));

    let s = calls(
        &gw,
        "files",
        json!([
            {"step": "allowed", "tool": "list_allowed_directories", "args": {}},
            {"step": "list-base", "tool": "list_directory", "args": {"path": base.path()}},
            {"step": "read-outside", "tool": "read_text_file",
             "args": {"path": outside.join("secret.txt")}},
            {"step": "write-outside", "tool": "write_file",
             "args": {"path": outside.join("planted.txt"), "content": "escaped"}},
        ]),
    );
    // The server does consider all of `base` its own…
    let allowed = s.text("allowed");
    assert!(
        allowed.contains(&base.path().display().to_string()),
        "the server was not started with the wide directory: {allowed}"
    );
    // …but in there it sees only what the sandbox bound: `base` itself cannot be listed
    // (no Landlock rule covers it), or lists only `root`.
    let list = s.step("list-base").to_string();
    assert!(
        !list.contains("outside"),
        "an unbound directory is visible: {list}"
    );
    let read = failure_text(&s, "read-outside");
    assert!(!read.contains("outside secret 5d19"), "{read}");
    failure_text(&s, "write-outside");
    assert!(
        !outside.join("planted.txt").exists(),
        "a write escaped the sandbox"
    );
}

#[test]
fn mcp_server_fetch_reaches_its_one_allowed_host_through_the_proxy() {
    let page = Listener::loopback(Some(
        "<html><head><title>Allowed</title></head><body><article><h1>Allowed page</h1>\
         <p>The fetch server read this through the gateway's proxy: marker 4c1e.</p>\
         </article></body></html>",
    ));
    let other = Listener::loopback(Some("<html><body><p>never fetched 9e02</p></body></html>"));
    // `--allow-private-ips` turns the server's own guard against loopback addresses off, so
    // that the gateway's proxy is what decides. `PATH` is the venv's `bin` only: with a
    // `node` on its `PATH`, readabilipy (the server's HTML extractor) runs `npm install` at
    // the first fetch, which the sandbox rightly refuses (read-only installation, registry
    // not on the allow list) and which the server does not survive; without one it uses its
    // Python extractor.
    let python = support::python();
    let venv_bin = python.parent().expect("the venv's bin");
    let config = format!(
        "[servers.fetch]\ncommand = [{python}, \"-m\", \"mcp_server_fetch\", \"--ignore-robots-txt\", \"--allow-private-ips\"]\npinning = \"off\"\nenv = {{ set = {{ PATH = {path} }} }}\nsandbox = {{ network = {{ allow = [\"127.0.0.1:{port}\"] }} }}\n\n[[rules]]\nserver = \"fetch\"\neffect = \"allow\"\n",
        python = toml_path(&python),
        path = toml_path(venv_bin),
        port = page.port()
    );
    let gw = Gateway::start(&config);

    let s = calls(
        &gw,
        "fetch",
        json!([
            {"step": "allowed", "tool": "fetch",
             "args": {"url": format!("http://127.0.0.1:{}/article.html", page.port())}},
            {"step": "other-port", "tool": "fetch",
             "args": {"url": format!("http://127.0.0.1:{}/", other.port())}},
        ]),
    );
    s.tool_ok("allowed");
    let text = s.text("allowed");
    assert!(text.contains("marker 4c1e"), "{text}");
    assert!(page.hits() >= 1);

    let refused = failure_text(&s, "other-port");
    assert!(!refused.contains("never fetched 9e02"), "{refused}");
    assert!(
        refused.contains("403"),
        "not the proxy's refusal: {refused}"
    );
    let log = gw.proc.stderr();
    assert!(
        log.lines().any(|l| l.contains("sandbox proxy: refused")
            && l.contains(&format!("127.0.0.1:{}", other.port()))),
        "the refusal is not in the gateway's log:\n{log}"
    );
    assert_eq!(other.hits(), 0, "a port off the allow list was reached");
}
