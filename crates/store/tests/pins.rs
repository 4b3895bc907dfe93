//! Launch pins: round trips, reopening, read-only access, the stored form, migrating to the
//! schema that has them, and tampering with the table.

mod common;

use common::{bounded, fill, fresh, raw, record};
use portcullis_store::{
    LaunchPin, SCHEMA_VERSION, SqliteOptions, SqliteStore, Store, StoreError, VerifyOutcome,
};
use portcullis_wire::canonical;

fn pin(server: &str) -> LaunchPin {
    LaunchPin {
        server: server.into(),
        argv: vec![
            "node".into(),
            "/opt/mcp/server.js".into(),
            "--root".into(),
            "/srv/ü".into(),
        ],
        executable: "/usr/bin/node".into(),
        executable_sha256: "0f".repeat(32),
        script: Some("/opt/mcp/server.js".into()),
        script_sha256: Some("a1".repeat(32)),
        package: None,
        trusted_at_ms: 1_700_000_000_000,
        trusted_by: "alice".into(),
    }
}

fn npx_pin(server: &str) -> LaunchPin {
    LaunchPin {
        server: server.into(),
        argv: vec!["npx".into(), "-y".into(), "@scope/pkg@1.2.3".into()],
        executable: "/usr/bin/npx".into(),
        executable_sha256: "b2".repeat(32),
        script: None,
        script_sha256: None,
        package: Some("@scope/pkg@1.2.3".into()),
        trusted_at_ms: 1_700_000_001_000,
        trusted_by: "bob".into(),
    }
}

fn schema_version(path: &std::path::Path) -> String {
    raw(path)
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .expect("read the schema version")
}

#[test]
fn pins_are_put_read_replaced_listed_and_removed() {
    let f = fresh();
    assert_eq!(f.store.get_pin("files").unwrap(), None);
    assert!(f.store.list_pins().unwrap().is_empty());

    f.store.put_pin(&pin("files")).unwrap();
    f.store.put_pin(&npx_pin("tickets")).unwrap();
    assert_eq!(f.store.get_pin("files").unwrap(), Some(pin("files")));
    assert_eq!(
        f.store.get_pin("tickets").unwrap(),
        Some(npx_pin("tickets"))
    );
    assert_eq!(f.store.get_pin("other").unwrap(), None);

    // A second `trust` replaces the pin; it does not add one.
    let mut changed = pin("files");
    changed.argv.push("--verbose".into());
    changed.executable_sha256 = "ee".repeat(32);
    f.store.put_pin(&changed).unwrap();
    assert_eq!(f.store.get_pin("files").unwrap(), Some(changed.clone()));
    assert_eq!(
        f.store.list_pins().unwrap(),
        vec![changed, npx_pin("tickets")],
        "ordered by server name"
    );

    assert!(f.store.remove_pin("files").unwrap());
    assert!(!f.store.remove_pin("files").unwrap(), "already gone");
    assert_eq!(f.store.get_pin("files").unwrap(), None);
    assert_eq!(f.store.list_pins().unwrap(), vec![npx_pin("tickets")]);
}

#[test]
fn a_pin_survives_reopening() {
    let f = fresh();
    f.store.put_pin(&pin("files")).unwrap();
    drop(f.store);
    let store = SqliteStore::open(&f.path, SqliteOptions::default()).unwrap();
    assert_eq!(store.get_pin("files").unwrap(), Some(pin("files")));
}

#[test]
fn a_read_only_store_reads_pins_but_refuses_to_write_them() {
    let f = fresh();
    f.store.put_pin(&pin("files")).unwrap();
    let reader = SqliteStore::open_read_only(&f.path).unwrap();
    assert_eq!(reader.get_pin("files").unwrap(), Some(pin("files")));
    assert_eq!(reader.list_pins().unwrap(), vec![pin("files")]);
    assert!(matches!(
        reader.put_pin(&npx_pin("files")),
        Err(StoreError::ReadOnly)
    ));
    assert!(matches!(
        reader.remove_pin("files"),
        Err(StoreError::ReadOnly)
    ));
    assert_eq!(f.store.get_pin("files").unwrap(), Some(pin("files")));
}

#[test]
fn the_stored_pin_is_canonical_json() {
    let f = fresh();
    f.store.put_pin(&pin("files")).unwrap();
    let body: String = raw(&f.path)
        .query_row("SELECT body FROM pins WHERE server = 'files'", [], |row| {
            row.get(0)
        })
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body, canonical::to_string(&value));
    assert_eq!(
        body,
        canonical::to_string(&serde_json::to_value(pin("files")).unwrap())
    );
    assert!(
        body.starts_with("{\"argv\":[\"node\",") && body.contains("\"/srv/ü\""),
        "sorted keys, UTF-8 as is: {body}"
    );
    assert!(!body.contains("package"), "absent fields are left out");
}

#[tokio::test]
async fn migrating_a_store_without_pins_adds_them_and_keeps_the_audit_chain() {
    let f = fresh();
    fill(&f.store, 20).await;
    let VerifyOutcome::Intact { records, head } = f.store.verify_audit().unwrap() else {
        panic!("a fresh chain verifies");
    };
    assert_eq!(records, 20);
    drop(f.store);
    // Take the file back to schema 2, the last one without pins: exactly migrations 3, 4
    // (OAuth grants), 5 (definition pins) and 6 (remembered approvals) undone.
    let conn = raw(&f.path);
    conn.execute_batch(
        "DROP TABLE consent_approvals; DROP TABLE definition_pins; DROP TABLE oauth_grants; \
         DROP TABLE oauth_clients; DROP TABLE pins; \
         UPDATE meta SET value = '2' WHERE key = 'schema_version';",
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
    assert_eq!(schema_version(&f.path), SCHEMA_VERSION.to_string());
    assert_eq!(SCHEMA_VERSION, 6);
    assert!(store.list_pins().unwrap().is_empty());
    store.put_pin(&pin("files")).unwrap();
    assert_eq!(
        store.verify_audit().unwrap(),
        VerifyOutcome::Intact { records: 20, head }
    );
    // The chain continues from where it was.
    assert_eq!(bounded(store.append_audit(record(21))).await.unwrap(), 21);
    assert!(matches!(
        store.verify_audit().unwrap(),
        VerifyOutcome::Intact { records: 21, .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_writes_interleave_with_audit_appends_without_breaking_either() {
    let f = fresh();
    let appends = {
        let store = f.store.clone();
        tokio::spawn(async move {
            for i in 1..=200 {
                assert_eq!(bounded(store.append_audit(record(i))).await.unwrap(), i);
            }
        })
    };
    let store = f.store.clone();
    bounded(tokio::task::spawn_blocking(move || {
        for i in 0..50 {
            let mut p = pin("files");
            p.trusted_at_ms += i;
            store.put_pin(&p).unwrap();
            assert_eq!(store.get_pin("files").unwrap(), Some(p));
        }
    }))
    .await
    .unwrap();
    bounded(appends).await.unwrap();
    assert!(matches!(
        f.store.verify_audit().unwrap(),
        VerifyOutcome::Intact { records: 200, .. }
    ));
    assert_eq!(
        f.store.get_pin("files").unwrap().unwrap().trusted_at_ms,
        1_700_000_000_049
    );
}

#[test]
fn a_pin_edited_in_the_file_to_name_another_server_is_refused_by_the_table() {
    let f = fresh();
    f.store.put_pin(&pin("files")).unwrap();
    // An attacker with write access moves a trusted pin onto another server's row.
    let moved = raw(&f.path).execute(
        "INSERT INTO pins (server, body) SELECT 'evil', body FROM pins WHERE server = 'files'",
        [],
    );
    let moved = moved.expect_err("the CHECK ties a row to its pin's server");
    assert!(moved.to_string().contains("CHECK constraint"), "{moved}");
    let nameless = raw(&f.path).execute(
        "UPDATE pins SET body = json_remove(body, '$.server') WHERE server = 'files'",
        [],
    );
    let nameless = nameless.expect_err("a pin without a server name is no pin");
    assert!(
        nameless.to_string().contains("CHECK constraint"),
        "{nameless}"
    );
}

#[test]
fn a_pin_that_cannot_be_decoded_is_an_error_not_an_absent_pin() {
    let f = fresh();
    f.store.put_pin(&pin("files")).unwrap();
    raw(&f.path)
        .execute(
            "UPDATE pins SET body = json_set(body, '$.argv', 'sh -c secret-token') \
             WHERE server = 'files'",
            [],
        )
        .unwrap();
    let error = f.store.get_pin("files").unwrap_err();
    assert!(matches!(error, StoreError::CorruptPin { .. }), "{error}");
    assert!(!error.to_string().contains("secret-token"), "{error}");
    assert!(matches!(
        f.store.list_pins(),
        Err(StoreError::CorruptPin { .. })
    ));
}
