//! Canonical JSON: one byte sequence per JSON value, so that a hash over it means something.
//!
//! Portcullis hashes canonical JSON in three places, and they must agree byte for byte: the
//! argument digest of an audit record (`portcullis_guard::digest`), the key of a compiled tool
//! schema, and the audit hash chain (`portcullis-store`), whose format is fixed by every
//! database already written. Changing a rule below changes those hashes: don't.
//!
//! The rules (written here rather than taken from a crate, so that they are short and fixed):
//! - object members sorted by key, comparing the keys' UTF-8 bytes (the same order as comparing
//!   code points); no duplicate keys (a `serde_json::Value` cannot hold any);
//! - no whitespace anywhere;
//! - strings exactly as `serde_json` writes them: `"` and `\` escaped with a backslash;
//!   U+0008, U+0009, U+000A, U+000C, U+000D as `\b \t \n \f \r`; every other control
//!   character below U+0020 as `\u00xx` (lower-case hex); everything else, including U+007F,
//!   non-ASCII and U+2028/U+2029, as its UTF-8 bytes;
//! - numbers exactly as `serde_json` prints them: integers (within `i64` or `u64`) in decimal,
//!   exactly; other numbers in the shortest form that reads back to the same `f64`, e.g. `1.5`,
//!   `0.1`, `1e+30`, `1e-7`, `-0.0` (`-0` in the input is a float). So `1` and `1.0` differ;
//! - `true`, `false`, `null`.
//!
//! Strings and numbers are written by `serde_json` itself, so its version (pinned by
//! `Cargo.lock`) is part of the format. Its float spelling has changed before (`1e30` became
//! `1e+30` when it moved from `ryu` to `zmij`): the `the_exact_bytes_are_fixed` test catches
//! such an upgrade. Stored audit chains still verify after one (verification hashes the stored
//! text, it does not re-encode it), but the digest of arguments holding such floats changes.
//!
//! This is close to RFC 8785 (JCS) but not the same: JCS sorts keys by UTF-16 code units and
//! prints numbers the ECMAScript way. Reading a canonical text back and writing it again gives
//! the same text, which is what the audit chain needs. (For floats this needs a parser that
//! rounds exactly: this crate turns on `serde_json`'s `float_roundtrip` feature for that.)
//!
//! The walk is iterative, with an explicit stack on the heap, so a value nested arbitrarily
//! deep cannot overflow the thread's stack. It can stop early at a size or depth bound
//! ([`Bounds`]), which is how tool schemas are bounded before anything else looks at them.

use serde_json::Value;
use std::io::{self, Write};

/// Bounds on the canonical text. [`Bounds::NONE`] is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The most bytes written; going past it stops the walk with [`Overflow::Bytes`].
    pub max_bytes: usize,
    /// The deepest container, the top-level one being depth 1 (the convention of
    /// [`crate::Limits::max_depth`]); deeper stops the walk with [`Overflow::Depth`].
    pub max_depth: usize,
}

impl Bounds {
    /// No bound at all.
    pub const NONE: Bounds = Bounds {
        max_bytes: usize::MAX,
        max_depth: usize::MAX,
    };
}

/// Why [`write`] stopped before the end of the value. What was written until then stays in
/// the output; it is not canonical JSON of anything.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// The text would be longer than [`Bounds::max_bytes`].
    #[error("the canonical JSON is longer than the size bound")]
    Bytes,
    /// A container nests deeper than [`Bounds::max_depth`].
    #[error("the value nests deeper than the depth bound")]
    Depth,
    /// The output itself failed. Never happens for a `Vec<u8>`, or a hasher whose `write`
    /// cannot fail.
    #[error("writing the canonical JSON failed: {0}")]
    Output(io::ErrorKind),
}

/// Writes the canonical JSON of `value` to `out`, stopping at the first bound reached.
///
/// Nothing is buffered: `out` gets many small writes, so give it something cheap to write to
/// (a `Vec<u8>`, a hasher, a `BufWriter`).
pub fn write(value: &Value, out: &mut impl Write, bounds: Bounds) -> Result<(), Overflow> {
    let mut out = Counted {
        inner: out,
        written: 0,
        limit: bounds.max_bytes,
        over: false,
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
                    // Pushed in reverse, so that they come off the stack in order.
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
                    // `str`'s order is the order of its UTF-8 bytes.
                    entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
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

/// The canonical JSON text of `value`, unbounded. Never fails, whatever the depth.
#[must_use]
pub fn to_string(value: &Value) -> String {
    let mut out = Vec::with_capacity(256);
    // Writing to a `Vec` cannot fail, and there is no bound to reach.
    let _ = write(value, &mut out, Bounds::NONE);
    // `serde_json` writes UTF-8 and the punctuation is ASCII, so this never needs the fallback.
    String::from_utf8(out)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}

/// Lower-case hex of `bytes`: how Portcullis spells the hashes of canonical texts (argument
/// digests, schema keys, the audit chain).
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// What is left to write, innermost last.
enum Step<'a> {
    Value(&'a Value, usize),
    Key(&'a str),
    Punct(u8),
}

/// Counts what goes through and refuses to go past `limit`, remembering whether that was the
/// reason a write failed (rather than `inner` failing).
struct Counted<'w, W> {
    inner: &'w mut W,
    written: usize,
    limit: usize,
    over: bool,
}

impl<W: Write> Counted<'_, W> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Overflow> {
        self.write_all(bytes)
            .map_err(|error| self.why(error.kind()))
    }

    /// A string or a number, exactly as `serde_json` writes it.
    fn json<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Overflow> {
        serde_json::to_writer(&mut *self, value)
            .map_err(|error| self.why(error.io_error_kind().unwrap_or(io::ErrorKind::Other)))
    }

    fn why(&self, kind: io::ErrorKind) -> Overflow {
        if self.over {
            Overflow::Bytes
        } else {
            Overflow::Output(kind)
        }
    }
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.written = self.written.saturating_add(bytes.len());
        if self.written > self.limit {
            self.over = true;
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

    fn canonical(text: &str) -> String {
        to_string(&serde_json::from_str(text).expect("test JSON parses"))
    }

    #[test]
    fn keys_are_sorted_and_there_is_no_whitespace() {
        assert_eq!(
            canonical(r#"{ "b": [1, {"z": null, "a": "x\n"}], "a": true, "A": 1.5 }"#),
            r#"{"A":1.5,"a":true,"b":[1,{"a":"x\n","z":null}]}"#
        );
        assert_eq!(canonical(" [ ] "), "[]");
        assert_eq!(canonical(" { } "), "{}");
        assert_eq!(canonical("[true, false, null]"), "[true,false,null]");
    }

    #[test]
    fn insertion_order_does_not_matter() {
        let one = canonical(r#"{"x": 1, "y": {"q": 2, "p": 3}}"#);
        let two = canonical(r#"{"y": {"p": 3, "q": 2}, "x": 1}"#);
        assert_eq!(one, two);
        assert_eq!(one, r#"{"x":1,"y":{"p":3,"q":2}}"#);
    }

    #[test]
    fn non_ascii_keys_sort_by_utf8_bytes() {
        // By UTF-16 units (JCS), U+1D11E (a surrogate pair, 0xD834…) would sort before U+FF61.
        let value = json!({"é": 1, "z": 2, "\u{ff61}": 3, "𝄞": 4, "": 5, "a\u{0}": 6, "a": 7});
        assert_eq!(
            to_string(&value),
            "{\"\":5,\"a\":7,\"a\\u0000\":6,\"z\":2,\"é\":1,\"｡\":3,\"𝄞\":4}"
        );
    }

    #[test]
    fn strings_are_escaped_like_serde_json() {
        let nasty = "quote\" back\\ slash/ nl\n tab\t bell\u{7} nul\u{0} us\u{1f} del\u{7f} é 𝄞 \
                     \u{2028}\u{2029} \u{8}\u{c}\r\u{feff}";
        let ours = to_string(&Value::String(nasty.to_owned()));
        assert_eq!(
            ours,
            serde_json::to_string(nasty).expect("a string serializes")
        );
        assert!(ours.contains(r"\u0007") && ours.contains(r"\u0000") && ours.contains(r"\u001f"));
        assert!(ours.contains(r#"\b\f\r"#) && ours.contains(r"\n") && ours.contains(r"\t"));
        assert!(ours.contains('\u{7f}') && ours.contains('\u{2028}') && ours.contains('/'));
        // Escapes in the input are read, then written the one canonical way.
        assert_eq!(
            canonical(r#""\u0041\u00e9\ud834\udd1e\/\u000B""#),
            "\"Aé𝄞/\\u000b\""
        );
    }

    #[test]
    fn numbers_are_printed_like_serde_json() {
        let cases = [
            ("0", "0"),
            ("-0", "-0.0"),
            ("-0.0", "-0.0"),
            ("1.0", "1.0"),
            ("1.5e0", "1.5"),
            ("0.1", "0.1"),
            ("1e30", "1e+30"),
            ("1E-7", "1e-7"),
            ("123456789012345678", "123456789012345678"),
            ("18446744073709551615", "18446744073709551615"),
            ("-9223372036854775808", "-9223372036854775808"),
            ("18446744073709551616", "1.8446744073709552e+19"),
            ("5e-324", "5e-324"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
        ];
        for (input, expected) in cases {
            assert_eq!(canonical(input), expected, "{input}");
        }
        assert_eq!(to_string(&json!(u64::MAX)), u64::MAX.to_string());
        assert_eq!(to_string(&json!(i64::MIN)), i64::MIN.to_string());
    }

    #[test]
    fn the_exact_bytes_are_fixed() {
        // The audit chain hashes these bytes: if this test fails, existing databases no
        // longer verify.
        let value = json!({
            "z": [1, -2, 3.25, -0.0, 1e300, u64::MAX, i64::MIN, null, true, false],
            "é": {"b\"q": "tab\there\u{1}", "a": {}},
            "A": [[], {}, "𝄞\u{7f}\\"],
        });
        assert_eq!(
            to_string(&value),
            "{\"A\":[[],{},\"𝄞\u{7f}\\\\\"],\"z\":[1,-2,3.25,-0.0,1e+300,18446744073709551615,\
             -9223372036854775808,null,true,false],\"é\":{\"a\":{},\"b\\\"q\":\"tab\\there\\u0001\"}}"
        );
    }

    #[test]
    fn agrees_with_serde_json_on_sorted_input() {
        let value = json!({"a": [1.5, -2, "é\u{1}"], "b": {"c": {}}, "d": []});
        assert_eq!(
            to_string(&value),
            serde_json::to_string(&value).expect("a Value serializes")
        );
    }

    #[test]
    fn reading_back_and_writing_again_is_stable() {
        let value = json!({
            "float": 0.1, "big": 1e300, "neg": -0.0, "int": u64::MAX, "min": i64::MIN,
            "nested": {"k": ["\u{0}", 3.0, "\u{2028}"]},
        });
        let text = to_string(&value);
        let again: Value = serde_json::from_str(&text).expect("canonical JSON parses");
        assert_eq!(again, value);
        assert_eq!(to_string(&again), text);
    }

    #[test]
    fn write_and_to_string_agree() {
        let value = json!({"b": [1, {"z": null}], "a": "x"});
        let mut out = Vec::new();
        assert_eq!(write(&value, &mut out, Bounds::NONE), Ok(()));
        assert_eq!(out, to_string(&value).into_bytes());
    }

    #[test]
    fn stops_at_the_bounds() {
        let value = json!({"a": {"b": {"c": 1}}});
        let depth = |max_depth| Bounds {
            max_bytes: usize::MAX,
            max_depth,
        };
        assert_eq!(
            write(&value, &mut io::sink(), depth(2)),
            Err(Overflow::Depth)
        );
        assert_eq!(write(&value, &mut io::sink(), depth(3)), Ok(()));
        assert_eq!(
            write(&json!([[]]), &mut io::sink(), depth(1)),
            Err(Overflow::Depth)
        );
        // Scalars have no depth of their own.
        assert_eq!(write(&json!([1]), &mut io::sink(), depth(1)), Ok(()));

        let text_len = to_string(&value).len(); // {"a":{"b":{"c":1}}} = 19 bytes
        let bytes = |max_bytes| Bounds {
            max_bytes,
            max_depth: usize::MAX,
        };
        assert_eq!(
            write(&value, &mut io::sink(), bytes(10)),
            Err(Overflow::Bytes)
        );
        assert_eq!(
            write(&value, &mut io::sink(), bytes(text_len - 1)),
            Err(Overflow::Bytes)
        );
        assert_eq!(write(&value, &mut io::sink(), bytes(text_len)), Ok(()));
        // A string that crosses the bound is stopped inside `serde_json`'s writer.
        let long = json!(["x".repeat(100)]);
        assert_eq!(
            write(&long, &mut io::sink(), bytes(50)),
            Err(Overflow::Bytes)
        );
    }

    #[test]
    fn a_failing_output_is_not_a_bound() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from(io::ErrorKind::BrokenPipe))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        for value in [json!([1]), json!("s"), json!(2)] {
            assert_eq!(
                write(&value, &mut Broken, Bounds::NONE),
                Err(Overflow::Output(io::ErrorKind::BrokenPipe))
            );
        }
    }

    #[test]
    fn deep_values_do_not_overflow_the_stack() {
        let mut value = json!(0);
        for _ in 0..100_000 {
            value = Value::Array(vec![value]);
        }
        let mut counter = Counter(0);
        assert_eq!(write(&value, &mut counter, Bounds::NONE), Ok(()));
        assert_eq!(counter.0, 2 * 100_000 + 1);
        let mut object = json!(0);
        for _ in 0..100_000 {
            // Not `json!`, which would serialize `object` again (recursively).
            object = Value::Object(serde_json::Map::from_iter([("k".to_owned(), object)]));
        }
        let text = to_string(&object);
        assert!(text.starts_with(r#"{"k":{"k":"#) && text.ends_with("}}"));
        // Dropping a deep `Value` is recursive in serde_json: unwind both by hand.
        while let Value::Array(mut items) = value {
            value = items.pop().unwrap_or(Value::Null);
        }
        while let Value::Object(mut map) = object {
            object = map.remove("k").unwrap_or(Value::Null);
        }
    }

    /// Counts bytes, as a hasher would consume them.
    struct Counter(usize);

    impl Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn hex_is_lower_case() {
        assert_eq!(hex(&[]), "");
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }
}
