//! `portcullis check`: a good config exits 0 and prints its warnings and the effective
//! policy server by server (without starting any server); a bad one exits 2 and names every
//! problem as `file:line:col`, in file order.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

struct Checked {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    path: String,
    _dir: tempfile::TempDir,
}

fn check(config: &str) -> Checked {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, config).expect("write the config");
    let mut cmd = Command::new(support::portcullis_bin());
    cmd.args(["check", "--config"]).arg(&path);
    let (code, stdout, stderr) = support::run_code_with_timeout(cmd, Duration::from_secs(30));
    Checked {
        code,
        stdout,
        stderr,
        path: path.display().to_string(),
        _dir: dir,
    }
}

/// `line:col` (1-based) of the first occurrence of `needle` in `text`.
fn position(text: &str, needle: &str) -> String {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in the config"));
    let line = text[..at].matches('\n').count() + 1;
    let col = at - text[..at].rfind('\n').map_or(0, |n| n + 1) + 1;
    format!("{line}:{col}")
}

const GOOD: &str = r#"[gateway]
listen = "127.0.0.1:8440"

[servers.files]
command = ["/nonexistent/never-started", "--flag"]

[servers.tickets]
url = "http://127.0.0.1:9/mcp"
timeout = "20s"

[virtual.work]
servers = ["files", "tickets"]
on_upstream_failure = "fail"

[[rules]]
server = "files"
tools = ["read_*", "list_*"]
effect = "allow"

[[rules]]
server = "tickets"
tools = ["delete_*"]
effect = "deny"

[[rules]]
server = "tickets"
tools = ["*"]
prompts = ["*"]
effect = "allow"
"#;

#[test]
fn a_good_config_exits_0_and_prints_the_effective_policy_server_by_server() {
    let c = check(GOOD);
    assert_eq!(
        c.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        c.stdout,
        c.stderr
    );
    assert!(
        c.stdout.starts_with(&format!("{}: OK", c.path)),
        "{}",
        c.stdout
    );
    assert!(
        c.stdout
            .contains(&format!("Effective policy of {}", c.path)),
        "{}",
        c.stdout
    );
    // One section per server, each with the rules that decide there, where they are
    // written, and the default deny.
    let files_at = c
        .stdout
        .find("server \"files\" at /mcp/files")
        .unwrap_or_else(|| panic!("{}", c.stdout));
    let tickets_at = c
        .stdout
        .find("server \"tickets\" at /mcp/tickets")
        .unwrap_or_else(|| panic!("{}", c.stdout));
    let (files, tickets) = if files_at < tickets_at {
        (&c.stdout[files_at..tickets_at], &c.stdout[tickets_at..])
    } else {
        (&c.stdout[files_at..], &c.stdout[tickets_at..files_at])
    };
    assert!(
        files.contains("/nonexistent/never-started --flag"),
        "{files}"
    );
    assert!(
        files.contains("read_*, list_*") && files.contains(&format!("rule 1 ({}:15)", c.path)),
        "{files}"
    );
    assert!(
        !files.contains("delete_*"),
        "tickets' rules leak into files: {files}"
    );
    assert!(files.contains("default deny"), "{files}");
    assert!(
        tickets.contains("http://127.0.0.1:9/mcp") && tickets.contains("20s"),
        "{tickets}"
    );
    let deny = tickets
        .find("delete_*")
        .unwrap_or_else(|| panic!("{tickets}"));
    let allow = tickets
        .find(&format!("rule 3 ({}:25)", c.path))
        .unwrap_or_else(|| panic!("{tickets}"));
    assert!(
        deny < allow,
        "rules are shown in the order they are tried: {tickets}"
    );
    assert!(!tickets.contains("read_*"), "{tickets}");
    assert!(
        c.stdout.contains("virtual \"work\" at /mcp/work"),
        "{}",
        c.stdout
    );
    assert!(c.stdout.contains("fail the request"), "{}", c.stdout);
}

#[test]
fn check_warns_about_loosened_defaults_and_unreachable_rules_but_passes() {
    let config = r#"[gateway]
listen = "0.0.0.0:8440"
insecure_no_auth = true
allowed_origins = ["https://app.example.com"]

[servers.a]
command = ["x"]

[servers.idle]
command = ["y"]

[[rules]]
server = "a"
tools = ["*"]
effect = "allow"

[[rules]]
server = "a"
tools = ["echo"]
effect = "deny"
"#;
    let c = check(config);
    assert_eq!(c.code, Some(0), "{}{}", c.stdout, c.stderr);
    let warnings: Vec<&str> = c
        .stdout
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    let has = |words: &[&str]| warnings.iter().any(|w| words.iter().all(|x| w.contains(x)));
    assert!(has(&["0.0.0.0"]), "listening beyond loopback: {warnings:?}");
    assert!(
        has(&["insecure_no_auth", "not authenticated"]),
        "no authentication: {warnings:?}"
    );
    assert!(
        c.stdout.contains("Auth: none (insecure_no_auth)"),
        "{}",
        c.stdout
    );
    assert!(
        has(&["https://app.example.com"]),
        "an allowed origin: {warnings:?}"
    );
    assert!(
        has(&["never match", &format!("{}:17", c.path)]),
        "the shadowed deny: {warnings:?}"
    );
    assert!(
        has(&["idle"]),
        "a server nothing is allowed on: {warnings:?}"
    );
    assert!(c.stdout.contains("never reached"), "{}", c.stdout);
}

#[test]
fn an_unknown_key_exits_2_naming_file_line_and_column() {
    let config =
        "[gateway]\nlisten = \"127.0.0.1:1\"\nlsiten = \"x\"\n\n[servers.a]\ncommand = [\"x\"]\n";
    let c = check(config);
    assert_eq!(c.code, Some(2), "{}{}", c.stdout, c.stderr);
    assert!(
        c.stdout.is_empty(),
        "no policy for a config that does not load: {}",
        c.stdout
    );
    let want = format!(
        "{}:{}: unknown field `lsiten`",
        c.path,
        position(config, "lsiten")
    );
    assert!(c.stderr.contains(&want), "want {want:?} in:\n{}", c.stderr);
}

#[test]
fn every_error_is_reported_at_once_in_file_order() {
    let config = r#"[gateway]
request_timeout = 30

[servers.files]
command = []

[servers.web]
url = "ftp://example.com/mcp"

[virtual.files]
servers = ["files"]

[[rules]]
server = "fles"
tools = ["read_*"]
effect = "allow"
"#;
    let c = check(config);
    assert_eq!(c.code, Some(2), "{}{}", c.stdout, c.stderr);
    let expected = [
        (position(config, "30"), "unit"),
        (position(config, "[]"), "command"),
        (position(config, "\"ftp://"), "ftp://"),
        (position(config, "files]\nservers"), "same name"),
        (position(config, "\"fles\""), "unknown server \"fles\""),
    ];
    let lines: Vec<&str> = c.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut last = 0;
    for (pos, words) in &expected {
        let prefix = format!("{}:{pos}:", c.path);
        let at = lines
            .iter()
            .position(|l| l.starts_with(&prefix) && l.contains(words))
            .unwrap_or_else(|| {
                panic!(
                    "no error at {prefix} mentioning {words:?} in:\n{}",
                    c.stderr
                )
            });
        assert!(at >= last, "errors out of file order:\n{}", c.stderr);
        last = at;
    }
    assert!(
        c.stderr.contains("known: files, web"),
        "the error lists the known servers:\n{}",
        c.stderr
    );
}

#[test]
fn bad_values_are_refused_with_their_position() {
    for (config, needle, words) in [
        (
            "[gateway]\nmax_message_bytes = \"10B\"\n",
            "\"10B\"",
            "between",
        ),
        ("[gateway]\nallowed_origins = [\"*\"]\n", "\"*\"", "origin"),
        ("[gateway]\nmax_sessions = 0\n", "0\n", "max_sessions"),
        ("[gateway]\nsession_idle_timeout = \"0s\"\n", "\"0s\"", ""),
        (
            "[gateway]\nlisten = \"localhost:8440\"\n",
            "\"localhost",
            "",
        ),
        (
            "[servers.Bad_Name]\ncommand = [\"x\"]\n",
            "Bad_Name",
            "Bad_Name",
        ),
        (
            "[servers.a]\ncommand = [\"x\"]\nurl = \"http://127.0.0.1:1/mcp\"\n",
            "",
            "",
        ),
        (
            "[servers.a]\ncommand = [\"x\"]\n\n[[rules]]\nserver = \"a\"\ntools = []\neffect = \"allow\"\n",
            "[]",
            "",
        ),
        (
            "[servers.a]\ncommand = [\"x\"]\n\n[[rules]]\nserver = \"a\"\neffect = \"maybe\"\n",
            "\"maybe\"",
            "maybe",
        ),
        ("[servers.a\ncommand = [\"x\"]\n", "\n", ""),
    ] {
        let c = check(config);
        assert_eq!(c.code, Some(2), "{config}\n---\n{}{}", c.stdout, c.stderr);
        let prefix = if needle.is_empty() {
            format!("{}:", c.path)
        } else {
            format!("{}:{}:", c.path, position(config, needle))
        };
        assert!(
            c.stderr
                .lines()
                .any(|l| l.starts_with(&prefix) && l.contains(words)),
            "{config}\n--- want {prefix} ... {words:?} in:\n{}",
            c.stderr
        );
    }
}

#[test]
fn a_missing_config_file_is_an_error_naming_it() {
    let path = PathBuf::from("/nonexistent/portcullis/policy.toml");
    let mut cmd = Command::new(support::portcullis_bin());
    cmd.args(["check", "--config"]).arg(&path);
    let (code, stdout, stderr) = support::run_code_with_timeout(cmd, Duration::from_secs(30));
    assert_ne!(code, Some(0), "{stdout}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
}
