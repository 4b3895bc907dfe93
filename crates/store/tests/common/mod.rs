//! Shared by the integration tests: sample records, fresh stores, raw access to the file.

#![allow(dead_code)]

use portcullis_store::{AuditRecord, SqliteOptions, SqliteStore, Store};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub fn record(i: u64) -> AuditRecord {
    AuditRecord {
        time_ms: 1_700_000_000_000 + i as i64 * 1000,
        event: "decision".into(),
        principal: if i.is_multiple_of(2) { "alice" } else { "bob" }.into(),
        session: format!("session-{}", i % 3),
        transport: "http".into(),
        server: if i.is_multiple_of(3) {
            "tickets"
        } else {
            "files"
        }
        .into(),
        method: "tools/call".into(),
        name: "read_file".into(),
        args_digest: Some(format!("sha256:{i:064x}")),
        args: i
            .is_multiple_of(4)
            .then(|| serde_json::json!({"path": format!("/src/{i}"), "n": i})),
        decision: if i.is_multiple_of(5) { "deny" } else { "allow" }.into(),
        rule: Some(format!("rules[{}]", i % 2)),
        reason: format!("reason {i}"),
        latency_us: Some(i * 10),
        trace: None,
    }
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub store: Arc<SqliteStore>,
}

pub fn fresh() -> Fixture {
    fresh_with(SqliteOptions::default())
}

pub fn fresh_with(options: SqliteOptions) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path, options).expect("open store");
    Fixture { dir, path, store }
}

/// Appends records 1..=n one after the other.
pub async fn fill(store: &SqliteStore, n: u64) {
    for i in 1..=n {
        let seq = bounded(store.append_audit(record(i)))
            .await
            .expect("append");
        assert_eq!(seq, i);
    }
}

/// Awaits `future`, failing the test instead of hanging.
pub async fn bounded<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), future)
        .await
        .expect("timed out: the store must answer, not hang")
}

/// A direct connection to the database file, to tamper with it as an attacker would.
pub fn raw(path: &std::path::Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).expect("open raw");
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    conn
}
