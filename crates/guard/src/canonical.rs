//! The canonical serialization behind [`crate::digest`] and the schema cache key: object keys
//! sorted (by code point), no whitespace, strings and numbers as `serde_json` writes them.
//!
//! The walk is iterative, so a value nested arbitrarily deep cannot overflow the stack, and it
//! can stop early at a size or depth bound (used for tool schemas).
//!
//! This is not RFC 8785 (JCS): numbers keep `serde_json`'s spelling (`1` and `1.0` differ) and
//! keys are ordered by code point, not UTF-16 unit. It is stable within Portcullis, which is all
//! a digest or a cache key needs.

use serde_json::Value;
use std::io::{self, Write};

/// Bounds on the serialized form. `usize::MAX` means unbounded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub max_bytes: usize,
    pub max_depth: usize,
}

impl Bounds {
    pub const NONE: Bounds = Bounds {
        max_bytes: usize::MAX,
        max_depth: usize::MAX,
    };
}

/// Why the walk stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overflow {
    Bytes,
    Depth,
}

/// Writes the canonical form of `value` to `out`. Containers count for depth, the top-level one
/// being depth 1 (the convention of `portcullis-wire`).
pub(crate) fn write(value: &Value, out: &mut impl Write, bounds: Bounds) -> Result<(), Overflow> {
    let mut out = Counted {
        inner: out,
        written: 0,
        limit: bounds.max_bytes,
    };
    let mut stack = vec![Step::Value(value, 1)];
    while let Some(step) = stack.pop() {
        match step {
            Step::Punct(byte) => out.put(&[byte])?,
            Step::Key(key) => {
                out.json(key)?;
                out.put(b":")?;
            }
            Step::Value(value, depth) => match value {
                Value::Null => out.put(b"null")?,
                Value::Bool(true) => out.put(b"true")?,
                Value::Bool(false) => out.put(b"false")?,
                Value::Number(number) => out.json(number)?,
                Value::String(string) => out.json(string)?,
                Value::Array(items) => {
                    if depth > bounds.max_depth {
                        return Err(Overflow::Depth);
                    }
                    out.put(b"[")?;
                    stack.push(Step::Punct(b']'));
                    for (index, item) in items.iter().enumerate().rev() {
                        stack.push(Step::Value(item, depth + 1));
                        if index > 0 {
                            stack.push(Step::Punct(b','));
                        }
                    }
                }
                Value::Object(map) => {
                    if depth > bounds.max_depth {
                        return Err(Overflow::Depth);
                    }
                    out.put(b"{")?;
                    stack.push(Step::Punct(b'}'));
                    let mut entries: Vec<_> = map.iter().collect();
                    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                    for (index, (key, item)) in entries.into_iter().enumerate().rev() {
                        stack.push(Step::Value(item, depth + 1));
                        stack.push(Step::Key(key));
                        if index > 0 {
                            stack.push(Step::Punct(b','));
                        }
                    }
                }
            },
        }
    }
    Ok(())
}

enum Step<'a> {
    Value(&'a Value, usize),
    Key(&'a str),
    Punct(u8),
}

/// Counts what goes through and refuses to go past `limit`.
struct Counted<'w, W> {
    inner: &'w mut W,
    written: usize,
    limit: usize,
}

impl<W: Write> Counted<'_, W> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Overflow> {
        self.write_all(bytes).map_err(|_| Overflow::Bytes)
    }

    fn json<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Overflow> {
        serde_json::to_writer(&mut *self, value).map_err(|_| Overflow::Bytes)
    }
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.written = self.written.saturating_add(bytes.len());
        if self.written > self.limit {
            return Err(io::Error::other("size bound exceeded"));
        }
        self.inner.write_all(bytes)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canonical(value: &Value) -> String {
        let mut out = Vec::new();
        write(value, &mut out, Bounds::NONE).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn sorts_keys_and_drops_whitespace() {
        let value: Value =
            serde_json::from_str(r#"{ "b": [1, {"z": null, "a": "x\n"}], "a": true }"#).unwrap();
        assert_eq!(
            canonical(&value),
            r#"{"a":true,"b":[1,{"a":"x\n","z":null}]}"#
        );
    }

    #[test]
    fn agrees_with_serde_json_on_sorted_input() {
        let value = json!({"a": [1.5, -2, "é\u{1}"], "b": {"c": {}}, "d": []});
        assert_eq!(canonical(&value), serde_json::to_string(&value).unwrap());
    }

    #[test]
    fn stops_at_the_bounds() {
        let value = json!({"a": {"b": {"c": 1}}});
        let mut sink = Vec::new();
        let depth = Bounds {
            max_bytes: usize::MAX,
            max_depth: 2,
        };
        assert_eq!(write(&value, &mut sink, depth), Err(Overflow::Depth));
        let depth = Bounds {
            max_bytes: usize::MAX,
            max_depth: 3,
        };
        assert_eq!(write(&value, &mut io::sink(), depth), Ok(()));
        let bytes = Bounds {
            max_bytes: 10,
            max_depth: usize::MAX,
        };
        assert_eq!(write(&value, &mut io::sink(), bytes), Err(Overflow::Bytes));
    }

    #[test]
    fn deep_values_do_not_overflow_the_stack() {
        let mut value = json!(0);
        for _ in 0..100_000 {
            value = Value::Array(vec![value]);
        }
        let mut hasher = io::sink();
        assert_eq!(write(&value, &mut hasher, Bounds::NONE), Ok(()));
        // Dropping a deep `Value` is recursive in serde_json: unwind it by hand.
        let mut value = value;
        while let Value::Array(mut items) = value {
            value = items.pop().unwrap_or(Value::Null);
        }
    }
}
