//! `verify` names an edited, deleted or reordered record; the database is edited directly,
//! as someone with access to the file would.

mod common;

use common::{fill, fresh, raw, record};
use portcullis_store::{ChainProblem, GENESIS_HASH, Store, VerifyOutcome, link_hash};
use portcullis_wire::canonical;

fn expect_broken(outcome: VerifyOutcome, seq: u64, problem: ChainProblem) -> String {
    match outcome {
        VerifyOutcome::Broken {
            seq: found,
            problem: found_problem,
            detail,
        } => {
            assert_eq!(
                (found, &found_problem),
                (seq, &problem),
                "wrong diagnosis: {detail}"
            );
            detail
        }
        intact => panic!("tampering not detected: {intact}"),
    }
}

/// Swaps the sequence numbers of two rows (through a free number, the key is unique).
fn swap(conn: &rusqlite::Connection, a: i64, b: i64) {
    conn.execute_batch(&format!(
        "BEGIN; UPDATE audit SET seq = -1 WHERE seq = {a}; \
         UPDATE audit SET seq = {a} WHERE seq = {b}; \
         UPDATE audit SET seq = {b} WHERE seq = -1; COMMIT;"
    ))
    .expect("swap rows");
}

#[tokio::test]
async fn an_untouched_log_is_intact() {
    let f = fresh();
    assert_eq!(
        f.store.verify_audit().unwrap(),
        VerifyOutcome::Intact {
            records: 0,
            head: GENESIS_HASH.into()
        }
    );
    fill(&f.store, 10).await;
    let last: String = raw(&f.path)
        .query_row("SELECT hash FROM audit WHERE seq = 10", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        f.store.verify_audit().unwrap(),
        VerifyOutcome::Intact {
            records: 10,
            head: last
        }
    );
}

#[tokio::test]
async fn an_edited_field_is_named() {
    let f = fresh();
    fill(&f.store, 10).await;
    raw(&f.path)
        .execute(
            "UPDATE audit SET body = json_set(body, '$.decision', 'allow') WHERE seq = 5",
            [],
        )
        .unwrap();
    let detail = expect_broken(f.store.verify_audit().unwrap(), 5, ChainProblem::Edited);
    assert!(detail.contains("record 5"), "{detail}");
    // The detail names records, never their contents.
    assert!(
        !detail.contains("allow") && !detail.contains("bob"),
        "{detail}"
    );
}

#[tokio::test]
async fn generated_columns_cannot_be_edited_apart_from_the_body() {
    let f = fresh();
    fill(&f.store, 3).await;
    let refused = raw(&f.path).execute("UPDATE audit SET principal = 'mallory' WHERE seq = 2", []);
    assert!(
        refused.is_err(),
        "filter columns are derived from the hashed body"
    );
}

#[tokio::test]
async fn an_edit_with_a_recomputed_hash_is_named() {
    let f = fresh();
    fill(&f.store, 10).await;
    let conn = raw(&f.path);
    let prev: String = conn
        .query_row("SELECT prev_hash FROM audit WHERE seq = 5", [], |r| {
            r.get(0)
        })
        .unwrap();
    let mut forged = record(5);
    forged.decision = "allow".into();
    forged.principal = "mallory".into();
    let body = canonical::to_string(&serde_json::to_value(&forged).unwrap());
    let hash = link_hash(&prev, 5, &body);
    conn.execute(
        "UPDATE audit SET body = ?1, hash = ?2 WHERE seq = 5",
        rusqlite::params![body, hash],
    )
    .unwrap();
    expect_broken(f.store.verify_audit().unwrap(), 5, ChainProblem::Edited);
}

#[tokio::test]
async fn an_edited_link_is_named() {
    let f = fresh();
    fill(&f.store, 10).await;
    raw(&f.path)
        .execute(
            "UPDATE audit SET prev_hash = replace(prev_hash, substr(prev_hash, 1, 1), 'x') \
             WHERE seq = 7",
            [],
        )
        .unwrap();
    expect_broken(f.store.verify_audit().unwrap(), 7, ChainProblem::Edited);
}

#[tokio::test]
async fn a_deleted_record_is_named() {
    let f = fresh();
    fill(&f.store, 10).await;
    raw(&f.path)
        .execute("DELETE FROM audit WHERE seq = 5", [])
        .unwrap();
    let detail = expect_broken(
        f.store.verify_audit().unwrap(),
        5,
        ChainProblem::Missing { expected_seq: 5 },
    );
    assert!(detail.contains("record 5 is missing"), "{detail}");
}

#[tokio::test]
async fn a_deleted_range_is_named_by_its_first_record() {
    let f = fresh();
    fill(&f.store, 10).await;
    raw(&f.path)
        .execute("DELETE FROM audit WHERE seq BETWEEN 3 AND 6", [])
        .unwrap();
    expect_broken(
        f.store.verify_audit().unwrap(),
        3,
        ChainProblem::Missing { expected_seq: 3 },
    );
}

#[tokio::test]
async fn a_deleted_first_record_is_named() {
    let f = fresh();
    fill(&f.store, 4).await;
    raw(&f.path)
        .execute("DELETE FROM audit WHERE seq = 1", [])
        .unwrap();
    expect_broken(
        f.store.verify_audit().unwrap(),
        1,
        ChainProblem::Missing { expected_seq: 1 },
    );
}

#[tokio::test]
async fn a_deleted_tail_is_named_and_stays_visible_after_more_appends() {
    let f = fresh();
    fill(&f.store, 10).await;
    raw(&f.path)
        .execute("DELETE FROM audit WHERE seq >= 9", [])
        .unwrap();
    expect_broken(
        f.store.verify_audit().unwrap(),
        9,
        ChainProblem::Missing { expected_seq: 9 },
    );
    // The writer continues from its own head, not from the truncated table.
    let seq = f.store.append_audit(record(11)).await.unwrap();
    assert_eq!(seq, 11);
    expect_broken(
        f.store.verify_audit().unwrap(),
        9,
        ChainProblem::Missing { expected_seq: 9 },
    );
}

#[tokio::test]
async fn a_deletion_with_renumbering_is_named() {
    let f = fresh();
    fill(&f.store, 10).await;
    let conn = raw(&f.path);
    conn.execute("DELETE FROM audit WHERE seq = 5", []).unwrap();
    for seq in 6..=10 {
        conn.execute("UPDATE audit SET seq = ?1 - 1 WHERE seq = ?1", [seq])
            .unwrap();
    }
    expect_broken(
        f.store.verify_audit().unwrap(),
        5,
        ChainProblem::Missing { expected_seq: 5 },
    );
}

#[tokio::test]
async fn swapped_records_are_named() {
    let f = fresh();
    fill(&f.store, 10).await;
    swap(&raw(&f.path), 5, 6);
    let detail = expect_broken(f.store.verify_audit().unwrap(), 5, ChainProblem::Reordered);
    assert!(detail.contains("stored at 6"), "{detail}");
}

#[tokio::test]
async fn distant_swaps_and_the_first_record_are_named() {
    let f = fresh();
    fill(&f.store, 10).await;
    swap(&raw(&f.path), 3, 8);
    expect_broken(f.store.verify_audit().unwrap(), 3, ChainProblem::Reordered);
    swap(&raw(&f.path), 3, 8);
    assert!(matches!(
        f.store.verify_audit().unwrap(),
        VerifyOutcome::Intact { records: 10, .. }
    ));
    swap(&raw(&f.path), 1, 2);
    expect_broken(f.store.verify_audit().unwrap(), 1, ChainProblem::Reordered);
}

#[tokio::test]
async fn a_forged_start_is_named() {
    let f = fresh();
    fill(&f.store, 3).await;
    let conn = raw(&f.path);
    let body: String = conn
        .query_row("SELECT body FROM audit WHERE seq = 1", [], |r| r.get(0))
        .unwrap();
    let fake_prev = "1".repeat(64);
    conn.execute(
        "UPDATE audit SET prev_hash = ?1, hash = ?2 WHERE seq = 1",
        rusqlite::params![fake_prev, link_hash(&fake_prev, 1, &body)],
    )
    .unwrap();
    expect_broken(f.store.verify_audit().unwrap(), 1, ChainProblem::BadGenesis);
}

#[tokio::test]
async fn a_rewritten_last_record_is_named_through_the_head() {
    let f = fresh();
    fill(&f.store, 4).await;
    let conn = raw(&f.path);
    let prev: String = conn
        .query_row("SELECT prev_hash FROM audit WHERE seq = 4", [], |r| {
            r.get(0)
        })
        .unwrap();
    let mut forged = record(4);
    forged.reason = "nothing to see".into();
    let body = canonical::to_string(&serde_json::to_value(&forged).unwrap());
    conn.execute(
        "UPDATE audit SET body = ?1, hash = ?2 WHERE seq = 4",
        rusqlite::params![body, link_hash(&prev, 4, &body)],
    )
    .unwrap();
    expect_broken(f.store.verify_audit().unwrap(), 4, ChainProblem::Edited);
}
