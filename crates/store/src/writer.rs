//! The single writer: one OS thread owns the write connection, takes appends from a bounded
//! channel and group-commits them.
//!
//! Each round takes everything queued (up to `max_batch`) and writes it in one `BEGIN
//! IMMEDIATE` transaction: read the head, assign sequence numbers, hash, insert, move the
//! head, commit. Only then is each caller answered with its sequence number, so an answer
//! means "committed". If the transaction fails, every caller in it gets the error and nothing
//! of it is stored; the next round starts again from the head in the database. If the thread
//! dies, the channel closes with it: queued and future appends get [`StoreError::WriterGone`].
//!
//! A round that holds only deferred appends (records nothing waits on) first waits up to
//! [`DEFER_AT_MOST`] for more, so that a call's outcome is committed with the next call's
//! decision instead of in a transaction of its own; an urgent append ends the wait at once.
//!
//! The head is read inside the transaction rather than kept in memory, so the chain stays
//! right after a failed round and even if a second process appends to the same file (the
//! IMMEDIATE transaction serializes them).

use crate::DEFER_AT_MOST;
use crate::chain::{GENESIS_HASH, link_hash};
use crate::error::StoreError;
use crate::mirror::AuditMirror;
use crate::schema::{HEAD_KEY, parse_head};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};

/// One append: the record's canonical JSON, and where to say how it went.
pub(crate) struct Job {
    pub body: String,
    pub reply: oneshot::Sender<Result<u64, StoreError>>,
    /// Someone waits on it before going on (a decision before its call is forwarded).
    pub urgent: bool,
}

/// Where a committed record sits in the chain.
pub(crate) struct Link {
    pub seq: u64,
    pub prev_hash: String,
    pub hash: String,
}

/// Starts the writer thread. It ends when every sender is gone and the queue is drained.
pub(crate) fn spawn(
    conn: Connection,
    jobs: mpsc::Receiver<Job>,
    max_batch: usize,
    mirror: Option<AuditMirror>,
    commits: Arc<AtomicU64>,
) -> Result<(), StoreError> {
    std::thread::Builder::new()
        .name("portcullis-audit-writer".into())
        .spawn(move || run(conn, jobs, max_batch.max(1), mirror, commits))
        .map(drop)
        .map_err(StoreError::io("start the audit writer thread"))
}

fn run(
    mut conn: Connection,
    mut jobs: mpsc::Receiver<Job>,
    max_batch: usize,
    mut mirror: Option<AuditMirror>,
    commits: Arc<AtomicU64>,
) {
    let mut bodies = Vec::with_capacity(max_batch);
    let mut replies = Vec::with_capacity(max_batch);
    // Only to wait on the channel with a deadline (deferred appends); the thread does no
    // other async work.
    let waiter = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .ok();
    while let Some(first) = jobs.blocking_recv() {
        let mut next = Some(first);
        let mut urgent = false;
        let mut deadline = None;
        loop {
            while let Some(job) = next {
                urgent |= job.urgent;
                bodies.push(job.body);
                replies.push(job.reply);
                next = if bodies.len() < max_batch {
                    jobs.try_recv().ok()
                } else {
                    None
                };
            }
            if urgent || bodies.len() >= max_batch {
                break;
            }
            let Some(waiter) = &waiter else { break };
            let until = *deadline.get_or_insert_with(|| std::time::Instant::now() + DEFER_AT_MOST);
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            match waiter.block_on(async { tokio::time::timeout(left, jobs.recv()).await }) {
                Ok(Some(job)) => next = Some(job),
                // Closed, or the time is up: commit what there is.
                Ok(None) | Err(_) => break,
            }
        }
        match commit(&mut conn, &bodies) {
            Ok(links) => {
                commits.fetch_add(1, Ordering::Relaxed);
                for (reply, link) in replies.drain(..).zip(&links) {
                    // A caller that stopped waiting still has its record stored.
                    let _ = reply.send(Ok(link.seq));
                }
                if let Some(mirror) = mirror.as_mut() {
                    mirror.write_batch(&links, &bodies);
                }
            }
            Err(error) => {
                tracing::error!(%error, records = bodies.len(), "audit group commit failed");
                let source = Arc::new(error);
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(StoreError::WriteFailed {
                        source: Arc::clone(&source),
                    }));
                }
            }
        }
        bodies.clear();
    }
}

/// Writes `bodies` as the next records of the chain, in one transaction.
fn commit(conn: &mut Connection, bodies: &[String]) -> Result<Vec<Link>, rusqlite::Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (mut seq, mut prev_hash) = chain_position(&tx)?;
    let mut links = Vec::with_capacity(bodies.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO audit (seq, prev_hash, hash, body) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for body in bodies {
            seq += 1;
            let hash = link_hash(&prev_hash, seq, body);
            insert.execute(params![to_sql_seq(seq)?, prev_hash, hash, body])?;
            links.push(Link {
                seq,
                prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
                hash,
            });
        }
        tx.prepare_cached(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )?
        .execute(params![HEAD_KEY, format!("{seq} {prev_hash}")])?;
    }
    tx.commit()?;
    Ok(links)
}

/// The last sequence number used and the hash the next record links to. The head in `meta`
/// wins over the last row: after a deleted tail the chain continues from where the writer
/// left it, so the gap stays visible to `verify` instead of being papered over.
fn chain_position(tx: &Connection) -> Result<(u64, String), rusqlite::Error> {
    let meta: Option<(u64, String)> = tx
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([HEAD_KEY], |row| row.get::<_, String>(0))
        .optional()?
        .and_then(|text| parse_head(&text).map(|(seq, hash)| (seq, hash.to_owned())));
    let last: Option<(i64, String)> = tx
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let last = last.map(|(seq, hash)| (u64::try_from(seq).unwrap_or(0), hash));
    Ok(match (meta, last) {
        (Some((meta_seq, hash)), Some((last_seq, _))) => (meta_seq.max(last_seq), hash),
        (Some(head), None) | (None, Some(head)) => head,
        (None, None) => (0, GENESIS_HASH.to_owned()),
    })
}

fn to_sql_seq(seq: u64) -> Result<i64, rusqlite::Error> {
    i64::try_from(seq).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}
