//! OAuth grants and client registrations of remote servers, sealed.
//!
//! When a remote MCP server asks for OAuth, the gateway becomes an OAuth client of its
//! authorization server for each user (principal). What that leaves behind is kept here:
//! per principal, server and issuer the user's tokens (`oauth_grants`), and per server and
//! issuer the gateway's own registration (`oauth_clients`).
//!
//! The store never sees a token: it keeps opaque *sealed* blobs that the gateway encrypted
//! (`portcullis_auth::vault`) with the row's key as associated data, so a blob copied onto
//! another row does not open. The store's part is the keys, the bounds and `updated_at`
//! (which it stamps itself, so that `portcullis connections list` can say when a grant last
//! changed without opening it).

use crate::error::StoreError;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::time::{SystemTime, UNIX_EPOCH};

/// Largest sealed blob accepted (64 KiB). A token response is read bounded to the same size
/// before it is sealed, so anything larger is not a grant.
pub const MAX_SEALED_BYTES: usize = 64 * 1024;

/// Longest principal, server or issuer name accepted in a key (in bytes).
pub const MAX_GRANT_KEY_PART_BYTES: usize = 2048;

/// Which grant: the user it was given to, the server it is for, and the authorization server
/// that issued it (a server can move to another issuer; the old grant is then not used).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GrantKey {
    pub principal: String,
    pub server: String,
    pub issuer: String,
}

/// A stored grant as listed: its key and when it was last written, never its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    pub key: GrantKey,
    /// When the grant was last stored (connected, or refreshed), milliseconds since the Unix
    /// epoch.
    pub updated_at_ms: i64,
}

/// Refuses an empty or oversized key part before any SQL runs; `what` names it in the error.
fn check_part(value: &str, what: KeyPart) -> Result<(), StoreError> {
    let (empty, long) = match what {
        KeyPart::Principal => ("the principal is empty", "the principal is too long"),
        KeyPart::Server => ("the server name is empty", "the server name is too long"),
        KeyPart::Issuer => ("the issuer is empty", "the issuer is too long"),
    };
    if value.is_empty() {
        return Err(StoreError::InvalidGrant(empty));
    }
    if value.len() > MAX_GRANT_KEY_PART_BYTES {
        return Err(StoreError::InvalidGrant(long));
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum KeyPart {
    Principal,
    Server,
    Issuer,
}

pub(crate) fn check_grant_key(key: &GrantKey) -> Result<(), StoreError> {
    check_part(&key.principal, KeyPart::Principal)?;
    check_part(&key.server, KeyPart::Server)?;
    check_part(&key.issuer, KeyPart::Issuer)
}

pub(crate) fn check_client_key(server: &str, issuer: &str) -> Result<(), StoreError> {
    check_part(server, KeyPart::Server)?;
    check_part(issuer, KeyPart::Issuer)
}

pub(crate) fn check_sealed(sealed: &[u8]) -> Result<(), StoreError> {
    if sealed.is_empty() {
        return Err(StoreError::InvalidGrant("the sealed blob is empty"));
    }
    if sealed.len() > MAX_SEALED_BYTES {
        return Err(StoreError::SealedTooLarge {
            size: sealed.len(),
            limit: MAX_SEALED_BYTES,
        });
    }
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Runs `f` in one `BEGIN IMMEDIATE` transaction (so it waits for, rather than interleaves
/// with, the audit writer's commits).
fn in_transaction<T>(
    conn: &mut Connection,
    op: &'static str,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
) -> Result<T, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::sqlite(op))?;
    let value = f(&tx).map_err(StoreError::sqlite(op))?;
    tx.commit().map_err(StoreError::sqlite(op))?;
    Ok(value)
}

/// Inserts or replaces the grant of `key`.
pub(crate) fn put_grant(
    conn: &mut Connection,
    key: &GrantKey,
    sealed: &[u8],
) -> Result<(), StoreError> {
    in_transaction(conn, "write grant", |tx| {
        tx.execute(
            "INSERT INTO oauth_grants (principal, server, issuer, sealed, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (principal, server, issuer) \
             DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
            params![key.principal, key.server, key.issuer, sealed, now_ms()],
        )
    })
    .map(drop)
}

pub(crate) fn get_grant(conn: &Connection, key: &GrantKey) -> Result<Option<Vec<u8>>, StoreError> {
    conn.prepare_cached(
        "SELECT sealed FROM oauth_grants WHERE principal = ?1 AND server = ?2 AND issuer = ?3",
    )
    .and_then(|mut stmt| {
        stmt.query_row(params![key.principal, key.server, key.issuer], |row| {
            row.get(0)
        })
        .optional()
    })
    .map_err(StoreError::sqlite("read grant"))
}

/// Deletes the grants for `server` (of every issuer), of one principal or of all; how many.
pub(crate) fn remove_grants(
    conn: &mut Connection,
    server: &str,
    principal: Option<&str>,
) -> Result<usize, StoreError> {
    in_transaction(conn, "remove grants", |tx| match principal {
        Some(principal) => tx.execute(
            "DELETE FROM oauth_grants WHERE server = ?1 AND principal = ?2",
            params![server, principal],
        ),
        None => tx.execute("DELETE FROM oauth_grants WHERE server = ?1", [server]),
    })
}

/// Every grant's key and time, ordered by server, principal, issuer.
pub(crate) fn list_grants(conn: &Connection) -> Result<Vec<GrantRow>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT principal, server, issuer, updated_at FROM oauth_grants \
             ORDER BY server, principal, issuer",
        )
        .map_err(StoreError::sqlite("list grants"))?;
    let rows = stmt
        .query_map([], |row| {
            Ok(GrantRow {
                key: GrantKey {
                    principal: row.get(0)?,
                    server: row.get(1)?,
                    issuer: row.get(2)?,
                },
                updated_at_ms: row.get(3)?,
            })
        })
        .map_err(StoreError::sqlite("list grants"))?;
    rows.collect::<Result<_, _>>()
        .map_err(StoreError::sqlite("list grants"))
}

/// Inserts or replaces the gateway's registration for `server` at `issuer`.
pub(crate) fn put_client(
    conn: &mut Connection,
    server: &str,
    issuer: &str,
    sealed: &[u8],
) -> Result<(), StoreError> {
    in_transaction(conn, "write client registration", |tx| {
        tx.execute(
            "INSERT INTO oauth_clients (server, issuer, sealed, updated_at) \
             VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (server, issuer) \
             DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
            params![server, issuer, sealed, now_ms()],
        )
    })
    .map(drop)
}

pub(crate) fn get_client(
    conn: &Connection,
    server: &str,
    issuer: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    conn.prepare_cached("SELECT sealed FROM oauth_clients WHERE server = ?1 AND issuer = ?2")
        .and_then(|mut stmt| {
            stmt.query_row(params![server, issuer], |row| row.get(0))
                .optional()
        })
        .map_err(StoreError::sqlite("read client registration"))
}

/// Deletes the registrations for `server` (at every issuer); how many.
pub(crate) fn remove_clients(conn: &mut Connection, server: &str) -> Result<usize, StoreError> {
    in_transaction(conn, "remove client registrations", |tx| {
        tx.execute("DELETE FROM oauth_clients WHERE server = ?1", [server])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(principal: &str, server: &str, issuer: &str) -> GrantKey {
        GrantKey {
            principal: principal.into(),
            server: server.into(),
            issuer: issuer.into(),
        }
    }

    #[test]
    fn empty_and_oversized_key_parts_are_refused() {
        assert!(check_grant_key(&key("alice", "tickets", "https://as.example")).is_ok());
        for (bad, expected) in [
            (key("", "tickets", "i"), "the principal is empty"),
            (key("alice", "", "i"), "the server name is empty"),
            (key("alice", "tickets", ""), "the issuer is empty"),
            (
                key(&"a".repeat(MAX_GRANT_KEY_PART_BYTES + 1), "tickets", "i"),
                "the principal is too long",
            ),
        ] {
            match check_grant_key(&bad) {
                Err(StoreError::InvalidGrant(reason)) => assert_eq!(reason, expected),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn empty_and_oversized_blobs_are_refused() {
        assert!(check_sealed(&[1; MAX_SEALED_BYTES]).is_ok());
        assert!(matches!(
            check_sealed(&[]),
            Err(StoreError::InvalidGrant(_))
        ));
        assert!(matches!(
            check_sealed(&[1; MAX_SEALED_BYTES + 1]),
            Err(StoreError::SealedTooLarge {
                limit: MAX_SEALED_BYTES,
                ..
            })
        ));
    }
}
