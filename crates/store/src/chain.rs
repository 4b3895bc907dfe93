//! The hash chain: how a record is encoded and how each record's hash covers its predecessor.
//!
//! ```text
//! body = canonical JSON of the record                         (stored as is)
//! hash = hex(SHA-256(prev_hash || "\n" || {"record":<body>,"seq":<seq>}))
//! ```
//! The preimage after the newline is the canonical JSON of the pair (seq, record): the keys
//! `record` < `seq` are already in canonical order, so the writer builds it by concatenation.
//! Record 1 has `prev_hash` = [`GENESIS_HASH`].
//!
//! Canonical JSON is [`portcullis_wire::canonical`], shared with the argument digest; its
//! rules fix the bytes of every stored body, so they are not ours to change here.

use crate::error::StoreError;
use crate::record::{AuditRecord, MAX_RECORD_BYTES};
use portcullis_wire::canonical::{self, hex};
use sha2::{Digest, Sha256};

/// The `prev_hash` of record 1: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The canonical JSON of a record, refused when larger than [`MAX_RECORD_BYTES`].
pub(crate) fn encode_record(record: &AuditRecord) -> Result<String, StoreError> {
    let value = serde_json::to_value(record).map_err(|e| StoreError::serialize(&e))?;
    // Written in full (not stopped at the bound) so that the error can say how large it was;
    // the value is already in memory, so the text costs no more than that.
    let body = canonical::to_string(&value);
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
        let preimage = format!("{GENESIS_HASH}\n{}", canonical::to_string(&pair));
        let expected = hex(&Sha256::digest(preimage.as_bytes()));
        assert_eq!(link_hash(GENESIS_HASH, 3, &body), expected);
    }

    /// The format of existing databases: the body and hash of a known record, computed with
    /// the store's own canonical JSON before it moved to `portcullis-wire`. If this fails, a
    /// record would no longer be stored as the same record was before (old chains still
    /// verify, since verification hashes the stored text, but the format has forked).
    #[test]
    fn a_known_record_keeps_its_body_and_hash() {
        let mut record = sample();
        record.args = Some(json!({
            "path": "/tmp/é 𝄞", "n": [1, -0.0, 0.1, 1e300, u64::MAX, i64::MIN],
            "z\u{0}": "tab\t bell\u{7} del\u{7f} \u{2028}", "\u{ff61}": {"b": null, "a": true},
        }));
        let body = encode_record(&record).unwrap();
        assert_eq!(
            body,
            "{\"args\":{\"n\":[1,-0.0,0.1,1e+300,18446744073709551615,-9223372036854775808],\
             \"path\":\"/tmp/é 𝄞\",\"z\\u0000\":\"tab\\t bell\\u0007 del\u{7f} \u{2028}\",\
             \"｡\":{\"a\":true,\"b\":null}},\"args_digest\":\"sha256:00\",\
             \"decision\":\"allow\",\"event\":\"decision\",\"method\":\"tools/call\",\
             \"name\":\"read_file\",\"principal\":\"<https://idp,alice>\",\
             \"reason\":\"matched\",\"rule\":\"rules[0]\",\"server\":\"files\",\
             \"session\":\"s1\",\"time_ms\":1700000000000,\"transport\":\"http\"}"
        );
        assert_eq!(
            link_hash(GENESIS_HASH, 1, &body),
            "f3d89c311a4d49ee8acad850e2651cc860c4a69e05f2d601b42a15ee7fdccbec"
        );
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
