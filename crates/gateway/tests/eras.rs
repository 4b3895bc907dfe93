//! Input requests across protocol eras. A stateful upstream asks its client for input with a
//! server→client request; a 2026-07-28 client can only be asked with an `input_required`
//! result and answers by retrying. The gateway bridges both ways round, and the
//! `requestState` it issues works only for the call and the caller it was issued for.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Gateway, RawHttp};

fn upstream_speaking(protocol: &str) -> String {
    format!(
        "{}protocol = \"{protocol}\"\n[[rules]]\nserver = \"demo\"\neffect = \"allow\"\n",
        support::fixture_stdio_server("demo")
    )
}

fn meta(caps: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": caps,
    })
}

/// A stateless `tools/call sample` with the headers that mirror it.
async fn call_sample(c: &RawHttp, id: i64, params: Value) -> Value {
    let body = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params });
    let headers = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "sample"),
    ];
    let a = c.post_with(body.to_string(), &headers).await;
    a.response().clone()
}

fn sample_params(prompt: &str, caps: Value) -> Value {
    json!({ "name": "sample", "arguments": { "prompt": prompt }, "_meta": meta(caps) })
}

#[tokio::test]
async fn a_stateless_client_answers_a_stateful_upstreams_sampling_through_input_required() {
    let gw = Gateway::start(&upstream_speaking("2025-11-25"));
    let c = RawHttp::new(&gw.url("demo"));
    let first = call_sample(&c, 1, sample_params("hello", json!({ "sampling": {} }))).await;
    let result = &first["result"];
    assert_eq!(result["resultType"], "input_required", "{first}");
    let requests = result["inputRequests"].as_object().expect("inputRequests");
    assert_eq!(requests.len(), 1);
    let (key, request) = requests.iter().next().unwrap();
    assert_eq!(request["method"], "sampling/createMessage");
    let state = result["requestState"].as_str().expect("requestState");

    let mut retry = sample_params("hello", json!({ "sampling": {} }));
    retry["requestState"] = json!(state);
    retry["inputResponses"] = json!({ key: {
        "role": "assistant", "content": { "type": "text", "text": "from the client" },
        "model": "m", "stopReason": "endTurn"
    }});
    let done = call_sample(&c, 2, retry).await;
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    assert!(
        done["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("from the client"),
        "{done}"
    );
}

#[tokio::test]
async fn a_request_state_replayed_for_other_arguments_is_refused_and_spent() {
    let gw = Gateway::start(&upstream_speaking("2025-11-25"));
    let c = RawHttp::new(&gw.url("demo"));
    let first = call_sample(&c, 1, sample_params("hello", json!({ "sampling": {} }))).await;
    let state = first["result"]["requestState"]
        .as_str()
        .expect("requestState")
        .to_owned();
    let key = first["result"]["inputRequests"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let answer = json!({ key: { "role": "assistant", "content": { "type": "text", "text": "x" }, "model": "m" } });

    let mut other = sample_params("something else", json!({ "sampling": {} }));
    other["requestState"] = json!(state);
    other["inputResponses"] = answer.clone();
    let refused = call_sample(&c, 2, other).await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");

    // The token is spent: even the right call cannot use it any more.
    let mut right = sample_params("hello", json!({ "sampling": {} }));
    right["requestState"] = json!(state);
    right["inputResponses"] = answer;
    let again = call_sample(&c, 3, right).await;
    assert_eq!(again["error"]["code"], -32602, "{again}");

    let mut forged = sample_params("hello", json!({ "sampling": {} }));
    forged["requestState"] = json!("portcullis.not-a-token-the-gateway-issued");
    forged["inputResponses"] = json!({});
    let forged = call_sample(&c, 4, forged).await;
    assert_eq!(forged["error"]["code"], -32602, "{forged}");
}

#[tokio::test]
async fn a_stateless_client_without_the_capability_is_never_asked() {
    let gw = Gateway::start(&upstream_speaking("2025-11-25"));
    let c = RawHttp::new(&gw.url("demo"));
    let r = call_sample(&c, 1, sample_params("hello", json!({}))).await;
    assert_ne!(r["result"]["resultType"], "input_required", "{r}");
    let refused = r.get("error").is_some() || r["result"]["isError"] == true;
    assert!(
        refused,
        "the upstream's sampling request must be refused: {r}"
    );
}

fn python(args: &[&str]) -> Value {
    let mut cmd = Command::new(support::python());
    support::isolate_state(&mut cmd);
    cmd.arg(support::workspace_root().join("crates/gateway/tests/peers/mrtr_client.py"))
        .args(args);
    let (ok, stdout, stderr) = support::run_with_timeout(cmd, Duration::from_secs(60));
    assert!(ok, "python client failed:\n{stdout}\n{stderr}");
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn the_python_sdk_samples_across_eras_in_both_directions() {
    // Each client era against an upstream held to the other era, over HTTP and over stdio.
    for (client, upstream) in [("2026-07-28", "2025-11-25"), ("legacy", "2026-07-28")] {
        let config = upstream_speaking(upstream);
        let gw = Gateway::start(&config);
        let over_http = python(&["http", &gw.url("demo"), client]);
        assert_eq!(
            over_http["text"], "sampled: hello",
            "client {client}, upstream {upstream}, HTTP: {over_http}"
        );
        assert_eq!(over_http["sampled"], 1);

        let exe = support::portcullis_bin();
        let path = gw.config_path();
        let over_stdio = python(&[
            "stdio",
            exe.to_str().unwrap(),
            path.to_str().unwrap(),
            "demo",
            client,
        ]);
        assert_eq!(
            over_stdio["text"], "sampled: hello",
            "client {client}, upstream {upstream}, stdio: {over_stdio}"
        );
    }
}
