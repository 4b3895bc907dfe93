//! The official Python SDK (`mcp` 2.3.0) as the client, the bundled fixture as the upstream,
//! Portcullis in between: over stdio (`portcullis stdio` as the client's server command) and
//! over Streamable HTTP (`portcullis serve`), in both protocol eras (`mode="legacy"`, the
//! 2025-11-25 handshake, and `mode="2026-07-28"`, stateless) and once in `mode="auto"`.
//!
//! Each run lists the tools (the policy hides some), calls `echo` and `add`, follows `slow`'s
//! progress, answers `sample` and `elicit` from the client's callbacks, reads a text, a
//! binary and a templated resource, gets the `greeting` prompt, completes two arguments and
//! receives a log message. The client is `tests/peers/mcp_client.py`; it records what it saw
//! and the assertions are here.

mod support;

use serde_json::{Value, json};
use support::{FixtureHttp, Gateway, PeerSummary, PeerTarget, run_python_client};

/// The quickstart's policy: some fixture tools are allowed, the rest are hidden.
const RULES: &str = r#"
[[rules]]
server = "demo"
tools = ["echo", "add", "slow", "large", "sample", "elicit", "log"]
effect = "allow"

[[rules]]
server = "demo"
prompts = ["greeting", "plain"]
effect = "allow"

[[rules]]
server = "demo"
resources = ["fixture://*"]
effect = "allow"
"#;

/// The tools the rules above allow: exactly what `tools/list` must show.
const VISIBLE_TOOLS: [&str; 7] = ["add", "echo", "elicit", "large", "log", "sample", "slow"];

/// Fixture tools no rule allows; each must be absent from `tools/list`.
const HIDDEN_TOOLS: [&str; 7] = [
    "crash",
    "hang",
    "garbage",
    "unsolicited",
    "fail",
    "roots",
    "notify_resource",
];

fn stdio_fixture_config() -> String {
    format!("{}{RULES}", support::fixture_stdio_server("demo"))
}

fn http_fixture_config(url: &str) -> String {
    format!("[servers.demo]\nurl = \"{url}\"\n{RULES}")
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Era {
    /// The 2025-11-25 handshake (`initialize`, sessions).
    Legacy,
    /// The stateless 2026-07-28 protocol.
    Modern,
}

/// Runs the fixture scenario through `portcullis stdio`.
fn run_over_stdio(mode: &str) -> PeerSummary {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("portcullis.toml");
    std::fs::write(&config, stdio_fixture_config()).expect("write config");
    let target = PeerTarget::portcullis_stdio("demo", &config);
    PeerSummary(run_python_client("fixture", mode, &target, &[]))
}

/// Runs the fixture scenario through `portcullis serve`; the gateway's log joins the summary.
fn run_over_http(gw: &Gateway, mode: &str) -> PeerSummary {
    let target = PeerTarget::Url(gw.url("demo"));
    let mut summary = run_python_client("fixture", mode, &target, &[]);
    let peer = summary["peer_stderr"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    summary["peer_stderr"] =
        Value::String(format!("{peer}\n--- gateway stderr\n{}", gw.proc.stderr()));
    PeerSummary(summary)
}

/// Everything the fixture scenario must have seen, in either era.
fn assert_fixture_session(s: &PeerSummary, era: Era) {
    s.assert_clean_run();
    let version = match era {
        Era::Legacy => "2025-11-25",
        Era::Modern => "2026-07-28",
    };
    assert_eq!(s.0["protocol_version"], version, "negotiated version");

    // The policy filters the list: exactly the allowed tools, none of the hidden ones.
    let mut tools = s.names("tools/list", "tools", "name");
    tools.sort();
    assert_eq!(
        tools, VISIBLE_TOOLS,
        "tools/list must show exactly the allowed tools"
    );
    for hidden in HIDDEN_TOOLS {
        assert!(
            !tools.iter().any(|t| t == hidden),
            "{hidden} must be hidden"
        );
    }

    assert_eq!(s.text("tools/call echo"), "hello through portcullis");
    assert_eq!(s.text("tools/call add"), "42");

    // Progress: every step of `slow`, in order, for the token the client chose.
    assert_eq!(s.text("tools/call slow"), "done");
    let progress: Vec<(f64, String)> = s.0["steps"]["progress"]
        .as_array()
        .expect("progress list")
        .iter()
        .map(|p| {
            assert_eq!(p["total"], 3.0, "{p}");
            (
                p["progress"].as_f64().expect("progress value"),
                p["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        progress,
        [1.0, 2.0, 3.0].map(|n| (n, format!("step {n} of 3"))),
        "progress of slow"
    );

    assert_sampling_and_elicitation_answered(s);

    // Resources: the rule allows fixture://* only, so the conformance test:// ones are hidden.
    let uris = s.names("resources/list", "resources", "uri");
    for uri in [
        "fixture://static/hello",
        "fixture://static/blob",
        "fixture://watched",
    ] {
        assert!(uris.iter().any(|u| u == uri), "{uri} missing from {uris:?}");
    }
    assert!(
        uris.iter().all(|u| u.starts_with("fixture://")),
        "resources no rule allows are listed: {uris:?}"
    );
    assert_eq!(
        s.names(
            "resources/templates/list",
            "resourceTemplates",
            "uriTemplate"
        ),
        ["fixture://items/{id}"]
    );
    assert_eq!(
        s.ok("resources/read hello")["contents"][0]["text"],
        "hello from the fixture"
    );
    let blob = s.ok("resources/read blob")["contents"][0]["blob"]
        .as_str()
        .expect("blob")
        .to_owned();
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .expect("base64 blob");
    assert_eq!(
        bytes,
        (0..=255).collect::<Vec<u8>>(),
        "every byte value, in order"
    );
    assert_eq!(
        s.ok("resources/read item 42")["contents"][0]["text"],
        "item 42"
    );

    // Prompts: listed as the policy allows, rendered with the client's argument.
    let mut prompts = s.names("prompts/list", "prompts", "name");
    prompts.sort();
    assert_eq!(prompts, ["greeting", "plain"]);
    assert_eq!(
        s.ok("prompts/get greeting")["messages"][0]["content"]["text"],
        "Hello, Ada!"
    );

    // Completion, for a prompt argument and for a resource template variable.
    assert_eq!(
        s.ok("completion/complete greeting")["completion"]["values"],
        json!(["Ada", "Alan"])
    );
    assert_eq!(
        s.ok("completion/complete items")["completion"]["values"],
        json!(["42"])
    );

    // Logging: legacy sets the level with logging/setLevel; 2026-07-28 carries it in each
    // request's _meta (the client sets log_level="debug").
    if era == Era::Legacy {
        s.ok("logging/setLevel");
    }
    assert_eq!(s.text("tools/call log"), "ok");
    assert!(
        s.seen("logs")
            .iter()
            .any(|l| l["data"] == "logged through portcullis" && l["level"] == "warning"),
        "the log message never reached the client: {:?}",
        s.seen("logs")
    );

    assert_results_fit_the_era(s, era);
}

/// The fixture's `sample` and `elicit` tools ask the client; the client's callbacks answer
/// and the answers reach the tools.
///
/// Legacy: the fixture's sampling/createMessage and elicitation/create requests are relayed
/// to the client (on the call's own stream over HTTP). 2026-07-28, where a client cannot be
/// sent requests: when the gateway speaks 2026-07-28 to the fixture (it discovers an HTTP
/// fixture), the fixture answers `input_required` and the gateway carries both rounds; when
/// it speaks 2025-11-25 (a stdio fixture), the gateway parks the upstream call, answers the
/// client `input_required` with its own `requestState`, and hands the retry's
/// `inputResponses` to the fixture as the answers to its requests. (That bridge has a race,
/// described in server_everything.rs at `assert_asks_answered`, which the fast fixture has
/// not been seen to trigger.)
fn assert_sampling_and_elicitation_answered(s: &PeerSummary) {
    assert_eq!(
        s.text("tools/call sample"),
        "sampled reply to: is the portcullis up?"
    );
    let sampling = s.seen("sampling_requests");
    assert_eq!(sampling.len(), 1, "one sampling request: {sampling:?}");
    assert_eq!(
        sampling[0]["messages"][0]["content"]["text"],
        "is the portcullis up?"
    );
    assert_eq!(
        s.text("tools/call elicit"),
        r#"action=accept content={"answer":"blue"}"#
    );
    let elicitation = s.seen("elicitation_requests");
    assert_eq!(elicitation.len(), 1, "one elicitation: {elicitation:?}");
    assert_eq!(elicitation[0]["message"], "favourite colour?");
}

/// A legacy client never sees 2026-07-28 result fields; a 2026-07-28 client gets
/// `resultType` on every result and cache hints on every cacheable one, always `private`
/// because what the gateway returns is filtered for the caller.
fn assert_results_fit_the_era(s: &PeerSummary, era: Era) {
    let steps = s.0["steps"].as_object().expect("steps");
    for (name, record) in steps {
        let Some(result) = record.get("ok").and_then(Value::as_object) else {
            continue;
        };
        let cacheable = name.contains("/list") || name.starts_with("resources/read");
        match era {
            Era::Legacy => {
                for key in ["resultType", "ttlMs", "cacheScope"] {
                    assert!(
                        !result.contains_key(key),
                        "{name}: a 2025-11-25 client got the 2026-07-28 field {key}"
                    );
                }
            }
            Era::Modern => {
                assert_eq!(
                    result.get("resultType"),
                    Some(&json!("complete")),
                    "{name}: no resultType"
                );
                if cacheable {
                    assert_eq!(result.get("cacheScope"), Some(&json!("private")), "{name}");
                    assert!(
                        result.get("ttlMs").is_some_and(Value::is_u64),
                        "{name}: no ttlMs"
                    );
                }
            }
        }
    }
}

#[test]
fn python_sdk_legacy_over_stdio_gateway_reaches_every_fixture_feature() {
    let s = run_over_stdio("legacy");
    assert_fixture_session(&s, Era::Legacy);
}

#[test]
fn python_sdk_legacy_over_http_gateway_reaches_every_fixture_feature() {
    let gw = Gateway::start(&stdio_fixture_config());
    let s = run_over_http(&gw, "legacy");
    assert_fixture_session(&s, Era::Legacy);
}

#[test]
fn python_sdk_legacy_over_http_gateway_reaches_every_feature_of_an_http_fixture() {
    let upstream = FixtureHttp::start(&[]);
    let gw = Gateway::start(&http_fixture_config(&upstream.url));
    let s = run_over_http(&gw, "legacy");
    assert_fixture_session(&s, Era::Legacy);
}

#[test]
fn python_sdk_2026_over_stdio_gateway_reaches_every_fixture_feature() {
    let s = run_over_stdio("2026-07-28");
    assert_fixture_session(&s, Era::Modern);
}

#[test]
fn python_sdk_2026_over_http_gateway_reaches_every_fixture_feature() {
    let gw = Gateway::start(&stdio_fixture_config());
    let s = run_over_http(&gw, "2026-07-28");
    assert_fixture_session(&s, Era::Modern);
}

/// `mode="auto"` probes with `server/discover` first; the gateway answers it, so the client
/// settles on 2026-07-28 without falling back to `initialize`.
#[test]
fn python_sdk_auto_over_http_gateway_negotiates_2026_and_reaches_every_fixture_feature() {
    let gw = Gateway::start(&stdio_fixture_config());
    let s = run_over_http(&gw, "auto");
    assert_eq!(
        s.0["server_info"]["name"], "portcullis-fixture",
        "the discover result names the server"
    );
    assert_fixture_session(&s, Era::Modern);
}

/// The gateway initializes the HTTP fixture with the 2025-11-25 handshake (`protocol =
/// "auto"` prefers it) and serves a 2026-07-28 client on that session. The client's
/// per-request envelope (`_meta` protocolVersion 2026-07-28, clientCapabilities, …) must not
/// travel upstream: it would contradict the session's `MCP-Protocol-Version: 2025-11-25`
/// header. (It once did, and the fixture refused every request, `tools/list` included,
/// with -32020 "MCP-Protocol-Version header (2025-11-25) does not match request _meta
/// protocolVersion (2026-07-28)".)
#[test]
fn python_sdk_2026_over_http_gateway_reaches_every_feature_of_an_http_fixture() {
    let upstream = FixtureHttp::start(&[]);
    let gw = Gateway::start(&http_fixture_config(&upstream.url));
    let s = run_over_http(&gw, "2026-07-28");
    assert_fixture_session(&s, Era::Modern);
}

/// The same, against the official Python SDK server as a stdio upstream, which is strict
/// about eras: it locks a connection to the era of its first request (`initialize`, from
/// the gateway) and refuses a 2026-07-28 envelope on it with -32600 ("this connection serves
/// the handshake protocol era; requests carrying the 2026-07-28 envelope are not accepted on
/// it"). Both client eras must reach its `echo` through the gateway.
#[test]
fn python_sdk_2026_over_stdio_gateway_reaches_a_python_sdk_upstream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("portcullis.toml");
    let server = format!(
        "[servers.py]\ncommand = [\"{}\", \"{}\"]\n",
        support::python().display(),
        support::peer_script("py_upstream.py").display()
    );
    let rules = "[[rules]]\nserver = \"py\"\neffect = \"allow\"\n";
    std::fs::write(&config, format!("{server}\n{rules}")).expect("write config");
    let target = PeerTarget::portcullis_stdio("py", &config);
    for (mode, era) in [("legacy", Era::Legacy), ("2026-07-28", Era::Modern)] {
        let s = PeerSummary(run_python_client("echo", mode, &target, &[]));
        s.assert_clean_run();
        assert_eq!(s.names("tools/list", "tools", "name"), ["echo"], "{mode}");
        assert_eq!(
            s.text("tools/call echo"),
            "hello through portcullis",
            "{mode}"
        );
        assert_results_fit_the_era(&s, era);
    }
}
