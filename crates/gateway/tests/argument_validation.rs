//! Arguments are checked before they leave: tool arguments against the tool's `inputSchema`,
//! prompt arguments against the prompt's declared arguments, resource URIs against what the
//! server lists. Driven by the official Python SDK client; what reached the server is read
//! from a tap on its stdin (the fixture) or its own journal (the hostile server).

mod support;

use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Gateway, PeerSummary, PeerTarget};

fn run(url: String, mode: &str, calls: &Value) -> PeerSummary {
    PeerSummary(support::run_python_client(
        "calls",
        mode,
        &PeerTarget::Url(url),
        &["--calls", &calls.to_string()],
    ))
}

fn fixture_gateway(tap: &std::path::Path) -> Gateway {
    Gateway::start(&format!(
        "{}\n[[rules]]\nserver = \"fx\"\neffect = \"allow\"\n",
        support::tapped_fixture_server("fx", tap)
    ))
}

/// What the upstream received of `method`.
fn forwarded(tap: &std::path::Path, method: &str) -> Vec<Value> {
    support::tap_messages(tap)
        .into_iter()
        .filter(|m| m["method"] == method)
        .map(|m| m["params"].clone())
        .collect()
}

#[test]
fn invalid_tool_arguments_are_a_tool_error_naming_the_path_and_never_forwarded() {
    let dir = tempfile::tempdir().unwrap();
    let tap = dir.path().join("tap.jsonl");
    let gw = fixture_gateway(&tap);
    for mode in ["legacy", "2026-07-28"] {
        let calls = json!([
            { "step": "valid", "tool": "add", "args": { "a": 2, "b": 40 } },
            { "step": "wrong type", "tool": "add", "args": { "a": "two", "b": 40 } },
            { "step": "missing", "tool": "add", "args": { "a": 2 } },
            { "step": "out of range", "tool": "large", "args": { "bytes": -1 } },
            { "step": "enum", "tool": "log", "args": { "level": "loud", "message": "m" } },
        ]);
        let s = run(gw.url("fx"), mode, &calls);
        assert_eq!(s.text("valid"), "42");
        // The text docs/config.md shows.
        assert_eq!(
            s.text("wrong type"),
            r#"Invalid arguments for add: arguments/a: "two" is not of type "number""#
        );
        for (step, names) in [
            ("wrong type", "/a"),
            ("missing", "b"),
            ("out of range", "/bytes"),
            ("enum", "/level"),
        ] {
            let result = s.ok(step);
            assert_eq!(result["isError"], true, "{mode} {step}: {result}");
            let text = s.text(step);
            assert!(
                text.starts_with("Invalid arguments for"),
                "{mode} {step}: {text}"
            );
            assert!(
                text.contains(names),
                "{mode} {step} must name {names}: {text}"
            );
        }
    }
    let calls = forwarded(&tap, "tools/call");
    assert_eq!(
        calls.len(),
        2,
        "only the valid calls reach the server: {calls:?}"
    );
    assert!(
        calls
            .iter()
            .all(|c| c["name"] == "add" && c["arguments"]["b"] == 40)
    );
}

#[test]
fn prompt_arguments_and_resource_uris_are_checked_against_the_lists() {
    let dir = tempfile::tempdir().unwrap();
    let tap = dir.path().join("tap.jsonl");
    let gw = fixture_gateway(&tap);
    let calls = json!([
        { "step": "prompt ok", "prompt": "greeting", "args": { "name": "Ada" } },
        { "step": "prompt missing", "prompt": "greeting", "args": {} },
        { "step": "prompt undeclared", "prompt": "greeting", "args": { "name": "Ada", "role": "admin" } },
        { "step": "prompt unknown", "prompt": "no-such-prompt", "args": {} },
        { "step": "listed", "resource": "fixture://static/hello" },
        { "step": "template", "resource": "fixture://items/42" },
        { "step": "unlisted", "resource": "fixture://static/secret" },
        { "step": "dot segments", "resource": "fixture://items/%2e%2e" },
        { "step": "other scheme", "resource": "file:///etc/passwd" },
    ]);
    let s = run(gw.url("fx"), "legacy", &calls);
    assert_eq!(
        s.ok("prompt ok")["messages"][0]["content"]["text"],
        "Hello, Ada!"
    );
    for (step, says) in [
        ("prompt missing", "name"),
        ("prompt undeclared", "role"),
        ("prompt unknown", "Unknown prompt"),
    ] {
        let err = s.error(step);
        assert_eq!(err["code"], -32602, "{step}: {err}");
        assert!(
            err["message"].as_str().unwrap().contains(says),
            "{step}: {err}"
        );
    }
    assert_eq!(
        s.ok("listed")["contents"][0]["text"],
        "hello from the fixture",
        "{}",
        s.ok("listed")
    );
    assert!(
        s.ok("template")["contents"][0]["text"]
            .as_str()
            .unwrap()
            .contains("42")
    );
    for step in ["unlisted", "dot segments", "other scheme"] {
        let err = s.error(step);
        assert_eq!(err["code"], -32002, "{step}: {err}");
    }
    let prompts = forwarded(&tap, "prompts/get");
    assert_eq!(prompts.len(), 1, "{prompts:?}");
    let reads: Vec<Value> = forwarded(&tap, "resources/read")
        .iter()
        .map(|p| p["uri"].clone())
        .collect();
    assert_eq!(
        reads,
        [json!("fixture://static/hello"), json!("fixture://items/42")]
    );
}

/// A loopback listener that counts connections: a schema `$ref` must never be fetched.
struct Trap {
    url: String,
    hits: Arc<AtomicUsize>,
}

impl Trap {
    fn start() -> Trap {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the trap");
        let url = format!(
            "http://{}/schema.json",
            listener.local_addr().expect("trap address")
        );
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut s = stream;
                let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                let _ = s.read(&mut [0u8; 1024]);
            }
        });
        Trap { url, hits }
    }
}

#[test]
fn hostile_schemas_neither_hang_nor_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.jsonl");
    let trap = Trap::start();
    let gw = Gateway::start(&format!(
        r#"[servers.hostile]
command = ["{}", "{}", "--journal", "{}", "--remote-ref", "{}"]
pinning = "off"
sandbox = {{ write = ["{}"] }}

[[rules]]
server = "hostile"
effect = "allow"
"#,
        support::python().display(),
        support::peer_script("hostile_upstream.py").display(),
        journal.display(),
        trap.url,
        dir.path().display(),
    ));
    let evil = format!("{}!", "a".repeat(64));
    let calls = json!([
        { "step": "bomb", "tool": "regex_bomb", "args": { "s": evil } },
        { "step": "bomb ok", "tool": "regex_bomb", "args": { "s": "aaaa" } },
        { "step": "loop", "tool": "ref_loop", "args": {} },
        { "step": "remote", "tool": "remote_ref", "args": { "x": 1 } },
        { "step": "plain", "tool": "plain", "args": { "n": 1 } },
    ]);
    let started = Instant::now();
    let s = run(gw.url("hostile"), "legacy", &calls);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );

    let bomb = s.ok("bomb");
    assert_eq!(bomb["isError"], true, "{bomb}");
    assert!(s.text("bomb").contains("/s"), "{bomb}");
    assert_eq!(s.text("bomb ok"), "regex_bomb ran");
    // A reference loop is walked to its end, not forever: the call is checked and goes.
    assert_eq!(s.text("loop"), "ref_loop ran");
    // A schema the gateway cannot check (it will not fetch a remote `$ref`) refuses the call.
    let err = s.error("remote");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("does not forward calls it cannot check"),
        "{err}"
    );
    assert_eq!(s.text("plain"), "plain ran");
    assert_eq!(
        trap.hits.load(Ordering::SeqCst),
        0,
        "a schema $ref was fetched"
    );
    let arrived: Vec<Value> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["tool"].clone())
        .collect();
    assert_eq!(
        arrived,
        [json!("regex_bomb"), json!("ref_loop"), json!("plain")]
    );
}
