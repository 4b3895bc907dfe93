//! Definition pinning (rug pulls) end to end, with the gateway binary, the bundled fixture's
//! `--rug-pull-after` and `--rename-tool` modes, and the official Python SDK client:
//!
//! - a tool whose description and schema change after it was pinned is withheld from the next
//!   list (single and virtual routes) and its call refused with the reason and the command
//!   to run, both audited; `portcullis trust fx --yes` shows the difference and accepts it,
//!   and the tool is back;
//! - the same definition under a new name is withheld as a rename;
//! - under `definitions = "strict"` a tool nobody accepted is withheld;
//! - changed instructions are not told to clients;
//! - `definitions = "off"` changes nothing.
//!
//! Each test has its own state database (`gateway.state`): pins are state.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::steps::{block_on, call_tool, list_tools, run_calls};
use support::{FixtureHttp, Gateway, PeerSummary, PeerTarget, RawHttp, StateDir, portcullis_bin};

const POLICY_DENIED: i64 = -32011;
const CLI_WAIT: Duration = Duration::from_secs(60);

/// `[servers.fx]` at `url`, a virtual route `all` over it, and everything allowed.
fn http_config(state: &StateDir, url: &str, extra: &str) -> String {
    format!(
        "{}[servers.fx]\nurl = \"{url}\"\n{extra}\n\n[virtual.all]\nservers = [\"fx\"]\n\n[[rules]]\neffect = \"allow\"\n",
        state.gateway_section()
    )
}

/// `[servers.fx]` as the bundled fixture over stdio with `args`, everything allowed.
fn stdio_config(state: &StateDir, args: &[&str], extra: &str) -> String {
    let mut argv = vec![
        portcullis_bin().display().to_string(),
        "fixture".into(),
        "stdio".into(),
    ];
    argv.extend(args.iter().map(|a| a.to_string()));
    format!(
        "{}[servers.fx]\ncommand = {argv:?}\nsandbox = \"off\"\n{extra}\n\n[[rules]]\neffect = \"allow\"\n",
        state.gateway_section()
    )
}

/// `portcullis <args…> --config <config>`: (exit code, stdout, stderr).
fn cli(config: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(portcullis_bin());
    cmd.args(args).arg("--config").arg(config);
    support::run_code_with_timeout(cmd, CLI_WAIT)
}

/// The audit records of server `fx`, as JSON.
fn audit(config: &Path) -> Vec<Value> {
    let (code, out, err) = cli(config, &["audit", "query", "--server", "fx", "--json"]);
    assert_eq!(code, Some(0), "audit query failed: {err}");
    out.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a JSON record");
            v.get("record").cloned().unwrap_or(v)
        })
        .collect()
}

fn has_record(records: &[Value], event: &str, decision: &str, name: &str) -> bool {
    records
        .iter()
        .any(|r| r["event"] == event && r["decision"] == decision && r["name"] == name)
}

#[track_caller]
fn assert_withheld(s: &PeerSummary, step: &str, tool: &str, why: &str) {
    let err = s.error(step);
    assert_eq!(
        err["code"],
        POLICY_DENIED,
        "{}",
        s.explain(step, "not a refusal")
    );
    let message = err["message"].as_str().unwrap_or_default();
    for needle in [
        &format!("tool \"{tool}\" of server \"fx\" is withheld"),
        why,
        "run `portcullis trust fx`",
        "The call was not made",
    ] {
        assert!(
            message.contains(needle),
            "{}",
            s.explain(step, &format!("the refusal does not say {needle:?}"))
        );
    }
}

#[test]
fn a_rug_pull_after_two_calls_is_withheld_until_trust_accepts_it() {
    let state = StateDir::new();
    let fixture = FixtureHttp::start(&["--tools", "echo,add", "--rug-pull-after", "2"]);
    let gw = Gateway::start(&http_config(&state, &fixture.url, ""));
    let single = PeerTarget::Url(gw.url("fx"));

    let s = run_calls(
        &single,
        json!([
            list_tools("first list"),
            call_tool("first call", "echo", json!({"message": "one"})),
            call_tool("second call", "echo", json!({"message": "two"})),
            list_tools("after the rug pull"),
            call_tool("third call", "echo", json!({"message": "three"})),
            call_tool("other tool", "add", json!({"a": 1, "b": 2})),
        ]),
    );
    s.assert_clean_run();
    assert_eq!(s.names("first list", "tools", "name"), ["echo", "add"]);
    assert_eq!(s.text("second call"), "two");
    // The changed tool is gone from the list; the unchanged one stays.
    assert_eq!(s.names("after the rug pull", "tools", "name"), ["add"]);
    assert_withheld(
        &s,
        "third call",
        "echo",
        "its definition changed since it was pinned",
    );
    let message = s.error("third call")["message"].to_string();
    assert!(
        message.contains("description, inputSchema differ"),
        "{message}"
    );
    assert_eq!(
        s.error("third call")["data"]["withheld"]["status"],
        "changed"
    );
    assert_eq!(s.text("other tool"), "3");

    // The virtual route withholds it too.
    let virtual_list = block_on(async {
        let mut c = RawHttp::new(&gw.url("all"));
        c.initialize(json!({})).await;
        c.request(1, "tools/list", json!({})).await
    });
    let names = support::item_names(&virtual_list["result"], "tools", "name");
    assert_eq!(names, ["fx.add"], "{virtual_list}");

    // Audited: the withholding and the refused call (the server's first sight is only
    // logged).
    let records = audit(&gw.config_path());
    assert!(
        !has_record(&records, "definition", "pinned", "echo"),
        "{records:#?}"
    );
    assert!(
        has_record(&records, "definition", "withheld", "echo"),
        "{records:#?}"
    );
    assert!(
        records.iter().any(|r| r["event"] == "decision"
            && r["decision"] == "withheld"
            && r["name"] == "echo"
            && r["reason"]
                .as_str()
                .is_some_and(|t| t.contains("portcullis trust fx"))),
        "{records:#?}"
    );

    // `trust` shows the difference — the words added to the description, the new schema
    // property — and accepts it.
    let (code, out, err) = cli(&gw.config_path(), &["trust", "fx", "--yes"]);
    assert_eq!(code, Some(0), "trust failed\n{out}\n{err}");
    assert!(out.contains("echo: CHANGED"), "{out}");
    assert!(
        out.contains("text [-block (empty when absent).-]{+block, and keeps `note` alongside it for the next call.+}"),
        "the removed and added words are marked: {out}"
    );
    assert!(out.contains("added   /properties/note"), "{out}");
    assert!(out.contains("unchanged (1): add"), "{out}");
    assert!(out.contains("Accepted the definitions of \"fx\""), "{out}");
    let records = audit(&gw.config_path());
    assert!(
        records.iter().any(|r| r["event"] == "trust"
            && r["decision"] == "accepted"
            && r["reason"]
                .as_str()
                .is_some_and(|t| t.contains("changed \"echo\""))),
        "{records:#?}"
    );

    // The tool is back, as it is now, in the running gateway.
    let s = run_calls(
        &single,
        json!([
            list_tools("after trust"),
            call_tool(
                "call after trust",
                "echo",
                json!({"message": "four", "note": "n"})
            ),
        ]),
    );
    s.assert_clean_run();
    assert_eq!(s.names("after trust", "tools", "name"), ["echo", "add"]);
    let echo = &s.ok("after trust")["tools"][0];
    assert!(
        echo["description"]
            .as_str()
            .is_some_and(|d| d.contains("keeps `note`"))
    );
    assert_eq!(s.text("call after trust"), "four");

    // Nothing left to accept.
    let (code, out, _) = cli(&gw.config_path(), &["trust", "fx", "--yes"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("nothing to accept"), "{out}");

    // `--remove` drops the pins (audited); the server is then as if never seen.
    let (code, out, err) = cli(&gw.config_path(), &["trust", "fx", "--remove"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        out.contains("Removed 2 definition pin(s) of \"fx\""),
        "{out}"
    );
    assert!(
        audit(&gw.config_path())
            .iter()
            .any(|r| r["event"] == "trust" && r["decision"] == "untrusted"),
        "the removal is audited"
    );
    let (code, out, _) = cli(&gw.config_path(), &["trust", "fx", "--json", "--yes"]);
    assert_eq!(code, Some(0), "{out}");
    let doc: Value = serde_json::from_str(out.trim()).expect("one JSON document");
    assert_eq!(doc["url"], fixture.url.as_str(), "{doc}");
    let statuses: Vec<&str> = doc["definitions"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| t["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(statuses, ["new", "new"], "{doc}");
}

#[test]
fn a_call_after_list_changed_is_refused_without_listing_again() {
    // Over stdio the notification reaches the gateway before the call's result: the next
    // call is checked against the new list, though the client (a raw one, which lists
    // nothing by itself) never listed again.
    let state = StateDir::new();
    let config = stdio_config(
        &state,
        &["--tools", "echo,add", "--rug-pull-after", "1"],
        "",
    );
    let gw = Gateway::start(&config);
    let (pulled, refused, other) = block_on(async {
        let mut c = RawHttp::new(&gw.url("fx"));
        c.initialize(json!({})).await;
        (
            c.call_tool(1, "echo", json!({"message": "one"})).await,
            c.call_tool(2, "echo", json!({"message": "two"})).await,
            c.call_tool(3, "add", json!({"a": 2, "b": 2})).await,
        )
    });
    assert_eq!(pulled["result"]["content"][0]["text"], "one", "{pulled}");
    assert_eq!(refused["error"]["code"], POLICY_DENIED, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("tool \"echo\" of server \"fx\" is withheld: its definition changed")
            && message.contains("run `portcullis trust fx`"),
        "{message}"
    );
    assert_eq!(other["result"]["content"][0]["text"], "4", "{other}");
}

#[test]
fn a_renamed_tool_is_withheld_as_a_rename() {
    let state = StateDir::new();
    let config = stdio_config(
        &state,
        &["--tools", "echo,add", "--rename-tool", "echo=say"],
        "",
    );
    let gw = Gateway::start(&config);
    let s = run_calls(
        &PeerTarget::Url(gw.url("fx")),
        json!([
            list_tools("first list"),
            list_tools("second list"),
            call_tool("renamed call", "say", json!({"message": "hi"})),
        ]),
    );
    s.assert_clean_run();
    assert_eq!(s.names("first list", "tools", "name"), ["echo", "add"]);
    assert_eq!(s.names("second list", "tools", "name"), ["add"]);
    assert_withheld(
        &s,
        "renamed call",
        "say",
        "it is the pinned tool \"echo\" under a new name",
    );
    assert_eq!(
        s.error("renamed call")["data"]["withheld"]["status"],
        "renamed"
    );
    let records = audit(&gw.config_path());
    assert!(
        has_record(&records, "definition", "withheld", "say"),
        "{records:#?}"
    );
}

#[test]
fn strict_mode_withholds_every_tool_nobody_accepted() {
    let state = StateDir::new();
    // Accepted: echo, by `trust` (which starts the server itself).
    let dir = tempfile::tempdir().expect("tempdir");
    let first = dir.path().join("first.toml");
    std::fs::write(
        &first,
        stdio_config(&state, &["--tools", "echo"], "definitions = \"strict\""),
    )
    .expect("write config");
    let (code, out, err) = cli(&first, &["trust", "fx", "--yes"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("echo: NEW"), "{out}");

    // The server now also offers `add`, which nobody accepted.
    let gw = Gateway::start(&stdio_config(
        &state,
        &["--tools", "echo,add"],
        "definitions = \"strict\"",
    ));
    let s = run_calls(
        &PeerTarget::Url(gw.url("fx")),
        json!([
            list_tools("list"),
            call_tool("accepted", "echo", json!({"message": "ok"})),
            call_tool("new", "add", json!({"a": 1, "b": 1})),
        ]),
    );
    s.assert_clean_run();
    assert_eq!(s.names("list", "tools", "name"), ["echo"]);
    assert_eq!(s.text("accepted"), "ok");
    assert_withheld(&s, "new", "add", "definitions = \"strict\"");
    assert_eq!(s.error("new")["data"]["withheld"]["status"], "new");
    // Under strict nothing is pinned on first sight.
    let records = audit(&gw.config_path());
    assert!(
        !has_record(&records, "definition", "pinned", "add"),
        "{records:#?}"
    );
    assert!(
        has_record(&records, "definition", "withheld", "add"),
        "{records:#?}"
    );
}

#[test]
fn under_tofu_a_tool_new_to_a_pinned_server_is_pinned_and_audited() {
    let state = StateDir::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let first = dir.path().join("first.toml");
    std::fs::write(&first, stdio_config(&state, &["--tools", "echo"], "")).expect("write");
    let (code, out, err) = cli(&first, &["trust", "fx", "--yes"]);
    assert_eq!(code, Some(0), "{out}\n{err}");

    let gw = Gateway::start(&stdio_config(&state, &["--tools", "echo,add"], ""));
    let s = run_calls(
        &PeerTarget::Url(gw.url("fx")),
        json!([
            list_tools("list"),
            call_tool("new", "add", json!({"a": 1, "b": 1}))
        ]),
    );
    s.assert_clean_run();
    assert_eq!(s.names("list", "tools", "name"), ["echo", "add"]);
    assert_eq!(s.text("new"), "2");
    let records = audit(&gw.config_path());
    assert!(
        has_record(&records, "definition", "pinned", "add"),
        "{records:#?}"
    );
    assert!(
        !records
            .iter()
            .any(|r| r["event"] == "definition" && r["name"] == "echo"),
        "{records:#?}"
    );
}

#[test]
fn changed_instructions_are_not_told_to_clients() {
    let state = StateDir::new();
    let pinned = Gateway::start(&stdio_config(&state, &["--instructions", "Use echo."], ""));
    let init = block_on(async {
        let mut c = RawHttp::new(&pinned.url("fx"));
        c.initialize(json!({})).await
    });
    assert_eq!(init["instructions"], "Use echo.", "{init}");
    drop(pinned);

    let changed = Gateway::start(&stdio_config(
        &state,
        &["--instructions", "Use echo. Prefer add for sums."],
        "",
    ));
    let init = block_on(async {
        let mut c = RawHttp::new(&changed.url("fx"));
        c.initialize(json!({})).await
    });
    assert!(init.get("instructions").is_none(), "{init}");
    let records = audit(&changed.config_path());
    assert!(
        has_record(&records, "definition", "withheld", "instructions"),
        "{records:#?}"
    );
    // `trust --json` shows the difference and accepts it; the next session is told them.
    let (code, out, err) = cli(&changed.config_path(), &["trust", "fx", "--yes", "--json"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let doc: Value = serde_json::from_str(out.trim()).expect("one JSON document");
    let instructions = &doc["definitions"]["instructions"];
    assert_eq!(instructions["status"], "changed", "{doc}");
    assert!(
        instructions["diff"]
            .as_str()
            .is_some_and(|d| d == "Use echo. {+Prefer add for sums.+}"),
        "{doc}"
    );
    assert_eq!(doc["definitions"]["accepted"], true, "{doc}");
    let init = block_on(async {
        let mut c = RawHttp::new(&changed.url("fx"));
        c.initialize(json!({})).await
    });
    assert!(
        init["instructions"]
            .as_str()
            .is_some_and(|t| t.contains("Prefer add")),
        "{init}"
    );
}

#[test]
fn definitions_off_changes_nothing() {
    let state = StateDir::new();
    let fixture = FixtureHttp::start(&["--tools", "echo", "--rug-pull-after", "1"]);
    let gw = Gateway::start(&http_config(&state, &fixture.url, "definitions = \"off\""));
    let s = run_calls(
        &PeerTarget::Url(gw.url("fx")),
        json!([
            list_tools("before"),
            call_tool("pulls the rug", "echo", json!({"message": "one"})),
            list_tools("after"),
            call_tool("still called", "echo", json!({"message": "two"})),
        ]),
    );
    s.assert_clean_run();
    assert_eq!(s.names("after", "tools", "name"), ["echo"]);
    assert!(
        s.ok("after")["tools"][0]["description"]
            .as_str()
            .is_some_and(|d| d.contains("keeps `note`"))
    );
    assert_eq!(s.text("still called"), "two");
    let records = audit(&gw.config_path());
    assert!(
        !records.iter().any(|r| r["event"] == "definition"),
        "{records:#?}"
    );
    let pins: i64 = rusqlite::Connection::open(state.db())
        .expect("open the state")
        .query_row("SELECT count(*) FROM definition_pins", [], |row| row.get(0))
        .expect("count pins");
    assert_eq!(pins, 0);
}
