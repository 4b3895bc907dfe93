//! Errors of the store. Their text says what failed and never carries record contents
//! (principals, arguments, reasons): an error may end up in a log that is less protected than
//! the audit log itself.

use std::sync::Arc;

/// What went wrong in the store. Any error from [`crate::Store::append_audit`] means the record
/// is not known to be durable, so the gateway must refuse the call (fail closed).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A SQLite operation failed (`op` names it: "open", "migrate", "query", ...).
    #[error("state store: {op} failed: {source}")]
    Sqlite {
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// The transaction holding this record failed and was rolled back; the record was not
    /// written. Shared by every record of the failed group commit.
    #[error("state store: audit write failed, record not stored: {source}")]
    WriteFailed {
        #[source]
        source: Arc<rusqlite::Error>,
    },
    /// The writer thread is gone (it panicked, or the store is shutting down): no append can
    /// become durable any more.
    #[error("state store: the audit writer has stopped; appends are refused")]
    WriterGone,
    /// File-system work around the database failed.
    #[error("state store: {op} failed: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The serialized record exceeds the size bound.
    #[error("audit record too large: {size} bytes (limit {limit})")]
    RecordTooLarge { size: usize, limit: usize },
    /// The record could not be serialized (a serde failure; no content is quoted).
    #[error("audit record could not be serialized ({category})")]
    Serialize { category: &'static str },
    /// A stored record could not be decoded; `verify` says whether the chain is intact.
    #[error("audit record {seq} could not be decoded ({category} at column {column})")]
    Corrupt {
        seq: u64,
        category: &'static str,
        column: usize,
    },
    /// The query asks for something out of bounds.
    #[error("invalid audit query: {0}")]
    InvalidQuery(String),
    /// The store was opened read-only.
    #[error("state store: opened read-only; appends and other writes are not possible")]
    ReadOnly,
    /// The launch pin is not one the store accepts (the reason names no contents).
    #[error("invalid launch pin: {0}")]
    InvalidPin(&'static str),
    /// The serialized launch pin exceeds the size bound.
    #[error("launch pin too large: {size} bytes (limit {limit})")]
    PinTooLarge { size: usize, limit: usize },
    /// A stored launch pin could not be decoded, or is not the pin of the server it is stored
    /// under. The caller must treat the server as having no valid pin (refuse to launch it).
    #[error(
        "the launch pin of server {server:?} could not be decoded ({category} at column {column})"
    )]
    CorruptPin {
        server: String,
        category: &'static str,
        column: usize,
    },
    /// An OAuth grant or client registration the store does not accept (an empty or
    /// oversized key part, an empty blob); the reason names no contents.
    #[error("invalid OAuth grant: {0}")]
    InvalidGrant(&'static str),
    /// The sealed grant or registration exceeds the size bound.
    #[error("sealed OAuth grant too large: {size} bytes (limit {limit})")]
    SealedTooLarge { size: usize, limit: usize },
    /// A definition pin the store does not accept (an empty or oversized identity or name,
    /// a pin of another identity); the reason names no contents.
    #[error("invalid definition pin: {0}")]
    InvalidDefinitionPin(&'static str),
    /// The serialized definition pin exceeds the size bound.
    #[error("definition pin too large: {size} bytes (limit {limit})")]
    DefinitionPinTooLarge { size: usize, limit: usize },
    /// A remembered consent approval the store refuses (an empty or oversized key part, a
    /// full table); the reason names no contents.
    #[error("invalid remembered approval: {0}")]
    InvalidApproval(&'static str),
    /// A stored definition pin could not be decoded, or is not the pin of the row it is
    /// stored under. The caller must treat the definition as not pinned by anyone it can
    /// trust (withhold it), never as absent.
    #[error("the definition pin {name:?} could not be decoded ({category} at column {column})")]
    CorruptDefinitionPin {
        name: String,
        category: &'static str,
        column: usize,
    },
    /// The database was written by a newer Portcullis, or is not a Portcullis store.
    #[error("state store: {0}")]
    Schema(String),
}

impl StoreError {
    pub(crate) fn sqlite(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |source| StoreError::Sqlite { op, source }
    }

    pub(crate) fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> StoreError {
        move |source| StoreError::Io { op, source }
    }

    pub(crate) fn serialize(error: &serde_json::Error) -> StoreError {
        StoreError::Serialize {
            category: category(error),
        }
    }

    /// A decoding error that names the record and where in its JSON the problem is, but not
    /// what it found there (serde's message quotes the offending value).
    pub(crate) fn corrupt(seq: u64, error: &serde_json::Error) -> StoreError {
        StoreError::Corrupt {
            seq,
            category: category(error),
            column: error.column(),
        }
    }

    /// [`StoreError::corrupt`] for a launch pin: the server's name (a config key, not a
    /// secret) and where the problem is, not what was found there.
    pub(crate) fn corrupt_pin(server: &str, error: &serde_json::Error) -> StoreError {
        StoreError::CorruptPin {
            server: server.to_owned(),
            category: category(error),
            column: error.column(),
        }
    }

    /// [`StoreError::corrupt`] for a definition pin: the tool's name and where the problem
    /// is, not what was found there.
    pub(crate) fn corrupt_definition_pin(name: &str, error: &serde_json::Error) -> StoreError {
        StoreError::CorruptDefinitionPin {
            name: name.to_owned(),
            category: category(error),
            column: error.column(),
        }
    }
}

fn category(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Io => "i/o error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Eof => "truncated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_errors_do_not_quote_contents() {
        let error = serde_json::from_str::<u64>("\"hunter2-secret\"").unwrap_err();
        assert!(
            error.to_string().contains("hunter2"),
            "serde quotes the value"
        );
        let ours = StoreError::corrupt(7, &error).to_string();
        assert!(!ours.contains("hunter2"), "{ours}");
        assert!(ours.contains("record 7"), "{ours}");
    }
}
