//! Argument digests for the audit log: equal arguments give equal digests whatever their key
//! order or whitespace, and the arguments themselves need not be stored.

use crate::canonical::{self, Bounds};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io;

/// `"sha256:<64 hex digits>"` of the canonical serialization of `value` (keys sorted, no
/// whitespace; see the `canonical` module for the exact form). Never fails, whatever the depth.
#[must_use]
pub fn digest(value: &Value) -> String {
    format!(
        "sha256:{}",
        hex(&sha256(value, Bounds::NONE).unwrap_or_default())
    )
}

/// SHA-256 of the canonical form, or the bound that stopped it.
pub(crate) fn sha256(value: &Value, bounds: Bounds) -> Result<[u8; 32], canonical::Overflow> {
    let mut hasher = Hasher(Sha256::new());
    canonical::write(value, &mut hasher, bounds)?;
    Ok(hasher.0.finalize().into())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

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
        assert_eq!(digest(&json!({})).len(), "sha256:".len() + 64);
    }
}
