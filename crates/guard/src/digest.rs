//! Argument digests for the audit log: equal arguments give equal digests whatever their key
//! order or whitespace, and the arguments themselves need not be stored.
//!
//! This is the one argument digest of Portcullis: the gateway records it in every audit record
//! (`args_digest`), and an auditor holding the arguments recomputes it to check them. The
//! hashed bytes are [`portcullis_wire::canonical`], whose rules are fixed.

use portcullis_wire::canonical::{self, Bounds, Overflow, hex};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io;

/// `"sha256:<64 hex digits>"` of the canonical JSON of `value` (keys sorted, no whitespace; see
/// [`portcullis_wire::canonical`] for the exact form). Never fails, whatever the depth.
///
/// It lets an auditor check whether a call had given arguments without storing them; it does
/// not hide arguments that are easy to guess (a short path, a yes/no).
#[must_use]
pub fn digest(value: &Value) -> String {
    // Hashing cannot fail and nothing is bounded, so the default is never used.
    format!(
        "sha256:{}",
        hex(&sha256(value, Bounds::NONE).unwrap_or_default())
    )
}

/// SHA-256 of the canonical JSON, streamed into the hasher (no copy of the text), or the bound
/// that stopped it.
pub(crate) fn sha256(value: &Value, bounds: Bounds) -> Result<[u8; 32], Overflow> {
    let mut hasher = Hasher(Sha256::new());
    canonical::write(value, &mut hasher, bounds)?;
    Ok(hasher.0.finalize().into())
}

/// A hasher as an `io::Write` that never fails.
struct Hasher(Sha256);

impl io::Write for Hasher {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        let a: Value =
            serde_json::from_str(r#"{"path": "/tmp/x", "opts": {"b": 1, "a": [true, null]}}"#)
                .unwrap();
        let b: Value =
            serde_json::from_str(r#"{"opts":{"a":[true,null],"b":1},"path":"/tmp/x"}"#).unwrap();
        assert_eq!(digest(&a), digest(&b));
        assert_ne!(
            digest(&a),
            digest(&json!({"path": "/tmp/y", "opts": {"b": 1, "a": [true, null]}}))
        );
    }

    #[test]
    fn is_sha256_of_the_canonical_text() {
        // printf '{"a":1}' | sha256sum
        assert_eq!(
            digest(&json!({"a": 1})),
            "sha256:015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"
        );
        // printf '{}' | sha256sum
        assert_eq!(
            digest(&json!({})),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[test]
    fn hashes_exactly_the_canonical_text() {
        let value = json!({"z": [1.5, -0.0, "é\u{1}"], "a": {"y": null, "x": u64::MAX}});
        let text = canonical::to_string(&value);
        let expected = format!("sha256:{}", hex(&Sha256::digest(text.as_bytes())));
        assert_eq!(digest(&value), expected);
    }

    #[test]
    fn deep_values_have_a_digest() {
        let mut value = json!(0);
        for _ in 0..100_000 {
            value = Value::Array(vec![value]);
        }
        assert_eq!(digest(&value).len(), "sha256:".len() + 64);
        // Dropping a deep `Value` is recursive in serde_json: unwind it by hand.
        while let Value::Array(mut items) = value {
            value = items.pop().unwrap_or(Value::Null);
        }
    }
}
