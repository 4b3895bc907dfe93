//! The approvals channel of consent, end to end with real parts: the gateway binary (`serve`
//! and `stdio`) with a consent rule whose channel is `approvals`, the bundled fixture server
//! behind it, the official Python SDK client making the held call, headless Chromium as the
//! person on `/approvals`, and `portcullis approvals list|approve|deny` as the operator.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::browser::Browser;
use support::oauth::gateway::free_port;
use support::{Gateway, PeerSummary, PeerTarget};

/// What a `portcullis approvals …` run gave: exit code, stdout, stderr.
type CliRun = (Option<i32>, String, String);

const TOKEN: &str = "e2e-admin-token-7f3a9c2b5d8e1f4a6b0c";

/// The admin token in a file of its own (the gateway and the CLI read it there).
struct TokenFile {
    dir: tempfile::TempDir,
}

impl TokenFile {
    fn new(token: &str) -> TokenFile {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("admin.token"), format!("{token}\n")).expect("token file");
        TokenFile { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("admin.token")
    }
}

/// A config holding `echo` for a person's approval on the approvals page, within `timeout`.
fn config(token: &TokenFile, timeout: &str, gateway: &str) -> String {
    format!(
        r#"{gateway}
[approvals]
admin_token = {{ file = "{token}" }}

{server}
[[rules]]
server = "fx"
tools = ["echo"]
effect = "consent"
consent = {{ channels = ["approvals"], timeout = "{timeout}", remember = ["session", "always"], for_tool = true }}

[[rules]]
server = "fx"
tools = ["*"]
effect = "allow"
"#,
        token = token.path().display(),
        server = support::fixture_stdio_server("fx"),
    )
}

struct World {
    gateway: Gateway,
    _token: TokenFile,
}

impl World {
    fn start(timeout: &str) -> World {
        World::start_with(timeout, "")
    }

    /// With `gateway` (a `[gateway]` section) at the top of the config.
    fn start_with(timeout: &str, gateway: &str) -> World {
        let token = TokenFile::new(TOKEN);
        let gateway = Gateway::start(&config(&token, timeout, gateway));
        World {
            gateway,
            _token: token,
        }
    }

    /// `portcullis approvals <args> --config <the gateway's> --url <its address>`.
    fn cli(&self, args: &[&str]) -> CliRun {
        let mut cmd = Command::new(support::portcullis_bin());
        cmd.arg("approvals")
            .args(args)
            .arg("--config")
            .arg(self.gateway.config_path())
            .args(["--url", &self.gateway.base]);
        support::run_code_with_timeout(cmd, Duration::from_secs(30))
    }

    /// The Python SDK client calling `echo` with `message`, on its own thread.
    fn call_echo(&self, message: &str) -> JoinHandle<PeerSummary> {
        call_echo(PeerTarget::Url(self.gateway.url("fx")), message)
    }
}

fn call_echo(target: PeerTarget, message: &str) -> JoinHandle<PeerSummary> {
    let calls =
        json!([{ "step": "echo", "tool": "echo", "args": { "message": message } }]).to_string();
    std::thread::spawn(move || {
        PeerSummary(support::run_python_client(
            "calls",
            "legacy",
            &target,
            &["--calls", &calls, "--step-timeout", "90"],
        ))
    })
}

/// Polls `list` (through the CLI, `--json`) until a call waits; the first one.
fn wait_for_pending(list: impl Fn() -> CliRun) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, stdout, stderr) = list();
        assert_eq!(code, Some(0), "approvals list failed: {stderr}");
        let answer: Value = serde_json::from_str(&stdout).expect("list --json prints JSON");
        if let Some(first) = answer["pending"].as_array().and_then(|p| p.first()) {
            return first.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no call ever waited for approval: {answer}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Signs in on the page with the admin token.
async fn sign_in(browser: &mut Browser, base: &str) {
    browser
        .open(&format!("{base}/approvals"))
        .await
        .expect("the approvals page opens");
    browser
        .eval(&format!(
            "document.querySelector('#token').value = {TOKEN:?}; true"
        ))
        .await
        .expect("type the token");
    browser
        .click_and_wait_for_load("#login")
        .await
        .expect("sign in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_call_completes_when_a_person_approves_it_on_the_page() {
    let w = World::start("90s");
    let call = w.call_echo("deploy <b>now</b>\u{202e}");
    let pending = wait_for_pending(|| w.cli(&["list", "--json"]));
    assert_eq!(pending["tool"], "echo");
    assert_eq!(pending["server"], "fx");
    let id = pending["id"].as_str().expect("an id").to_owned();

    let mut browser = Browser::launch().await.expect("chromium");
    sign_in(&mut browser, &w.gateway.base).await;
    let section = format!("section[id=\"{id}\"]");
    browser
        .wait_for(&section)
        .await
        .expect("the call is listed");
    let shown = browser.text().await.expect("page text");
    assert!(
        shown.contains("deploy <b>now</b>\\u{202E}"),
        "arguments shown as sent, the override as a code point: {shown}"
    );
    assert!(!shown.contains('\u{202e}'), "{shown}");
    let cookies = browser.cookies().await.expect("cookies");
    let session = cookies
        .iter()
        .find(|c| c.name == "__Host-portcullis-admin")
        .expect("the session cookie");
    assert!(session.secure && session.http_only, "{session:?}");
    browser
        .click_and_wait_for_load(&format!("{section} button.approve"))
        .await
        .expect("approve");
    browser
        .wait_for("#outcome")
        .await
        .expect("the outcome page");
    assert!(browser.text().await.expect("text").contains("Approved"));

    let summary = call.join().expect("the client thread");
    summary.assert_clean_run();
    // Through, as sent (the gateway's output sanitizing strips the override on the way back).
    assert!(
        summary.text("echo").starts_with("deploy <b>now</b>"),
        "{}",
        summary.text("echo")
    );
    let told = summary
        .seen("logs")
        .iter()
        .any(|l| l.to_string().contains(&format!("/approvals#{id}")));
    assert!(
        told,
        "the caller is told where approval is pending: {:?}",
        summary.seen("logs")
    );
    let (_, stdout, _) = w.cli(&["list"]);
    assert!(stdout.contains("No call is waiting"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portcullis_approvals_approve_lets_the_held_call_through() {
    let w = World::start("90s");
    let call = w.call_echo("from the cli");
    let pending = wait_for_pending(|| w.cli(&["list", "--json"]));
    let id = pending["id"].as_str().expect("an id");
    let (code, table, stderr) = w.cli(&["list"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(table.contains("echo at fx"), "{table}");
    assert!(table.contains("from the cli"), "{table}");
    // A unique prefix is enough.
    let (code, stdout, stderr) = w.cli(&["approve", &id[..10], "--remember", "session"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("Approved (session, for these arguments): echo at fx"),
        "{stdout}"
    );
    let summary = call.join().expect("the client thread");
    assert_eq!(summary.text("echo"), "from the cli");
    let (code, _, stderr) = w.cli(&["approve", id]);
    assert_eq!(code, Some(1), "a call is decided once");
    assert!(stderr.contains("no call waits"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portcullis_approvals_deny_refuses_the_call_with_the_reason() {
    let w = World::start("90s");
    let call = w.call_echo("rm -rf /");
    let pending = wait_for_pending(|| w.cli(&["list", "--json"]));
    let id = pending["id"].as_str().expect("an id");
    let (code, stdout, stderr) = w.cli(&["deny", id, "--reason", "not on a Friday"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with("Denied: echo at fx"), "{stdout}");
    let summary = call.join().expect("the client thread");
    let refused = summary.step("echo").to_string();
    assert!(
        refused.contains("not on a Friday"),
        "the caller sees the reason: {refused}"
    );
    assert!(
        summary.0["steps"]["echo"]
            .get("ok")
            .is_none_or(|r| r["isError"] == json!(true))
    );
}

/// `--remember always --for tool` is kept in the state store: a gateway started again on
/// the same database lets the next call of the tool (other arguments) through without
/// asking; `approvals remembered` lists it; `approvals forget` revokes it in the running
/// gateway, whose next call waits for a person again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_always_approval_outlives_a_restart_until_it_is_forgotten() {
    let state = support::StateDir::new();
    let state_cli = |config: &Path, args: &[&str]| {
        let mut cmd = Command::new(support::portcullis_bin());
        cmd.arg("approvals").args(args).arg("--config").arg(config);
        support::run_code_with_timeout(cmd, Duration::from_secs(30))
    };
    {
        let w = World::start_with("90s", &state.gateway_section());
        let call = w.call_echo("first");
        let pending = wait_for_pending(|| w.cli(&["list", "--json"]));
        let id = pending["id"].as_str().expect("an id");
        let (code, stdout, stderr) =
            w.cli(&["approve", id, "--remember", "always", "--for", "tool"]);
        assert_eq!(code, Some(0), "{stderr}");
        assert!(stdout.contains("always"), "{stdout}");
        assert_eq!(call.join().expect("client").text("echo"), "first");
    }
    // A new gateway process on the same state: nobody is asked.
    let w = World::start_with("90s", &state.gateway_section());
    let config_path = w.gateway.config_path();
    let summary = w
        .call_echo("second, other arguments")
        .join()
        .expect("client");
    assert_eq!(summary.text("echo"), "second, other arguments");
    let (code, stdout, stderr) = state_cli(&config_path, &["remembered", "--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let listed: Value = serde_json::from_str(&stdout).expect("JSON");
    let remembered = listed["remembered"].as_array().expect("a list");
    assert_eq!(remembered.len(), 1, "{listed}");
    assert_eq!(remembered[0]["server"], "fx");
    assert_eq!(remembered[0]["tool"], "echo");
    assert_eq!(
        remembered[0]["arguments_digest"],
        Value::Null,
        "any arguments"
    );
    let (code, table, _) = state_cli(&config_path, &["remembered"]);
    assert_eq!(code, Some(0));
    assert!(table.contains("any arguments"), "{table}");

    let principal = remembered[0]["principal"].as_str().expect("a principal");
    assert!(
        !principal.is_empty() && !principal.contains('\u{1f}'),
        "listed as it is typed back: {principal:?}"
    );
    let (code, stdout, stderr) = state_cli(
        &config_path,
        &["forget", "fx", "--principal", "someone-else"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("No remembered approvals"), "{stdout}");
    let (code, stdout, stderr) =
        state_cli(&config_path, &["forget", "fx", "--principal", principal]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("Forgot 1 remembered approval"), "{stdout}");
    let call = w.call_echo("third");
    let pending = wait_for_pending(|| w.cli(&["list", "--json"]));
    let id = pending["id"].as_str().expect("an id");
    let (code, _, stderr) = w.cli(&["deny", id, "--reason", "forgotten"]);
    assert_eq!(code, Some(0), "{stderr}");
    let refused = call.join().expect("client").step("echo").to_string();
    assert!(refused.contains("forgotten"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_nobody_decides_is_denied_at_its_timeout_and_leaves_the_queue() {
    let w = World::start("3s");
    let started = Instant::now();
    let summary = w
        .call_echo("nobody looks")
        .join()
        .expect("the client thread");
    assert!(started.elapsed() >= Duration::from_secs(3));
    let refused = summary.step("echo").to_string();
    assert!(refused.contains("no decision within"), "{refused}");
    let (_, stdout, _) = w.cli(&["list"]);
    assert!(stdout.contains("No call is waiting"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_decision_is_refused_and_the_call_keeps_waiting() {
    let w = World::start("90s");
    let call = w.call_echo("forged?");
    let pending = wait_for_pending(|| w.cli(&["list", "--json"]));
    let id = pending["id"].as_str().expect("an id").to_owned();
    let decide = format!("{}/approvals/decide/{id}", w.gateway.base);
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    // A signed-in session's cookie, as a browser would hold it.
    let login = http
        .post(format!("{}/approvals/login", w.gateway.base))
        .header("origin", &w.gateway.base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .await
        .expect("sign in");
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("name=value")
        .to_owned();
    let forgeries = [
        // No CSRF token (a cross-site form riding on the cookie).
        (cookie.as_str(), w.gateway.base.as_str(), "decision=approve"),
        // A made-up token.
        (
            cookie.as_str(),
            w.gateway.base.as_str(),
            "decision=approve&csrf=AAAA",
        ),
        // Another site's page posting.
        (
            cookie.as_str(),
            "http://evil.example",
            "decision=approve&csrf=AAAA",
        ),
        // No session at all.
        ("", w.gateway.base.as_str(), "decision=approve"),
    ];
    for (cookie, origin, body) in forgeries {
        let resp = http
            .post(&decide)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookie)
            .header("origin", origin)
            .body(body)
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), 403, "{origin} {body}");
    }
    // The API without the admin token.
    let resp = http
        .post(format!("{}/approvals/api/{id}", w.gateway.base))
        .header("cookie", &cookie)
        .json(&json!({"decision": "approve"}))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 401);
    let still = wait_for_pending(|| w.cli(&["list", "--json"]));
    assert_eq!(still["id"], id.as_str(), "the call still waits");
    let (code, _, stderr) = w.cli(&["deny", &id]);
    assert_eq!(code, Some(0), "{stderr}");
    let summary = call.join().expect("the client thread");
    assert!(
        summary.0["steps"]["echo"]
            .get("ok")
            .is_none_or(|r| r["isError"] == json!(true))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_approvals_page_refuses_to_be_framed() {
    let w = World::start("90s");
    let mut browser = Browser::launch().await.expect("chromium");
    // Another origin (localhost, not 127.0.0.1) frames the page.
    let other_origin = w.gateway.base.replace("127.0.0.1", "localhost");
    browser
        .goto(&format!("{other_origin}/healthz"))
        .await
        .expect("another origin");
    let framed = browser
        .frame(&format!("{}/approvals", w.gateway.base))
        .await
        .expect("frame attempt");
    assert!(
        framed.blocked(),
        "the approvals page loaded inside a frame: {framed:?}"
    );
    // Shown on its own, it is the sign-in form.
    browser
        .open(&format!("{}/approvals", w.gateway.base))
        .await
        .expect("open");
    browser.wait_for("#token").await.expect("the sign-in form");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_on_the_sign_in_form_gets_no_session() {
    let w = World::start("90s");
    let mut browser = Browser::launch().await.expect("chromium");
    browser
        .open(&format!("{}/approvals", w.gateway.base))
        .await
        .expect("open");
    browser
        .eval(
            "document.querySelector('#token').value = 'a-guess-that-is-long-enough-0000000'; true",
        )
        .await
        .expect("type");
    browser
        .click_and_wait_for_load("#login")
        .await
        .expect("submit");
    assert!(
        browser
            .text()
            .await
            .expect("text")
            .contains("not the admin token")
    );
    let cookies = browser.cookies().await.expect("cookies");
    assert!(!cookies.iter().any(|c| c.name == "__Host-portcullis-admin"));
}

/// Ids are base64url, so one in 32 starts with "-": the CLI reads it as the id, never as
/// an option (and says no such call waits, rather than a usage error).
#[test]
fn an_id_that_starts_with_a_dash_is_an_id() {
    let w = World::start("90s");
    let (code, stdout, stderr) = w.cli(&["deny", "-5abcdefgh", "--reason", "x"]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("no call waits"), "{stderr}");
}

/// The admin token never travels in the clear: plain http is for loopback only. (Refused
/// before any connection: nothing is sent to the address.)
#[test]
fn the_cli_sends_the_admin_token_over_plain_http_only_on_loopback() {
    let token = TokenFile::new(TOKEN);
    let dir = tempfile::tempdir().expect("tempdir");
    let cli_config = dir.path().join("cli.toml");
    std::fs::write(&cli_config, config(&token, "90s", "")).expect("cli config");
    let mut cmd = Command::new(support::portcullis_bin());
    cmd.args(["approvals", "list", "--config"])
        .arg(&cli_config)
        .args(["--url", "http://10.0.0.1:8440"]);
    let (code, _, stderr) = support::run_code_with_timeout(cmd, Duration::from_secs(30));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("over plain http"), "{stderr}");
    assert!(!stderr.contains(TOKEN), "{stderr}");
}

#[test]
fn the_cli_refuses_a_wrong_admin_token() {
    let w = World::start("90s");
    let wrong = TokenFile::new("another-admin-token-that-is-long-enough-01");
    let cli_config = w.gateway.dir.path().join("cli.toml");
    std::fs::write(&cli_config, config(&wrong, "90s", "")).expect("cli config");
    let mut cmd = Command::new(support::portcullis_bin());
    cmd.args(["approvals", "list", "--config"])
        .arg(&cli_config)
        .args(["--url", &w.gateway.base]);
    let (code, _, stderr) = support::run_code_with_timeout(cmd, Duration::from_secs(30));
    assert_eq!(code, Some(1));
    assert!(stderr.contains("refused the admin token"), "{stderr}");
    assert!(
        !stderr.contains("another-admin-token"),
        "the token is never printed: {stderr}"
    );
}

#[test]
fn the_cli_says_so_when_no_gateway_answers() {
    let token = TokenFile::new(TOKEN);
    let port = free_port();
    let path = token.dir.path().join("portcullis.toml");
    std::fs::write(
        &path,
        config(
            &token,
            "90s",
            &format!("[gateway]\nlisten = \"127.0.0.1:{port}\"\n"),
        ),
    )
    .expect("config");
    let mut cmd = Command::new(support::portcullis_bin());
    cmd.args(["approvals", "list", "--config"]).arg(&path);
    let (code, _, stderr) = support::run_code_with_timeout(cmd, Duration::from_secs(30));
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains(&format!("no gateway answers at http://127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[test]
fn the_cli_needs_an_approvals_section() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("portcullis.toml");
    std::fs::write(&path, support::fixture_stdio_server("fx")).expect("config");
    let mut cmd = Command::new(support::portcullis_bin());
    cmd.args(["approvals", "list", "--config"]).arg(&path);
    let (code, _, stderr) = support::run_code_with_timeout(cmd, Duration::from_secs(30));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("no [approvals] section"), "{stderr}");
}

#[test]
fn a_gateway_with_a_guessable_admin_token_does_not_start() {
    let token = TokenFile::new("admin");
    let path = token.dir.path().join("portcullis.toml");
    std::fs::write(&path, config(&token, "90s", "")).expect("config");
    let mut cmd = Command::new(support::portcullis_bin());
    support::isolate_state(&mut cmd);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path);
    let (code, _, stderr) = support::run_code_with_timeout(cmd, Duration::from_secs(30));
    assert_eq!(code, Some(1));
    assert!(stderr.contains("shorter than 32 characters"), "{stderr}");
}

/// `portcullis stdio` has no HTTP front door: it serves the approvals page alone on loopback
/// `gateway.listen`, where the CLI finds it from the config alone.
#[test]
fn under_stdio_the_page_is_on_loopback_and_the_cli_finds_it_from_the_config() {
    let token = TokenFile::new(TOKEN);
    let port = free_port();
    let path = token.dir.path().join("portcullis.toml");
    let text = config(
        &token,
        "90s",
        &format!("[gateway]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    std::fs::write(&path, support::with_loopback_egress(&text)).expect("config");
    let call = call_echo(PeerTarget::portcullis_stdio("fx", &path), "over stdio");
    let cli = |args: &[&str]| {
        let mut cmd = Command::new(support::portcullis_bin());
        cmd.arg("approvals").args(args).arg("--config").arg(&path);
        support::run_code_with_timeout(cmd, Duration::from_secs(30))
    };
    let pending = wait_until_listed(&path, &cli);
    let id = pending["id"].as_str().expect("an id");
    let (code, _, stderr) = cli(&["approve", id]);
    assert_eq!(code, Some(0), "{stderr}");
    let summary = call.join().expect("the client thread");
    assert_eq!(summary.text("echo"), "over stdio");
}

/// A `portcullis stdio` whose `gateway.listen` is taken serves no page: the channel is
/// skipped at once, and the call refused with why, instead of held until its timeout for a
/// page nobody can reach.
#[test]
fn under_stdio_without_its_port_nothing_waits_for_a_page_nobody_can_reach() {
    let token = TokenFile::new(TOKEN);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().expect("addr").port();
    let path = token.dir.path().join("portcullis.toml");
    let text = config(
        &token,
        "60s",
        &format!("[gateway]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    std::fs::write(&path, support::with_loopback_egress(&text)).expect("config");
    let started = Instant::now();
    let summary = call_echo(PeerTarget::portcullis_stdio("fx", &path), "anyone?")
        .join()
        .expect("the client thread");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "not held until the timeout"
    );
    let refused = summary.step("echo").to_string();
    assert!(refused.contains("approvals"), "{refused}");
    assert!(
        summary.0["steps"]["echo"]
            .get("ok")
            .is_none_or(|r| r["isError"] == json!(true))
    );
    drop(taken);
}

/// Like [`wait_for_pending`], tolerating the moments before `portcullis stdio` listens.
fn wait_until_listed(config: &Path, cli: &dyn Fn(&[&str]) -> CliRun) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, stdout, stderr) = cli(&["list", "--json"]);
        if code == Some(0) {
            let answer: Value = serde_json::from_str(&stdout).expect("JSON");
            if let Some(first) = answer["pending"].as_array().and_then(|p| p.first()) {
                return first.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "nothing waited at the gateway of {}: {stderr}",
            config.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
