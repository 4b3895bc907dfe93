//! When the store cannot make a record durable, appends fail (promptly, never hang), so the
//! gateway refuses the call.

mod common;

use common::{bounded, fill, fresh, fresh_with, raw, record};
use portcullis_store::{
    AuditMirror, AuditQuery, MAX_RECORD_BYTES, SqliteOptions, Store, StoreError, VerifyOutcome,
};
use std::io::Write;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_database_fails_every_append_and_recovers_without_a_gap() {
    let f = fresh();
    fill(&f.store, 3).await;
    // The database refuses writes (as it would when full or broken); the store does not know
    // why, it only sees the commit fail.
    raw(&f.path)
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON audit \
             BEGIN SELECT RAISE(ABORT, 'refused by test'); END;",
        )
        .unwrap();
    let handles: Vec<_> = (0..50)
        .map(|i| tokio::spawn(f.store.append_audit(record(100 + i))))
        .collect();
    for handle in handles {
        let error = bounded(handle).await.unwrap().unwrap_err();
        assert!(matches!(error, StoreError::WriteFailed { .. }), "{error}");
        assert!(error.to_string().contains("record not stored"), "{error}");
    }
    let error = bounded(f.store.append_audit(record(200)))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::WriteFailed { .. }), "{error}");

    // Once the database works again, so does the store, and the chain has no hole.
    raw(&f.path).execute_batch("DROP TRIGGER refuse").unwrap();
    assert_eq!(bounded(f.store.append_audit(record(4))).await.unwrap(), 4);
    assert!(matches!(
        f.store.verify_audit().unwrap(),
        VerifyOutcome::Intact { records: 4, .. }
    ));
}

#[tokio::test]
async fn a_locked_database_fails_appends_after_the_busy_timeout() {
    let f = fresh_with(SqliteOptions {
        busy_timeout: std::time::Duration::from_millis(100),
        ..SqliteOptions::default()
    });
    fill(&f.store, 1).await;
    let locker = raw(&f.path);
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let error = bounded(f.store.append_audit(record(2))).await.unwrap_err();
    assert!(matches!(error, StoreError::WriteFailed { .. }), "{error}");
    locker.execute_batch("ROLLBACK").unwrap();
    assert_eq!(bounded(f.store.append_audit(record(2))).await.unwrap(), 2);
}

/// A mirror sink that panics on its first write: a stand-in for any bug that kills the
/// writer thread (the mirror runs on it).
struct Bomb;

impl Write for Bomb {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        panic!("test: the writer thread dies here on purpose");
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_writer_fails_pending_and_future_appends() {
    let f = fresh_with(SqliteOptions {
        mirror: Some(AuditMirror::writer(Box::new(Bomb), "bomb")),
        ..SqliteOptions::default()
    });
    // Many appends in flight when the writer dies after its first group commit: each one is
    // answered (stored, or refused); none hangs.
    let handles: Vec<_> = (1..=500)
        .map(|i| tokio::spawn(f.store.append_audit(record(i))))
        .collect();
    let (mut stored, mut refused) = (Vec::new(), 0);
    for handle in handles {
        match bounded(handle).await.unwrap() {
            Ok(seq) => stored.push(seq),
            Err(StoreError::WriterGone) => refused += 1,
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert!(refused > 0, "the writer died, appends must be refused");
    let error = bounded(f.store.append_audit(record(999)))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::WriterGone), "{error}");
    // What was acknowledged is stored, and the chain is intact.
    stored.sort_unstable();
    let n = stored.len() as u64;
    assert_eq!(stored, (1..=n).collect::<Vec<_>>());
    assert_eq!(
        f.store
            .query_audit(&AuditQuery {
                limit: 1000,
                ..AuditQuery::default()
            })
            .unwrap()
            .len() as u64,
        n
    );
    assert!(matches!(
        f.store.verify_audit().unwrap(),
        VerifyOutcome::Intact { records, .. } if records == n
    ));
}

#[tokio::test]
async fn oversized_records_are_refused_and_the_store_goes_on() {
    let f = fresh();
    let mut big = record(1);
    big.args = Some(serde_json::json!({"blob": "x".repeat(MAX_RECORD_BYTES)}));
    let error = f.store.append_audit(big).await.unwrap_err();
    assert!(
        matches!(error, StoreError::RecordTooLarge { .. }),
        "{error}"
    );
    assert!(!error.to_string().contains("xxxx"), "{error}");
    assert_eq!(f.store.append_audit(record(1)).await.unwrap(), 1);
}
