//! Sealed OAuth grants and client registrations: round trips, reopening, read-only access,
//! bounds, and migrating a schema-3 store to the schema that has them.

mod common;

use common::{bounded, fill, fresh, raw, record};
use portcullis_store::{
    GrantKey, MAX_SEALED_BYTES, SCHEMA_VERSION, SqliteOptions, SqliteStore, Store, StoreError,
    VerifyOutcome,
};

fn key(principal: &str, server: &str, issuer: &str) -> GrantKey {
    GrantKey {
        principal: principal.into(),
        server: server.into(),
        issuer: issuer.into(),
    }
}

const AS: &str = "https://as.example";

#[test]
fn grants_are_put_read_replaced_listed_and_removed() {
    let f = fresh();
    let alice = key("alice", "tickets", AS);
    assert_eq!(f.store.get_grant(&alice).unwrap(), None);
    assert!(f.store.list_grants().unwrap().is_empty());

    f.store.put_grant(&alice, b"sealed-a1").unwrap();
    f.store
        .put_grant(&key("bob", "tickets", AS), b"sealed-b")
        .unwrap();
    f.store
        .put_grant(&key("alice", "docs", AS), b"sealed-d")
        .unwrap();
    // The same user at the same server under another issuer is another grant.
    f.store
        .put_grant(
            &key("alice", "tickets", "https://other.example"),
            b"sealed-o",
        )
        .unwrap();
    assert_eq!(f.store.get_grant(&alice).unwrap().unwrap(), b"sealed-a1");
    assert_eq!(
        f.store.get_grant(&key("carol", "tickets", AS)).unwrap(),
        None
    );

    // A refresh replaces the grant and moves its time; it does not add one.
    let before = f.store.list_grants().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    f.store.put_grant(&alice, b"sealed-a2").unwrap();
    assert_eq!(f.store.get_grant(&alice).unwrap().unwrap(), b"sealed-a2");
    let listed = f.store.list_grants().unwrap();
    let keys: Vec<&GrantKey> = listed.iter().map(|row| &row.key).collect();
    assert_eq!(
        keys,
        vec![
            &key("alice", "docs", AS),
            &key("alice", "tickets", AS),
            &key("alice", "tickets", "https://other.example"),
            &key("bob", "tickets", AS),
        ],
        "ordered by server, principal, issuer"
    );
    let updated = |rows: &[portcullis_store::GrantRow]| {
        rows.iter()
            .find(|row| row.key == alice)
            .map(|row| row.updated_at_ms)
            .unwrap()
    };
    assert!(updated(&listed) > updated(&before));
    assert!(updated(&before) > 1_700_000_000_000, "milliseconds");

    // Forgetting one principal at a server takes all of their issuers, and only theirs.
    assert_eq!(f.store.remove_grants("tickets", Some("alice")).unwrap(), 2);
    assert_eq!(f.store.get_grant(&alice).unwrap(), None);
    assert_eq!(
        f.store
            .get_grant(&key("bob", "tickets", AS))
            .unwrap()
            .unwrap(),
        b"sealed-b"
    );
    assert_eq!(f.store.remove_grants("tickets", Some("alice")).unwrap(), 0);
    // Without a principal: everyone's, at that server only.
    assert_eq!(f.store.remove_grants("tickets", None).unwrap(), 1);
    let left: Vec<GrantKey> = f
        .store
        .list_grants()
        .unwrap()
        .into_iter()
        .map(|row| row.key)
        .collect();
    assert_eq!(left, vec![key("alice", "docs", AS)]);
}

#[test]
fn client_registrations_are_put_read_replaced_and_removed() {
    let f = fresh();
    assert_eq!(f.store.get_client("tickets", AS).unwrap(), None);
    f.store.put_client("tickets", AS, b"client-1").unwrap();
    f.store
        .put_client("tickets", "https://other.example", b"client-o")
        .unwrap();
    f.store.put_client("docs", AS, b"client-d").unwrap();
    f.store.put_client("tickets", AS, b"client-2").unwrap();
    assert_eq!(
        f.store.get_client("tickets", AS).unwrap().unwrap(),
        b"client-2"
    );
    assert_eq!(f.store.remove_clients("tickets").unwrap(), 2);
    assert_eq!(f.store.get_client("tickets", AS).unwrap(), None);
    assert_eq!(
        f.store.get_client("docs", AS).unwrap().unwrap(),
        b"client-d"
    );
    assert_eq!(f.store.remove_clients("tickets").unwrap(), 0);
}

#[test]
fn grants_and_registrations_survive_reopening() {
    let f = fresh();
    f.store
        .put_grant(&key("alice", "tickets", AS), &[0, 1, 2, 255])
        .unwrap();
    f.store.put_client("tickets", AS, &[9; 40]).unwrap();
    drop(f.store);
    let store = SqliteStore::open(&f.path, SqliteOptions::default()).unwrap();
    assert_eq!(
        store
            .get_grant(&key("alice", "tickets", AS))
            .unwrap()
            .unwrap(),
        vec![0, 1, 2, 255],
        "binary blobs come back byte for byte"
    );
    assert_eq!(
        store.get_client("tickets", AS).unwrap().unwrap(),
        vec![9; 40]
    );
}

#[test]
fn a_read_only_store_reads_grants_but_refuses_to_write_them() {
    let f = fresh();
    let alice = key("alice", "tickets", AS);
    f.store.put_grant(&alice, b"sealed").unwrap();
    f.store.put_client("tickets", AS, b"client").unwrap();
    let reader = SqliteStore::open_read_only(&f.path).unwrap();
    assert_eq!(reader.get_grant(&alice).unwrap().unwrap(), b"sealed");
    assert_eq!(reader.list_grants().unwrap().len(), 1);
    assert_eq!(
        reader.get_client("tickets", AS).unwrap().unwrap(),
        b"client"
    );
    for refused in [
        reader.put_grant(&alice, b"other"),
        reader.remove_grants("tickets", None).map(drop),
        reader.put_client("tickets", AS, b"other"),
        reader.remove_clients("tickets").map(drop),
    ] {
        assert!(matches!(refused, Err(StoreError::ReadOnly)), "{refused:?}");
    }
    assert_eq!(f.store.get_grant(&alice).unwrap().unwrap(), b"sealed");
}

#[test]
fn empty_keys_and_empty_or_oversized_blobs_are_refused() {
    let f = fresh();
    assert!(matches!(
        f.store.put_grant(&key("", "tickets", AS), b"sealed"),
        Err(StoreError::InvalidGrant(_))
    ));
    assert!(matches!(
        f.store.put_grant(&key("alice", "tickets", ""), b"sealed"),
        Err(StoreError::InvalidGrant(_))
    ));
    assert!(matches!(
        f.store.put_grant(&key("alice", "tickets", AS), b""),
        Err(StoreError::InvalidGrant(_))
    ));
    assert!(matches!(
        f.store
            .put_grant(&key("alice", "tickets", AS), &vec![7; MAX_SEALED_BYTES + 1]),
        Err(StoreError::SealedTooLarge { .. })
    ));
    assert!(matches!(
        f.store.put_client("", AS, b"client"),
        Err(StoreError::InvalidGrant(_))
    ));
    assert!(matches!(
        f.store
            .put_client("tickets", AS, &vec![7; MAX_SEALED_BYTES + 1]),
        Err(StoreError::SealedTooLarge { .. })
    ));
    assert!(f.store.list_grants().unwrap().is_empty());
    // The table refuses an empty blob written around the store, too.
    let sneaked = raw(&f.path).execute(
        "INSERT INTO oauth_grants VALUES ('alice', 'tickets', 'i', x'', 0)",
        [],
    );
    assert!(
        sneaked
            .unwrap_err()
            .to_string()
            .contains("CHECK constraint")
    );
}

#[tokio::test]
async fn migrating_a_schema_3_store_adds_the_grant_tables_and_keeps_pins_and_chain() {
    let f = fresh();
    fill(&f.store, 10).await;
    let VerifyOutcome::Intact { head, .. } = f.store.verify_audit().unwrap() else {
        panic!("a fresh chain verifies");
    };
    drop(f.store);
    // Take the file back to schema 3: exactly migrations 4, 5 (definition pins) and 6
    // (remembered approvals) undone, a pin left in place.
    let conn = raw(&f.path);
    conn.execute_batch(
        "DROP TABLE consent_approvals; DROP TABLE definition_pins; DROP TABLE oauth_grants; \
         DROP TABLE oauth_clients; \
         UPDATE meta SET value = '3' WHERE key = 'schema_version'; \
         INSERT INTO pins (server, body) VALUES ('files', json_object('server', 'files'));",
    )
    .unwrap();
    drop(conn);
    assert!(
        matches!(
            SqliteStore::open_read_only(&f.path),
            Err(StoreError::Schema(_))
        ),
        "read-only access does not migrate, so it refuses the older schema"
    );

    let store = SqliteStore::open(&f.path, SqliteOptions::default()).unwrap();
    assert_eq!(SCHEMA_VERSION, 6);
    let version: String = raw(&f.path)
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION.to_string());
    assert!(store.list_grants().unwrap().is_empty());
    store
        .put_grant(&key("alice", "tickets", AS), b"sealed")
        .unwrap();
    let pins: i64 = raw(&f.path)
        .query_row("SELECT count(*) FROM pins", [], |row| row.get(0))
        .unwrap();
    assert_eq!(pins, 1, "the pins of schema 3 are kept");
    assert_eq!(
        store.verify_audit().unwrap(),
        VerifyOutcome::Intact { records: 10, head }
    );
    assert_eq!(bounded(store.append_audit(record(11))).await.unwrap(), 11);
}
