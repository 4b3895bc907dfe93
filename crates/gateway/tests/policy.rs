//! Policy, end to end: what a caller may not use is absent from every list and refused with
//! exactly the error a name that does not exist gets; `initialize` announces no kind nobody
//! may use; rules are tried in order and the first match wins.

mod support;

use serde_json::{Value, json};
use support::{Gateway, RawHttp, StdioGateway, item_names};

/// `mixed`: some of each kind allowed, the rest hidden (partly by an explicit deny before a
/// broader allow). `tools-only`: only tools. `deny-first` / `allow-first`: the same two
/// rules in both orders.
fn config() -> String {
    let fixture = |name: &str| support::fixture_stdio_server(name);
    format!(
        r#"{mixed}{tools_only}{deny_first}{allow_first}
[[rules]]
server = "mixed"
tools = ["echo", "add"]
prompts = ["greeting"]
effect = "allow"

[[rules]]
server = "mixed"
resources = ["fixture://static/blob"]
effect = "deny"

[[rules]]
server = "mixed"
resources = ["fixture://static/*", "fixture://items/*"]
effect = "allow"

[[rules]]
server = "tools-only"
tools = ["echo"]
effect = "allow"

[[rules]]
server = "deny-first"
tools = ["echo"]
effect = "deny"

[[rules]]
server = "deny-first"
tools = ["*"]
effect = "allow"

[[rules]]
server = "allow-first"
tools = ["*"]
effect = "allow"

[[rules]]
server = "allow-first"
tools = ["echo"]
effect = "deny"
"#,
        mixed = fixture("mixed"),
        tools_only = fixture("tools-only"),
        deny_first = fixture("deny-first"),
        allow_first = fixture("allow-first"),
    )
}

async fn session(gw: &Gateway, route: &str) -> (RawHttp, Value) {
    let mut c = RawHttp::new(&gw.url(route));
    let init = c.initialize(json!({})).await;
    (c, init)
}

/// An error with the looked-up name blanked out of every string, for comparing refusals.
fn shape(r: &Value, name: &str) -> Value {
    fn blank(v: &Value, name: &str) -> Value {
        match v {
            Value::String(s) => Value::String(s.replace(name, "<NAME>")),
            Value::Array(a) => Value::Array(a.iter().map(|x| blank(x, name)).collect()),
            Value::Object(o) => {
                Value::Object(o.iter().map(|(k, x)| (k.clone(), blank(x, name))).collect())
            }
            other => other.clone(),
        }
    }
    blank(
        r.get("error")
            .unwrap_or_else(|| panic!("expected an error, got {r}")),
        name,
    )
}

fn assert_same_refusal(hidden: &Value, hidden_name: &str, missing: &Value, missing_name: &str) {
    assert_eq!(
        shape(hidden, hidden_name),
        shape(missing, missing_name),
        "a hidden item must be refused exactly like a missing one:\n hidden:  {hidden}\n missing: {missing}"
    );
}

#[tokio::test]
async fn hidden_tools_are_unlisted_and_refused_like_missing_ones() {
    let gw = Gateway::start(&config());
    let (c, _) = session(&gw, "mixed").await;
    let list = c.request(1, "tools/list", json!({})).await;
    let mut names = item_names(&list["result"], "tools", "name");
    names.sort();
    assert_eq!(names, ["add", "echo"], "{list}");
    let missing = c.call_tool(2, "no-such-tool", json!({})).await;
    for hidden in ["slow", "crash", "hang", "sample", "fail"] {
        let r = c.call_tool(3, hidden, json!({})).await;
        assert_same_refusal(&r, hidden, &missing, "no-such-tool");
    }
    // Near-misses of allowed names are not allowed.
    for near in ["Echo", "echo ", "echo\u{0}", "ech*", "*"] {
        let r = c.call_tool(4, near, json!({"message": "x"})).await;
        assert_same_refusal(&r, near, &missing, "no-such-tool");
    }
    let ok = c.call_tool(5, "echo", json!({"message": "allowed"})).await;
    assert_eq!(ok["result"]["content"][0]["text"], "allowed");
}

#[tokio::test]
async fn hidden_prompts_are_unlisted_and_refused_like_missing_ones() {
    let gw = Gateway::start(&config());
    let (c, _) = session(&gw, "mixed").await;
    let list = c.request(1, "prompts/list", json!({})).await;
    assert_eq!(
        item_names(&list["result"], "prompts", "name"),
        ["greeting"],
        "{list}"
    );
    let missing = c
        .request(2, "prompts/get", json!({"name": "no-such-prompt"}))
        .await;
    for hidden in ["plain", "test_simple_prompt"] {
        let r = c.request(3, "prompts/get", json!({"name": hidden})).await;
        assert_same_refusal(&r, hidden, &missing, "no-such-prompt");
    }
    // Completion of a hidden prompt's argument is refused the same way.
    let complete = |name: &str| json!({"ref": {"type": "ref/prompt", "name": name}, "argument": {"name": "arg1", "value": "x"}});
    let hidden = c
        .request(
            4,
            "completion/complete",
            complete("test_prompt_with_arguments"),
        )
        .await;
    let missing = c
        .request(5, "completion/complete", complete("no-such-prompt"))
        .await;
    assert_same_refusal(
        &hidden,
        "test_prompt_with_arguments",
        &missing,
        "no-such-prompt",
    );
    let ok = c
        .request(
            6,
            "prompts/get",
            json!({"name": "greeting", "arguments": {"name": "Ada"}}),
        )
        .await;
    assert!(ok.to_string().contains("Hello, Ada!"), "{ok}");
}

#[tokio::test]
async fn hidden_resources_are_unlisted_and_refused_like_missing_ones() {
    let gw = Gateway::start(&config());
    let (c, _) = session(&gw, "mixed").await;
    let list = c.request(1, "resources/list", json!({})).await;
    assert_eq!(
        item_names(&list["result"], "resources", "uri"),
        ["fixture://static/hello"],
        "{list}"
    );
    let templates = c.request(2, "resources/templates/list", json!({})).await;
    assert_eq!(
        item_names(&templates["result"], "resourceTemplates", "uriTemplate"),
        ["fixture://items/{id}"],
        "{templates}"
    );
    // Hidden by an explicit deny, by default deny, and a URI that exists nowhere but that
    // no rule allows: all three the same.
    let missing = c
        .request(3, "resources/read", json!({"uri": "fixture://nope"}))
        .await;
    for hidden in [
        "fixture://static/blob",
        "fixture://watched",
        "test://static-text",
    ] {
        let r = c.request(4, "resources/read", json!({"uri": hidden})).await;
        assert_same_refusal(&r, hidden, &missing, "fixture://nope");
        let s = c
            .request(5, "resources/subscribe", json!({"uri": hidden}))
            .await;
        assert!(
            s.get("error").is_some(),
            "subscribe to hidden {hidden}: {s}"
        );
    }
    let ok = c
        .request(
            6,
            "resources/read",
            json!({"uri": "fixture://static/hello"}),
        )
        .await;
    assert_eq!(
        ok["result"]["contents"][0]["text"], "hello from the fixture",
        "{ok}"
    );
    let item = c
        .request(7, "resources/read", json!({"uri": "fixture://items/42"}))
        .await;
    assert_eq!(item["result"]["contents"][0]["text"], "item 42", "{item}");
}

#[tokio::test]
async fn a_missing_resource_in_an_allowed_namespace_is_refused_like_a_hidden_one() {
    // The caller may read fixture://static/*: reading fixture://static/nope (which does not
    // exist) must not tell it apart from fixture://static/blob (which exists, but is denied).
    let gw = Gateway::start(&config());
    let (c, _) = session(&gw, "mixed").await;
    let hidden = c
        .request(1, "resources/read", json!({"uri": "fixture://static/blob"}))
        .await;
    let missing = c
        .request(2, "resources/read", json!({"uri": "fixture://static/nope"}))
        .await;
    assert_same_refusal(
        &hidden,
        "fixture://static/blob",
        &missing,
        "fixture://static/nope",
    );
}

#[tokio::test]
async fn initialize_announces_no_kind_nobody_may_use() {
    let gw = Gateway::start(&config());
    let (_, init) = session(&gw, "tools-only").await;
    let caps = init["capabilities"].as_object().expect("capabilities");
    assert!(caps.contains_key("tools"), "{init}");
    for absent in ["prompts", "resources", "completions"] {
        assert!(
            !caps.contains_key(absent),
            "{absent} announced though nothing of it is allowed: {init}"
        );
    }
    let (_, init) = session(&gw, "mixed").await;
    let caps = init["capabilities"].as_object().expect("capabilities");
    for present in ["tools", "prompts", "resources"] {
        assert!(caps.contains_key(present), "{present} missing: {init}");
    }
    // Experimental features and tasks are never relayed, so never announced.
    for absent in ["experimental", "tasks"] {
        assert!(!caps.contains_key(absent), "{absent}: {init}");
    }
}

#[tokio::test]
async fn a_kind_nobody_may_use_is_empty_and_unreachable() {
    let gw = Gateway::start(&config());
    let (c, _) = session(&gw, "tools-only").await;
    let prompts = c.request(1, "prompts/list", json!({})).await;
    let empty = prompts.get("error").is_some() || prompts["result"]["prompts"] == json!([]);
    assert!(empty, "{prompts}");
    let resources = c.request(2, "resources/list", json!({})).await;
    let empty = resources.get("error").is_some() || resources["result"]["resources"] == json!([]);
    assert!(empty, "{resources}");
    let r = c
        .request(
            3,
            "prompts/get",
            json!({"name": "greeting", "arguments": {"name": "x"}}),
        )
        .await;
    assert!(r.get("error").is_some(), "{r}");
    let r = c
        .request(
            4,
            "resources/read",
            json!({"uri": "fixture://static/hello"}),
        )
        .await;
    assert!(r.get("error").is_some(), "{r}");
}

#[tokio::test]
async fn the_first_matching_rule_wins() {
    let gw = Gateway::start(&config());
    // deny echo, then allow *: echo is hidden, everything else allowed.
    let (c, _) = session(&gw, "deny-first").await;
    let names = item_names(
        &c.request(1, "tools/list", json!({})).await["result"],
        "tools",
        "name",
    );
    assert!(!names.iter().any(|n| n == "echo"), "{names:?}");
    assert!(names.iter().any(|n| n == "add"), "{names:?}");
    let r = c.call_tool(2, "echo", json!({"message": "x"})).await;
    let missing = c.call_tool(3, "no-such-tool", json!({})).await;
    assert_same_refusal(&r, "echo", &missing, "no-such-tool");
    let add = c.call_tool(4, "add", json!({"a": 1, "b": 2})).await;
    assert_eq!(add["result"]["content"][0]["text"], "3", "{add}");
    // allow *, then deny echo: the deny is never reached.
    let (c, _) = session(&gw, "allow-first").await;
    let names = item_names(
        &c.request(1, "tools/list", json!({})).await["result"],
        "tools",
        "name",
    );
    assert!(names.iter().any(|n| n == "echo"), "{names:?}");
    let r = c.call_tool(2, "echo", json!({"message": "reached"})).await;
    assert_eq!(r["result"]["content"][0]["text"], "reached", "{r}");
}

#[test]
fn stdio_applies_the_same_policy() {
    let mut gw = StdioGateway::start(&config(), "mixed");
    gw.initialize("2025-11-25", json!({}));
    let list = gw.request(1, "tools/list", json!({}));
    let mut names = item_names(&list["result"], "tools", "name");
    names.sort();
    assert_eq!(names, ["add", "echo"]);
    let hidden = gw.request(2, "tools/call", json!({"name": "crash", "arguments": {}}));
    let missing = gw.request(3, "tools/call", json!({"name": "nope", "arguments": {}}));
    assert_same_refusal(&hidden, "crash", &missing, "nope");
    // The hidden tool really was not run: the upstream is still alive.
    let echo = gw.request(
        4,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "alive"}}),
    );
    assert_eq!(echo["result"]["content"][0]["text"], "alive");
}

/// The decision log line of one call: the structured fields a reader (or a log pipeline)
/// greps for, from the gateway's stderr.
fn decision_lines(gw: &Gateway, name: &str) -> Vec<String> {
    gw.proc
        .stderr()
        .lines()
        .filter(|l| l.contains("portcullis::decision") && l.contains(&format!("name=\"{name}\"")))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn every_decision_is_logged_with_its_rule() {
    let gw = Gateway::start(&config());
    let (c, _) = session(&gw, "deny-first").await;
    c.call_tool(1, "echo", json!({"message": "x"})).await;
    c.call_tool(2, "add", json!({"a": 1, "b": 2})).await;
    // Log lines reach stderr within the logger's flush interval.
    assert!(
        support::wait_until(support::WAIT, || !decision_lines(&gw, "echo").is_empty()
            && !decision_lines(&gw, "add").is_empty()),
        "no decision lines in:\n{}",
        gw.proc.stderr()
    );
    let denied = decision_lines(&gw, "echo").join("\n");
    for field in [
        "decision=\"deny\"",
        "server=\"deny-first\"",
        "method=\"tools/call\"",
        "rule=rule 5 (",
        "principal=anonymous",
        "transport=\"http\"",
    ] {
        assert!(denied.contains(field), "{field} missing from: {denied}");
    }
    let allowed = decision_lines(&gw, "add").join("\n");
    assert!(
        allowed.contains("decision=\"allow\"") && allowed.contains("rule=rule 6 ("),
        "{allowed}"
    );
}
