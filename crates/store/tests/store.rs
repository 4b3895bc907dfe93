//! Appending, querying, reopening, concurrency, the mirror.

mod common;

use common::{bounded, fill, fresh, fresh_with, raw, record};
use portcullis_store::{
    AuditMirror, AuditQuery, MAX_QUERY_LIMIT, SCHEMA_VERSION, SqliteOptions, SqliteStore, Store,
    StoreError, StoredRecord, VerifyOutcome, link_hash,
};
use portcullis_wire::canonical;
use std::io::Write;
use std::sync::{Arc, Mutex};

fn seqs(records: &[StoredRecord]) -> Vec<u64> {
    records.iter().map(|r| r.seq).collect()
}

#[tokio::test]
async fn records_come_back_as_written_and_linked() {
    let f = fresh();
    fill(&f.store, 5).await;
    let all = f.store.query_audit(&AuditQuery::default()).unwrap();
    assert_eq!(seqs(&all), [1, 2, 3, 4, 5]);
    for (i, stored) in all.iter().enumerate() {
        assert_eq!(stored.record, record(i as u64 + 1));
        let body = canonical::to_string(&serde_json::to_value(&stored.record).unwrap());
        assert_eq!(stored.hash, link_hash(&stored.prev_hash, stored.seq, &body));
        if i > 0 {
            assert_eq!(stored.prev_hash, all[i - 1].hash);
        }
    }
}

#[tokio::test]
async fn queries_filter_page_and_tail() {
    let f = fresh();
    fill(&f.store, 30).await;
    let q = |edit: &dyn Fn(&mut AuditQuery)| {
        let mut q = AuditQuery::default();
        edit(&mut q);
        seqs(&f.store.query_audit(&q).unwrap())
    };
    let evens: Vec<u64> = (2..=30).step_by(2).collect();
    assert_eq!(q(&|q| q.principal = Some("alice".into())), evens);
    assert_eq!(
        q(&|q| q.server = Some("tickets".into())),
        (3..=30).step_by(3).collect::<Vec<_>>()
    );
    assert_eq!(
        q(&|q| q.decision = Some("deny".into())),
        [5, 10, 15, 20, 25, 30]
    );
    // [since, until): records 10..=19
    let t = |i: i64| 1_700_000_000_000 + i * 1000;
    assert_eq!(
        q(&|q| {
            q.since_ms = Some(t(10));
            q.until_ms = Some(t(20));
        }),
        (10..20).collect::<Vec<_>>()
    );
    assert_eq!(
        q(&|q| {
            q.principal = Some("alice".into());
            q.decision = Some("deny".into());
            q.since_ms = Some(t(11));
        }),
        [20, 30]
    );
    // Paging, and the tail (newest first taken, returned in ascending order).
    assert_eq!(
        q(&|q| {
            q.after_seq = Some(25);
            q.limit = 3;
        }),
        [26, 27, 28]
    );
    assert_eq!(
        q(&|q| {
            q.latest = true;
            q.limit = 3;
        }),
        [28, 29, 30]
    );
    assert_eq!(
        q(&|q| {
            q.latest = true;
            q.limit = 2;
            q.principal = Some("bob".into());
        }),
        [27, 29]
    );
    assert!(q(&|q| q.limit = 0).is_empty());
    assert!(q(&|q| q.after_seq = Some(u64::MAX)).is_empty());
}

#[tokio::test]
async fn query_limits_are_bounded() {
    let f = fresh();
    let q = AuditQuery {
        limit: MAX_QUERY_LIMIT + 1,
        ..AuditQuery::default()
    };
    let error = f.store.query_audit(&q).unwrap_err();
    assert!(matches!(error, StoreError::InvalidQuery(_)), "{error}");
    let q = AuditQuery {
        limit: MAX_QUERY_LIMIT,
        ..AuditQuery::default()
    };
    assert!(f.store.query_audit(&q).unwrap().is_empty());
}

#[tokio::test]
async fn the_chain_continues_across_reopen_and_read_only_access_works() {
    let f = fresh();
    fill(&f.store, 3).await;
    drop(f.store);
    let store = SqliteStore::open(&f.path, SqliteOptions::default()).unwrap();
    assert_eq!(store.append_audit(record(4)).await.unwrap(), 4);
    let reader = SqliteStore::open_read_only(&f.path).unwrap();
    assert!(matches!(
        reader.verify_audit().unwrap(),
        VerifyOutcome::Intact { records: 4, .. }
    ));
    assert_eq!(reader.query_audit(&AuditQuery::default()).unwrap().len(), 4);
    let refused = reader.append_audit(record(5)).await.unwrap_err();
    assert!(matches!(refused, StoreError::ReadOnly), "{refused}");
    // The reader sees what the writer commits later.
    assert_eq!(store.append_audit(record(5)).await.unwrap(), 5);
    assert_eq!(reader.query_audit(&AuditQuery::default()).unwrap().len(), 5);
}

#[tokio::test]
async fn the_database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let f = fresh();
    fill(&f.store, 1).await;
    let mode = std::fs::metadata(&f.path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn foreign_newer_and_missing_databases_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("foreign.db");
    raw(&foreign)
        .execute_batch("CREATE TABLE customers (id INTEGER)")
        .unwrap();
    let error = SqliteStore::open(&foreign, SqliteOptions::default()).unwrap_err();
    assert!(matches!(error, StoreError::Schema(_)), "{error}");
    assert!(SqliteStore::open_read_only(&foreign).is_err());

    let newer = dir.path().join("newer.db");
    drop(SqliteStore::open(&newer, SqliteOptions::default()).unwrap());
    raw(&newer)
        .execute(
            "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
            [(SCHEMA_VERSION + 1).to_string()],
        )
        .unwrap();
    for error in [
        SqliteStore::open(&newer, SqliteOptions::default()).unwrap_err(),
        SqliteStore::open_read_only(&newer).unwrap_err(),
    ] {
        assert!(error.to_string().contains("newer Portcullis"), "{error}");
    }

    let missing = dir.path().join("missing.db");
    assert!(SqliteStore::open_read_only(&missing).is_err());
    assert!(!missing.exists(), "read-only access creates nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_get_distinct_gapless_seqs_while_verify_runs() {
    let f = fresh();
    let mut tasks = Vec::new();
    for task in 0..32u64 {
        let store = f.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in 0..100 {
                mine.push(store.append_audit(record(task * 1000 + i)).await.unwrap());
            }
            mine
        }));
    }
    // Readers see consistent snapshots while the writer commits.
    for _ in 0..5 {
        let store = f.store.clone();
        let outcome = tokio::task::spawn_blocking(move || store.verify_audit())
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(outcome, VerifyOutcome::Intact { .. }), "{outcome}");
    }
    let mut all = Vec::new();
    for task in tasks {
        let mine = bounded(task).await.unwrap();
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "one task's appends stay in order"
        );
        all.extend(mine);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=3200).collect::<Vec<_>>());
    assert!(matches!(
        f.store.verify_audit().unwrap(),
        VerifyOutcome::Intact { records: 3200, .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_makes_appends_wait_never_drop() {
    let f = fresh_with(SqliteOptions {
        queue_capacity: 1,
        max_batch: 1,
        ..SqliteOptions::default()
    });
    let futures: Vec<_> = (1..=200).map(|i| f.store.append_audit(record(i))).collect();
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut got = Vec::new();
    for handle in handles {
        got.push(bounded(handle).await.unwrap().unwrap());
    }
    got.sort_unstable();
    assert_eq!(got, (1..=200).collect::<Vec<_>>());
}

/// A clonable in-memory sink for the mirror.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("sink").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mirror_gets_every_committed_record_in_order() {
    let sink = Sink::default();
    let f = fresh_with(SqliteOptions {
        mirror: Some(AuditMirror::writer(Box::new(sink.clone()), "test")),
        ..SqliteOptions::default()
    });
    let handles: Vec<_> = (1..=300)
        .map(|i| tokio::spawn(f.store.append_audit(record(i))))
        .collect();
    for handle in handles {
        bounded(handle).await.unwrap().unwrap();
    }
    // The mirror is written right after the answers; give the writer a moment to finish.
    let expected = f
        .store
        .query_audit(&AuditQuery {
            limit: 1000,
            ..AuditQuery::default()
        })
        .unwrap();
    let mut lines = Vec::new();
    for _ in 0..100 {
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        lines = text.lines().map(str::to_owned).collect::<Vec<_>>();
        if lines.len() == expected.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(lines.len(), 300);
    for (line, stored) in lines.iter().zip(&expected) {
        let parsed: StoredRecord = serde_json::from_str(line).unwrap();
        assert_eq!(&parsed, stored);
        // Each line is itself canonical, so the mirror can be checked on its own.
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(&canonical::to_string(&value), line);
    }
}

#[tokio::test]
async fn the_mirror_file_appends_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mirror_path = dir.path().join("audit.jsonl");
    let f = fresh_with(SqliteOptions {
        mirror: Some(AuditMirror::file(&mirror_path).unwrap()),
        ..SqliteOptions::default()
    });
    fill(&f.store, 3).await;
    drop(f.store);
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(&mirror_path).unwrap();
        if text.lines().count() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let seqs: Vec<u64> = text
        .lines()
        .map(|l| serde_json::from_str::<StoredRecord>(l).unwrap().seq)
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
}

#[tokio::test]
async fn the_gateway_can_hold_it_as_a_trait_object() {
    let f = fresh();
    let store: Arc<dyn Store> = f.store.clone();
    assert_eq!(store.append_audit(record(1)).await.unwrap(), 1);
    assert_eq!(store.query_audit(&AuditQuery::default()).unwrap().len(), 1);
}

/// A record nothing waits on is held back (a bounded time) to share the next commit: a
/// call's outcome and the next call's decision cost one transaction, not two.
#[tokio::test]
async fn a_deferred_record_shares_the_next_commit_and_alone_waits_only_briefly() {
    let f = common::fresh();
    let mut shared = false;
    for i in 0..5 {
        let before = f.store.commits();
        let deferred = tokio::spawn(f.store.append_audit_deferred(common::record(2 * i + 1)));
        tokio::time::sleep(std::time::Duration::from_micros(300)).await;
        common::bounded(f.store.append_audit(common::record(2 * i + 2)))
            .await
            .expect("urgent append");
        common::bounded(async { deferred.await.expect("task") })
            .await
            .expect("deferred append");
        if f.store.commits() == before + 1 {
            shared = true;
            break;
        }
    }
    assert!(shared, "a deferred record never shared the next commit");
    // Alone, it is committed after at most the deferral bound (and scheduling).
    let started = std::time::Instant::now();
    common::bounded(f.store.append_audit_deferred(common::record(99)))
        .await
        .expect("deferred alone");
    assert!(
        started.elapsed() < portcullis_store::DEFER_AT_MOST + std::time::Duration::from_secs(1)
    );
    assert!(matches!(
        f.store.verify_audit().expect("verify"),
        portcullis_store::VerifyOutcome::Intact { .. }
    ));
}

/// Schema 2 keeps only the indexes worth a page per commit: time and principal.
#[tokio::test]
async fn the_audit_table_keeps_only_the_time_and_principal_indexes() {
    let f = common::fresh();
    common::fill(&f.store, 3).await;
    let conn = rusqlite::Connection::open(&f.path).expect("open");
    let mut names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'audit'")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    names.sort();
    assert_eq!(names, ["audit_principal", "audit_time"]);
    // Filters on the unindexed columns still work.
    let q = portcullis_store::AuditQuery {
        server: Some("tickets".into()),
        ..Default::default()
    };
    let found = f.store.query_audit(&q).expect("query");
    assert!(found.iter().all(|r| r.record.server == "tickets"));
    assert_eq!(found.len(), 1);
}
