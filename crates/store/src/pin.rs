//! Launch pins: what `portcullis trust <server>` approved for a local server, so that a later
//! launch whose command differs from it can be refused.
//!
//! A pin is stored as the canonical JSON of a [`LaunchPin`] ([`portcullis_wire::canonical`],
//! as the audit chain stores records) in the `pins` table, one row per server. Pins are not
//! hash-chained: they are state, replaced by the next `trust`, not history. The history of who
//! trusted what belongs in the audit log, which the caller writes.

use crate::error::StoreError;
use portcullis_wire::canonical;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

/// Largest accepted pin, measured as its canonical JSON. An argv longer than this is not a
/// command a person reviewed.
pub const MAX_PIN_BYTES: usize = 64 * 1024;

/// What was reviewed and approved for a local (stdio) server.
///
/// Optional fields are left out of the stored JSON when absent. Unknown fields are refused
/// when reading, so a pin written by a newer Portcullis with more to check is never silently
/// checked less.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchPin {
    /// The server's name in the config: the key of the pin.
    pub server: String,
    /// The exact argv, program first, as it will be spawned.
    pub argv: Vec<String>,
    /// The resolved absolute path of the executable `argv[0]` names.
    pub executable: String,
    /// Lower-case hex SHA-256 of the executable's contents.
    pub executable_sha256: String,
    /// For interpreters (`node`, `python`, …): the script file they run, resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Lower-case hex SHA-256 of [`script`](LaunchPin::script)'s contents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_sha256: Option<String>,
    /// For package runners (`npx`, `uvx`, …): the package as given, e.g. `@scope/pkg@1.2.3`;
    /// whether it carries a version is what makes it pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// When the pin was made, milliseconds since the Unix epoch.
    pub trusted_at_ms: i64,
    /// Who made it (the local user, or the principal).
    pub trusted_by: String,
}

/// The canonical JSON of `pin`, refused when larger than [`MAX_PIN_BYTES`] or nameless.
pub(crate) fn encode_pin(pin: &LaunchPin) -> Result<String, StoreError> {
    if pin.server.is_empty() {
        return Err(StoreError::InvalidPin("the server name is empty"));
    }
    let value = serde_json::to_value(pin).map_err(|e| StoreError::serialize(&e))?;
    let body = canonical::to_string(&value);
    if body.len() > MAX_PIN_BYTES {
        return Err(StoreError::PinTooLarge {
            size: body.len(),
            limit: MAX_PIN_BYTES,
        });
    }
    Ok(body)
}

/// Decodes a stored pin, and checks it is the pin of the row it was found under.
fn decode_pin(server: &str, body: &str) -> Result<LaunchPin, StoreError> {
    let pin: LaunchPin =
        serde_json::from_str(body).map_err(|e| StoreError::corrupt_pin(server, &e))?;
    if pin.server != server {
        return Err(StoreError::CorruptPin {
            server: server.to_owned(),
            category: "stored under another server's name",
            column: 0,
        });
    }
    Ok(pin)
}

/// Inserts or replaces the pin of `pin.server`, in one `BEGIN IMMEDIATE` transaction (so it
/// waits for, rather than interleaves with, the audit writer's commits).
pub(crate) fn put(conn: &mut Connection, server: &str, body: &str) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::sqlite("write pin"))?;
    tx.execute(
        "INSERT INTO pins (server, body) VALUES (?1, ?2) \
         ON CONFLICT (server) DO UPDATE SET body = excluded.body",
        params![server, body],
    )
    .map_err(StoreError::sqlite("write pin"))?;
    tx.commit().map_err(StoreError::sqlite("write pin"))
}

/// Deletes the pin of `server`; whether there was one.
pub(crate) fn remove(conn: &mut Connection, server: &str) -> Result<bool, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::sqlite("remove pin"))?;
    let removed = tx
        .execute("DELETE FROM pins WHERE server = ?1", [server])
        .map_err(StoreError::sqlite("remove pin"))?;
    tx.commit().map_err(StoreError::sqlite("remove pin"))?;
    Ok(removed > 0)
}

pub(crate) fn get(conn: &Connection, server: &str) -> Result<Option<LaunchPin>, StoreError> {
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM pins WHERE server = ?1")
        .and_then(|mut stmt| stmt.query_row([server], |row| row.get(0)).optional())
        .map_err(StoreError::sqlite("read pin"))?;
    body.map(|body| decode_pin(server, &body)).transpose()
}

/// Every pin, ordered by server name.
pub(crate) fn list(conn: &Connection) -> Result<Vec<LaunchPin>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT server, body FROM pins ORDER BY server")
        .map_err(StoreError::sqlite("list pins"))?;
    let rows = stmt
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(StoreError::sqlite("list pins"))?;
    let mut pins = Vec::new();
    for row in rows {
        let (server, body) = row.map_err(StoreError::sqlite("list pins"))?;
        pins.push(decode_pin(&server, &body)?);
    }
    Ok(pins)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LaunchPin {
        LaunchPin {
            server: "files".into(),
            argv: vec!["npx".into(), "-y".into(), "@scope/pkg@1.2.3".into()],
            executable: "/usr/bin/npx".into(),
            executable_sha256: "ab".repeat(32),
            script: None,
            script_sha256: None,
            package: Some("@scope/pkg@1.2.3".into()),
            trusted_at_ms: 1_700_000_000_000,
            trusted_by: "alice".into(),
        }
    }

    #[test]
    fn the_stored_form_is_canonical_and_leaves_out_absent_fields() {
        let body = encode_pin(&sample()).unwrap();
        assert_eq!(
            body,
            format!(
                "{{\"argv\":[\"npx\",\"-y\",\"@scope/pkg@1.2.3\"],\"executable\":\"/usr/bin/npx\",\
                 \"executable_sha256\":\"{}\",\"package\":\"@scope/pkg@1.2.3\",\"server\":\"files\",\
                 \"trusted_at_ms\":1700000000000,\"trusted_by\":\"alice\"}}",
                "ab".repeat(32)
            )
        );
        assert_eq!(decode_pin("files", &body).unwrap(), sample());
    }

    #[test]
    fn a_pin_with_fields_this_build_does_not_know_is_refused() {
        let body = encode_pin(&sample())
            .unwrap()
            .replacen('{', "{\"sandbox\":\"none\",", 1);
        assert!(matches!(
            decode_pin("files", &body),
            Err(StoreError::CorruptPin { .. })
        ));
    }

    #[test]
    fn a_pin_stored_under_another_servers_name_is_refused() {
        let body = encode_pin(&sample()).unwrap();
        assert!(matches!(
            decode_pin("tickets", &body),
            Err(StoreError::CorruptPin { .. })
        ));
    }

    #[test]
    fn oversized_and_nameless_pins_are_refused() {
        let mut big = sample();
        big.argv.push("x".repeat(MAX_PIN_BYTES));
        assert!(matches!(
            encode_pin(&big),
            Err(StoreError::PinTooLarge {
                limit: MAX_PIN_BYTES,
                ..
            })
        ));
        let mut nameless = sample();
        nameless.server.clear();
        assert!(matches!(
            encode_pin(&nameless),
            Err(StoreError::InvalidPin(_))
        ));
    }
}
