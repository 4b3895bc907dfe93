//! JSON string escapes: decoding a string token's content, and writing text back as one.

use std::borrow::Cow;

/// The content of a JSON string with its escapes decoded (an unpaired surrogate, or a `\u`
/// without four hex digits, becomes U+FFFD, as a lenient decoder does). Runs between escapes
/// are copied whole.
pub(super) fn decode(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let Some(first) = memchr::memchr(b'\\', bytes) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    let mut at = first;
    loop {
        out.push_str(&text[from..at]);
        from = match bytes.get(at + 1) {
            Some(b'n') => push(&mut out, '\n', at + 2),
            Some(b't') => push(&mut out, '\t', at + 2),
            Some(b'r') => push(&mut out, '\r', at + 2),
            Some(b'b') => push(&mut out, '\u{8}', at + 2),
            Some(b'f') => push(&mut out, '\u{c}', at + 2),
            Some(b'u') => {
                let (c, next) = unicode_escape(text, at);
                push(&mut out, c, next)
            }
            Some(_) => match text[at + 1..].chars().next() {
                Some(c) => push(&mut out, c, at + 1 + c.len_utf8()),
                None => at + 1,
            },
            None => at + 1,
        };
        match memchr::memchr(b'\\', &bytes[from..]) {
            Some(k) => at = from + k,
            None => break,
        }
    }
    out.push_str(&text[from..]);
    Cow::Owned(out)
}

fn push(out: &mut String, c: char, next: usize) -> usize {
    out.push(c);
    next
}

/// The character of the `\uXXXX` escape at `at` (with its low surrogate, if it is a high
/// one), and where the text goes on after it.
fn unicode_escape(text: &str, at: usize) -> (char, usize) {
    let unit = |at: usize| {
        text.get(at + 2..at + 6)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
    };
    let Some(high) = unit(at) else {
        // Not four hex digits: drop the `\u`, keep what follows.
        return ('\u{fffd}', at + 2);
    };
    if !(0xd800..=0xdbff).contains(&high) {
        return (char::from_u32(high).unwrap_or('\u{fffd}'), at + 6);
    }
    let low = text
        .get(at + 6..at + 8)
        .filter(|s| *s == "\\u")
        .and_then(|_| unit(at + 6))
        .filter(|l| (0xdc00..=0xdfff).contains(l));
    match low {
        Some(low) => (
            char::from_u32(0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00))
                .unwrap_or('\u{fffd}'),
            at + 12,
        ),
        None => ('\u{fffd}', at + 6),
    }
}

/// `text` as the content of a JSON string (without the quotes).
pub(super) fn escape_into(text: &str, out: &mut String) {
    let mut from = 0;
    for (i, b) in text.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[from..i]);
        if escaped.is_empty() {
            out.push_str(&format!("\\u{b:04x}"));
        } else {
            out.push_str(escaped);
        }
        from = i + 1;
    }
    out.push_str(&text[from..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip_through_serde() {
        for text in [
            "plain",
            "quote \" backslash \\ slash /",
            "controls \u{0}\u{7}\u{8}\u{c}\n\r\t\u{1b}\u{1f}",
            "unicode é 日本 🦀 \u{e0041} \u{202e}",
        ] {
            let mut escaped = String::new();
            escape_into(text, &mut escaped);
            let parsed: String = serde_json::from_str(&format!("\"{escaped}\""))
                .unwrap_or_else(|e| panic!("{e}: {escaped}"));
            assert_eq!(parsed, text);
            let json = serde_json::to_string(text).unwrap_or_default();
            assert_eq!(decode(&json[1..json.len() - 1]), text);
        }
    }

    #[test]
    fn surrogate_pairs_decode_and_lone_ones_become_replacement_characters() {
        assert_eq!(decode(r"\ud83e\udd80"), "🦀");
        assert_eq!(decode(r"\udb40\udc41"), "\u{e0041}");
        assert_eq!(decode(r"a\ud800b"), "a\u{fffd}b");
        assert_eq!(decode(r"\udc00"), "\u{fffd}");
        assert_eq!(decode(r"\u12"), "\u{fffd}12");
        assert_eq!(decode(r"tail\"), "tail");
    }
}
