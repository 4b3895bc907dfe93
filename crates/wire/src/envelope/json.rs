//! Small, infallible JSON writing helpers for the envelope serializer.

/// Calls `emit` with the pieces of `s` escaped as the inside of a JSON string literal.
///
/// Escapes `"`, `\` and every control character below U+0020 (so the output never contains a
/// raw newline); everything else is passed through in runs, so the common case is one call.
fn escape_pieces(s: &str, mut emit: impl FnMut(&str)) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // `i` is at an ASCII byte, hence on a char boundary.
        if start < i {
            emit(&s[start..i]);
        }
        if short.is_empty() {
            let esc = [
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ];
            // Six ASCII bytes: always valid UTF-8.
            emit(std::str::from_utf8(&esc).unwrap_or("\\ufffd"));
        } else {
            emit(short);
        }
        start = i + 1;
    }
    if start < bytes.len() {
        emit(&s[start..]);
    }
}

/// Appends `s` as a JSON string literal (with quotes) to a byte buffer.
pub(crate) fn write_str_literal(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    escape_pieces(s, |p| out.extend_from_slice(p.as_bytes()));
    out.push(b'"');
}

/// Appends `s` as a JSON string literal (with quotes) to a `String`.
pub(crate) fn push_str_literal(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    escape_pieces(s, |p| out.push_str(p));
    out.push('"');
}

/// Appends raw JSON text, turning any `\n`/`\r` into a space.
///
/// In valid JSON a raw CR or LF can only be insignificant whitespace (string literals cannot
/// contain raw control characters), so the replacement never changes the value, and it keeps
/// the output a single NDJSON line whatever the raw part was built from.
pub(crate) fn extend_single_line(out: &mut Vec<u8>, raw: &[u8]) {
    let mut rest = raw;
    while let Some(i) = memchr::memchr2(b'\n', b'\r', rest) {
        out.extend_from_slice(&rest[..i]);
        out.push(b' ');
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_matches_serde_json_for_control_characters_and_quotes() {
        let s: String = (0u8..0x80)
            .map(char::from)
            .chain("é☃\u{2028}".chars())
            .collect();
        let mut out = Vec::new();
        write_str_literal(&mut out, &s);
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, s);
        assert!(!out.contains(&b'\n'));
        let mut out2 = String::new();
        push_str_literal(&mut out2, &s);
        assert_eq!(out2.as_bytes(), &out[..]);
    }

    #[test]
    fn newlines_in_raw_json_become_spaces() {
        let mut out = Vec::new();
        extend_single_line(&mut out, b"{\r\n  \"a\": 1\n}\r");
        assert_eq!(out, b"{    \"a\": 1 } ");
    }
}
