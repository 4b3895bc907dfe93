//! `audit verify`: walk the chain in `seq` order and name the first record that is wrong.
//!
//! Checks, for each stored record against the one before it:
//! 1. its `seq` is the next number (a gap means deleted records: [`ChainProblem::Missing`]);
//! 2. its `prev_hash` is the previous record's `hash`; when it is not, the record's true
//!    neighbour is looked up to tell a reordering ([`ChainProblem::Reordered`]) from a
//!    rewritten predecessor or a deletion with renumbering;
//! 3. its `hash` is the hash of its own `prev_hash`, `seq` and body ([`ChainProblem::Edited`]).
//!
//! Then the last record is compared with the head the writer keeps in `meta`, which reveals
//! records deleted from the end. What the chain cannot reveal on its own is a consistent
//! rewrite of everything from some record on, head included: anchor the head elsewhere (the
//! JSON-lines mirror, or a periodic copy of `Intact.head`) to cover that.

use crate::chain::{GENESIS_HASH, link_hash};
use crate::error::StoreError;
use crate::schema::{HEAD_KEY, get_meta, parse_head};
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;
use std::fmt;

/// What is wrong at the record a [`VerifyOutcome::Broken`] names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainProblem {
    /// The record's content, sequence number or link was changed after it was written.
    Edited,
    /// Record `expected_seq` (and maybe more) was deleted.
    Missing { expected_seq: u64 },
    /// Records were moved: this one does not follow the record stored before it.
    Reordered,
    /// Record 1 does not start from the genesis hash.
    BadGenesis,
}

/// The result of walking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum VerifyOutcome {
    /// Every record links to its predecessor and matches its hash; `head` is the last hash
    /// (the genesis hash when the log is empty).
    Intact { records: u64, head: String },
    /// The first bad record, what is wrong with it, and the evidence (sequence numbers only).
    Broken {
        seq: u64,
        problem: ChainProblem,
        detail: String,
    },
}

impl fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainProblem::Edited => f.write_str("edited"),
            ChainProblem::Missing { expected_seq } => write!(f, "missing record {expected_seq}"),
            ChainProblem::Reordered => f.write_str("reordered"),
            ChainProblem::BadGenesis => f.write_str("bad genesis"),
        }
    }
}

impl fmt::Display for VerifyOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyOutcome::Intact { records, head } => {
                write!(f, "intact: {records} records, head {head}")
            }
            VerifyOutcome::Broken {
                seq,
                problem,
                detail,
            } => write!(f, "broken at record {seq} ({problem}): {detail}"),
        }
    }
}

fn broken(seq: u64, problem: ChainProblem, detail: String) -> Result<VerifyOutcome, StoreError> {
    Ok(VerifyOutcome::Broken {
        seq,
        problem,
        detail,
    })
}

/// Walks the chain in one read transaction (a consistent snapshot while the writer goes on).
pub(crate) fn verify(conn: &Connection) -> Result<VerifyOutcome, StoreError> {
    let err = || StoreError::sqlite("verify audit");
    let tx = conn.unchecked_transaction().map_err(err())?;
    let mut stmt = tx
        .prepare("SELECT seq, prev_hash, hash, body FROM audit ORDER BY seq")
        .map_err(err())?;
    let mut rows = stmt.query([]).map_err(err())?;
    let mut prev: Option<(u64, String)> = None;
    let mut records = 0u64;
    while let Some(row) = rows.next().map_err(err())? {
        let raw_seq: i64 = row.get(0).map_err(err())?;
        let prev_hash: String = row.get(1).map_err(err())?;
        let hash: String = row.get(2).map_err(err())?;
        let body = row.get_ref(3).map_err(err())?.as_str().map_err(|e| {
            StoreError::sqlite("verify audit")(rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Text,
                Box::new(e),
            ))
        })?;
        let Ok(seq) = u64::try_from(raw_seq) else {
            return broken(
                0,
                ChainProblem::Edited,
                format!("sequence number {raw_seq} is negative"),
            );
        };
        let expected_seq = prev.as_ref().map_or(1, |(p, _)| p + 1);
        if seq != expected_seq {
            let detail = if seq == expected_seq + 1 {
                format!("record {expected_seq} is missing (the next stored record is {seq})")
            } else {
                format!(
                    "records {expected_seq} to {} are missing (the next stored record is {seq})",
                    seq.saturating_sub(1)
                )
            };
            return broken(expected_seq, ChainProblem::Missing { expected_seq }, detail);
        }
        let expected_prev = prev.as_ref().map_or(GENESIS_HASH, |(_, h)| h.as_str());
        if prev_hash != expected_prev {
            return broken_link(&tx, seq, &prev_hash, expected_prev, &hash, body);
        }
        if link_hash(&prev_hash, seq, body) != hash {
            return broken(
                seq,
                ChainProblem::Edited,
                format!("the content of record {seq} does not match its hash"),
            );
        }
        prev = Some((seq, hash));
        records += 1;
    }
    drop(rows);
    drop(stmt);
    let head = get_meta(&tx, HEAD_KEY)?;
    check_head(head, prev, records)
}

/// Record `seq` does not link to the record stored before it: find out why.
fn broken_link(
    conn: &Connection,
    seq: u64,
    prev_hash: &str,
    expected_prev: &str,
    hash: &str,
    body: &str,
) -> Result<VerifyOutcome, StoreError> {
    let err = || StoreError::sqlite("verify audit");
    let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    // The record that really follows the previous one is stored somewhere else?
    let true_successor: Option<i64> = conn
        .query_row(
            "SELECT seq FROM audit WHERE prev_hash = ?1 AND seq != ?2 ORDER BY seq LIMIT 1",
            rusqlite::params![expected_prev, as_i64(seq)],
            |row| row.get(0),
        )
        .optional()
        .map_err(err())?;
    // The record this one really follows is stored somewhere else?
    let true_predecessor: Option<i64> = conn
        .query_row(
            "SELECT seq FROM audit WHERE hash = ?1 AND seq != ?2 ORDER BY seq LIMIT 1",
            rusqlite::params![prev_hash, as_i64(seq.saturating_sub(1))],
            |row| row.get(0),
        )
        .optional()
        .map_err(err())?;
    let before = seq.saturating_sub(1);
    if let Some(elsewhere) = true_successor {
        let after = if seq == 1 {
            "the first record".to_owned()
        } else {
            format!("record {before}")
        };
        return broken(
            seq,
            ChainProblem::Reordered,
            format!(
                "record {seq} does not follow {after}; the record that does is stored at {elsewhere}"
            ),
        );
    }
    if let Some(elsewhere) = true_predecessor {
        return broken(
            seq,
            ChainProblem::Reordered,
            format!("record {seq} follows the record stored at {elsewhere}, not {before}"),
        );
    }
    if seq == 1 {
        return broken(
            1,
            ChainProblem::BadGenesis,
            "record 1 does not start from the genesis hash".into(),
        );
    }
    if link_hash(prev_hash, seq, body) == hash {
        return broken(
            before,
            ChainProblem::Edited,
            format!("record {before} was rewritten: its hash is not the one record {seq} links to"),
        );
    }
    if link_hash(prev_hash, seq + 1, body) == hash {
        return broken(
            seq,
            ChainProblem::Missing { expected_seq: seq },
            format!("record {seq} was deleted and the records after it renumbered"),
        );
    }
    broken(
        seq,
        ChainProblem::Edited,
        format!("record {seq} was changed: neither its link nor its hash match"),
    )
}

/// The last record must be the head the writer recorded.
fn check_head(
    head: Option<String>,
    last: Option<(u64, String)>,
    records: u64,
) -> Result<VerifyOutcome, StoreError> {
    let (last_seq, last_hash) = last.unwrap_or_else(|| (0, GENESIS_HASH.to_owned()));
    let Some(head) = head else {
        if records == 0 {
            return Ok(VerifyOutcome::Intact {
                records,
                head: last_hash,
            });
        }
        return broken(
            last_seq,
            ChainProblem::Edited,
            "the writer's head (meta.audit_head) is missing".into(),
        );
    };
    let Some((head_seq, head_hash)) = parse_head(&head) else {
        return broken(
            last_seq,
            ChainProblem::Edited,
            "the writer's head (meta.audit_head) is malformed".into(),
        );
    };
    if head_seq > last_seq {
        let expected_seq = last_seq + 1;
        return broken(
            expected_seq,
            ChainProblem::Missing { expected_seq },
            format!(
                "records {expected_seq} to {head_seq} were deleted from the end \
                 (the writer's last record is {head_seq})"
            ),
        );
    }
    if head_seq < last_seq {
        return broken(
            head_seq + 1,
            ChainProblem::Edited,
            format!(
                "records after {head_seq} were not written by the store's writer \
                 (its last record is {head_seq})"
            ),
        );
    }
    if head_hash != last_hash {
        return broken(
            last_seq,
            ChainProblem::Edited,
            format!("record {last_seq} was rewritten: its hash is not the writer's head"),
        );
    }
    Ok(VerifyOutcome::Intact {
        records,
        head: last_hash,
    })
}
