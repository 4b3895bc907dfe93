//! Launch pinning end to end, with the real gateway binary: `portcullis trust` reviews and
//! pins a local server's launch; a launch that differs from its pin (a tampered executable,
//! a changed argv) or has none is refused under `pinning = "required"` (the default under
//! `serve`) with an error naming what changed, audited, and shown by `trust`; `warn`
//! starts the server with a warning; the gateway keeps serving everything else.
//!
//! The server under test is the `portcullis` binary itself under another path (a hard link
//! in a scratch directory, so it is not the gateway's own executable, which is trusted
//! without a pin), run as `<link> fixture stdio`. Tampering replaces the file, as an
//! attacker with write access to its directory would (the running copy is left alone).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Gateway, RawHttp, StdioGateway, portcullis_bin, run_code_with_timeout};

const UPSTREAM_UNAVAILABLE: i64 = -32010;
const CLI_WAIT: Duration = Duration::from_secs(60);

/// A scratch directory holding the server's executable, the config and the state database.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        // In the target directory: on the binary's file system, so the link is possible.
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
        let exe = dir.path().join("bin/local-server");
        std::fs::create_dir(dir.path().join("bin")).expect("mkdir");
        if std::fs::hard_link(portcullis_bin(), &exe).is_err() {
            std::fs::copy(portcullis_bin(), &exe).expect("copy the binary");
        }
        Scratch { dir }
    }

    fn exe(&self) -> PathBuf {
        self.dir.path().join("bin/local-server")
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("portcullis.toml")
    }

    /// Writes the config: `local` (the linked binary, with `extra_args` after
    /// `fixture stdio`, and `local_keys` in its table) and `builtin` (the gateway's own
    /// binary), both allowed; returns the text.
    fn write_config(&self, extra_args: &[&str], local_keys: &str) -> String {
        let mut argv = vec![
            self.exe().display().to_string(),
            "fixture".into(),
            "stdio".into(),
        ];
        argv.extend(extra_args.iter().map(|s| s.to_string()));
        let text = format!(
            "[gateway]\nstate = \"sqlite:{state}\"\n\n\
             [servers.local]\ncommand = {argv:?}\nsandbox = \"off\"\n{local_keys}\n\n\
             {builtin}sandbox = \"off\"\n\n[[rules]]\neffect = \"allow\"\n",
            state = self.dir.path().join("state.db").display(),
            builtin = support::fixture_stdio_server("builtin"),
        );
        std::fs::write(self.config(), &text).expect("write config");
        text
    }

    /// `portcullis <args…> --config <config>`: (exit code, stdout, stderr).
    fn cli(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let mut cmd = without_terminal();
        cmd.args(args).arg("--config").arg(self.config());
        run_code_with_timeout(cmd, CLI_WAIT)
    }

    fn trust_yes(&self, server: &str) -> String {
        let (code, out, err) = self.cli(&["trust", server, "--yes"]);
        assert_eq!(code, Some(0), "trust --yes failed\n{out}\n{err}");
        out
    }

    /// The audit log, as `portcullis audit query --server <server>` prints it.
    fn audit(&self, server: &str) -> String {
        let (code, out, err) = self.cli(&["audit", "query", "--server", server]);
        assert_eq!(code, Some(0), "audit query failed: {err}");
        out
    }

    /// Replaces the executable with another file (a script that still runs the fixture, as
    /// a careful attacker's would) by renaming over it.
    fn tamper(&self) {
        let fake = self.dir.path().join("bin/.fake");
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\nexec '{}' fixture stdio\n",
                portcullis_bin().display()
            ),
        )
        .expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::rename(&fake, self.exe()).expect("replace the executable");
    }
}

/// `portcullis` in a session of its own, without a controlling terminal (as under CI or a
/// service manager): `/dev/tty` cannot be opened, whatever terminal runs the tests.
fn without_terminal() -> Command {
    let setsid = Path::new("/usr/bin/setsid");
    if setsid.exists() {
        let mut cmd = Command::new(setsid);
        cmd.arg("--wait").arg(portcullis_bin());
        cmd
    } else {
        Command::new(portcullis_bin())
    }
}

fn lowercase_hex_sha256(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_hexdigit())
        .filter(|w| w.len() == 64)
        .map(str::to_owned)
        .collect()
}

/// `initialize` on `route`: the session's client, or the JSON-RPC error.
async fn open(gw: &Gateway, route: &str) -> Result<RawHttp, (i64, String)> {
    let c = RawHttp::new(&gw.url(route));
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},
        "clientInfo":{"name":"pinning-tests","version":"0"}}});
    let a = c.post(init.to_string()).await;
    let r = a.response();
    if let Some(e) = r.get("error") {
        return Err((
            e["code"].as_i64().unwrap_or_default(),
            e["message"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    let mut c = c;
    c.session = a.header("mcp-session-id").map(str::to_owned);
    c.version = r["result"]["protocolVersion"].as_str().map(str::to_owned);
    let n = c
        .post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .await;
    assert_eq!(n.status, 202, "{}", n.body);
    Ok(c)
}

async fn echo(c: &RawHttp, id: i64, message: &str) {
    let r: Value = c.call_tool(id, "echo", json!({"message": message})).await;
    assert_eq!(r["result"]["content"][0]["text"], message, "{r}");
}

#[tokio::test]
async fn an_untrusted_server_does_not_start_until_trust_pins_it() {
    let s = Scratch::new();
    s.write_config(&[], "");
    let gw = Gateway::start(&std::fs::read_to_string(s.config()).expect("config"));

    let (code, message) = open(&gw, "local")
        .await
        .err()
        .expect("refused without a pin");
    assert_eq!(code, UPSTREAM_UNAVAILABLE);
    assert!(
        message.contains("has not been reviewed") && message.contains("portcullis trust local"),
        "{message}"
    );

    let out = s.trust_yes("local");
    assert!(out.contains(&s.exe().display().to_string()), "{out}");
    assert!(out.contains("Trusted \"local\""), "{out}");
    assert_eq!(
        lowercase_hex_sha256(&out).len(),
        1,
        "one digest, whole: {out}"
    );
    assert!(s.audit("local").contains("trust/trusted"));

    // The running gateway reads the pin at the next launch: no restart needed.
    let c = open(&gw, "local").await.expect("trusted launch starts");
    echo(&c, 1, "pinned").await;
}

#[tokio::test]
async fn a_tampered_executable_is_refused_audited_and_shown_by_trust() {
    let s = Scratch::new();
    s.write_config(&[], "");
    s.trust_yes("local");
    let trusted = s.cli(&["trust", "local"]).1;
    let gw = Gateway::start(&std::fs::read_to_string(s.config()).expect("config"));
    let before = open(&gw, "local").await.expect("trusted launch starts");
    echo(&before, 1, "before").await;

    s.tamper();
    let (code, message) = open(&gw, "local")
        .await
        .err()
        .expect("tampered launch refused");
    assert_eq!(code, UPSTREAM_UNAVAILABLE, "{message}");
    let exe = s.exe().display().to_string();
    assert!(
        message.contains(&format!("the executable {exe} changed: sha256 "))
            && message.contains("was trusted, now sha256 ")
            && message.contains("run `portcullis trust local` to review"),
        "the error names the change: {message}"
    );

    // Audited, with the same words.
    let log = s.audit("local");
    assert!(
        log.lines()
            .any(|l| l.contains("launch/refused") && l.contains("changed: sha256")),
        "{log}"
    );

    // The gateway keeps serving: the session started before, and the other server.
    echo(&before, 2, "still here").await;
    let other = open(&gw, "builtin").await.expect("another server starts");
    echo(&other, 1, "other").await;

    // `trust` shows the difference, both digests whole; without a terminal it pins nothing.
    let (code, out, err) = s.cli(&["trust", "local"]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(out.contains("this launch DIFFERS from it"), "{out}");
    let old = lowercase_hex_sha256(&trusted);
    let digests = lowercase_hex_sha256(&out);
    assert!(
        digests.contains(&old[0]),
        "the trusted digest is shown: {out}"
    );
    assert!(
        digests.iter().any(|d| *d != old[0]),
        "the new digest is shown: {out}"
    );
    assert!(open(&gw, "local").await.is_err(), "still refused");
}

#[tokio::test]
async fn a_changed_argv_is_refused_with_both_commands_named() {
    let s = Scratch::new();
    s.write_config(&[], "");
    s.trust_yes("local");
    let text = s.write_config(&["--adversarial"], "");
    let gw = Gateway::start(&text);
    let (code, message) = open(&gw, "local")
        .await
        .err()
        .expect("changed argv refused");
    assert_eq!(code, UPSTREAM_UNAVAILABLE);
    assert!(
        message.contains("the command changed:") && message.contains("\"--adversarial\"]"),
        "{message}"
    );
    assert!(
        !message.contains("the executable"),
        "only the argv changed: {message}"
    );
    let other = open(&gw, "builtin").await.expect("another server starts");
    echo(&other, 1, "other").await;
}

#[tokio::test]
async fn warn_starts_an_unpinned_server_with_a_logged_and_audited_warning() {
    let s = Scratch::new();
    let text = s.write_config(&[], "pinning = \"warn\"");
    let gw = Gateway::start(&text);
    let c = open(&gw, "local").await.expect("warn starts the server");
    echo(&c, 1, "warned").await;
    assert!(
        support::wait_until(Duration::from_secs(10), || gw
            .proc
            .stderr()
            .contains("does not match its pin")),
        "{}",
        gw.proc.stderr()
    );
    assert!(s.audit("local").contains("launch/warned"));
}

#[test]
fn trust_without_a_terminal_and_without_yes_refuses_and_stores_nothing() {
    let s = Scratch::new();
    s.write_config(&[], "");
    let (code, out, err) = s.cli(&["trust", "local"]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(err.contains("--yes"), "{err}");
    // The review was printed all the same.
    assert!(out.contains("Command, exactly as it will run:"), "{out}");
    assert!(!s.audit("local").contains("trust/"));
    let (_, out, _) = s.cli(&["trust", "local", "--remove"]);
    assert!(out.contains("has no launch pin"), "{out}");
}

#[test]
fn under_stdio_an_unpinned_server_starts_but_a_trusted_one_that_changed_does_not() {
    let s = Scratch::new();
    let text = s.write_config(&[], "");
    let init = json!({"protocolVersion":"2025-11-25","capabilities":{},
        "clientInfo":{"name":"pinning-tests","version":"0"}});

    // Never trusted: `stdio` warns and starts it.
    let mut gw = StdioGateway::start(&text, "local");
    let r = gw.request(0, "initialize", init.clone());
    assert!(r.get("result").is_some(), "{r}\n{}", gw.stderr());
    drop(gw);

    // Trusted, then changed: from the first trust on, `stdio` requires the pin.
    s.trust_yes("local");
    s.tamper();
    let mut gw = StdioGateway::start(&text, "local");
    let r = gw.request(0, "initialize", init);
    assert_eq!(r["error"]["code"], UPSTREAM_UNAVAILABLE, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("the executable")),
        "{r}"
    );
}

#[test]
fn trust_json_describes_the_launch_for_scripts() {
    let s = Scratch::new();
    s.write_config(
        &[],
        "env = { set = { MODE = \"x\" }, secrets = { TOKEN = { env = \"PX_UNSET_TOKEN\" } } }",
    );
    let (code, out, err) = s.cli(&["trust", "local", "--yes", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let doc: Value = serde_json::from_str(out.trim()).expect("one JSON document");
    assert_eq!(doc["executable"], s.exe().display().to_string());
    assert_eq!(doc["argv"][1], "fixture");
    assert_eq!(doc["pin"], Value::Null);
    let env = doc["env"].as_array().expect("env");
    assert!(env.iter().any(|v| v["name"] == "MODE" && v["value"] == "x"));
    assert!(env.iter().any(|v| v["name"] == "TOKEN"
        && v["secret"] == true
        && v["from"] == "from env PX_UNSET_TOKEN"
        && v.get("value").is_none()));
    assert_eq!(doc["sandbox"], Value::Null);
    assert!(
        doc["findings"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["message"]
                .as_str()
                .unwrap_or_default()
                .contains("no sandbox")))
    );
}
