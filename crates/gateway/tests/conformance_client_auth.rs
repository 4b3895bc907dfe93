//! The official MCP conformance suite's client auth scenarios, run against the gateway's
//! OAuth client (`credential = { oauth = … }`): every auth scenario the 2025-11-25
//! requirement set requires must pass.
//!
//! For each scenario the suite (`@modelcontextprotocol/conformance` 0.2.0-alpha.12, pinned
//! in `peers/package.json` as `conformance-next`) starts a mock MCP server and a mock
//! authorization server and runs `tests/peers/conformance_auth_client.py` with the server's
//! URL. That wrapper starts the real `portcullis serve` in front of the server, lists the
//! tools through it with the official Python SDK, plays the user on the gateway's connect
//! page whenever the gateway asks for it, and calls `test-tool`. The suite then judges what
//! the gateway did at the mock servers: discovery, registration (pre-registered, client ID
//! metadata document, dynamic), PKCE, `resource`, token endpoint authentication, scope
//! selection, step-up and its retry limit.
//!
//! A scenario passes when its checks hold no FAILURE and no WARNING (the suite's own rule
//! for a client), and the wrapper reached `test-tool` (for `auth/scope-retry-limit`: the
//! gateway gave up with a plain error instead). Failures name the suite's check ids.
//!
//! By hand (after `cargo build -p portcullis` and `scripts/install-peers`):
//!
//! ```text
//! PORTCULLIS_BIN=$PWD/target/debug/portcullis .peers/node22/node_modules/.bin/node \
//!   .peers/npm/node_modules/conformance-next/dist/index.js client --suite auth --spec-version 2025-11-25 \
//!   --command "$PWD/.peers/venv/bin/python $PWD/crates/gateway/tests/peers/conformance_auth_client.py"
//! ```

mod support;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

/// The spec revision whose requirement set is checked.
const REVISION: &str = "2025-11-25";

/// The client auth scenarios the 2025-11-25 requirement set requires (the suite's list is
/// compared with this one, so a new pin that changes the set is noticed, not absorbed).
const REQUIRED_AUTH: [&str; 14] = [
    "auth/metadata-default",
    "auth/metadata-var1",
    "auth/metadata-var2",
    "auth/metadata-var3",
    "auth/basic-cimd",
    "auth/scope-from-www-authenticate",
    "auth/scope-from-scopes-supported",
    "auth/scope-omitted-when-undefined",
    "auth/scope-step-up",
    "auth/scope-retry-limit",
    "auth/token-endpoint-auth-basic",
    "auth/token-endpoint-auth-post",
    "auth/token-endpoint-auth-none",
    "auth/pre-registration",
];

/// Where the gateway must give up with a plain error rather than reach the tool.
const RETRY_LIMIT: &str = "auth/scope-retry-limit";

/// Scenarios run at once (each is a Node suite, a gateway and a Python host; 2 cores).
const PARALLEL: usize = 3;

/// The suite's limit for the wrapper, the wrapper's own deadline, and ours for the suite.
const SUITE_CLIENT_TIMEOUT_MS: &str = "60000";
const WRAPPER_DEADLINE_S: &str = "45";
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

fn suite_cli() -> PathBuf {
    support::node_module("conformance-next/dist/index.js")
}

/// The suite's client auth scenarios of the requirement set (`list --requirements`).
fn listed_auth_scenarios() -> Vec<String> {
    let mut cmd = Command::new(support::node22());
    cmd.arg(suite_cli())
        .args(["list", "--client", "--requirements", REVISION]);
    let (ok, stdout, stderr) = support::run_with_timeout(cmd, Duration::from_secs(60));
    assert!(ok, "conformance list failed:\n{stdout}\n{stderr}");
    let mut in_client = false;
    let mut found = Vec::new();
    for line in stdout.lines() {
        if line.starts_with("Client scenarios") {
            in_client = true;
        } else if !line.starts_with(' ') && !line.trim().is_empty() {
            in_client = false;
        } else if let Some(name) = line.strip_prefix("  - ")
            && in_client
            && name.starts_with("auth/")
        {
            found.push(name.trim().to_owned());
        }
    }
    found
}

/// One check of a scenario's `checks.json`.
struct Check {
    id: String,
    status: String,
    description: String,
    error: Option<String>,
}

/// What one scenario run left behind.
struct Run {
    scenario: String,
    /// None: the suite wrote no (readable) checks.json.
    checks: Option<Vec<Check>>,
    /// The wrapper's JSON summary (the last line of its stdout), if it printed one.
    wrapper: Option<Value>,
    /// The wrapper's stderr (with the gateway's log tail when it failed) and the suite's
    /// console, for failure messages.
    wrapper_stderr: String,
    console: String,
}

fn files_named(dir: &Path, name: &str, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_named(&path, name, found);
        } else if path.file_name().is_some_and(|n| n == name) {
            found.push(path);
        }
    }
}

fn parse_checks(text: &str) -> Option<Vec<Check>> {
    let list: Vec<Value> = serde_json::from_str(text).ok()?;
    Some(
        list.iter()
            .map(|c| Check {
                id: c["id"].as_str().unwrap_or("?").to_owned(),
                status: c["status"].as_str().unwrap_or("?").to_owned(),
                description: c["description"].as_str().unwrap_or_default().to_owned(),
                error: c["errorMessage"].as_str().map(str::to_owned),
            })
            .collect(),
    )
}

fn wrapper_command(args: &[&str]) -> String {
    let python = support::python();
    let script = support::peer_script("conformance_auth_client.py");
    let mut parts = vec![python.display().to_string(), script.display().to_string()];
    parts.extend(args.iter().map(|a| (*a).to_owned()));
    let command = parts.join(" ");
    // The suite splits the command on spaces.
    assert!(
        parts.iter().all(|p| !p.contains(char::is_whitespace)),
        "the suite cannot run a command whose paths contain spaces: {command}"
    );
    command
}

/// Runs one scenario with the wrapper (plus `args`) as the client; results under `out`.
fn run_scenario(scenario: &str, out: &Path, args: &[&str]) -> Run {
    let dir = out.join(scenario.replace('/', "_"));
    std::fs::create_dir_all(&dir).expect("result dir");
    let mut cmd = Command::new(support::node22());
    support::isolate_state(&mut cmd);
    cmd.arg(suite_cli())
        .args(["client", "--scenario", scenario, "--spec-version", REVISION])
        .args(["--timeout", SUITE_CLIENT_TIMEOUT_MS, "--command"])
        .arg(wrapper_command(args))
        .arg("-o")
        .arg(&dir)
        .env("PORTCULLIS_BIN", support::portcullis_bin())
        .env("PORTCULLIS_CONFORMANCE_DEADLINE", WRAPPER_DEADLINE_S)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let (_code, stdout, stderr) = support::run_code_with_timeout(cmd, SCENARIO_TIMEOUT);
    let mut found = Vec::new();
    files_named(&dir, "checks.json", &mut found);
    let result_dir = (found.len() == 1).then(|| found[0].parent().expect("parent").to_owned());
    let read = |name: &str| {
        result_dir
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.join(name)).ok())
            .unwrap_or_default()
    };
    let checks = result_dir
        .as_ref()
        .and_then(|_| parse_checks(&read("checks.json")));
    let wrapper = read("stdout.txt")
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .and_then(|l| serde_json::from_str(l).ok());
    Run {
        scenario: scenario.to_owned(),
        checks,
        wrapper,
        wrapper_stderr: read("stderr.txt"),
        console: format!("{stdout}\n{stderr}"),
    }
}

/// Runs every scenario, `PARALLEL` at a time.
fn run_all(scenarios: &[String], out: &Path, args: &[&str]) -> Vec<Run> {
    let queue = Mutex::new(scenarios.iter().cloned().collect::<VecDeque<_>>());
    let runs = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| {
                loop {
                    let Some(next) = queue.lock().expect("queue").pop_front() else {
                        break;
                    };
                    let run = run_scenario(&next, out, args);
                    runs.lock().expect("runs").push(run);
                }
            });
        }
    });
    let mut runs = runs.into_inner().expect("runs");
    runs.sort_by(|a, b| a.scenario.cmp(&b.scenario));
    runs
}

fn tail(text: &str, chars: usize) -> &str {
    let start = text.char_indices().rev().nth(chars).map_or(0, |(i, _)| i);
    &text[start..]
}

/// Why a run does not count as a pass (empty: it passed).
fn problems(run: &Run) -> Vec<String> {
    let mut found = Vec::new();
    match &run.checks {
        None => found.push("the suite wrote no checks.json".to_owned()),
        Some(checks) if checks.is_empty() => found.push("the suite recorded no checks".to_owned()),
        Some(checks) => {
            for c in checks
                .iter()
                .filter(|c| c.status == "FAILURE" || c.status == "WARNING")
            {
                let error = c
                    .error
                    .as_deref()
                    .map_or(String::new(), |e| format!(" ({e})"));
                found.push(format!("{} {}: {}{error}", c.id, c.status, c.description));
            }
        }
    }
    let Some(summary) = &run.wrapper else {
        found.push("the wrapper printed no summary".to_owned());
        return found;
    };
    let outcome = summary["outcome"].as_str().unwrap_or("?");
    if run.scenario == RETRY_LIMIT {
        // Past its step-up limit the gateway must answer with a plain error, not another link.
        if summary.get("gateway_error").is_none() {
            found.push(format!(
                "the gateway did not give up with a plain error: {}",
                summary["failure"]
            ));
        }
    } else if outcome != "ok" {
        found.push(format!(
            "the wrapper did not reach test-tool: {}",
            summary["failure"]
        ));
    }
    found
}

fn report(runs: &[Run]) -> String {
    let mut text = String::new();
    for run in runs {
        let problems = problems(run);
        if problems.is_empty() {
            continue;
        }
        text.push_str(&format!("\n=== {} FAILED\n", run.scenario));
        for p in &problems {
            text.push_str(&format!("  - {p}\n"));
        }
        if let Some(summary) = &run.wrapper {
            text.push_str(&format!("  wrapper summary: {summary}\n"));
        }
        text.push_str(&format!(
            "--- wrapper stderr (tail)\n{}\n",
            tail(&run.wrapper_stderr, 6000)
        ));
        if run.checks.is_none() {
            text.push_str(&format!(
                "--- suite console (tail)\n{}\n",
                tail(&run.console, 3000)
            ));
        }
    }
    text
}

#[test]
fn every_2025_11_25_client_auth_scenario_passes_against_the_gateways_oauth_client() {
    let listed = listed_auth_scenarios();
    assert_eq!(
        listed, REQUIRED_AUTH,
        "the pinned suite requires other client auth scenarios for {REVISION} than this test knows"
    );
    let work = tempfile::tempdir().expect("tempdir");
    let runs = run_all(&listed, work.path(), &[]);
    assert_eq!(runs.len(), REQUIRED_AUTH.len());

    let failures = report(&runs);
    let passed = runs.iter().filter(|r| problems(r).is_empty()).count();
    assert!(
        failures.is_empty(),
        "{passed}/{} client auth scenarios passed (results under {}):{failures}",
        runs.len(),
        work.keep().display()
    );

    // The pre-registered client came from the scenario's context, not from registration.
    let pre = runs
        .iter()
        .find(|r| r.scenario == "auth/pre-registration")
        .and_then(|r| r.wrapper.as_ref())
        .expect("pre-registration summary");
    assert_eq!(pre["pre_registered"], true, "{pre}");
}

#[test]
fn a_host_without_url_elicitation_is_sent_to_connect_by_the_tool_result_on_step_up() {
    let work = tempfile::tempdir().expect("tempdir");
    let scenario = "auth/scope-step-up".to_owned();
    let runs = run_all(
        std::slice::from_ref(&scenario),
        work.path(),
        &["--no-url-elicitation"],
    );
    let failures = report(&runs);
    assert!(
        failures.is_empty(),
        "step-up failed for a host without URL elicitation (results under {}):{failures}",
        work.keep().display()
    );
    let summary = runs[0].wrapper.as_ref().expect("summary");
    let rounds = summary["connect_rounds"]
        .as_array()
        .expect("connect rounds");
    // The step-up comes on tools/call: its link reaches this host inside an isError result.
    assert!(
        rounds
            .iter()
            .any(|r| r["during"] == "tools/call" && r["came_as"] == "tool result"),
        "the step-up link did not come as a tool result: {summary}"
    );
}
