//! `portcullis check`: a good config exits 0 and prints its warnings, the effective policy
//! server by server and the sandbox of each local server (without starting any server); a
//! bad one exits 2 and names every problem as `file:line:col`, in file order.

mod support;

use std::path::{Path, PathBuf};
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
    check_with_home(config, None)
}

/// `check` with `HOME` set, for the warnings about credential directories.
fn check_with_home(config: &str, home: Option<&Path>) -> Checked {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, config).expect("write the config");
    let mut cmd = Command::new(support::portcullis_bin());
    cmd.args(["check", "--config"]).arg(&path);
    if let Some(home) = home {
        cmd.env("HOME", home);
    }
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

/// The sandbox report of one server: from its heading to the next server's (or the end).
fn sandbox_of<'a>(stdout: &'a str, server: &str) -> &'a str {
    let section = stdout
        .find("\nSandbox of local servers\n")
        .map(|at| &stdout[at..])
        .unwrap_or_else(|| panic!("no sandbox section:\n{stdout}"));
    let heading = format!("\n  server \"{server}\": ");
    let start = section
        .find(&heading)
        .unwrap_or_else(|| panic!("no sandbox report of {server}:\n{section}"));
    let rest = &section[start + 1..];
    let end = rest.find("\n\n").map_or(rest.len(), |e| e + 1);
    &rest[..end]
}

fn warnings(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect()
}

/// A directory under the system's temp dir, resolved (the report shows resolved paths).
fn real_dir(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir.canonicalize().expect("resolve")
}

const LAYERS: [&str; 9] = [
    "namespaces",
    "filesystem",
    "network",
    "landlock",
    "seccomp",
    "no_new_privs",
    "processes",
    "limits",
    "lifetime",
];

#[test]
fn a_sandboxed_server_is_reported_with_each_layer_and_every_bound_path() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (data, out) = (real_dir(tmp.path(), "data"), real_dir(tmp.path(), "out"));
    let config = format!(
        "[servers.files]\ncommand = [\"portcullis\", \"fixture\", \"stdio\"]\n\
         sandbox = {{ read = [\"{}\"], write = [\"{}\"], processes = 64, memory = \"512M\" }}\n",
        data.display(),
        out.display()
    );
    let c = check(&config);
    assert_eq!(c.code, Some(0), "{}{}", c.stdout, c.stderr);
    let policy_at = c.stdout.find("Effective policy of").expect("policy");
    let sandbox_at = c.stdout.find("Sandbox of local servers").expect("sandbox");
    assert!(policy_at < sandbox_at, "the sandbox comes after the policy");
    let kernel = &c.stdout[sandbox_at..];
    for row in ["namespaces", "landlock", "seccomp", "processes", "user"] {
        assert!(
            kernel
                .lines()
                .any(|l| l.starts_with(&format!("    {row} "))),
            "the kernel's {row}:\n{kernel}"
        );
    }
    let files = sandbox_of(&c.stdout, "files");
    for layer in LAYERS {
        assert!(
            files.lines().any(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                words.first() == Some(&layer)
                    && ["enforced", "partial", "missing"]
                        .contains(&words.get(1).copied().unwrap_or(""))
            }),
            "layer {layer} with its state:\n{files}"
        );
    }
    assert!(files.contains("at most 64 processes"), "{files}");
    assert!(files.contains("memory 512 MiB"), "{files}");
    assert!(
        files.contains("no network"),
        "the default profile has no network:\n{files}"
    );
    let bound = |path: &Path, access: &str, why: &str| {
        files.lines().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words == [path.to_str().expect("utf-8"), access, why]
        })
    };
    assert!(bound(&data, "read-only", "read"), "{files}");
    assert!(bound(&out, "read-write", "write"), "{files}");
    let exe = support::portcullis_bin()
        .canonicalize()
        .expect("the binary");
    assert!(bound(&exe, "read-only", "installation"), "{files}");
    assert!(
        files.contains(&format!("program: {}", exe.display())),
        "the program as found: {files}"
    );
    let system = files
        .lines()
        .find(|l| l.trim_start().starts_with("system, read-only:"))
        .unwrap_or_else(|| panic!("{files}"));
    assert!(system.contains("/usr"), "{system}");
    assert!(
        !files.contains("/home") && !files.contains("/root/"),
        "nothing of a home directory is bound by default:\n{files}"
    );
    let verdict = files
        .lines()
        .find(|l| l.contains("verdict:"))
        .expect("verdict");
    let namespaces = kernel.contains("namespaces    available");
    assert_eq!(
        verdict.contains("verdict: starts"),
        namespaces,
        "a required sandbox starts exactly when the kernel has namespaces: {verdict}"
    );
}

#[test]
fn sandbox_off_is_reported_off_and_warned() {
    let c = check(
        "[servers.legacy]\ncommand = [\"portcullis\", \"fixture\", \"stdio\"]\nsandbox = \"off\"\n",
    );
    assert_eq!(c.code, Some(0), "{}{}", c.stdout, c.stderr);
    let legacy = sandbox_of(&c.stdout, "legacy");
    assert!(legacy.contains("off"), "{legacy}");
    assert!(
        !legacy.contains("layers:"),
        "no layers for a server without a sandbox: {legacy}"
    );
    assert!(
        warnings(&c.stdout).iter().any(|w| w.contains("\"legacy\"")
            && w.contains("sandbox = \"off\"")
            && w.contains("every right")),
        "{}",
        c.stdout
    );
}

#[test]
fn host_network_and_a_best_effort_sandbox_under_serve_are_warned() {
    let c = check(
        "[servers.web]\ncommand = [\"portcullis\", \"fixture\", \"stdio\"]\n\
         sandbox = { network = \"host\", required = false }\n\n\
         [servers.quiet]\ncommand = [\"portcullis\", \"fixture\", \"stdio\"]\n",
    );
    assert_eq!(c.code, Some(0), "{}{}", c.stdout, c.stderr);
    let web = sandbox_of(&c.stdout, "web");
    let network = web
        .lines()
        .find(|l| l.trim_start().starts_with("network "))
        .unwrap_or_else(|| panic!("{web}"));
    assert!(
        network.contains(" off ") && network.contains("unfiltered"),
        "{network}"
    );
    assert!(web.contains("best effort"), "{web}");
    let w = warnings(&c.stdout);
    assert!(
        w.iter()
            .any(|l| l.contains("\"web\"") && l.contains("network = \"host\"")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|l| l.contains("\"web\"") && l.contains("required = false")),
        "{w:?}"
    );
    assert!(
        !w.iter()
            .any(|l| l.contains("\"quiet\"") && l.contains("sandbox")),
        "the default profile is not a loosening: {w:?}"
    );
}

#[test]
fn sandbox_paths_that_reach_ssh_keys_or_hold_the_home_directory_are_warned() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = real_dir(tmp.path(), "home");
    let (ssh, project) = (real_dir(&home, ".ssh"), real_dir(&home, "project"));
    let config = format!(
        "[servers.keys]\ncommand = [\"portcullis\", \"fixture\", \"stdio\"]\n\
         sandbox = {{ read = [\"{}\", \"{}\"] }}\n\n\
         [servers.all]\ncommand = [\"portcullis\", \"fixture\", \"stdio\"]\n\
         sandbox = {{ write = [\"{}\"] }}\n",
        ssh.display(),
        project.display(),
        home.display()
    );
    let c = check_with_home(&config, Some(&home));
    assert_eq!(c.code, Some(0), "{}{}", c.stdout, c.stderr);
    let w = warnings(&c.stdout);
    assert!(
        w.iter()
            .any(|l| l.contains("\"keys\"") && l.contains("sandbox.read") && l.contains("~/.ssh")),
        "{w:?}"
    );
    assert!(
        w.iter().any(|l| l.contains("\"all\"")
            && l.contains("sandbox.write")
            && l.contains("holds ~/.ssh")),
        "{w:?}"
    );
    assert!(
        !w.iter()
            .any(|l| l.contains(project.to_str().expect("utf-8"))),
        "a project directory is no loosening: {w:?}"
    );
    assert!(sandbox_of(&c.stdout, "keys").contains(ssh.to_str().expect("utf-8")));
}

#[test]
fn a_server_whose_launch_cannot_be_planned_is_reported_refused_and_check_passes() {
    let c = check("[servers.gone]\ncommand = [\"/nonexistent/never-started\"]\n");
    assert_eq!(c.code, Some(0), "{}{}", c.stdout, c.stderr);
    let gone = sandbox_of(&c.stdout, "gone");
    assert!(
        gone.contains("verdict: refused") && gone.contains("/nonexistent/never-started"),
        "{gone}"
    );
    for layer in LAYERS {
        assert!(
            gone.contains(layer),
            "the layers are shown anyway ({layer}): {gone}"
        );
    }
}

/// A kernel that refuses user namespaces is simulated with `user.max_user_namespaces = 0`
/// inside a user namespace of the test's own (the limit holds for that namespace only).
#[test]
fn without_user_namespaces_check_passes_and_says_the_required_sandbox_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("policy.toml");
    std::fs::write(
        &path,
        "[servers.strict]\ncommand = [\"portcullis\", \"fixture\", \"stdio\"]\n\n\
         [servers.lenient]\ncommand = [\"portcullis\", \"fixture\", \"stdio\"]\nsandbox = { required = false }\n",
    )
    .expect("write");
    let mut cmd = Command::new("unshare");
    cmd.args(["--user", "--map-root-user", "sh", "-c"])
        .arg("echo 0 > /proc/sys/user/max_user_namespaces && exec \"$0\" check --config \"$1\"")
        .arg(support::portcullis_bin())
        .arg(&path);
    let (code, stdout, stderr) = support::run_code_with_timeout(cmd, Duration::from_secs(30));
    assert_eq!(
        code,
        Some(0),
        "needs util-linux `unshare` and user namespaces on the test machine\n{stdout}{stderr}"
    );
    assert!(stdout.contains("namespaces    not available"), "{stdout}");
    assert!(stdout.contains("The check still passes"), "{stdout}");
    let strict = sandbox_of(&stdout, "strict");
    assert!(strict.contains("namespaces    missing"), "{strict}");
    assert!(strict.contains("verdict: refused"), "{strict}");
    assert!(
        strict.contains("`portcullis stdio` would start it"),
        "{strict}"
    );
    let lenient = sandbox_of(&stdout, "lenient");
    assert!(
        lenient.contains("verdict: starts WITHOUT namespaces, filesystem, network"),
        "{lenient}"
    );
    assert!(
        lenient.contains("reachable (Landlock") || lenient.contains("nothing confines"),
        "{lenient}"
    );
}
