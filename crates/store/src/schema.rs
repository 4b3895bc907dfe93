//! Connections, pragmas, the schema and its migrations, and the `meta` table.
//!
//! The schema version lives in `meta` (`schema_version`). Migrations are an ordered list; a
//! database at version `n` gets migrations `n+1 ..` in one transaction when the store opens it
//! for writing. Later issues append migrations (pins came as 3, OAuth grants as 4, definition
//! pins as 5, remembered approvals as 6); they never edit an existing one.

use crate::error::StoreError;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use std::path::Path;
use std::time::Duration;

/// Migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the hash-chained audit log. `body` (the record's canonical JSON) is the only copy of
    // the record; the filter columns are generated from it, so they cannot disagree with it
    // and cannot be edited on their own.
    "CREATE TABLE audit (
        seq       INTEGER PRIMARY KEY,
        prev_hash TEXT NOT NULL,
        hash      TEXT NOT NULL,
        body      TEXT NOT NULL,
        time_ms   INTEGER GENERATED ALWAYS AS (json_extract(body, '$.time_ms')) VIRTUAL,
        principal TEXT GENERATED ALWAYS AS (json_extract(body, '$.principal')) VIRTUAL,
        server    TEXT GENERATED ALWAYS AS (json_extract(body, '$.server')) VIRTUAL,
        decision  TEXT GENERATED ALWAYS AS (json_extract(body, '$.decision')) VIRTUAL
    ) STRICT;
    CREATE INDEX audit_time ON audit (time_ms);
    CREATE INDEX audit_principal ON audit (principal);
    CREATE INDEX audit_server ON audit (server);
    CREATE INDEX audit_decision ON audit (decision);",
    // 2: fewer indexes. Every index is one more page written per commit; server and
    // decision narrow a query little once time (or principal) has, so they are filtered, not
    // indexed.
    "DROP INDEX audit_server;
    DROP INDEX audit_decision;",
    // 3: launch pins (`portcullis trust`), one per server. `body` is the pin's canonical JSON;
    // the CHECK keeps a row from holding another server's pin.
    "CREATE TABLE pins (
        server TEXT PRIMARY KEY,
        body   TEXT NOT NULL CHECK (json_valid(body) AND json_extract(body, '$.server') IS server)
    ) STRICT;",
    // 4: OAuth grants of remote servers, per principal, server and issuer, and the gateway's
    // client registration per server and issuer. `sealed` is encrypted by the gateway with
    // the row's key as associated data; the store never sees a token. `updated_at` is
    // milliseconds since the Unix epoch.
    "CREATE TABLE oauth_grants (
        principal  TEXT NOT NULL,
        server     TEXT NOT NULL,
        issuer     TEXT NOT NULL,
        sealed     BLOB NOT NULL CHECK (length(sealed) > 0),
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (principal, server, issuer)
    ) STRICT;
    CREATE TABLE oauth_clients (
        server     TEXT NOT NULL,
        issuer     TEXT NOT NULL,
        sealed     BLOB NOT NULL CHECK (length(sealed) > 0),
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (server, issuer)
    ) STRICT;",
    // 5: definition pins (rug pulls): per server identity, the tool definitions and the
    // instructions as first seen or accepted. `body` is the pin's canonical JSON; the CHECK
    // keeps a row from holding a pin of another identity, kind or name.
    "CREATE TABLE definition_pins (
        identity TEXT NOT NULL CHECK (length(identity) > 0),
        kind     TEXT NOT NULL CHECK (kind IN ('tool', 'instructions')),
        name     TEXT NOT NULL,
        body     TEXT NOT NULL CHECK (json_valid(body)
            AND json_extract(body, '$.identity') IS identity
            AND json_extract(body, '$.kind') IS kind
            AND json_extract(body, '$.name') IS name),
        PRIMARY KEY (identity, kind, name)
    ) STRICT;",
    // 6: consent approvals remembered "always", until `expires_at` (milliseconds since the
    // Unix epoch). `digest` is empty for an approval of any arguments; `rule` names the rule
    // that asked by its position and the digest of its text.
    "CREATE TABLE consent_approvals (
        identity   TEXT NOT NULL CHECK (length(identity) > 0),
        server     TEXT NOT NULL CHECK (length(server) > 0),
        name       TEXT NOT NULL CHECK (length(name) > 0),
        rule       TEXT NOT NULL CHECK (length(rule) > 0),
        digest     TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        how        TEXT NOT NULL,
        PRIMARY KEY (identity, server, name, rule, digest)
    ) STRICT;",
];

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous = NORMAL` (the default): a commit is in the WAL file (written, not synced)
    /// when `append_audit` returns, so it survives a crash or kill of the gateway. An OS crash
    /// or power loss can lose the newest commits (never corrupt older ones).
    #[default]
    Normal,
    /// `synchronous = FULL`: the WAL is synced on every commit, so a commit also survives an
    /// OS crash or power loss. Group commit amortizes the sync over concurrent appends.
    Full,
}

/// The connection the writer thread owns: created if missing (mode 0600 on Unix), WAL.
pub(crate) fn open_writer(
    path: &Path,
    durability: Durability,
    busy_timeout: Duration,
) -> Result<Connection, StoreError> {
    create_private(path)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(StoreError::sqlite("open"))?;
    conn.busy_timeout(busy_timeout)
        .map_err(StoreError::sqlite("set busy_timeout"))?;
    let mode = set_wal(&conn, busy_timeout)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Schema(format!(
            "the database refuses WAL mode (journal_mode is {mode})"
        )));
    }
    conn.pragma_update(None, "synchronous", synchronous(durability))
        .map_err(StoreError::sqlite("set synchronous"))?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Puts the database in WAL mode. Switching a fresh file needs an exclusive lock that the
/// busy handler does not wait for, so two processes opening a new store at once (two
/// `portcullis stdio` a host starts together) would see "database is locked": retry for as
/// long as `busy_timeout` allows.
fn set_wal(conn: &Connection, busy_timeout: Duration) -> Result<String, StoreError> {
    let deadline = std::time::Instant::now() + busy_timeout;
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)) {
            Ok(mode) => return Ok(mode),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(StoreError::sqlite("set journal_mode")(e)),
        }
    }
}

/// A short-lived write connection for state other than the audit log (pins), next to the
/// writer thread's: WAL and `busy_timeout` let it wait for the writer's `BEGIN IMMEDIATE`
/// transactions instead of failing. The file must exist and be migrated already (the store's
/// `open` did both), so this neither creates nor migrates.
pub(crate) fn open_state_writer(
    path: &Path,
    durability: Durability,
    busy_timeout: Duration,
) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(StoreError::sqlite("open"))?;
    conn.busy_timeout(busy_timeout)
        .map_err(StoreError::sqlite("set busy_timeout"))?;
    conn.pragma_update(None, "synchronous", synchronous(durability))
        .map_err(StoreError::sqlite("set synchronous"))?;
    check_current(&conn)?;
    Ok(conn)
}

fn synchronous(durability: Durability) -> &'static str {
    match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    }
}

/// A connection for reading (queries, verify). WAL lets it read while the writer writes.
pub(crate) fn open_reader(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(StoreError::sqlite("open"))?;
    conn.busy_timeout(busy_timeout)
        .map_err(StoreError::sqlite("set busy_timeout"))?;
    Ok(conn)
}

#[cfg(unix)]
fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Io {
            op: "create the database file",
            source: e,
        }),
    }
}

#[cfg(not(unix))]
fn create_private(_path: &Path) -> Result<(), StoreError> {
    Ok(())
}

/// Brings the schema up to [`SCHEMA_VERSION`], refusing databases that are newer or that are
/// not Portcullis stores.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::sqlite("migrate"))?;
    let version = match stored_version(&tx)? {
        Some(version) => version,
        None => {
            let tables: i64 = tx
                .query_row(
                    "SELECT count(*) FROM sqlite_schema WHERE type = 'table' \
                     AND name NOT LIKE 'sqlite_%'",
                    [],
                    |row| row.get(0),
                )
                .map_err(StoreError::sqlite("migrate"))?;
            if tables > 0 {
                return Err(StoreError::Schema(
                    "the database has tables but no Portcullis schema; refusing to use it".into(),
                ));
            }
            tx.execute_batch(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT",
            )
            .map_err(StoreError::sqlite("migrate"))?;
            0
        }
    };
    check_known(version)?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(migration)
            .map_err(StoreError::sqlite("migrate"))?;
        set_meta(&tx, "schema_version", &(index + 1).to_string())?;
    }
    tx.commit().map_err(StoreError::sqlite("migrate"))
}

/// For stores opened read-only: the schema must be exactly the one this build knows.
pub(crate) fn check_current(conn: &Connection) -> Result<(), StoreError> {
    match stored_version(conn)? {
        None => Err(StoreError::Schema(
            "not a Portcullis store (no meta table)".into(),
        )),
        Some(version) if version < SCHEMA_VERSION => Err(StoreError::Schema(format!(
            "schema version {version} is older than {SCHEMA_VERSION}; open the store for \
             writing once (start the gateway) to migrate it"
        ))),
        Some(version) => check_known(version),
    }
}

fn check_known(version: u32) -> Result<(), StoreError> {
    if version > SCHEMA_VERSION {
        return Err(StoreError::Schema(format!(
            "schema version {version} was written by a newer Portcullis (this one knows up to \
             {SCHEMA_VERSION})"
        )));
    }
    Ok(())
}

fn stored_version(conn: &Connection) -> Result<Option<u32>, StoreError> {
    let has_meta: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta')",
            [],
            |row| row.get(0),
        )
        .map_err(StoreError::sqlite("read schema version"))?;
    if !has_meta {
        return Ok(None);
    }
    let text = get_meta(conn, "schema_version")?.unwrap_or_else(|| "0".into());
    text.parse()
        .map(Some)
        .map_err(|_| StoreError::Schema("meta.schema_version is not a number".into()))
}

pub(crate) fn get_meta(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")
        .and_then(|mut stmt| stmt.query_row([key], |row| row.get(0)).optional())
        .map_err(StoreError::sqlite("read meta"))
}

pub(crate) fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .and_then(|mut stmt| stmt.execute(params![key, value]))
    .map(drop)
    .map_err(StoreError::sqlite("write meta"))
}

/// The `meta` key of the writer's head: the last record it committed, as "<seq> <hash>",
/// written in the same transaction as the records. It is what makes a deleted tail visible.
pub(crate) const HEAD_KEY: &str = "audit_head";

/// Splits a head value into sequence number and hash.
pub(crate) fn parse_head(text: &str) -> Option<(u64, &str)> {
    let (seq, hash) = text.split_once(' ')?;
    Some((seq.parse().ok()?, hash))
}
