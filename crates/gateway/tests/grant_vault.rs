//! The grant vault on a real SQLite state file: grants and registrations round-trip sealed;
//! no token is anywhere in the database's bytes; a blob moved to another user's row, or read
//! with another key, does not open (an error, never a panic, never someone else's tokens);
//! the key file beside the database is created 0600, reused, and refused when exposed.
//!
//! The key from `PORTCULLIS_VAULT_KEY` is exercised through the binary (a test process
//! cannot set its own environment safely): `cli_connections.rs`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use portcullis_auth::client::{ClientAuth, ClientIdentity, StoredGrant, TokenSet};
use portcullis_auth::secret::Secret;
use portcullis_auth::vault::{VAULT_KEY_FILE, VaultKey};
use portcullis_gateway::config::{Config, StateLocation};
use portcullis_gateway::oauth::vault::{GrantVault, GrantVaultError};
use portcullis_store::{SqliteOptions, SqliteStore, Store};

const ISSUER: &str = "https://as.example";
const ACCESS: &str = "access-7d1f0c9a2b";
const REFRESH: &str = "refresh-e83b55c4aa";
const CLIENT_SECRET: &str = "client-secret-91fe02";

struct Scratch {
    dir: tempfile::TempDir,
    config: Config,
    store: Arc<dyn Store>,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("state").join("portcullis.db");
        std::fs::create_dir(db.parent().expect("parent")).expect("state dir");
        let mut config = Config::quickstart();
        config.gateway.state = StateLocation::Sqlite(db.clone());
        let store: Arc<dyn Store> =
            SqliteStore::open(&db, SqliteOptions::default()).expect("open the store");
        Scratch { dir, config, store }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("state").join("portcullis.db")
    }

    fn key_file(&self) -> PathBuf {
        self.dir.path().join("state").join(VAULT_KEY_FILE)
    }

    fn vault(&self) -> GrantVault {
        GrantVault::open_for(&self.config, self.store.clone()).expect("open the vault")
    }

    /// Everything SQLite has on disk for the database (the file and its WAL).
    fn bytes_on_disk(&self) -> Vec<u8> {
        let mut all = Vec::new();
        for suffix in ["", "-wal"] {
            let mut name = self.db().into_os_string();
            name.push(suffix);
            if let Ok(bytes) = std::fs::read(PathBuf::from(name)) {
                all.extend(bytes);
            }
        }
        all
    }
}

fn grant() -> StoredGrant {
    StoredGrant {
        tokens: TokenSet {
            access_token: Secret::new(ACCESS.into()),
            refresh_token: Some(Secret::new(REFRESH.into())),
            expires_in: Some(Duration::from_secs(3600)),
            scope: Some("tickets:read".into()),
        },
        obtained_at: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        issuer: ISSUER.into(),
        resource: "https://mcp.example/tickets".into(),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

#[test]
fn a_grant_round_trips_through_the_vault() {
    let s = Scratch::new();
    let vault = s.vault();
    assert!(
        vault
            .get_grant("local:alice", "tickets", ISSUER)
            .unwrap()
            .is_none()
    );
    vault.put_grant("local:alice", "tickets", &grant()).unwrap();
    let back = vault
        .get_grant("local:alice", "tickets", ISSUER)
        .unwrap()
        .expect("stored");
    assert_eq!(back.tokens.access_token.expose(), ACCESS);
    assert_eq!(
        back.tokens.refresh_token.as_ref().unwrap().expose(),
        REFRESH
    );
    assert_eq!(back.tokens.scope.as_deref(), Some("tickets:read"));
    assert_eq!(back.obtained_at, grant().obtained_at);
    assert_eq!(back.resource, "https://mcp.example/tickets");
    assert_eq!(
        back.expires_at(),
        Some(UNIX_EPOCH + Duration::from_secs(1_800_003_600))
    );
    // Another issuer for the same user and server is another grant.
    assert!(
        vault
            .get_grant("local:alice", "tickets", "https://other.example")
            .unwrap()
            .is_none()
    );
    assert_eq!(vault.forget("tickets", Some("local:alice")).unwrap(), 1);
    assert!(
        vault
            .get_grant("local:alice", "tickets", ISSUER)
            .unwrap()
            .is_none()
    );
}

#[test]
fn the_database_never_holds_a_token_or_client_secret_in_the_clear() {
    let s = Scratch::new();
    let vault = s.vault();
    vault.put_grant("local:alice", "tickets", &grant()).unwrap();
    vault
        .put_client(
            "tickets",
            ISSUER,
            &ClientIdentity {
                client_id: "gw-client".into(),
                auth: ClientAuth::ClientSecretBasic(Secret::new(CLIENT_SECRET.into())),
            },
        )
        .unwrap();
    let disk = s.bytes_on_disk();
    // The search reads the right bytes: the row keys are there in the clear.
    assert!(contains(&disk, b"local:alice"), "the rows are on disk");
    for secret in [ACCESS, REFRESH, CLIENT_SECRET, "gw-client", "tickets:read"] {
        assert!(
            !contains(&disk, secret.as_bytes()),
            "{secret} is in the database file"
        );
    }
}

#[test]
fn a_blob_moved_to_another_principals_row_does_not_open() {
    let s = Scratch::new();
    let vault = s.vault();
    vault.put_grant("local:alice", "tickets", &grant()).unwrap();
    // Someone with write access to the file copies Alice's grant onto Mallory's row.
    let conn = rusqlite::Connection::open(s.db()).expect("open raw");
    conn.execute(
        "INSERT INTO oauth_grants (principal, server, issuer, sealed, updated_at) \
         SELECT 'local:mallory', server, issuer, sealed, updated_at FROM oauth_grants \
         WHERE principal = 'local:alice'",
        [],
    )
    .expect("copy the row");
    let error = vault
        .get_grant("local:mallory", "tickets", ISSUER)
        .expect_err("Alice's tokens are not Mallory's");
    assert!(
        matches!(error, GrantVaultError::Unreadable { .. }),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.contains("local:mallory") && !text.contains(ACCESS),
        "{text}"
    );
    // Moved to another server or issuer, it does not open either.
    conn.execute(
        "UPDATE oauth_grants SET server = 'files' WHERE principal = 'local:mallory'",
        [],
    )
    .expect("move the row");
    assert!(vault.get_grant("local:mallory", "files", ISSUER).is_err());
    // Alice's own row is untouched.
    assert!(
        vault
            .get_grant("local:alice", "tickets", ISSUER)
            .unwrap()
            .is_some()
    );
}

#[test]
fn a_registration_moved_to_another_server_does_not_open() {
    let s = Scratch::new();
    let vault = s.vault();
    let client = ClientIdentity {
        client_id: "gw-client".into(),
        auth: ClientAuth::ClientSecretPost(Secret::new(CLIENT_SECRET.into())),
    };
    vault.put_client("tickets", ISSUER, &client).unwrap();
    let back = vault
        .get_client("tickets", ISSUER)
        .unwrap()
        .expect("stored");
    assert_eq!(back.client_id, "gw-client");
    assert!(matches!(&back.auth, ClientAuth::ClientSecretPost(s) if s.expose() == CLIENT_SECRET));
    let conn = rusqlite::Connection::open(s.db()).expect("open raw");
    conn.execute(
        "INSERT INTO oauth_clients SELECT 'files', issuer, sealed, updated_at FROM oauth_clients",
        [],
    )
    .expect("copy the row");
    assert!(matches!(
        vault.get_client("files", ISSUER),
        Err(GrantVaultError::Unreadable { .. })
    ));
    assert_eq!(vault.forget_clients("tickets").unwrap(), 1);
    assert!(vault.get_client("tickets", ISSUER).unwrap().is_none());
}

#[test]
fn a_grant_does_not_open_with_another_key() {
    let s = Scratch::new();
    s.vault()
        .put_grant("local:alice", "tickets", &grant())
        .unwrap();
    let other = GrantVault::new(s.store.clone(), VaultKey::generate().unwrap());
    let error = other
        .get_grant("local:alice", "tickets", ISSUER)
        .expect_err("another key");
    assert!(
        matches!(error, GrantVaultError::Unreadable { .. }),
        "{error}"
    );
}

#[test]
fn the_key_file_is_created_beside_the_database_0600_and_reused() {
    let s = Scratch::new();
    assert!(!s.key_file().exists());
    let first = s.vault();
    assert_eq!(mode(&s.key_file()), 0o600);
    first.put_grant("local:alice", "tickets", &grant()).unwrap();
    drop(first);
    let key_before = std::fs::read(s.key_file()).unwrap();
    // A restarted gateway (a new vault on the same state) reads what the first one sealed.
    let again = s.vault();
    let back = again.get_grant("local:alice", "tickets", ISSUER).unwrap();
    assert_eq!(back.unwrap().tokens.access_token.expose(), ACCESS);
    assert_eq!(std::fs::read(s.key_file()).unwrap(), key_before);
}

#[test]
fn a_group_readable_key_file_is_refused() {
    let s = Scratch::new();
    drop(s.vault());
    std::fs::set_permissions(s.key_file(), std::fs::Permissions::from_mode(0o640)).unwrap();
    let error = GrantVault::open_for(&s.config, s.store.clone()).expect_err("exposed key");
    let text = error.to_string();
    assert!(
        text.contains(&s.key_file().display().to_string()) && text.contains("chmod 600"),
        "{text}"
    );
}

#[test]
fn names_that_would_blur_rows_are_refused() {
    let s = Scratch::new();
    let vault = s.vault();
    assert!(matches!(
        vault.put_grant("local:a\0b", "tickets", &grant()),
        Err(GrantVaultError::NulInKey("principal"))
    ));
}
