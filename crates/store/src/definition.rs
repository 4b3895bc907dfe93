//! Definition pins: the tool definitions and instructions of a server as they were first seen
//! (or accepted with `portcullis trust`), so that a later change — a rug pull, a rename — is
//! noticed and the tool withheld until a person accepts it.
//!
//! A pin is stored as the canonical JSON of a [`DefinitionPin`] in `definition_pins`, one row
//! per server identity, kind and name. The identity is the gateway's to choose (a stdio
//! server's name, an HTTP server's URL); the store only keys by it. The pin keeps the pinned
//! definition itself, not just its fingerprint, so that `trust` can show what changed. Like
//! launch pins these are state, not history: who pinned or accepted what is in the audit log.

use crate::error::StoreError;
use portcullis_wire::canonical;
use rusqlite::{Connection, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest accepted definition pin, measured as its canonical JSON. Tool definitions with
/// large schemas fit; a definition beyond this is not one a person reviews.
pub const MAX_DEFINITION_PIN_BYTES: usize = 256 * 1024;

/// Longest identity or name accepted (in bytes).
pub const MAX_DEFINITION_KEY_BYTES: usize = 2048;

/// What a definition pin pins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefinitionKind {
    /// One tool of the server's `tools/list`.
    Tool,
    /// The server's `instructions` (its name is empty: a server has one).
    Instructions,
}

impl DefinitionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DefinitionKind::Tool => "tool",
            DefinitionKind::Instructions => "instructions",
        }
    }
}

/// Which pin of an identity: its kind and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DefinitionKey {
    pub kind: DefinitionKind,
    /// The tool's name; empty for [`DefinitionKind::Instructions`].
    pub name: String,
}

/// One pinned definition of one server identity.
///
/// Unknown fields are refused when reading, so a pin written by a newer Portcullis with more
/// to compare is never silently compared less.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefinitionPin {
    /// The server identity the pin belongs to (the gateway's key for the server).
    pub identity: String,
    pub kind: DefinitionKind,
    /// The tool's name; empty for instructions.
    pub name: String,
    /// `sha256:<hex>` of the canonical JSON of what is pinned.
    pub fingerprint: String,
    /// Tools: the fingerprint of the same definition without its name, which is what makes
    /// a rename (the same definition under another name) recognisable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nameless: Option<String>,
    /// What was pinned (the tool's pinned fields, or the instructions text), so that a
    /// change can be shown, not only detected.
    pub definition: Value,
    /// When, milliseconds since the Unix epoch.
    pub pinned_at_ms: i64,
    /// Who: the local user who accepted it, or the gateway on first sight.
    pub pinned_by: String,
}

impl DefinitionPin {
    pub fn key(&self) -> DefinitionKey {
        DefinitionKey {
            kind: self.kind,
            name: self.name.clone(),
        }
    }
}

pub(crate) fn check_identity(identity: &str) -> Result<(), StoreError> {
    if identity.is_empty() {
        return Err(StoreError::InvalidDefinitionPin(
            "the server identity is empty",
        ));
    }
    if identity.len() > MAX_DEFINITION_KEY_BYTES {
        return Err(StoreError::InvalidDefinitionPin(
            "the server identity is too long",
        ));
    }
    Ok(())
}

fn check_key(kind: DefinitionKind, name: &str) -> Result<(), StoreError> {
    match kind {
        DefinitionKind::Tool if name.is_empty() => {
            Err(StoreError::InvalidDefinitionPin("a tool pin has no name"))
        }
        DefinitionKind::Instructions if !name.is_empty() => Err(StoreError::InvalidDefinitionPin(
            "an instructions pin has a name",
        )),
        _ if name.len() > MAX_DEFINITION_KEY_BYTES => {
            Err(StoreError::InvalidDefinitionPin("the name is too long"))
        }
        _ => Ok(()),
    }
}

/// The canonical JSON of `pin`, refused when it belongs to another identity, has a key the
/// store does not accept, or is larger than [`MAX_DEFINITION_PIN_BYTES`].
pub(crate) fn encode(identity: &str, pin: &DefinitionPin) -> Result<String, StoreError> {
    if pin.identity != identity {
        return Err(StoreError::InvalidDefinitionPin(
            "the pin belongs to another server identity",
        ));
    }
    check_key(pin.kind, &pin.name)?;
    let value = serde_json::to_value(pin).map_err(|e| StoreError::serialize(&e))?;
    let body = canonical::to_string(&value);
    if body.len() > MAX_DEFINITION_PIN_BYTES {
        return Err(StoreError::DefinitionPinTooLarge {
            size: body.len(),
            limit: MAX_DEFINITION_PIN_BYTES,
        });
    }
    Ok(body)
}

/// The checks [`update`] makes before any SQL runs.
pub(crate) fn prepare<'a>(
    identity: &str,
    put: &'a [DefinitionPin],
    remove: &[DefinitionKey],
) -> Result<Vec<(&'a DefinitionPin, String)>, StoreError> {
    check_identity(identity)?;
    for key in remove {
        check_key(key.kind, &key.name)?;
    }
    put.iter()
        .map(|pin| encode(identity, pin).map(|body| (pin, body)))
        .collect()
}

/// Decodes a stored pin, and checks it is the pin of the row it was found under.
fn decode(identity: &str, kind: &str, name: &str, body: &str) -> Result<DefinitionPin, StoreError> {
    let pin: DefinitionPin =
        serde_json::from_str(body).map_err(|e| StoreError::corrupt_definition_pin(name, &e))?;
    if pin.identity != identity || pin.kind.as_str() != kind || pin.name != name {
        return Err(StoreError::CorruptDefinitionPin {
            name: name.to_owned(),
            category: "stored under another key",
            column: 0,
        });
    }
    Ok(pin)
}

/// Inserts or replaces `put` and deletes `remove`, all in one `BEGIN IMMEDIATE` transaction:
/// accepting a rename (the new name pinned, the old one dropped) is never half done.
pub(crate) fn update(
    conn: &mut Connection,
    identity: &str,
    put: &[(&DefinitionPin, String)],
    remove: &[DefinitionKey],
) -> Result<(), StoreError> {
    let op = "write definition pins";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::sqlite(op))?;
    {
        let mut delete = tx
            .prepare_cached(
                "DELETE FROM definition_pins WHERE identity = ?1 AND kind = ?2 AND name = ?3",
            )
            .map_err(StoreError::sqlite(op))?;
        for key in remove {
            delete
                .execute(params![identity, key.kind.as_str(), key.name])
                .map_err(StoreError::sqlite(op))?;
        }
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO definition_pins (identity, kind, name, body) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (identity, kind, name) DO UPDATE SET body = excluded.body",
            )
            .map_err(StoreError::sqlite(op))?;
        for (pin, body) in put {
            insert
                .execute(params![identity, pin.kind.as_str(), pin.name, body])
                .map_err(StoreError::sqlite(op))?;
        }
    }
    tx.commit().map_err(StoreError::sqlite(op))
}

/// Every pin of `identity`, ordered by kind and name.
pub(crate) fn list(conn: &Connection, identity: &str) -> Result<Vec<DefinitionPin>, StoreError> {
    let op = "read definition pins";
    let mut stmt = conn
        .prepare_cached(
            "SELECT kind, name, body FROM definition_pins WHERE identity = ?1 ORDER BY kind, name",
        )
        .map_err(StoreError::sqlite(op))?;
    let rows = stmt
        .query_map([identity], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })
        .map_err(StoreError::sqlite(op))?;
    let mut pins = Vec::new();
    for row in rows {
        let (kind, name, body) = row.map_err(StoreError::sqlite(op))?;
        pins.push(decode(identity, &kind, &name, &body)?);
    }
    Ok(pins)
}

/// Deletes every pin of `identity`; how many.
pub(crate) fn remove_all(conn: &mut Connection, identity: &str) -> Result<usize, StoreError> {
    let op = "remove definition pins";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::sqlite(op))?;
    let removed = tx
        .execute(
            "DELETE FROM definition_pins WHERE identity = ?1",
            [identity],
        )
        .map_err(StoreError::sqlite(op))?;
    tx.commit().map_err(StoreError::sqlite(op))?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> DefinitionPin {
        DefinitionPin {
            identity: "stdio:files".into(),
            kind: DefinitionKind::Tool,
            name: "read_file".into(),
            fingerprint: format!("sha256:{}", "ab".repeat(32)),
            nameless: Some(format!("sha256:{}", "cd".repeat(32))),
            definition: json!({"name": "read_file", "description": "Reads a file."}),
            pinned_at_ms: 1_700_000_000_000,
            pinned_by: "gateway".into(),
        }
    }

    #[test]
    fn the_stored_form_is_canonical_and_round_trips() {
        let body = encode("stdio:files", &sample()).unwrap();
        assert!(
            body.starts_with("{\"definition\":{\"description\":\"Reads a file.\",\"name\":"),
            "{body}"
        );
        assert_eq!(
            decode("stdio:files", "tool", "read_file", &body).unwrap(),
            sample()
        );
    }

    #[test]
    fn a_pin_under_another_key_or_with_unknown_fields_is_refused() {
        let body = encode("stdio:files", &sample()).unwrap();
        for (identity, kind, name) in [
            ("stdio:other", "tool", "read_file"),
            ("stdio:files", "instructions", "read_file"),
            ("stdio:files", "tool", "write_file"),
        ] {
            assert!(matches!(
                decode(identity, kind, name, &body),
                Err(StoreError::CorruptDefinitionPin { .. })
            ));
        }
        let extra = body.replacen('{', "{\"schema\":1,", 1);
        assert!(matches!(
            decode("stdio:files", "tool", "read_file", &extra),
            Err(StoreError::CorruptDefinitionPin { .. })
        ));
    }

    #[test]
    fn keys_and_sizes_are_bounded() {
        assert!(matches!(
            encode("stdio:other", &sample()),
            Err(StoreError::InvalidDefinitionPin(_))
        ));
        let mut nameless = sample();
        nameless.name.clear();
        assert!(matches!(
            encode("stdio:files", &nameless),
            Err(StoreError::InvalidDefinitionPin(_))
        ));
        let mut named_instructions = sample();
        named_instructions.kind = DefinitionKind::Instructions;
        assert!(matches!(
            encode("stdio:files", &named_instructions),
            Err(StoreError::InvalidDefinitionPin(_))
        ));
        let mut big = sample();
        big.definition = json!({ "description": "x".repeat(MAX_DEFINITION_PIN_BYTES) });
        assert!(matches!(
            encode("stdio:files", &big),
            Err(StoreError::DefinitionPinTooLarge { .. })
        ));
        assert!(matches!(
            prepare("", &[], &[]),
            Err(StoreError::InvalidDefinitionPin(_))
        ));
    }
}
