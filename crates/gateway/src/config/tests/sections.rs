//! `gateway.state`, `[audit]` and `[limits]`.

use std::path::{Path, PathBuf};

use super::super::{AuditMirror, Config, ConfigSource, GatewayConfig, StateLocation};
use super::{error, ok};

fn parse_at(path: &str, text: &str) -> Config {
    Config::parse(text, ConfigSource::File(PathBuf::from(path)))
        .unwrap_or_else(|e| panic!("config should parse:\n{e}"))
}

#[test]
fn state_defaults_to_the_xdg_state_directory() {
    let StateLocation::Sqlite(path) = GatewayConfig::default().state;
    assert!(
        path.ends_with("portcullis/portcullis.db"),
        "{}",
        path.display()
    );
    assert_eq!(ok("").gateway.state, GatewayConfig::default().state);
}

#[test]
fn state_paths_are_relative_to_the_config_files_directory() {
    let c = parse_at(
        "/etc/portcullis/gw.toml",
        "[gateway]\nstate = \"sqlite:state/p.db\"\n",
    );
    assert_eq!(
        c.gateway.state,
        StateLocation::Sqlite(PathBuf::from("/etc/portcullis/state/p.db"))
    );
    let c = parse_at(
        "/etc/portcullis/gw.toml",
        "[gateway]\nstate = \"sqlite:/var/lib/p.db\"\n",
    );
    assert_eq!(
        c.gateway.state,
        StateLocation::Sqlite(PathBuf::from("/var/lib/p.db"))
    );
    // A config named without a directory: relative to the working directory, like it.
    let c = ok("[gateway]\nstate = \"sqlite:p.db\"\n");
    assert_eq!(
        c.gateway.state,
        StateLocation::Sqlite(PathBuf::from("p.db"))
    );
}

#[test]
fn state_other_than_sqlite_is_refused() {
    assert_eq!(
        error("[gateway]\nstate = \"redis://cache:6379\"\n"),
        "2:9: gateway.state \"redis://cache:6379\": Redis state is not yet supported; use \"sqlite:<path>\""
    );
    assert_eq!(
        error("[gateway]\nstate = \"portcullis.db\"\n"),
        "2:9: gateway.state must be \"sqlite:<path>\" (e.g. \"sqlite:portcullis.db\"), not \"portcullis.db\""
    );
    assert_eq!(
        error("[gateway]\nstate = \"sqlite:\"\n"),
        "2:9: gateway.state needs a database path after `sqlite:` (e.g. \"sqlite:portcullis.db\")"
    );
}

#[test]
fn audit_settings() {
    let c = ok("");
    assert!(!c.audit.include_args);
    assert_eq!(c.audit.mirror, None);
    let c = ok("[audit]\ninclude_args = true\nmirror = \"stderr\"\n");
    assert!(c.audit.include_args);
    assert_eq!(c.audit.mirror, Some(AuditMirror::Stderr));
    assert_eq!(
        ok("[audit]\nmirror = \"stdout\"\n").audit.mirror,
        Some(AuditMirror::Stdout)
    );
    let c = parse_at("/srv/gw/p.toml", "[audit]\nmirror = \"file:audit.jsonl\"\n");
    assert_eq!(
        c.audit.mirror,
        Some(AuditMirror::File(
            Path::new("/srv/gw/audit.jsonl").to_path_buf()
        ))
    );
    assert_eq!(
        error("[audit]\nmirror = \"syslog\"\n"),
        "2:10: audit.mirror must be \"stdout\", \"stderr\" or \"file:<path>\", not \"syslog\""
    );
    assert_eq!(
        error("[audit]\nmirror = \"file:\"\n"),
        "2:10: audit.mirror must be \"stdout\", \"stderr\" or \"file:<path>\", not \"file:\""
    );
    assert_eq!(
        error("[audit]\ninclude_args = \"yes\"\n"),
        "2:16: invalid type: string \"yes\", expected a boolean"
    );
}

#[test]
fn limits_settings() {
    assert_eq!(ok("").limits.rate, None);
    let c = ok("[limits]\nrate = \"600/hour\"\nburst = 50\n");
    assert_eq!(
        c.limits.rate.map(|r| r.to_string()),
        Some("600/hour, burst 50".into())
    );
    assert_eq!(
        ok("[limits]\nrate = \"5/second\"\n")
            .limits
            .rate
            .map(|r| r.burst),
        Some(5)
    );
    assert_eq!(
        error("[limits]\nburst = 5\n"),
        "2:9: limits.burst needs limits.rate (e.g. rate = \"10/minute\")"
    );
    assert_eq!(
        error("[limits]\nrate = \"0/second\"\n"),
        "2:8: the count in rate \"0/second\" must be between 1 and 1000000 (limits.rate)"
    );
    assert_eq!(
        error("[limits]\nrate = \"5/second\"\nburst = -1\n"),
        "3:9: burst must be between 1 and 1000000, not -1 (limits.rate)"
    );
    assert_eq!(
        error("[limits]\nrat = \"5/second\"\n"),
        "2:1: unknown field `rat`, expected `rate` or `burst`"
    );
}
