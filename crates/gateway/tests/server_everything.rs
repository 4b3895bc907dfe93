//! `@modelcontextprotocol/server-everything` (the TypeScript reference server, which speaks
//! 2025-11-25) as an upstream of Portcullis, over stdio and over Streamable HTTP, driven by
//! the official Python SDK client in `mode="legacy"` (`tests/peers/mcp_client.py`, scenario
//! `everything`).
//!
//! The client lists everything the server offers through the gateway, then calls every tool
//! with arguments chosen from the server's source (`dist/tools/*.js`): the ones that ask the
//! client for sampling, elicitation (form and URL) and roots are answered by the client's
//! callbacks; the ones that start unsolicited logging and resource updates are watched
//! until a message arrives (bounded). It reads every resource (the session resource that
//! `gzip-file-as-resource` creates included) and an instance of every template, gets every
//! prompt and completes prompt and template arguments. One rule allows everything on the
//! server.
//!
//! Calls that legitimately do not succeed:
//! - `simulate-research-query` is registered with `taskSupport: "required"`; a call without
//!   task augmentation (the Python SDK has none) gets a tool result with `isError: true`
//!   ("requires task augmentation") from the server itself.
//! - `trigger-url-elicitation` with `errorPath: true` answers with the JSON-RPC error -32042
//!   (URL elicitation required) on purpose; the retry succeeds.
//! - `trigger-sampling-request-async` and `trigger-elicitation-request-async` are not listed:
//!   the server registers them only for clients that declare the (2025-11-25) `tasks`
//!   capability, which the Python client does not (and the gateway does not relay).
//!
//! The last tests call the tools that ask the client for something (sampling, elicitation,
//! roots) from a 2026-07-28 client, which cannot be sent requests: the gateway must bridge
//! them into `input_required` rounds.

mod support;

use serde_json::{Value, json};
use support::{EverythingHttp, Gateway, PeerSummary, PeerTarget, run_python_client};

const RULES: &str = "\n[[rules]]\nserver = \"everything\"\neffect = \"allow\"\n";

/// Every tool server-everything 2026.8.31 lists for a client that declares sampling,
/// elicitation (form and URL) and roots, but not tasks.
const EXPECTED_TOOLS: [&str; 17] = [
    "echo",
    "get-annotated-message",
    "get-env",
    "get-resource-links",
    "get-resource-reference",
    "get-roots-list",
    "get-structured-content",
    "get-sum",
    "get-tiny-image",
    "gzip-file-as-resource",
    "simulate-research-query",
    "toggle-simulated-logging",
    "toggle-subscriber-updates",
    "trigger-elicitation-request",
    "trigger-long-running-operation",
    "trigger-sampling-request",
    "trigger-url-elicitation",
];

/// Tools whose result is `isError: true` by design, and the text that says why.
const TOOL_ERRORS_BY_DESIGN: [(&str, &str); 1] =
    [("simulate-research-query", "requires task augmentation")];

const EXPECTED_PROMPTS: [&str; 4] = [
    "args-prompt",
    "completable-prompt",
    "resource-prompt",
    "simple-prompt",
];

const ROOT_URI: &str = "file:///tmp/portcullis-e2e-root";
const GZ_RESOURCE: &str = "demo://resource/session/portcullis-e2e.txt.gz";

/// What the gateway passes a stdio server from its environment by default.
const DEFAULT_ENV_PASS: [&str; 6] = ["HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER"];

fn stdio_config() -> String {
    format!(
        "[servers.everything]\ncommand = [\"{}\", \"{}\", \"stdio\"]\npinning = \"off\"\n{RULES}",
        support::node22().display(),
        support::server_everything_js().display()
    )
}

fn http_config(url: &str) -> String {
    format!("[servers.everything]\nurl = \"{url}\"\n{RULES}")
}

/// Runs a scenario against `portcullis serve`, with the gateway's log in the summary.
fn run_over_http(gw: &Gateway, scenario: &str, mode: &str, extra: &[&str]) -> PeerSummary {
    let target = PeerTarget::Url(gw.url("everything"));
    let mut summary = run_python_client(scenario, mode, &target, extra);
    let peer = summary["peer_stderr"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    summary["peer_stderr"] =
        Value::String(format!("{peer}\n--- gateway stderr\n{}", gw.proc.stderr()));
    PeerSummary(summary)
}

fn contains(haystack: &str, needle: &str) -> bool {
    haystack.contains(needle)
}

/// Everything the `everything` scenario must have seen, whatever the transports.
fn assert_everything_session(s: &PeerSummary) {
    s.assert_clean_run();
    assert_eq!(s.0["protocol_version"], "2025-11-25");
    assert_eq!(s.0["server_info"]["name"], "mcp-servers/everything");
    s.ok("ping");
    s.ok("logging/setLevel");
    s.ok("resources/subscribe");
    s.ok("resources/unsubscribe");

    // Every tool it offers is listed through the gateway, conditional ones included: the
    // gateway declared the client's sampling/elicitation/roots capabilities upstream.
    let mut tools = s.names("tools/list", "tools", "name");
    tools.sort();
    assert_eq!(tools, EXPECTED_TOOLS, "tools/list through the gateway");
    assert_eq!(
        s.0["steps"]["synthesized arguments for"],
        json!([]),
        "a tool without chosen arguments"
    );

    // Every tool was called and answered without a JSON-RPC error; isError only by design.
    for tool in EXPECTED_TOOLS {
        let step = format!("tools/call {tool}");
        match TOOL_ERRORS_BY_DESIGN.iter().find(|(t, _)| *t == tool) {
            Some((_, why)) => {
                let result = s.ok(&step);
                assert_eq!(result["isError"], true, "{step}: {result}");
                assert!(contains(&s.text(&step), why), "{step}: {result}");
            }
            None => {
                s.tool_ok(&step);
            }
        }
    }

    assert_eq!(s.text("tools/call echo"), "Echo: hello everything");
    assert_eq!(s.text("tools/call get-sum"), "The sum of 19 and 23 is 42.");
    assert_eq!(
        s.ok("tools/call get-structured-content")["structuredContent"],
        json!({"temperature": 36, "conditions": "Light rain / drizzle", "humidity": 82})
    );
    let annotated = &s.ok("tools/call get-annotated-message")["content"];
    assert_eq!(annotated[0]["annotations"]["priority"], 0.7, "{annotated}");
    assert_eq!(annotated[1]["type"], "image", "{annotated}");
    let image = &s.ok("tools/call get-tiny-image")["content"][1];
    assert_eq!(image["mimeType"], "image/png");
    assert!(
        image["data"]
            .as_str()
            .is_some_and(|d| d.starts_with("iVBORw0KGgo")),
        "a PNG, base64: {image}"
    );
    let links = s.ok("tools/call get-resource-links")["content"]
        .as_array()
        .expect("content")
        .iter()
        .filter(|b| b["type"] == "resource_link")
        .count();
    assert_eq!(links, 4, "resource links");
    assert_eq!(
        s.ok("tools/call get-resource-reference")["content"][1]["resource"]["uri"],
        "demo://resource/dynamic/blob/3"
    );

    // gzip-file-as-resource: a resource link to a session resource, read back below.
    assert_eq!(
        s.ok("tools/call gzip-file-as-resource")["content"][0]["uri"],
        GZ_RESOURCE
    );
    assert_eq!(
        s.0["steps"]["gzip round trip"], true,
        "the gzipped session resource, read back through the gateway, is the file we sent"
    );

    // Unsolicited server traffic reaches the client: a simulated log message, and a
    // resources/updated for the subscribed URI.
    assert_eq!(
        s.0["steps"]["simulated log seen"], true,
        "no log from toggle-simulated-logging"
    );
    s.tool_ok("tools/call toggle-simulated-logging (off)");
    assert_eq!(
        s.0["steps"]["resource update seen"], true,
        "no resources/updated from toggle-subscriber-updates"
    );
    s.tool_ok("tools/call toggle-subscriber-updates (off)");
    let logs = s.seen("logs");
    assert!(
        logs.iter().any(|l| l["data"]
            .as_str()
            .is_some_and(|d| d.starts_with("Received Subscribe Resource request"))),
        "the log the server sends on resources/subscribe: {logs:?}"
    );

    // Progress of the long-running operation, step by step.
    let progress: Vec<f64> = s.0["steps"]["progress"]
        .as_array()
        .expect("progress")
        .iter()
        .map(|p| {
            assert_eq!(p["total"], 3.0, "{p}");
            p["progress"].as_f64().expect("progress")
        })
        .collect();
    assert_eq!(
        progress,
        [1.0, 2.0, 3.0],
        "progress of the long-running operation"
    );

    // Server→client requests, answered by the client's callbacks.
    assert!(
        s.0["roots_requests"].as_u64() >= Some(1),
        "roots/list never reached the client"
    );
    assert!(
        contains(&s.text("tools/call get-roots-list"), ROOT_URI),
        "{}",
        s.text("tools/call get-roots-list")
    );
    let sampled = s.text("tools/call trigger-sampling-request");
    assert!(
        contains(&sampled, "portcullis-e2e-model")
            && contains(&sampled, "say hi through the gateway"),
        "{sampled}"
    );
    let elicited = s.text("tools/call trigger-elicitation-request");
    assert!(contains(&elicited, "Name: Ada Lovelace"), "{elicited}");
    let elicitations = s.seen("elicitation_requests");
    assert!(
        elicitations
            .iter()
            .any(|e| e["mode"] == "url" && e["url"] == "http://127.0.0.1:9/portcullis-e2e-consent"),
        "no URL elicitation reached the client: {elicitations:?}"
    );
    assert!(contains(
        &s.text("tools/call trigger-url-elicitation"),
        "User completed the URL elicitation flow"
    ));
    // The error path: -32042 with the prerequisite elicitation, relayed as is; then the retry.
    let required = s.error("tools/call trigger-url-elicitation errorPath");
    assert_eq!(required["code"], -32042, "{required}");
    assert_eq!(
        required["data"]["elicitations"][0]["mode"], "url",
        "{required}"
    );
    assert!(contains(
        &s.text("tools/call trigger-url-elicitation errorPath retry"),
        "Elicitation ID: portcullis-e2e"
    ));

    // Resources: the static documents, the session resource, and every template instance.
    let uris = s.names("resources/list (after tools)", "resources", "uri");
    assert!(
        uris.iter()
            .filter(|u| u.starts_with("demo://resource/static/document/"))
            .count()
            >= 1,
        "{uris:?}"
    );
    assert!(uris.iter().any(|u| u == GZ_RESOURCE), "{uris:?}");
    for uri in &uris {
        let read = s.ok(&format!("resources/read {uri}"));
        assert_eq!(read["contents"][0]["uri"], uri.as_str(), "{read}");
    }
    let mut templates = s.names(
        "resources/templates/list",
        "resourceTemplates",
        "uriTemplate",
    );
    templates.sort();
    assert_eq!(
        templates,
        [
            "demo://resource/dynamic/blob/{resourceId}",
            "demo://resource/dynamic/text/{resourceId}"
        ]
    );
    assert!(contains(
        s.ok("resources/read demo://resource/dynamic/text/5")["contents"][0]["text"]
            .as_str()
            .unwrap_or_default(),
        "Resource 5: This is a plaintext resource"
    ));
    assert!(
        s.ok("resources/read demo://resource/dynamic/blob/5")["contents"][0]["blob"].is_string()
    );

    // Prompts, each rendered with its arguments.
    let mut prompts = s.names("prompts/list", "prompts", "name");
    prompts.sort();
    assert_eq!(prompts, EXPECTED_PROMPTS);
    let prompt_text =
        |name: &str, i: usize| s.ok(&format!("prompts/get {name}"))["messages"][i].clone();
    assert_eq!(
        prompt_text("simple-prompt", 0)["content"]["text"],
        "This is a simple prompt without arguments."
    );
    assert_eq!(
        prompt_text("args-prompt", 0)["content"]["text"],
        "What's weather in Lisbon, Portugal?"
    );
    assert_eq!(
        prompt_text("completable-prompt", 0)["content"]["text"],
        "Please promote Alice to the head of the Engineering team."
    );
    assert_eq!(
        prompt_text("resource-prompt", 1)["content"]["resource"]["uri"],
        "demo://resource/dynamic/text/2"
    );

    // Completion: a prompt argument, one that depends on another, a template variable.
    let values = |step: &str| s.ok(step)["completion"]["values"].clone();
    assert_eq!(
        values("completion/complete completable-prompt department"),
        json!(["Engineering"])
    );
    assert_eq!(
        values("completion/complete completable-prompt name"),
        json!(["David", "Eve", "Frank"])
    );
    assert_eq!(
        values("completion/complete resource template"),
        json!(["3"])
    );
}

/// A stdio upstream gets only the variables the gateway passes by default, nothing else of
/// the gateway's own environment (which, under `cargo test`, is full of `CARGO_*`).
fn assert_scrubbed_environment(s: &PeerSummary) {
    let env: serde_json::Map<String, Value> =
        serde_json::from_str(&s.text("tools/call get-env")).expect("get-env prints JSON");
    for name in env.keys() {
        assert!(
            DEFAULT_ENV_PASS.contains(&name.as_str()),
            "the stdio upstream got {name} from the gateway's environment: {env:?}"
        );
    }
}

#[test]
fn server_everything_over_stdio_offers_every_tool_resource_and_prompt_through_the_http_gateway() {
    let gw = Gateway::start(&stdio_config());
    let s = run_over_http(&gw, "everything", "legacy", &[]);
    assert_everything_session(&s);
    assert_scrubbed_environment(&s);
}

#[test]
fn server_everything_over_http_offers_every_tool_resource_and_prompt_through_the_http_gateway() {
    let upstream = EverythingHttp::start();
    let gw = Gateway::start(&http_config(&upstream.url));
    let s = run_over_http(&gw, "everything", "legacy", &[]);
    assert_everything_session(&s);
}

#[test]
fn server_everything_over_stdio_offers_every_tool_resource_and_prompt_through_the_stdio_gateway() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("portcullis.toml");
    std::fs::write(&config, stdio_config()).expect("write config");
    let target = PeerTarget::portcullis_stdio("everything", &config);
    let s = PeerSummary(run_python_client("everything", "legacy", &target, &[]));
    assert_everything_session(&s);
    assert_scrubbed_environment(&s);
}

/// What a 2026-07-28 client must see of the server-everything tools that ask the client
/// for something: their answers, from the client's own callbacks.
///
/// server-everything speaks 2025-11-25 only, so it sends sampling/createMessage,
/// elicitation/create and roots/list requests; a 2026-07-28 client cannot be sent requests.
/// The gateway bridges: it holds the upstream call, answers the client with an
/// `input_required` result (its own `requestState`), and completes the upstream request
/// with the `inputResponses` of the client's retry.
///
/// The stdio-upstream tests fail intermittently (about one run in four on 2 cores under
/// `cargo test`'s parallelism) with "MCP error -32601: no client request of this stateless
/// client is waiting for input" as a tool's text: in `Session::forward_once`
/// (session/relay.rs) the client request's input channel is registered in `inputs` only
/// after `start_request` has sent the call upstream, so a server→client request the upstream
/// sends at once can be routed (`route_input_request`, session/mrtr.rs) before the channel
/// exists, and is refused. Registering the channel before `start_request` (and removing it
/// if that fails) made it disappear in a scratch build (0 of 12 runs, against 3 of 12).
fn assert_asks_answered(s: &PeerSummary) {
    s.assert_clean_run();
    assert_eq!(s.0["protocol_version"], "2026-07-28");
    assert_eq!(s.text("tools/call echo"), "Echo: hello everything");
    let sampled = s.text("tools/call trigger-sampling-request");
    assert!(
        contains(&sampled, "portcullis-e2e-model")
            && contains(&sampled, "say hi through the gateway"),
        "{sampled}"
    );
    let elicited = s.text("tools/call trigger-elicitation-request");
    assert!(contains(&elicited, "Name: Ada Lovelace"), "{elicited}");
    let roots = s.text("tools/call get-roots-list");
    assert!(contains(&roots, ROOT_URI), "{roots}");
    assert_eq!(
        s.seen("sampling_requests").len(),
        1,
        "sampling callback calls"
    );
    assert_eq!(
        s.seen("elicitation_requests").len(),
        1,
        "elicitation callback calls"
    );
    assert!(
        s.0["roots_requests"].as_u64() >= Some(1),
        "roots callback never called"
    );
}

#[test]
fn python_sdk_2026_client_answers_what_a_stdio_legacy_upstream_asks_through_the_http_gateway() {
    let gw = Gateway::start(&stdio_config());
    let s = run_over_http(&gw, "everything-asks", "2026-07-28", &[]);
    assert_asks_answered(&s);
}

#[test]
fn python_sdk_2026_client_answers_what_a_stdio_legacy_upstream_asks_through_the_stdio_gateway() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("portcullis.toml");
    std::fs::write(&config, stdio_config()).expect("write config");
    let target = PeerTarget::portcullis_stdio("everything", &config);
    let s = PeerSummary(run_python_client(
        "everything-asks",
        "2026-07-28",
        &target,
        &[],
    ));
    assert_asks_answered(&s);
}

/// The same with server-everything over HTTP. Its sampling and elicitation requests ride on
/// the call's own response stream and are bridged; but `get-roots-list` asks with
/// `roots/list` on its standalone GET stream, which the gateway's upstream connection for
/// 2026-07-28 clients (one shared connection) never opens, although it declared `roots`
/// upstream (`ClientCapsForUpstream::shared`). The request is neither bridged nor refused:
/// the call waits for server-everything's own 60 s request timeout, and the client's 20 s
/// step deadline records a timeout. (Over stdio, above, the gateway sees the request.)
#[test]
fn python_sdk_2026_client_answers_what_an_http_legacy_upstream_asks_through_the_http_gateway() {
    let upstream = EverythingHttp::start();
    let gw = Gateway::start(&http_config(&upstream.url));
    let s = run_over_http(
        &gw,
        "everything-asks",
        "2026-07-28",
        &["--step-timeout", "20"],
    );
    assert_asks_answered(&s);
}
