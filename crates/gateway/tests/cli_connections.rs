//! `portcullis connections list|forget`, the real binary on a real state file. Grants are
//! seeded as the gateway stores them, through `portcullis_gateway::oauth::vault::GrantVault`
//! (sealed with the key file beside the database, or with a given key); the binary lists
//! them — without a token, ever — opens them with the vault key to tell valid from expired,
//! honours `PORTCULLIS_VAULT_KEY` over the file, and forgets them with an audit record.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use portcullis_auth::client::{StoredGrant, TokenSet};
use portcullis_auth::secret::Secret;
use portcullis_auth::vault::VaultKey;
use portcullis_gateway::config::{Config, StateLocation};
use portcullis_gateway::oauth::vault::GrantVault;
use portcullis_store::{SqliteOptions, SqliteStore, Store};
use serde_json::Value;
use support::{isolate_state, portcullis_bin, run_code_with_timeout};

const ISSUER: &str = "https://as.example";
const CLI_WAIT: Duration = Duration::from_secs(30);

struct Scratch {
    _dir: tempfile::TempDir,
    db: PathBuf,
    config: Config,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("portcullis.db");
        let mut config = Config::quickstart();
        config.gateway.state = StateLocation::Sqlite(db.clone());
        Scratch {
            _dir: dir,
            db,
            config,
        }
    }

    fn store(&self) -> Arc<dyn Store> {
        SqliteStore::open(&self.db, SqliteOptions::default()).expect("open the store")
    }

    /// `portcullis <args>` on this state, with `PORTCULLIS_VAULT_KEY` set to `key` (else
    /// removed): (exit code, stdout, stderr).
    fn cli(&self, args: &[&str], key: Option<&str>) -> (Option<i32>, String, String) {
        let mut cmd = Command::new(portcullis_bin());
        isolate_state(&mut cmd);
        cmd.args(args)
            .env("PORTCULLIS_STATE", format!("sqlite:{}", self.db.display()));
        match key {
            Some(key) => cmd.env("PORTCULLIS_VAULT_KEY", key),
            None => cmd.env_remove("PORTCULLIS_VAULT_KEY"),
        };
        run_code_with_timeout(cmd, CLI_WAIT)
    }

    fn ok(&self, args: &[&str], key: Option<&str>) -> String {
        let (code, out, err) = self.cli(args, key);
        assert_eq!(code, Some(0), "{args:?}\n{out}\n{err}");
        assert_no_token(&out);
        assert_no_token(&err);
        out
    }
}

/// A grant obtained `age` ago, valid for `lifetime` (`None`: the server did not say).
fn grant(token: &str, age: Duration, lifetime: Option<Duration>) -> StoredGrant {
    StoredGrant {
        tokens: TokenSet {
            access_token: Secret::new(format!("access-{token}")),
            refresh_token: Some(Secret::new(format!("refresh-{token}"))),
            expires_in: lifetime,
            scope: None,
        },
        obtained_at: SystemTime::now() - age,
        issuer: ISSUER.into(),
        resource: "https://mcp.example/mcp".into(),
    }
}

fn assert_no_token(text: &str) {
    assert!(
        !text.contains("access-") && !text.contains("refresh-"),
        "a token was printed:\n{text}"
    );
}

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn connections_are_listed_without_tokens_and_forgotten_with_an_audit_record() {
    let s = Scratch::new();
    let vault = GrantVault::open_for(&s.config, s.store()).expect("vault");
    vault
        .put_grant(
            "local:alice",
            "tickets",
            &grant("a1", Duration::ZERO, Some(HOUR)),
        )
        .unwrap();
    vault
        .put_grant("local:bob", "tickets", &grant("b1", 2 * HOUR, Some(HOUR)))
        .unwrap();
    vault
        .put_grant("local:alice", "docs", &grant("a2", Duration::ZERO, None))
        .unwrap();
    drop(vault);

    let out = s.ok(&["connections", "list"], None);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].starts_with("PRINCIPAL") && lines[0].contains("ISSUER"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("local:alice")
            && lines[1].contains(" docs ")
            && lines[1].contains("valid (no expiry given)"),
        "ordered by server, then principal: {out}"
    );
    assert!(
        lines[2].starts_with("local:alice") && lines[2].contains("valid until "),
        "{out}"
    );
    assert!(
        lines[3].starts_with("local:bob")
            && lines[3].contains("expired ")
            && lines[3].contains("(refreshable)"),
        "{out}"
    );
    assert!(lines[1].contains(ISSUER), "{out}");

    let json: Value =
        serde_json::from_str(&s.ok(&["connections", "list", "--json"], None)).expect("JSON");
    let items = json["connections"].as_array().expect("array");
    assert_eq!(items.len(), 3, "{json}");
    assert_eq!(items[2]["principal"], "local:bob");
    assert_eq!(items[2]["state"], "expired");
    assert_eq!(items[2]["refreshable"], true);
    assert_eq!(items[1]["state"], "valid");
    assert!(
        items[1]["updated"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    // One principal.
    let out = s.ok(
        &[
            "connections",
            "forget",
            "tickets",
            "--principal",
            "local:bob",
        ],
        None,
    );
    assert!(out.contains("Forgot 1 OAuth grant"), "{out}");
    let out = s.ok(&["connections", "list"], None);
    assert!(!out.contains("local:bob"), "{out}");
    assert_eq!(out.lines().count(), 3, "{out}");

    // Everyone at a server; the other server keeps its grants.
    let out = s.ok(&["connections", "forget", "tickets"], None);
    assert!(out.contains("Forgot 1 OAuth grant"), "{out}");
    let out = s.ok(&["connections", "forget", "tickets"], None);
    assert!(
        out.contains("No OAuth grants for server \"tickets\""),
        "{out}"
    );
    let out = s.ok(&["connections", "list"], None);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains("docs"), "{out}");

    // Each removal is in the audit log, with whose grants went; the no-op is not.
    let audit = s.ok(&["audit", "query", "--server", "tickets"], None);
    let forgotten: Vec<&str> = audit
        .lines()
        .filter(|l| l.contains("oauth/forgotten"))
        .collect();
    assert_eq!(forgotten.len(), 2, "{audit}");
    assert!(forgotten[0].contains("local:bob"), "{audit}");
    assert!(forgotten[1].contains("local:alice"), "{audit}");
    assert!(s.ok(&["audit", "verify"], None).contains("intact"));
}

#[test]
fn the_key_in_portcullis_vault_key_is_used_before_the_file() {
    let s = Scratch::new();
    let bytes = [0x5a; 32];
    let from_env = base64::engine::general_purpose::STANDARD.encode(bytes);
    let vault = GrantVault::new(s.store(), VaultKey::from_bytes(bytes));
    vault
        .put_grant(
            "local:alice",
            "tickets",
            &grant("e1", Duration::ZERO, Some(HOUR)),
        )
        .unwrap();
    drop(vault);

    // No variable and no key file: nothing opens it, and `list` does not mint a key.
    let (code, out, err) = s.cli(&["connections", "list"], None);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("no vault key"), "{out}");
    assert!(err.contains("PORTCULLIS_VAULT_KEY"), "{err}");
    assert!(!s.db.with_file_name("vault.key").exists());

    // The variable's key opens it.
    let out = s.ok(&["connections", "list"], Some(&from_env));
    assert!(out.contains("valid until"), "{out}");

    // With a key file of another key beside the database, the variable still wins; without
    // the variable, the file's key is used, and does not open the grant.
    drop(GrantVault::open_for(&s.config, s.store()).expect("create the key file"));
    assert!(s.db.with_file_name("vault.key").exists());
    let out = s.ok(&["connections", "list"], Some(&from_env));
    assert!(out.contains("valid until"), "{out}");
    let (code, out, err) = s.cli(&["connections", "list"], None);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("unreadable"), "{out}");
    assert!(
        err.contains("does not open") && err.contains("vault.key"),
        "{err}"
    );
    assert_no_token(&out);
    assert_no_token(&err);

    // A malformed variable is named, its value is not.
    let (_, out, err) = s.cli(&["connections", "list"], Some("not-a-key-s3cr3t"));
    assert!(out.contains("unreadable"), "{out}");
    assert!(
        err.contains("PORTCULLIS_VAULT_KEY") && !err.contains("s3cr3t"),
        "{err}"
    );
}

#[test]
fn without_a_database_there_is_nothing_to_list_or_forget() {
    let s = Scratch::new();
    let out = s.ok(&["connections", "list"], None);
    assert!(out.starts_with("No connections"), "{out}");
    let out = s.ok(&["connections", "forget", "tickets"], None);
    assert!(out.contains("No OAuth grants"), "{out}");
    assert!(!s.db.exists(), "neither command creates the database");
}
