//! `servers.<name>.env.secrets`: a stdio server gets a secret under the name its config
//! gives, read from the gateway's environment or a file when the gateway starts; the
//! gateway's own variable is not passed, nothing prints the value, and a missing source
//! stops the gateway with an error naming it.

mod support;

use std::process::Command;

use serde_json::{Value, json};
use support::{Gateway, PeerSummary, PeerTarget, run_python_client};

const FROM_ENV: &str = "env-secret-3b9d01";
const FROM_FILE: &str = "file-secret-77ac2e";

fn config(secret_file: &std::path::Path) -> String {
    format!(
        r#"[servers.everything]
command = ["{node}", "{js}", "stdio"]
pinning = "off"
env = {{ secrets = {{ API_TOKEN = {{ env = "PX_GATEWAY_SIDE_TOKEN" }}, FILE_TOKEN = {{ file = "{file}" }} }} }}

[[rules]]
server = "everything"
tools = ["get-env"]
effect = "allow"

# `get-env` prints the server's environment, and the gateway redacts credentials in what it
# relays (`[content]`): this test reads the two values back to prove they arrived.
[[content.allow]]
server = "everything"
tools = ["get-env"]
values = ["{FROM_ENV}", "{FROM_FILE}"]
"#,
        node = support::node22().display(),
        js = support::server_everything_js().display(),
        file = secret_file.display(),
    )
}

#[test]
fn a_stdio_server_gets_its_secrets_under_their_own_names_and_nothing_prints_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{FROM_FILE}\n")).expect("write the secret file");
    let state = format!("sqlite:{}", dir.path().join("state.db").display());
    let gw = Gateway::start_with_env(
        &config(&file),
        &[
            ("PX_GATEWAY_SIDE_TOKEN", FROM_ENV.as_ref()),
            ("PORTCULLIS_STATE", state.as_ref()),
        ],
    );
    let calls = json!([{ "step": "env", "tool": "get-env", "args": {} }]);
    let s = PeerSummary(run_python_client(
        "calls",
        "legacy",
        &PeerTarget::Url(gw.url("everything")),
        &["--calls", &calls.to_string()],
    ));
    let env: serde_json::Map<String, Value> =
        serde_json::from_str(&s.text("env")).expect("get-env prints JSON");
    assert_eq!(env.get("API_TOKEN"), Some(&json!(FROM_ENV)), "{env:?}");
    assert_eq!(env.get("FILE_TOKEN"), Some(&json!(FROM_FILE)), "{env:?}");
    assert!(
        !env.contains_key("PX_GATEWAY_SIDE_TOKEN"),
        "the gateway's own variable reached the server: {env:?}"
    );
    let log = gw.proc.stderr();
    assert!(
        !log.contains(FROM_ENV) && !log.contains(FROM_FILE),
        "a secret is in the gateway's log"
    );
}

#[test]
fn a_missing_secret_stops_the_gateway_naming_the_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("portcullis.toml");
    std::fs::write(&path, config(&dir.path().join("token"))).expect("write config");
    let mut cmd = Command::new(support::portcullis_bin());
    support::isolate_state(&mut cmd);
    cmd.args(["serve", "--config"])
        .arg(&path)
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("PX_GATEWAY_SIDE_TOKEN");
    let (code, stdout, stderr) = support::run_code_with_timeout(cmd, support::WAIT);
    assert_ne!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("PX_GATEWAY_SIDE_TOKEN"),
        "the error does not name the variable: {stderr}"
    );
}
