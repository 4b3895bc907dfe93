//! Canonical JSON: one byte sequence per JSON value, so that a hash over it means something.
//!
//! The rules (written here rather than taken from a crate, so that they are short and fixed):
//! - object members sorted by key, comparing the keys' UTF-8 bytes; no duplicate keys (a
//!   `serde_json::Value` cannot hold any);
//! - no whitespace anywhere;
//! - strings: `"` and `\` escaped with a backslash; U+0008, U+0009, U+000A, U+000C, U+000D as
//!   `\b \t \n \f \r`; every other control character below U+0020 as `\u00xx` (lower-case
//!   hex); everything else, including non-ASCII, as its UTF-8 bytes;
//! - numbers as `serde_json` prints them: integers in decimal, exactly; other numbers in the
//!   shortest form that reads back to the same `f64` (ryu), e.g. `1.5`, `1e30`, `-0.0`;
//! - `true`, `false`, `null`.
//!
//! This is close to RFC 8785 (JCS) but not the same: JCS sorts keys by UTF-16 code units and
//! prints numbers the ECMAScript way. Reading a canonical text back and writing it again gives
//! the same text, which is what the audit chain needs.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The canonical JSON text of `value`.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_canonical(value, &mut out);
    out
}

/// Appends the canonical JSON text of `value` to `out`.
pub fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let mut start = 0;
    for (i, byte) in s.bytes().enumerate() {
        let escape: &str = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            b'\t' => "\\t",
            b'\n' => "\\n",
            0x0c => "\\f",
            b'\r' => "\\r",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out
}

/// The digest the gateway records for a call's arguments: `sha256:` and the hex SHA-256 of
/// their canonical JSON. It lets an auditor check whether a call had given arguments without
/// storing them; it does not hide arguments that are easy to guess (a short path, a yes/no).
pub fn args_digest(args: &Value) -> String {
    let digest = Sha256::digest(canonical_json(args).as_bytes());
    format!("sha256:{}", hex(&digest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_and_there_is_no_whitespace() {
        let value = json!({"b": 1, "a": [true, null, {"z": "x", "y": -2}], "A": 1.5});
        assert_eq!(
            canonical_json(&value),
            r#"{"A":1.5,"a":[true,null,{"y":-2,"z":"x"}],"b":1}"#
        );
    }

    #[test]
    fn insertion_order_does_not_matter() {
        let one: Value = serde_json::from_str(r#"{"x": 1, "y": {"q": 2, "p": 3}}"#).unwrap();
        let two: Value = serde_json::from_str(r#"{"y": {"p": 3, "q": 2}, "x": 1}"#).unwrap();
        assert_eq!(canonical_json(&one), canonical_json(&two));
        assert_eq!(args_digest(&one), args_digest(&two));
    }

    #[test]
    fn strings_are_escaped_like_serde_json() {
        let nasty = "quote\" back\\ nl\n tab\t bell\u{7} del\u{7f} é 𝄞 \u{2028} \u{8}\u{c}\r";
        let ours = canonical_json(&Value::String(nasty.to_owned()));
        assert_eq!(ours, serde_json::to_string(nasty).unwrap());
        assert!(ours.contains("\\u0007"));
    }

    #[test]
    fn reading_back_and_writing_again_is_stable() {
        let value = json!({
            "float": 0.1, "big": 1e300, "neg": -0.0, "int": u64::MAX, "min": i64::MIN,
            "nested": {"k": ["\u{0}", 3.0]},
        });
        let text = canonical_json(&value);
        let again: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(canonical_json(&again), text);
    }

    #[test]
    fn non_ascii_keys_sort_by_utf8_bytes() {
        let value = json!({"é": 1, "z": 2, "\u{ff61}": 3, "𝄞": 4});
        assert_eq!(canonical_json(&value), r#"{"z":2,"é":1,"｡":3,"𝄞":4}"#);
    }

    #[test]
    fn digest_format() {
        let digest = args_digest(&json!({}));
        assert_eq!(
            digest,
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }
}
