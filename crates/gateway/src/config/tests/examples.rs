//! The quickstart and the shipped examples parse, and say what they claim to.

use std::time::Duration;

use portcullis_policy::{Effect, Kind, Principal, Request, Target};

use super::super::{
    Config, ConfigSource, DEFAULT_LISTEN, FailureMode, Instances, LogFormat, QUICKSTART,
    SystemPaths, Upstream, UpstreamProtocol,
};
use super::{ok, parse};

const DESKTOP: &str = include_str!("../../../../../examples/desktop.toml");
const VIRTUAL: &str = include_str!("../../../../../examples/virtual.toml");
const POLICY: &str = include_str!("../../../../../examples/policy.toml");

fn allowed(config: &Config, server: &str, kind: Kind, name: &str) -> bool {
    config
        .policy
        .allows(&Principal::local("me"), &Target { server, kind, name })
}

#[test]
fn quickstart_parses() {
    let config = Config::quickstart();
    assert_eq!(config.source, ConfigSource::Embedded("quickstart"));
    assert_eq!(config.source.to_string(), "<embedded quickstart>");
    assert_eq!(config.gateway.listen, DEFAULT_LISTEN);
    assert!(Config::parse(QUICKSTART, ConfigSource::Embedded("quickstart")).is_ok());
}

#[test]
fn quickstart_runs_the_bundled_fixture_and_allows_only_its_safe_parts() {
    let config = Config::quickstart();
    let demo = &config.servers["demo"];
    let Upstream::Stdio(stdio) = &demo.upstream else {
        panic!("demo should be a stdio server");
    };
    assert_eq!(stdio.command, ["portcullis", "fixture", "stdio"]);
    for tool in ["echo", "add", "slow", "large", "sample", "elicit", "log"] {
        assert!(allowed(&config, "demo", Kind::Tool, tool), "{tool}");
    }
    for tool in ["fail", "crash", "poisoned_description", "anything_else"] {
        assert!(!allowed(&config, "demo", Kind::Tool, tool), "{tool}");
    }
    for prompt in ["greeting", "plain"] {
        assert!(allowed(&config, "demo", Kind::Prompt, prompt));
    }
    assert!(!allowed(
        &config,
        "demo",
        Kind::Prompt,
        "test_simple_prompt"
    ));
    assert!(allowed(
        &config,
        "demo",
        Kind::Resource,
        "fixture://static/hello"
    ));
    assert!(allowed(
        &config,
        "demo",
        Kind::Resource,
        "fixture://items/{id}"
    ));
    assert!(!allowed(
        &config,
        "demo",
        Kind::Resource,
        "test://static-text"
    ));
    assert!(config.warnings().is_empty(), "{:#?}", config.warnings());
}

#[test]
fn quickstart_rule_origins_point_into_the_embedded_file() {
    let config = Config::quickstart();
    let first = &config.policy.rules()[0];
    let line = first.origin.line.unwrap_or(0);
    assert_eq!(QUICKSTART.lines().nth(line - 1), Some("[[rules]]"));
    assert_eq!(
        first.origin.to_string(),
        format!("rule 1 (<embedded quickstart>:{line})")
    );
}

#[test]
fn desktop_example_parses_and_is_read_only() {
    let config = ok(DESKTOP);
    let files = &config.servers["files"];
    let Upstream::Stdio(stdio) = &files.upstream else {
        panic!("files should be a stdio server");
    };
    assert_eq!(stdio.env.pass, ["PATH", "HOME"]);
    assert_eq!(stdio.instances, Instances::PerSession);
    assert_eq!(stdio.max_backoff, Duration::from_secs(10));
    assert_eq!(files.timeout, Duration::from_secs(30));
    assert_eq!(config.log.format, LogFormat::Text);
    assert!(allowed(&config, "files", Kind::Tool, "read_text_file"));
    assert!(!allowed(&config, "files", Kind::Tool, "write_file"));
    let me = Principal::local("me");
    let decision = config.policy.decide(
        &Request::new(&me, "files", Kind::Tool, "write_file"),
        &SystemPaths,
    );
    assert_eq!(decision.rule, Some(1));
    // Resources are held inside the project tree, `..` and encodings included.
    let read = |uri: &str| {
        config
            .policy
            .decide(
                &Request::new(&me, "files", Kind::Resource, uri),
                &SystemPaths,
            )
            .is_allowed()
    };
    assert!(read("file:///home/me/src/main.rs"));
    assert!(!read("file:///home/me/src/../.ssh/id_ed25519"));
    assert!(!read("file:///home/me/src/%2e%2e/.ssh/id_ed25519"));
    assert!(config.warnings().is_empty(), "{:#?}", config.warnings());
}

#[test]
fn virtual_example_parses_and_joins_two_servers() {
    let config = ok(VIRTUAL);
    let v = &config.virtuals["workspace"];
    assert_eq!(v.servers, ["files", "tickets"]);
    assert_eq!(v.on_upstream_failure, FailureMode::Omit);
    let tickets = &config.servers["tickets"];
    assert!(matches!(&tickets.upstream, Upstream::Http(h) if h.url == "http://127.0.0.1:3001/mcp"));
    assert!(matches!(tickets.protocol, UpstreamProtocol::Fixed(v) if v.as_str() == "2025-06-18"));
    assert_eq!(tickets.timeout, Duration::from_secs(20));
    assert_eq!(config.servers["files"].timeout, Duration::from_secs(60));
    assert!(!allowed(&config, "tickets", Kind::Tool, "delete_ticket"));
    assert!(allowed(&config, "tickets", Kind::Tool, "create_ticket"));
    assert!(config.warnings().is_empty(), "{:#?}", config.warnings());
}

#[test]
fn an_empty_file_is_a_valid_deny_everything_config_with_defaults() {
    let config = ok("");
    assert_eq!(config.gateway, super::super::GatewayConfig::default());
    assert_eq!(config.log, super::super::LogConfig::default());
    assert!(config.servers.is_empty());
    assert!(config.policy.rules().is_empty());
}

#[test]
fn defaults_fill_unset_server_keys() {
    let config = ok("[gateway]\nrequest_timeout = \"15s\"\n[servers.a]\ncommand = [\"x\"]\n");
    let a = &config.servers["a"];
    assert_eq!(a.timeout, Duration::from_secs(15));
    assert_eq!(a.protocol, UpstreamProtocol::Auto);
    let Upstream::Stdio(s) = &a.upstream else {
        panic!("stdio");
    };
    assert_eq!(s.instances, Instances::PerSession);
    assert_eq!(s.max_backoff, Duration::from_secs(30));
    assert_eq!(
        s.env.pass,
        crate::config::DEFAULT_ENV_PASS.map(String::from).to_vec()
    );
    assert!(s.env.set.is_empty());
    assert_eq!(s.cwd, None);
}

#[test]
fn an_explicit_empty_pass_list_passes_nothing_and_set_replaces_a_default() {
    let config = ok(
        "[servers.a]\ncommand = [\"x\"]\nenv = { pass = [] }\n[servers.b]\ncommand = [\"x\"]\nenv = { set = { PATH = \"/opt/bin\" } }\n",
    );
    let Upstream::Stdio(a) = &config.servers["a"].upstream else {
        panic!("stdio")
    };
    assert!(a.env.pass.is_empty());
    let Upstream::Stdio(b) = &config.servers["b"].upstream else {
        panic!("stdio")
    };
    assert!(!b.env.pass.contains(&"PATH".to_owned()));
    assert!(b.env.pass.contains(&"HOME".to_owned()));
    assert_eq!(b.env.set.get("PATH").map(String::as_str), Some("/opt/bin"));
}

#[test]
fn load_reads_a_file_and_names_it_in_diagnostics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[gateway]\nlisten = \"nope\"\n").expect("write");
    let err = Config::load(&path).unwrap_err();
    assert_eq!(err.errors[0].file, path.display().to_string());
    assert_eq!((err.errors[0].line, err.errors[0].column), (2, 10));

    let good = dir.path().join("good.toml");
    std::fs::write(&good, QUICKSTART).expect("write");
    let config = Config::load(&good).expect("loads");
    assert_eq!(config.source, ConfigSource::File(good.clone()));
    assert_eq!(
        config.policy.rules()[0].origin.file.as_deref(),
        Some(good.display().to_string().as_str())
    );
}

#[test]
fn unreadable_file_is_a_line_zero_diagnostic() {
    let err = Config::load(std::path::Path::new("/nonexistent/portcullis.toml")).unwrap_err();
    assert_eq!(err.errors.len(), 1);
    assert_eq!((err.errors[0].line, err.errors[0].column), (0, 0));
    assert!(
        err.to_string()
            .starts_with("/nonexistent/portcullis.toml: cannot read config: "),
        "{err}"
    );
}

#[test]
fn non_utf8_file_is_a_diagnostic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("latin1.toml");
    std::fs::write(&path, b"[gateway]\n# caf\xe9\n").expect("write");
    let err = Config::load(&path).unwrap_err();
    assert!(
        err.errors[0]
            .message
            .starts_with("config is not valid UTF-8"),
        "{err}"
    );
}

#[test]
fn rule_effects_and_order_are_kept() {
    let config = ok(
        "[servers.a]\ncommand = [\"x\"]\n[[rules]]\ntools = [\"x\"]\neffect = \"deny\"\n[[rules]]\nserver = \"a\"\neffect = \"allow\"\n",
    );
    let rules = config.policy.rules();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].effect, Effect::Deny);
    assert_eq!(rules[1].effect, Effect::Allow);
    assert_eq!(rules[1].origin.index, 1);
    assert_eq!(rules[1].origin.line, Some(6));
    assert!(parse("[[rules]]\neffect = \"allow\"\n").is_ok());
}

#[test]
fn a_leading_byte_order_mark_is_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bom.toml");
    std::fs::write(&path, "\u{feff}[gateway]\nlisten = \"nope\"\n").expect("write");
    let err = Config::load(&path).unwrap_err();
    assert_eq!((err.errors[0].line, err.errors[0].column), (2, 10), "{err}");
}

#[test]
fn policy_example_parses_and_decides_as_its_comments_say() {
    use portcullis_policy::Verdict;
    use serde_json::json;

    let config = ok(POLICY);
    assert!(config.warnings().is_empty(), "{:#?}", config.warnings());
    assert_eq!(
        config.limits.rate.map(|r| r.to_string()),
        Some("600/hour".into())
    );
    let decide = |who: &Principal, server: &str, tool: &str, args: serde_json::Value| {
        config.policy.decide(
            &Request::new(who, server, Kind::Tool, tool).with_args(&args),
            &SystemPaths,
        )
    };
    let alice = Principal::oauth("https://idp.example.com", "alice");
    let admin = Principal::oauth("https://idp.example.com", "root").with_groups(["admins"]);
    assert!(decide(&admin, "files", "delete_everything", json!({})).is_allowed());
    assert!(
        decide(
            &alice,
            "files",
            "read_file",
            json!({"path": "/srv/projects/a.rs"})
        )
        .is_allowed()
    );
    for escape in [
        "/srv/projects/../../etc/passwd",
        "file:///srv/projects/%2e%2e/%2e%2e/etc/passwd",
        "/srv/projects\u{2215}..\u{2215}etc",
        "etc/passwd",
    ] {
        assert!(
            !decide(&alice, "files", "read_file", json!({ "path": escape })).is_allowed(),
            "{escape}"
        );
    }
    let write = json!({"path": "/srv/projects/a.rs", "content": "x"});
    assert_eq!(
        decide(&alice, "files", "write_file", write.clone()).verdict,
        Verdict::InsufficientScope {
            missing: vec!["files:write".into()]
        }
    );
    let writer = alice.clone().with_scopes(["files:write"]);
    let d = decide(&writer, "files", "write_file", write.clone());
    assert!(d.is_allowed());
    assert_eq!(d.rate.map(|r| r.to_string()), Some("30/minute".into()));
    assert!(decide(&Principal::local("me"), "files", "write_file", write).is_allowed());
    let eng = alice.clone().with_claims(
        json!({"dept": "eng"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    assert!(
        decide(
            &eng,
            "web",
            "fetch",
            json!({"url": "https://docs.example.com/x"})
        )
        .is_allowed()
    );
    assert!(
        !decide(
            &eng,
            "web",
            "fetch",
            json!({"url": "https://docs.example.com@evil.com/"})
        )
        .is_allowed()
    );
    assert!(
        !decide(
            &alice,
            "web",
            "fetch",
            json!({"url": "https://docs.example.com/x"})
        )
        .is_allowed()
    );
}
