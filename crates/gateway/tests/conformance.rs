//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, the stable
//! release and the next one with the 2026-07-28 scenarios) run against the bundled fixture
//! server directly, then through the gateway — in front of the fixture over stdio and over
//! Streamable HTTP. Every scenario must end the same way through the gateway as it does
//! directly: the gateway may not break anything a real client relies on.
//!
//! `scripts/conformance` runs the suite and writes a per-scenario summary; this test runs it
//! three times and compares.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::{FixtureHttp, Gateway};

/// Per scenario: "pass" or "fail".
type Outcomes = BTreeMap<String, String>;

fn run_suite(url: &str, out: &Path, next: bool) -> Outcomes {
    let mut cmd = Command::new(support::workspace_root().join("scripts/conformance"));
    cmd.arg(url).arg(out);
    if next {
        cmd.arg("--next");
    }
    cmd.env("PORTCULLIS_PEERS", support::peers());
    let (_ok, stdout, stderr) = support::run_with_timeout(cmd, Duration::from_secs(600));
    let text = std::fs::read_to_string(out.join("summary.json")).unwrap_or_else(|e| {
        panic!("no summary from the conformance run ({e}):\n{stdout}\n{stderr}")
    });
    let summary: BTreeMap<String, Value> = serde_json::from_str(&text).expect("summary.json");
    summary
        .into_iter()
        .map(|(k, v)| (k, v["status"].as_str().unwrap_or("missing").to_owned()))
        .collect()
}

fn run_both(url: &str, dir: &Path) -> Outcomes {
    let mut all = run_suite(url, &dir.join("stable"), false);
    all.extend(run_suite(url, &dir.join("next"), true));
    all
}

fn allow_all(server_toml: &str) -> String {
    format!(
        "[gateway]\nmax_sessions = 1000\n\n{server_toml}\n[[rules]]\nserver = \"conf\"\neffect = \"allow\"\n"
    )
}

fn differences(direct: &Outcomes, through: &Outcomes) -> Vec<String> {
    direct
        .iter()
        .filter(|(k, v)| through.get(*k) != Some(*v))
        .map(|(k, v)| {
            format!(
                "{k}: {v} directly, {} through the gateway",
                through.get(k).map_or("missing", String::as_str)
            )
        })
        .collect()
}

#[test]
fn every_scenario_ends_the_same_through_the_gateway_as_directly() {
    let work = tempfile::tempdir().unwrap();

    let fixture = FixtureHttp::start(&[]);
    // The conformance client must reach the server as localhost (dns-rebinding-protection).
    let direct = run_both(&fixture.url, &work.path().join("direct"));
    assert!(
        direct.values().any(|s| s == "pass"),
        "nothing passed directly: {direct:?}"
    );

    let over_stdio = Gateway::start(&allow_all(&support::fixture_stdio_server("conf")));
    let through_stdio = run_both(&over_stdio.url("conf"), &work.path().join("gateway-stdio"));
    drop(over_stdio);

    let over_http = Gateway::start(&allow_all(&format!(
        "[servers.conf]\nurl = \"{}\"\n",
        fixture.url
    )));
    let through_http = run_both(&over_http.url("conf"), &work.path().join("gateway-http"));

    let mut problems = differences(&direct, &through_stdio);
    problems.extend(
        differences(&direct, &through_http)
            .into_iter()
            .map(|p| format!("(HTTP upstream) {p}")),
    );
    assert!(
        problems.is_empty(),
        "conformance differs through the gateway (results under {}):\n{}",
        work.keep().display(),
        problems.join("\n")
    );
}
