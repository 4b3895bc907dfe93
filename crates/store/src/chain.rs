//! The hash chain: how a record is encoded and how each record's hash covers its predecessor.
//!
//! ```text
//! body = canonical JSON of the record                         (stored as is)
//! hash = hex(SHA-256(prev_hash || "\n" || {"record":<body>,"seq":<seq>}))
//! ```
//! The preimage after the newline is the canonical JSON of the pair (seq, record): the keys
//! `record` < `seq` are already in canonical order, so the writer builds it by concatenation.
//! Record 1 has `prev_hash` = [`GENESIS_HASH`].

use crate::canonical::{hex, write_canonical};
use crate::error::StoreError;
use crate::record::{AuditRecord, MAX_RECORD_BYTES};
use sha2::{Digest, Sha256};

/// The `prev_hash` of record 1: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The canonical JSON of a record, refused when larger than [`MAX_RECORD_BYTES`].
pub(crate) fn encode_record(record: &AuditRecord) -> Result<String, StoreError> {
    let value = serde_json::to_value(record).map_err(|e| StoreError::serialize(&e))?;
    let mut body = String::with_capacity(512);
    write_canonical(&value, &mut body);
    if body.len() > MAX_RECORD_BYTES {
        return Err(StoreError::RecordTooLarge {
            size: body.len(),
            limit: MAX_RECORD_BYTES,
        });
    }
    Ok(body)
}

/// The hash of record `seq` with canonical body `body`, following `prev_hash`.
pub fn link_hash(prev_hash: &str, seq: u64, body: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n{\"record\":");
    hasher.update(body.as_bytes());
    hasher.update(b",\"seq\":");
    hasher.update(seq.to_string().as_bytes());
    hasher.update(b"}");
    hex(&hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::canonical_json;
    use serde_json::json;

    pub(crate) fn sample() -> AuditRecord {
        AuditRecord {
            time_ms: 1_700_000_000_000,
            event: "decision".into(),
            principal: "<https://idp,alice>".into(),
            session: "s1".into(),
            transport: "http".into(),
            server: "files".into(),
            method: "tools/call".into(),
            name: "read_file".into(),
            args_digest: Some("sha256:00".into()),
            args: None,
            decision: "allow".into(),
            rule: Some("rules[0]".into()),
            reason: "matched".into(),
            latency_us: None,
            trace: None,
        }
    }

    #[test]
    fn the_preimage_is_the_canonical_json_of_seq_and_record() {
        let record = sample();
        let body = encode_record(&record).unwrap();
        let pair = json!({"seq": 3, "record": serde_json::to_value(&record).unwrap()});
        let preimage = format!("{GENESIS_HASH}\n{}", canonical_json(&pair));
        let expected = hex(&Sha256::digest(preimage.as_bytes()));
        assert_eq!(link_hash(GENESIS_HASH, 3, &body), expected);
    }

    #[test]
    fn absent_optional_fields_are_left_out() {
        let body = encode_record(&sample()).unwrap();
        assert!(!body.contains("latency_us"), "{body}");
        assert!(!body.contains(' '), "{body}");
        let back: AuditRecord = serde_json::from_str(&body).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn oversized_records_are_refused() {
        let mut record = sample();
        record.args = Some(json!({"blob": "x".repeat(MAX_RECORD_BYTES)}));
        match encode_record(&record) {
            Err(StoreError::RecordTooLarge { size, limit }) => {
                assert!(size > limit);
                assert_eq!(limit, MAX_RECORD_BYTES);
            }
            other => panic!("expected RecordTooLarge, got {other:?}"),
        }
    }
}
