//! Virtual servers: two fixture servers joined at `/mcp/all`. Names carry their server
//! (`a.echo`, `a+fixture://…`), calls reach the right upstream (seen on each upstream's
//! tapped stdin), each member's own rules hide what they hide, and a member that fails is
//! left out (`omit`) or fails the request (`fail`).

mod support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::{FixtureHttp, Gateway, RawHttp, item_names, tap_messages};

const RULES_A: &str = r#"
[[rules]]
server = "a"
tools = ["echo"]
prompts = ["greeting"]
resources = ["fixture://static/*"]
effect = "allow"
"#;

const RULES_B: &str = r#"
[[rules]]
server = "b"
tools = ["echo", "add"]
prompts = ["greeting", "plain"]
resources = ["fixture://*"]
effect = "allow"
"#;

const RULES_H: &str = r#"
[[rules]]
server = "h"
tools = ["echo"]
effect = "allow"
"#;

struct Taps {
    _dir: tempfile::TempDir,
    a: PathBuf,
    b: PathBuf,
}

fn taps() -> Taps {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.ndjson");
    let b = dir.path().join("b.ndjson");
    Taps { _dir: dir, a, b }
}

fn config(taps: &Taps) -> String {
    format!(
        "{}{}\n[virtual.all]\nservers = [\"a\", \"b\"]\n{RULES_A}{RULES_B}",
        support::tapped_fixture_server("a", &taps.a),
        support::tapped_fixture_server("b", &taps.b),
    )
}

async fn session(gw: &Gateway, route: &str) -> (RawHttp, Value) {
    let mut c = RawHttp::new(&gw.url(route));
    let init = c.initialize(json!({})).await;
    (c, init)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The `tools/call`s an upstream received: (tool name, arguments).
fn calls_seen(tap: &Path) -> Vec<(String, Value)> {
    tap_messages(tap)
        .into_iter()
        .filter(|m| m["method"] == "tools/call")
        .map(|m| {
            (
                m["params"]["name"].as_str().unwrap_or_default().to_owned(),
                m["params"]["arguments"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn names_carry_their_server_and_each_members_rules_apply() {
    let t = taps();
    let gw = Gateway::start(&config(&t));
    let (c, init) = session(&gw, "all").await;
    assert!(
        init["serverInfo"]["name"]
            .as_str()
            .is_some_and(|n| n.contains("all")),
        "{init}"
    );
    let tools = sorted(item_names(
        &c.request(1, "tools/list", json!({})).await["result"],
        "tools",
        "name",
    ));
    assert_eq!(tools, ["a.echo", "b.add", "b.echo"]);
    let prompts = sorted(item_names(
        &c.request(2, "prompts/list", json!({})).await["result"],
        "prompts",
        "name",
    ));
    assert_eq!(prompts, ["a.greeting", "b.greeting", "b.plain"]);
    let resources = sorted(item_names(
        &c.request(3, "resources/list", json!({})).await["result"],
        "resources",
        "uri",
    ));
    assert_eq!(
        resources,
        [
            "a+fixture://static/blob",
            "a+fixture://static/hello",
            "b+fixture://static/blob",
            "b+fixture://static/hello",
            "b+fixture://watched",
        ]
    );
    let templates = c.request(4, "resources/templates/list", json!({})).await;
    assert_eq!(
        item_names(&templates["result"], "resourceTemplates", "uriTemplate"),
        ["b+fixture://items/{id}"]
    );
}

#[tokio::test]
async fn calls_reach_the_member_their_name_names() {
    let t = taps();
    let gw = Gateway::start(&config(&t));
    let (c, _) = session(&gw, "all").await;
    let r = c.call_tool(1, "a.echo", json!({"message": "to-a"})).await;
    assert_eq!(r["result"]["content"][0]["text"], "to-a", "{r}");
    let r = c.call_tool(2, "b.echo", json!({"message": "to-b"})).await;
    assert_eq!(r["result"]["content"][0]["text"], "to-b", "{r}");
    let r = c.call_tool(3, "b.add", json!({"a": 2, "b": 3})).await;
    assert_eq!(r["result"]["content"][0]["text"], "5", "{r}");
    // Each upstream saw its own calls only, under the upstream's own tool name.
    let seen_a = calls_seen(&t.a);
    let seen_b = calls_seen(&t.b);
    assert_eq!(
        seen_a,
        [("echo".to_owned(), json!({"message": "to-a"}))],
        "a saw {seen_a:?}"
    );
    assert_eq!(seen_b.len(), 2, "b saw {seen_b:?}");
    assert!(
        seen_b.contains(&("echo".to_owned(), json!({"message": "to-b"}))),
        "b saw {seen_b:?}"
    );
    // Prompts and resources route the same way, with the prefix taken off upstream.
    let p = c
        .request(
            4,
            "prompts/get",
            json!({"name": "a.greeting", "arguments": {"name": "Ada"}}),
        )
        .await;
    assert!(p.to_string().contains("Hello, Ada!"), "{p}");
    let read = c
        .request(
            5,
            "resources/read",
            json!({"uri": "a+fixture://static/hello"}),
        )
        .await;
    assert_eq!(
        read["result"]["contents"][0]["text"], "hello from the fixture",
        "{read}"
    );
    let item = c
        .request(6, "resources/read", json!({"uri": "b+fixture://items/7"}))
        .await;
    assert_eq!(item["result"]["contents"][0]["text"], "item 7", "{item}");
    let a_msgs = tap_messages(&t.a);
    assert!(
        a_msgs
            .iter()
            .any(|m| m["method"] == "prompts/get" && m["params"]["name"] == "greeting")
    );
    assert!(
        a_msgs
            .iter()
            .any(|m| m["method"] == "resources/read"
                && m["params"]["uri"] == "fixture://static/hello")
    );
    assert!(
        !tap_messages(&t.b)
            .iter()
            .any(|m| m["method"] == "prompts/get"),
        "b got a's prompt call"
    );
}

#[tokio::test]
async fn hidden_and_malformed_names_are_refused_like_missing_ones() {
    let t = taps();
    let gw = Gateway::start(&config(&t));
    let (c, _) = session(&gw, "all").await;
    let missing = c.call_tool(1, "a.no-such-tool", json!({})).await;
    let norm = |r: &Value, name: &str| r["error"].to_string().replace(name, "<N>");
    let want = norm(&missing, "a.no-such-tool");
    for name in [
        "a.add",
        "a.crash",
        "b.crash",
        "c.echo",
        "echo",
        "a.",
        ".echo",
        "a+echo",
        "all.a.echo",
        "A.echo",
    ] {
        let r = c
            .call_tool(2, name, json!({"message": "x", "a": 1, "b": 1}))
            .await;
        assert_eq!(norm(&r, name), want, "{name}: {r}");
    }
    // None of them reached an upstream as a call.
    assert!(
        calls_seen(&t.a).is_empty() && calls_seen(&t.b).is_empty(),
        "{:?} {:?}",
        calls_seen(&t.a),
        calls_seen(&t.b)
    );
    let missing = c
        .request(3, "resources/read", json!({"uri": "a+fixture://nope"}))
        .await;
    for uri in [
        "a+fixture://watched",
        "b+fixture://nope",
        "fixture://static/hello",
        "c+fixture://static/hello",
        "a+",
        "a.fixture://static/hello",
    ] {
        let r = c.request(4, "resources/read", json!({"uri": uri})).await;
        assert_eq!(r["error"]["code"], missing["error"]["code"], "{uri}: {r}");
        assert_eq!(
            r["error"]["message"]
                .as_str()
                .map(|m| m.replace(uri, "<N>")),
            missing["error"]["message"]
                .as_str()
                .map(|m| m.replace("a+fixture://nope", "<N>")),
            "{uri}: {r}"
        );
    }
}

#[tokio::test]
async fn omit_leaves_out_a_member_that_cannot_start_and_fail_refuses_the_session() {
    let t = taps();
    let cfg = format!(
        "{}[servers.broken]\ncommand = [\"/nonexistent/portcullis-test-server\"]\n\n\
         [virtual.keep]\nservers = [\"a\", \"broken\"]\non_upstream_failure = \"omit\"\n\n\
         [virtual.strict]\nservers = [\"a\", \"broken\"]\non_upstream_failure = \"fail\"\n\n\
         [[rules]]\nserver = \"broken\"\neffect = \"allow\"\n{RULES_A}",
        support::tapped_fixture_server("a", &t.a),
    );
    let gw = Gateway::start(&cfg);
    let (c, _) = session(&gw, "keep").await;
    let tools = item_names(
        &c.request(1, "tools/list", json!({})).await["result"],
        "tools",
        "name",
    );
    assert_eq!(tools, ["a.echo"]);
    let r = c.call_tool(2, "a.echo", json!({"message": "still"})).await;
    assert_eq!(r["result"]["content"][0]["text"], "still");
    let r = c.call_tool(3, "broken.echo", json!({"message": "x"})).await;
    assert!(r.get("error").is_some(), "{r}");

    let strict = RawHttp::new(&gw.url("strict"));
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}});
    let a = strict.post(init.to_string()).await;
    assert!(
        a.header("mcp-session-id").is_none(),
        "no session when a member fails: {:?}",
        a.headers
    );
    let err = &a.response()["error"];
    assert_eq!(err["code"], -32010, "{}", a.body);
    assert!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("broken")),
        "names the member: {}",
        a.body
    );
}

#[tokio::test]
async fn a_member_that_goes_down_is_omitted_or_fails_the_list() {
    let t = taps();
    let mut remote = FixtureHttp::start(&[]);
    let cfg = format!(
        "{}[servers.h]\nurl = \"{}\"\ntimeout = \"5s\"\n\n\
         [virtual.keep]\nservers = [\"a\", \"h\"]\n\n\
         [virtual.strict]\nservers = [\"a\", \"h\"]\non_upstream_failure = \"fail\"\n{RULES_A}{RULES_H}",
        support::tapped_fixture_server("a", &t.a),
        remote.url,
    );
    let gw = Gateway::start(&cfg);
    let (keep, _) = session(&gw, "keep").await;
    let (strict, _) = session(&gw, "strict").await;
    for c in [&keep, &strict] {
        let tools = sorted(item_names(
            &c.request(1, "tools/list", json!({})).await["result"],
            "tools",
            "name",
        ));
        assert_eq!(tools, ["a.echo", "h.echo"]);
    }
    support::kill_group(remote.proc.child.id());
    let _ = remote.proc.child.wait();
    let tools = item_names(
        &keep.request(2, "tools/list", json!({})).await["result"],
        "tools",
        "name",
    );
    assert_eq!(
        tools,
        ["a.echo"],
        "omit: the member that is down is left out"
    );
    let r = strict.request(2, "tools/list", json!({})).await;
    assert_eq!(r["error"]["code"], -32010, "fail: the list fails: {r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("\"h\"")),
        "{r}"
    );
    // Calls to the member that is up still work in both.
    for c in [&keep, &strict] {
        let r = c.call_tool(3, "a.echo", json!({"message": "up"})).await;
        assert_eq!(r["result"]["content"][0]["text"], "up", "{r}");
    }
}
