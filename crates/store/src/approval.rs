//! Consent approvals remembered "always": a person approved a call and asked that the same
//! call (or any call of that tool) by the same principal, under the same rule, not be asked
//! again until an expiry.
//!
//! A row reaches exactly as far as its key: principal identity, server, tool, the rule that
//! asked (by the digest of its text, so an edited rule asks again), and the argument digest
//! (empty: any arguments). Expired rows are never returned and are swept on every write. The
//! table is bounded ([`MAX_APPROVALS`]); a full table refuses a new approval (the call was
//! approved once; it is asked again next time) rather than dropping another's.

use crate::error::StoreError;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// Most remembered approvals kept (unexpired).
pub const MAX_APPROVALS: usize = 100_000;

/// Longest key part (identity, server, tool, rule, digest) accepted, in bytes.
pub const MAX_APPROVAL_KEY_PART_BYTES: usize = 2048;

/// Longest description of how an approval was given, in bytes.
pub const MAX_APPROVAL_HOW_BYTES: usize = 4096;

/// What a remembered approval covers; every part must match a call for it to apply.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApprovalKey {
    /// The principal's identity (display form and OAuth client).
    pub identity: String,
    pub server: String,
    /// The tool (prompt, resource) as the upstream knows it.
    pub name: String,
    /// The rule that asked for consent: its position and the digest of its text.
    pub rule: String,
    /// `sha256:…` of the call's canonical arguments, or empty for any arguments.
    pub digest: String,
}

/// A remembered approval as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RememberedApproval {
    pub key: ApprovalKey,
    /// Milliseconds since the Unix epoch; from then on it covers nothing.
    pub expires_at_ms: i64,
    /// When it was given, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// How it was given (channel, choice, request id), for the records of calls it covers.
    pub how: String,
}

/// Refuses empty or oversized parts before any SQL runs. The digest may be empty (any
/// arguments); nothing else may.
pub(crate) fn check(approval: &RememberedApproval) -> Result<(), StoreError> {
    let k = &approval.key;
    for (value, empty) in [
        (&k.identity, "the identity is empty"),
        (&k.server, "the server name is empty"),
        (&k.name, "the tool name is empty"),
        (&k.rule, "the rule is empty"),
    ] {
        if value.is_empty() {
            return Err(StoreError::InvalidApproval(empty));
        }
    }
    for value in [&k.identity, &k.server, &k.name, &k.rule, &k.digest] {
        if value.len() > MAX_APPROVAL_KEY_PART_BYTES {
            return Err(StoreError::InvalidApproval("a key part is too long"));
        }
    }
    if approval.how.len() > MAX_APPROVAL_HOW_BYTES {
        return Err(StoreError::InvalidApproval("the description is too long"));
    }
    Ok(())
}

/// Begins a write transaction (`BEGIN IMMEDIATE`: it waits for, rather than interleaves
/// with, the audit writer) that first deletes what expired by `now_ms`.
fn begin_sweeping<'c>(
    conn: &'c mut Connection,
    now_ms: i64,
    op: &'static str,
) -> Result<rusqlite::Transaction<'c>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::sqlite(op))?;
    tx.execute(
        "DELETE FROM consent_approvals WHERE expires_at <= ?1",
        [now_ms],
    )
    .map_err(StoreError::sqlite(op))?;
    Ok(tx)
}

/// Inserts or replaces an approval, after sweeping expired ones; refused when the table is
/// full of live approvals.
pub(crate) fn put(
    conn: &mut Connection,
    approval: &RememberedApproval,
    now_ms: i64,
) -> Result<(), StoreError> {
    let op = "write approval";
    let tx = begin_sweeping(conn, now_ms, op)?;
    let k = &approval.key;
    let exists: bool = tx
        .query_row(
            "SELECT 1 FROM consent_approvals WHERE identity = ?1 AND server = ?2 AND name = ?3 \
             AND rule = ?4 AND digest = ?5",
            params![k.identity, k.server, k.name, k.rule, k.digest],
            |_| Ok(()),
        )
        .optional()
        .map_err(StoreError::sqlite(op))?
        .is_some();
    if !exists {
        let count: i64 = tx
            .query_row("SELECT count(*) FROM consent_approvals", [], |r| r.get(0))
            .map_err(StoreError::sqlite(op))?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_APPROVALS {
            return Err(StoreError::InvalidApproval(
                "too many remembered approvals (forget some with `portcullis approvals forget`)",
            ));
        }
    }
    tx.execute(
        "INSERT INTO consent_approvals \
         (identity, server, name, rule, digest, expires_at, created_at, how) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT (identity, server, name, rule, digest) DO UPDATE SET \
         expires_at = excluded.expires_at, created_at = excluded.created_at, how = excluded.how",
        params![
            k.identity,
            k.server,
            k.name,
            k.rule,
            k.digest,
            approval.expires_at_ms,
            approval.created_at_ms,
            approval.how
        ],
    )
    .map_err(StoreError::sqlite(op))?;
    tx.commit().map_err(StoreError::sqlite(op))
}

fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RememberedApproval> {
    Ok(RememberedApproval {
        key: ApprovalKey {
            identity: row.get(0)?,
            server: row.get(1)?,
            name: row.get(2)?,
            rule: row.get(3)?,
            digest: row.get(4)?,
        },
        expires_at_ms: row.get(5)?,
        created_at_ms: row.get(6)?,
        how: row.get(7)?,
    })
}

const COLUMNS: &str = "identity, server, name, rule, digest, expires_at, created_at, how";

/// The live approval that covers a call with `key.digest` as its arguments: one for exactly
/// those arguments, else one for any arguments.
pub(crate) fn find(
    conn: &Connection,
    key: &ApprovalKey,
    now_ms: i64,
) -> Result<Option<RememberedApproval>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM consent_approvals WHERE identity = ?1 AND server = ?2 \
         AND name = ?3 AND rule = ?4 AND (digest = ?5 OR digest = '') AND expires_at > ?6 \
         ORDER BY digest DESC LIMIT 1"
    ))
    .and_then(|mut stmt| {
        stmt.query_row(
            params![
                key.identity,
                key.server,
                key.name,
                key.rule,
                key.digest,
                now_ms
            ],
            row,
        )
        .optional()
    })
    .map_err(StoreError::sqlite("read approval"))
}

/// Every live approval, ordered by server, identity, tool.
pub(crate) fn list(conn: &Connection, now_ms: i64) -> Result<Vec<RememberedApproval>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM consent_approvals WHERE expires_at > ?1 \
             ORDER BY server, identity, name, rule, digest"
        ))
        .map_err(StoreError::sqlite("list approvals"))?;
    let rows = stmt
        .query_map([now_ms], row)
        .map_err(StoreError::sqlite("list approvals"))?;
    rows.collect::<Result<_, _>>()
        .map_err(StoreError::sqlite("list approvals"))
}

/// Deletes the approvals for `server` (every server with `None`), of one identity or of
/// all; how many (expired ones are swept too, and not counted).
pub(crate) fn remove(
    conn: &mut Connection,
    server: Option<&str>,
    identity: Option<&str>,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let op = "remove approvals";
    let tx = begin_sweeping(conn, now_ms, op)?;
    let n = tx
        .execute(
            "DELETE FROM consent_approvals WHERE (?1 IS NULL OR server = ?1) \
             AND (?2 IS NULL OR identity = ?2)",
            params![server, identity],
        )
        .map_err(StoreError::sqlite(op))?;
    tx.commit().map_err(StoreError::sqlite(op))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval(identity: &str, digest: &str) -> RememberedApproval {
        RememberedApproval {
            key: ApprovalKey {
                identity: identity.into(),
                server: "files".into(),
                name: "write_file".into(),
                rule: "rule 1 sha256:ab".into(),
                digest: digest.into(),
            },
            expires_at_ms: 10,
            created_at_ms: 1,
            how: "approvals".into(),
        }
    }

    fn store() -> (tempfile::TempDir, std::sync::Arc<crate::SqliteStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store =
            crate::SqliteStore::open(&dir.path().join("s.db"), crate::SqliteOptions::default())
                .unwrap();
        (dir, store)
    }

    #[test]
    fn a_lookup_finds_the_exact_arguments_or_the_whole_tool_and_nothing_expired() {
        use crate::Store;
        let (_dir, store) = store();
        let mut exact = approval("alice", "sha256:aa");
        exact.expires_at_ms = 1_000;
        exact.created_at_ms = 100;
        store.put_approval(&exact).unwrap();
        let key = |digest: &str| ApprovalKey {
            digest: digest.into(),
            ..exact.key.clone()
        };
        assert_eq!(
            store.find_approval(&key("sha256:aa"), 500).unwrap(),
            Some(exact.clone())
        );
        assert_eq!(store.find_approval(&key("sha256:bb"), 500).unwrap(), None);
        assert_eq!(
            store.find_approval(&key("sha256:aa"), 1_000).unwrap(),
            None,
            "expired"
        );
        let mut tool = approval("alice", "");
        tool.expires_at_ms = 2_000;
        tool.created_at_ms = 100;
        store.put_approval(&tool).unwrap();
        assert_eq!(
            store.find_approval(&key("sha256:bb"), 500).unwrap(),
            Some(tool.clone())
        );
        let mut bob = key("sha256:aa");
        bob.identity = "bob".into();
        assert_eq!(store.find_approval(&bob, 500).unwrap(), None);
        assert_eq!(store.list_approvals(500).unwrap().len(), 2);
        assert_eq!(store.list_approvals(1_500).unwrap(), vec![tool]);
        // A write sweeps what has expired; forgetting counts only live ones.
        assert_eq!(
            store.remove_approvals(Some("other"), None, 1_500).unwrap(),
            0
        );
        assert_eq!(
            store.remove_approvals(None, Some("alice"), 1_500).unwrap(),
            1
        );
        assert!(store.list_approvals(0).unwrap().is_empty());
    }

    #[test]
    fn a_read_only_store_refuses_to_remember() {
        use crate::Store;
        let (dir, store) = store();
        drop(store);
        let ro = crate::SqliteStore::open_read_only(&dir.path().join("s.db")).unwrap();
        assert!(matches!(
            ro.put_approval(&approval("alice", "")),
            Err(StoreError::ReadOnly)
        ));
    }

    #[test]
    fn empty_and_oversized_parts_are_refused_and_an_empty_digest_is_not() {
        assert!(check(&approval("alice", "")).is_ok());
        let mut a = approval("", "");
        assert!(matches!(check(&a), Err(StoreError::InvalidApproval(_))));
        a = approval("alice", &"d".repeat(MAX_APPROVAL_KEY_PART_BYTES + 1));
        assert!(matches!(check(&a), Err(StoreError::InvalidApproval(_))));
        a = approval("alice", "");
        a.how = "h".repeat(MAX_APPROVAL_HOW_BYTES + 1);
        assert!(matches!(check(&a), Err(StoreError::InvalidApproval(_))));
    }
}
