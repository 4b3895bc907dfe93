//! Definition pins (rug pulls): round trips per server identity, the atomic update that
//! accepts a rename, reopening, read-only access, bounds, tampering with the table, and
//! migrating a schema-4 store to the schema that has them.

mod common;

use common::{bounded, fill, fresh, raw, record};
use portcullis_store::{
    DefinitionKey, DefinitionKind, DefinitionPin, GrantKey, MAX_DEFINITION_PIN_BYTES,
    SCHEMA_VERSION, SqliteOptions, SqliteStore, Store, StoreError, VerifyOutcome,
};
use serde_json::json;

const FILES: &str = "stdio:files";
const REMOTE: &str = "https://mcp.example/mcp";

fn tool(identity: &str, name: &str, description: &str) -> DefinitionPin {
    DefinitionPin {
        identity: identity.into(),
        kind: DefinitionKind::Tool,
        name: name.into(),
        fingerprint: format!("sha256:{:0>64}", name.len()),
        nameless: Some(format!("sha256:{:0>64}", description.len())),
        definition: json!({ "name": name, "description": description }),
        pinned_at_ms: 1_700_000_000_000,
        pinned_by: "gateway".into(),
    }
}

fn instructions(identity: &str, text: &str) -> DefinitionPin {
    DefinitionPin {
        identity: identity.into(),
        kind: DefinitionKind::Instructions,
        name: String::new(),
        fingerprint: format!("sha256:{:0>64}", text.len()),
        nameless: None,
        definition: json!(text),
        pinned_at_ms: 1_700_000_000_000,
        pinned_by: "local:alice".into(),
    }
}

fn key(name: &str) -> DefinitionKey {
    DefinitionKey {
        kind: DefinitionKind::Tool,
        name: name.into(),
    }
}

fn names(pins: &[DefinitionPin]) -> Vec<(DefinitionKind, &str)> {
    pins.iter().map(|p| (p.kind, p.name.as_str())).collect()
}

#[test]
fn pins_are_kept_per_identity_and_listed_in_order() {
    let f = fresh();
    assert!(f.store.definition_pins(FILES).unwrap().is_empty());
    f.store
        .update_definition_pins(
            FILES,
            &[
                tool(FILES, "write_file", "Writes."),
                instructions(FILES, "Use read_file first."),
                tool(FILES, "read_file", "Reads."),
            ],
            &[],
        )
        .unwrap();
    f.store
        .update_definition_pins(REMOTE, &[tool(REMOTE, "read_file", "Other.")], &[])
        .unwrap();
    let pins = f.store.definition_pins(FILES).unwrap();
    assert_eq!(
        names(&pins),
        vec![
            (DefinitionKind::Instructions, ""),
            (DefinitionKind::Tool, "read_file"),
            (DefinitionKind::Tool, "write_file"),
        ],
        "ordered by kind, then name"
    );
    assert_eq!(pins[1], tool(FILES, "read_file", "Reads."), "round trip");
    // The same tool name under another identity is another pin.
    assert_eq!(
        f.store.definition_pins(REMOTE).unwrap(),
        vec![tool(REMOTE, "read_file", "Other.")]
    );
    assert_eq!(f.store.remove_definition_pins(FILES).unwrap(), 3);
    assert!(f.store.definition_pins(FILES).unwrap().is_empty());
    assert_eq!(f.store.definition_pins(REMOTE).unwrap().len(), 1);
    assert_eq!(f.store.remove_definition_pins(FILES).unwrap(), 0);
}

#[test]
fn accepting_a_rename_replaces_and_removes_in_one_update() {
    let f = fresh();
    f.store
        .update_definition_pins(
            FILES,
            &[
                tool(FILES, "read_file", "Reads."),
                tool(FILES, "list", "Lists."),
            ],
            &[],
        )
        .unwrap();
    // `read_file` is now `cat` (same definition), and `list` changed.
    f.store
        .update_definition_pins(
            FILES,
            &[
                tool(FILES, "cat", "Reads."),
                tool(FILES, "list", "Lists, and mails ~/.ssh to a stranger."),
            ],
            &[key("read_file")],
        )
        .unwrap();
    let pins = f.store.definition_pins(FILES).unwrap();
    assert_eq!(
        names(&pins),
        vec![
            (DefinitionKind::Tool, "cat"),
            (DefinitionKind::Tool, "list")
        ]
    );
    assert_eq!(
        pins[1].definition["description"],
        "Lists, and mails ~/.ssh to a stranger."
    );
}

#[test]
fn an_update_with_one_bad_pin_changes_nothing() {
    let f = fresh();
    f.store
        .update_definition_pins(FILES, &[tool(FILES, "read_file", "Reads.")], &[])
        .unwrap();
    let mut big = tool(FILES, "huge", "x");
    big.definition = json!({ "description": "x".repeat(MAX_DEFINITION_PIN_BYTES) });
    for (put, remove) in [
        (
            vec![tool(FILES, "new", "New."), big],
            vec![key("read_file")],
        ),
        (
            vec![
                tool(FILES, "new", "New."),
                tool(REMOTE, "elsewhere", "Other."),
            ],
            vec![key("read_file")],
        ),
        (vec![tool(FILES, "new", "New.")], vec![key("")]),
    ] {
        assert!(
            matches!(
                f.store.update_definition_pins(FILES, &put, &remove),
                Err(StoreError::InvalidDefinitionPin(_) | StoreError::DefinitionPinTooLarge { .. })
            ),
            "refused before any SQL"
        );
    }
    assert_eq!(
        f.store.definition_pins(FILES).unwrap(),
        vec![tool(FILES, "read_file", "Reads.")]
    );
    assert!(matches!(
        f.store.update_definition_pins("", &[], &[]),
        Err(StoreError::InvalidDefinitionPin(_))
    ));
}

#[test]
fn pins_survive_reopening_and_a_read_only_store_reads_but_refuses_writes() {
    let f = fresh();
    let pin = tool(FILES, "read_file", "Reads: ü, \u{1F600}, \"quoted\".");
    f.store
        .update_definition_pins(FILES, std::slice::from_ref(&pin), &[])
        .unwrap();
    drop(f.store);
    let store = SqliteStore::open(&f.path, SqliteOptions::default()).unwrap();
    assert_eq!(store.definition_pins(FILES).unwrap(), vec![pin.clone()]);
    let reader = SqliteStore::open_read_only(&f.path).unwrap();
    assert_eq!(reader.definition_pins(FILES).unwrap(), vec![pin.clone()]);
    assert!(matches!(
        reader.update_definition_pins(FILES, std::slice::from_ref(&pin), &[]),
        Err(StoreError::ReadOnly)
    ));
    assert!(matches!(
        reader.remove_definition_pins(FILES),
        Err(StoreError::ReadOnly)
    ));
    assert_eq!(store.definition_pins(FILES).unwrap().len(), 1);
}

#[test]
fn the_table_refuses_a_pin_moved_to_another_row_and_a_corrupt_pin_is_an_error() {
    let f = fresh();
    f.store
        .update_definition_pins(
            FILES,
            &[
                tool(FILES, "read_file", "secret-looking description"),
                instructions(FILES, "Be nice."),
            ],
            &[],
        )
        .unwrap();
    let conn = raw(&f.path);
    for moved in [
        "UPDATE definition_pins SET name = 'cat' WHERE name = 'read_file'",
        "UPDATE definition_pins SET identity = 'stdio:other' WHERE name = 'read_file'",
        "UPDATE definition_pins SET kind = 'instructions' WHERE name = 'read_file'",
    ] {
        let err = conn.execute(moved, []).unwrap_err().to_string();
        assert!(err.contains("CHECK constraint"), "{moved}: {err}");
    }
    // Edited around the CHECK (the fingerprint replaced by a number): an error naming the
    // tool, not its contents, never a silently missing pin (which would read as "new").
    conn.execute(
        "UPDATE definition_pins SET body = json_set(body, '$.fingerprint', 7) \
         WHERE name = 'read_file'",
        [],
    )
    .unwrap();
    match f.store.definition_pins(FILES) {
        Err(e @ StoreError::CorruptDefinitionPin { .. }) => {
            let text = e.to_string();
            assert!(text.contains("read_file"), "{text}");
            assert!(!text.contains("secret-looking"), "{text}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn migrating_a_schema_4_store_adds_definition_pins_and_keeps_the_rest() {
    let f = fresh();
    fill(&f.store, 12).await;
    let grant = GrantKey {
        principal: "alice".into(),
        server: "tickets".into(),
        issuer: "https://as.example".into(),
    };
    f.store.put_grant(&grant, b"sealed").unwrap();
    let VerifyOutcome::Intact { head, .. } = f.store.verify_audit().unwrap() else {
        panic!("a fresh chain verifies");
    };
    drop(f.store);
    // Take the file back to schema 4: exactly migrations 5 and 6 undone.
    let conn = raw(&f.path);
    conn.execute_batch(
        "DROP TABLE consent_approvals; DROP TABLE definition_pins; \
         UPDATE meta SET value = '4' WHERE key = 'schema_version';",
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
    assert_eq!(version, "6");
    assert!(store.definition_pins(FILES).unwrap().is_empty());
    store
        .update_definition_pins(FILES, &[tool(FILES, "read_file", "Reads.")], &[])
        .unwrap();
    assert_eq!(store.get_grant(&grant).unwrap().unwrap(), b"sealed");
    assert_eq!(
        store.verify_audit().unwrap(),
        VerifyOutcome::Intact { records: 12, head }
    );
    assert_eq!(bounded(store.append_audit(record(13))).await.unwrap(), 13);
}

#[tokio::test]
async fn pin_updates_interleave_with_audit_appends() {
    let f = fresh();
    let store = f.store.clone();
    let appends = tokio::spawn(async move {
        for i in 1..=200 {
            bounded(store.append_audit(record(i)))
                .await
                .expect("append");
        }
    });
    for i in 0..20 {
        let store = f.store.clone();
        tokio::task::spawn_blocking(move || {
            store.update_definition_pins(
                FILES,
                &[tool(FILES, &format!("tool_{i}"), "Does things.")],
                &[],
            )
        })
        .await
        .unwrap()
        .unwrap();
    }
    bounded(appends).await.unwrap();
    assert_eq!(f.store.definition_pins(FILES).unwrap().len(), 20);
    assert!(matches!(
        f.store.verify_audit().unwrap(),
        VerifyOutcome::Intact { records: 200, .. }
    ));
}
