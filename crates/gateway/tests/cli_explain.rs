//! `portcullis explain`, the real binary on real config files: the verdict and exit code,
//! the deciding rule's file:line, why each earlier rule did not decide, and the argument
//! check against `--schema` and against the real fixture upstream (started by the command
//! and stopped again).
//!
//! The policy has one rule of each kind: a rule about another server, a deny before a
//! broader allow, a CEL condition over the arguments, a `principals` rule, `paths`/`roots`
//! over a real directory holding a symbolic link that points outside it, a `scopes` rule,
//! a consent rule.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

/// A config in a temporary directory, with a root directory (`root/docs/readme.txt`) and a
/// symbolic link inside it (`root/escape`) that points outside it (`outside/`).
struct Setup {
    dir: tempfile::TempDir,
    path: PathBuf,
    text: String,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("docs")).expect("root/docs");
        std::fs::write(root.join("docs/readme.txt"), "hello").expect("readme");
        std::fs::create_dir_all(dir.path().join("outside")).expect("outside");
        std::fs::write(dir.path().join("outside/secret.txt"), "s3cret").expect("secret");
        std::os::unix::fs::symlink(dir.path().join("outside"), root.join("escape"))
            .expect("symlink");
        let text = policy(&root);
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, &text).expect("write the config");
        Setup { dir, path, text }
    }

    /// The state database `PORTCULLIS_STATE` names for every run: explain records nothing,
    /// so it must never appear.
    fn state(&self) -> PathBuf {
        self.dir.path().join("state.db")
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `rule N (<path>:<line>)`, N one-based, the line of its `[[rules]]` header.
    fn rule(&self, n: usize) -> String {
        let line = self
            .text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.trim() == "[[rules]]")
            .nth(n - 1)
            .map(|(i, _)| i + 1)
            .expect("no such rule");
        format!("rule {n} ({}:{line})", self.path.display())
    }

    fn line_of(&self, n: usize) -> usize {
        let r = self.rule(n);
        let line = r.rsplit(':').next().expect("line").trim_end_matches(')');
        line.parse().expect("a line number")
    }

    fn explain(&self, args: &[&str]) -> Explained {
        let mut cmd = Command::new(support::portcullis_bin());
        cmd.arg("explain")
            .arg("--config")
            .arg(&self.path)
            .args(args);
        // Not who the gateway thinks the local user is: that comes from the uid.
        cmd.env("USER", "tester");
        cmd.env(
            "PORTCULLIS_STATE",
            format!("sqlite:{}", self.state().display()),
        );
        let (code, stdout, stderr) = support::run_code_with_timeout(cmd, Duration::from_secs(60));
        Explained {
            code,
            stdout,
            stderr,
        }
    }
}

struct Explained {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Explained {
    #[track_caller]
    fn expect(&self, code: i32, lines: &[&str]) {
        assert_eq!(
            self.code,
            Some(code),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        for line in lines {
            assert!(
                self.stdout.lines().any(|l| l == *line),
                "no line {line:?} in:\n{}\nstderr:\n{}",
                self.stdout,
                self.stderr
            );
        }
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

fn policy(root: &Path) -> String {
    format!(
        r#"{files}
[servers.tickets]
url = "http://127.0.0.1:9/mcp"

[virtual.work]
servers = ["files", "tickets"]

[[rules]]
server = "tickets"
tools = ["*"]
effect = "allow"

[[rules]]
server = "files"
tools = ["delete_*"]
effect = "deny"

[[rules]]
server = "files"
tools = ["echo"]
when = 'args.message.contains("password")'
effect = "deny"

[[rules]]
server = "files"
tools = ["echo", "add"]
principals = ["local:alice", "group:staff"]
effect = "allow"

[[rules]]
server = "files"
tools = ["read_file"]
paths = ["args.path"]
roots = ["{root}"]
effect = "allow"

[[rules]]
server = "files"
tools = ["add"]
scopes = ["math:write"]
effect = "allow"

[[rules]]
server = "files"
tools = ["purge"]
effect = "consent"

[[rules]]
server = "files"
tools = ["*"]
principals = ["sub:admin"]
effect = "allow"

[[rules]]
server = "files"
prompts = ["greeting"]
resources = ["fixture://*"]
effect = "allow"
"#,
        files = support::fixture_stdio_server("files"),
        root = root.display(),
    )
}

#[test]
fn a_deny_before_a_broader_allow_decides_and_exits_1() {
    let s = Setup::new();
    // Rule 8 would allow everything for sub:admin, but rule 2's deny comes first.
    let e = s.explain(&[
        "--server",
        "files",
        "--tool",
        "delete_all",
        "--principal",
        "sub:admin",
        "--no-upstream",
    ]);
    e.expect(
        1,
        &[
            "call: tool \"delete_all\" on server \"files\" by explain|admin over http",
            "decision: deny",
            &format!("by: {}", s.rule(2)),
            &format!("  {}: skipped: about server \"tickets\"", s.rule(1)),
            &format!("  {}: matched: deny", s.rule(2)),
            "arguments: not checked (--no-upstream)",
        ],
    );
    assert!(
        !e.stdout.contains(&s.rule(8)),
        "rules after the deciding one are not listed:\n{}",
        e.stdout
    );
}

#[test]
fn a_condition_over_the_arguments_decides_both_ways() {
    let s = Setup::new();
    let base = [
        "--server",
        "files",
        "--tool",
        "echo",
        "--principal",
        "local:alice",
        "--no-upstream",
    ];
    let denied = s.explain(&[&base[..], &["--args", r#"{"message":"my password"}"#]].concat());
    denied.expect(
        1,
        &[
            "decision: deny",
            &format!("by: {}", s.rule(3)),
            &format!("  {}: matched: deny", s.rule(3)),
        ],
    );
    let allowed = s.explain(&[&base[..], &["--args", r#"{"message":"hello"}"#]].concat());
    allowed.expect(
        0,
        &[
            "decision: allow",
            &format!("by: {}", s.rule(4)),
            &format!(
                "  {}: skipped: condition is false: args.message.contains(\"password\")",
                s.rule(3)
            ),
            &format!(
                "  {}: skipped: tool \"echo\" is not in tools = [delete_*]",
                s.rule(2)
            ),
            &format!("  {}: matched: allow", s.rule(4)),
        ],
    );
}

#[test]
fn a_principals_rule_says_who_it_is_about() {
    let s = Setup::new();
    let args = ["--args", r#"{"message":"hello"}"#, "--no-upstream"];
    let bob = s.explain(
        &[
            &[
                "--server",
                "files",
                "--tool",
                "echo",
                "--principal",
                "local:bob",
            ][..],
            &args,
        ]
        .concat(),
    );
    bob.expect(
        1,
        &[
            "decision: deny",
            "by: default deny",
            &format!(
                "  {}: skipped: principal local:bob is not in principals = [local:alice, group:staff]",
                s.rule(4)
            ),
            "  default deny: no rule matched",
        ],
    );
    // A token's groups count; so does the default principal of stdio, the local user.
    let staff = s.explain(
        &[
            &[
                "--server",
                "files",
                "--tool",
                "echo",
                "--principal",
                "sub:carol",
            ][..],
            &["--groups", "staff,ops"],
            &args,
        ]
        .concat(),
    );
    staff.expect(0, &["decision: allow", &format!("by: {}", s.rule(4))]);
    let me = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .expect("the test user has a name");
    let stdio = s.explain(
        &[
            &[
                "--server",
                "files",
                "--tool",
                "echo",
                "--transport",
                "stdio",
            ][..],
            &args,
        ]
        .concat(),
    );
    stdio.expect(
        1,
        &[
            &format!("call: tool \"echo\" on server \"files\" by local:{me} over stdio"),
            &format!(
                "  {}: skipped: principal local:{me} is not in principals = [local:alice, group:staff]",
                s.rule(4)
            ),
        ],
    );
}

#[test]
fn paths_must_stay_inside_the_root_even_through_a_symbolic_link() {
    let s = Setup::new();
    let inside = s.root().join("docs/readme.txt");
    let args = format!(r#"{{"path":"{}"}}"#, inside.display());
    let e = s.explain(&[
        "--server",
        "files",
        "--tool",
        "read_file",
        "--args",
        &args,
        "--no-upstream",
    ]);
    e.expect(
        0,
        &[
            "decision: allow",
            &format!("by: {}", s.rule(5)),
            &format!("  {}: matched: allow", s.rule(5)),
        ],
    );

    // root/escape/secret.txt is inside the root as written, outside once the link is followed.
    let through_link = s.root().join("escape/secret.txt");
    let args = format!(r#"{{"path":"{}"}}"#, through_link.display());
    let e = s.explain(&[
        "--server",
        "files",
        "--tool",
        "read_file",
        "--args",
        &args,
        "--no-upstream",
    ]);
    e.expect(
        1,
        &[
            "decision: deny",
            "by: default deny",
            &format!(
                "  {}: skipped: paths: args.path: args.path resolves through a symbolic link to a place outside the allowed roots",
                s.rule(5)
            ),
        ],
    );
    assert!(
        !e.stdout.contains("outside/secret.txt"),
        "traces never repeat argument values:\n{}",
        e.stdout
    );
}

#[test]
fn a_scopes_rule_answers_insufficient_scope_until_the_token_carries_them() {
    let s = Setup::new();
    let base = [
        "--server",
        "files",
        "--tool",
        "add",
        "--principal",
        "sub:carol",
        "--issuer",
        "https://idp.example.com",
        "--no-upstream",
    ];
    let lacking = s.explain(&[&base[..], &["--scopes", "math:read"]].concat());
    lacking.expect(
        1,
        &[
            "call: tool \"add\" on server \"files\" by https://idp.example.com|carol over http",
            "decision: insufficient_scope",
            &format!("by: {}", s.rule(6)),
            &format!(
                "  {}: matched, but the token lacks math:write: insufficient_scope",
                s.rule(6)
            ),
        ],
    );
    let json = s.explain(&[&base[..], &["--scopes", "math:read", "--json"]].concat());
    assert_eq!(json.code, Some(1), "{}", json.stderr);
    let j = json.json();
    assert_eq!(j["verdict"], "insufficient_scope");
    assert_eq!(j["missing_scopes"], serde_json::json!(["math:write"]));
    assert_eq!(j["rule_number"], 6);
    assert_eq!(j["line"], s.line_of(6));
    assert_eq!(j["file"], s.path.display().to_string());

    let granted = s.explain(&[&base[..], &["--scopes", "math:read,math:write"]].concat());
    granted.expect(0, &["decision: allow", &format!("by: {}", s.rule(6))]);
}

#[test]
fn a_consent_rule_is_not_an_allow() {
    let s = Setup::new();
    let e = s.explain(&["--server", "files", "--tool", "purge", "--no-upstream"]);
    e.expect(
        1,
        &[
            "decision: consent",
            &format!("by: {}", s.rule(7)),
            &format!("  {}: matched: consent", s.rule(7)),
        ],
    );
}

#[test]
fn arguments_are_checked_against_a_schema_file_naming_the_failing_path() {
    let s = Setup::new();
    let schema = s.dir.path().join("add.json");
    std::fs::write(
        &schema,
        r#"{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]}"#,
    )
    .expect("schema");
    let schema = schema.display().to_string();
    let base = [
        "--server",
        "files",
        "--tool",
        "add",
        "--principal",
        "local:alice",
        "--schema",
        &schema,
    ];
    let valid = s.explain(&[&base[..], &["--args", r#"{"a":1,"b":2}"#]].concat());
    valid.expect(
        0,
        &[
            "decision: allow",
            &format!("arguments: valid (inputSchema from {schema})"),
        ],
    );

    let invalid = s.explain(&[&base[..], &["--args", r#"{"a":"one"}"#]].concat());
    invalid.expect(
        1,
        &[
            "decision: allow",
            &format!("arguments: invalid (inputSchema from {schema})"),
            "  arguments/a: \"one\" is not of type \"number\"",
            "  arguments: \"b\" is a required property",
        ],
    );
    let json = s.explain(&[&base[..], &["--args", r#"{"a":"one","b":2}"#, "--json"]].concat());
    assert_eq!(json.code, Some(1), "{}", json.stderr);
    let j = json.json();
    assert_eq!(j["verdict"], "allow");
    assert_eq!(j["arguments"]["status"], "invalid");
    assert_eq!(j["arguments"]["problems"][0]["path"], "/a");
    assert!(
        j["trace"]
            .as_str()
            .is_some_and(|t| t.contains("matched: allow")),
        "{j}"
    );

    // A tools/list result works too: the tool is found by name.
    let list = s.dir.path().join("tools.json");
    std::fs::write(
        &list,
        r#"{"tools":[{"name":"echo","inputSchema":{"type":"object"}},{"name":"add","inputSchema":{"type":"object","required":["a"]}}]}"#,
    )
    .expect("list");
    let from_list = s.explain(&[
        "--server",
        "files",
        "--tool",
        "add",
        "--principal",
        "local:alice",
        "--schema",
        &list.display().to_string(),
        "--args",
        "{}",
    ]);
    from_list.expect(1, &["  arguments: \"a\" is a required property"]);
}

#[test]
fn the_real_upstream_is_started_for_its_schemas_prompts_and_resources() {
    let s = Setup::new();
    let add = [
        "--server",
        "files",
        "--tool",
        "add",
        "--principal",
        "local:alice",
    ];
    let valid = s.explain(&[&add[..], &["--args", r#"{"a":1,"b":2}"#]].concat());
    valid.expect(
        0,
        &[
            "decision: allow",
            "arguments: valid (inputSchema of tool \"add\" listed by server \"files\")",
        ],
    );
    let invalid = s.explain(&[&add[..], &["--args", r#"{"a":1,"b":"two"}"#]].concat());
    invalid.expect(
        1,
        &[
            "arguments: invalid (inputSchema of tool \"add\" listed by server \"files\")",
            "  arguments/b: \"two\" is not of type \"number\"",
        ],
    );
    // A tool the upstream does not have: the gateway would refuse it as unknown.
    let missing = s.explain(&[
        "--server",
        "files",
        "--tool",
        "nonexistent",
        "--principal",
        "sub:admin",
    ]);
    missing.expect(
        1,
        &[
            "decision: allow",
            "arguments: refused: server \"files\" does not list tool \"nonexistent\" (the gateway refuses it as unknown)",
        ],
    );

    let prompt = s.explain(&["--server", "files", "--prompt", "greeting", "--args", "{}"]);
    prompt.expect(
        1,
        &[
            "decision: allow",
            &format!("by: {}", s.rule(9)),
            &format!(
                "  rules 2-8 ({}:{}-{}): skipped: about other kinds or names",
                s.path.display(),
                s.line_of(2),
                s.line_of(8)
            ),
            "arguments: invalid (prompt \"greeting\" as listed by server \"files\")",
            "  arguments: \"name\" is a required argument",
        ],
    );
    let prompt = s.explain(&[
        "--server",
        "files",
        "--prompt",
        "greeting",
        "--args",
        r#"{"name":"Ada"}"#,
    ]);
    prompt.expect(
        0,
        &["arguments: valid (prompt \"greeting\" as listed by server \"files\")"],
    );

    let listed = s.explain(&["--server", "files", "--resource", "fixture://static/hello"]);
    listed.expect(0, &["uri: valid (listed by server \"files\")"]);
    let templated = s.explain(&["--server", "files", "--resource", "fixture://items/42"]);
    templated.expect(
        0,
        &["uri: valid (matches a template listed by server \"files\")"],
    );
    let unlisted = s.explain(&["--server", "files", "--resource", "fixture://items/a/b"]);
    unlisted.expect(
        1,
        &[
            "decision: allow",
            "uri: refused: server \"files\" lists no resource \"fixture://items/a/b\" and no template matching it (the gateway refuses it as unknown)",
        ],
    );

    // Through the virtual server, names carry their server.
    let via = s.explain(&[
        "--server",
        "work",
        "--tool",
        "files.add",
        "--principal",
        "local:alice",
        "--args",
        r#"{"a":1,"b":2}"#,
    ]);
    via.expect(
        0,
        &[
            "call: tool \"add\" on server \"files\" (through virtual server \"work\") by local:alice over http",
            "arguments: valid (inputSchema of tool \"add\" listed by server \"files\")",
        ],
    );

    assert!(
        !s.state().exists(),
        "explain started the upstream without opening the state database"
    );
}

#[test]
fn an_unreachable_upstream_leaves_the_arguments_unchecked_and_the_exit_code_alone() {
    let s = Setup::new();
    let e = s.explain(&["--server", "tickets", "--tool", "create", "--args", "{}"]);
    e.expect(0, &["decision: allow", &format!("by: {}", s.rule(1))]);
    let last = e.stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("arguments: not checked (upstream unavailable: "),
        "{}",
        e.stdout
    );
    let json = s.explain(&["--server", "tickets", "--tool", "create", "--json"]);
    assert_eq!(json.code, Some(0), "{}", json.stderr);
    assert_eq!(json.json()["arguments"]["status"], "not_checked");
}

#[test]
fn usage_and_config_errors_exit_2() {
    let s = Setup::new();
    let unknown = s.explain(&["--server", "nope", "--tool", "x"]);
    assert_eq!(unknown.code, Some(2));
    assert!(
        unknown
            .stderr
            .contains("unknown server \"nope\" (known: files, tickets, work)"),
        "{}",
        unknown.stderr
    );
    let token = s.explain(&["--server", "files", "--tool", "x", "--scopes", "a"]);
    assert_eq!(token.code, Some(2));
    assert!(
        token.stderr.contains("--scopes describes a token"),
        "{}",
        token.stderr
    );
    let args = s.explain(&["--server", "files", "--tool", "x", "--args", "[1]"]);
    assert_eq!(args.code, Some(2));
    assert!(
        args.stderr.contains("--args must be a JSON object"),
        "{}",
        args.stderr
    );
    let no_target = s.explain(&["--server", "files"]);
    assert_eq!(no_target.code, Some(2));

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    let text = "[servers.files]\ncommand = [\"x\"]\n\n[[rules]]\nserver = \"fles\"\ntools = [\"*\"]\neffect = \"allow\"\n";
    std::fs::write(&bad, text).expect("write");
    let mut cmd = Command::new(support::portcullis_bin());
    cmd.arg("explain")
        .arg("--config")
        .arg(&bad)
        .args(["--server", "files", "--tool", "x"]);
    let (code, stdout, stderr) = support::run_code_with_timeout(cmd, Duration::from_secs(30));
    assert_eq!(code, Some(2), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stderr.contains(&format!("{}:5:10: unknown server \"fles\"", bad.display())),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
}
