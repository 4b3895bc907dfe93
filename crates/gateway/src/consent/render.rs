//! Arguments as a person sees them before deciding: what the call would really do, with
//! nothing hidden and nothing able to act on the screen that shows it.
//!
//! A model (or a prompt injection steering it) writes these arguments, and a person decides
//! on what they read. So the rendering shows every character that would otherwise be
//! invisible or misleading — zero-width and bidirectional controls, Unicode tags, variation
//! selectors, C0/C1 controls, escape sequences — as a visible code point (`\u{202E}`),
//! keeps a terminal's escape sequences from reaching it, and cuts long values with a
//! marker that says how much was left out (a truncation nobody can see would show a
//! harmless head of a harmful call). Pages add HTML escaping on top; this is plain text.

use serde_json::Value;

/// Longest string value shown whole; the rest is counted, not shown.
pub const MAX_STRING_CHARS: usize = 400;
/// Longest rendering of a whole argument object.
pub const MAX_TOTAL_CHARS: usize = 4000;

/// The arguments as indented JSON, safe to show (see the module docs), at most about
/// `max_total` characters.
pub fn arguments(args: &Value, max_total: usize) -> String {
    let cut = shorten(args);
    let json = serde_json::to_string_pretty(&cut).unwrap_or_else(|_| "{}".to_owned());
    let mut out = String::with_capacity(json.len().min(max_total) + 64);
    let total = json.chars().count();
    for (shown, c) in json.chars().enumerate() {
        if shown >= max_total {
            out.push_str(&format!("… [truncated: {} more characters]", total - shown));
            break;
        }
        push_visible(&mut out, c);
    }
    out
}

/// One line of text (a server or tool name, a reason), safe to show.
pub fn line(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (shown, c) in text.chars().enumerate() {
        if shown >= max {
            out.push_str(&format!(
                "… [truncated: {} more characters]",
                text.chars().count() - shown
            ));
            break;
        }
        // A literal `\` doubled, so that a name spelled `x\u{202E}y` cannot pass for one
        // holding the character (the arguments' JSON doubles it already).
        if c == '\\' {
            out.push_str("\\\\");
        } else {
            push_visible(&mut out, c);
        }
    }
    out
}

/// Strings longer than [`MAX_STRING_CHARS`] cut, with a marker inside the string.
fn shorten(v: &Value) -> Value {
    match v {
        Value::String(s) => {
            let n = s.chars().count();
            if n <= MAX_STRING_CHARS {
                return v.clone();
            }
            let head: String = s.chars().take(MAX_STRING_CHARS).collect();
            Value::String(format!(
                "{head}… [truncated: {} more characters]",
                n - MAX_STRING_CHARS
            ))
        }
        Value::Array(items) => Value::Array(items.iter().map(shorten).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = match shorten(&Value::String(k.clone())) {
                        Value::String(s) => s,
                        _ => k.clone(),
                    };
                    (key, shorten(v))
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn push_visible(out: &mut String, c: char) {
    if c == '\n' || (!is_hidden(c) && !c.is_control()) {
        out.push(c);
    } else {
        out.push_str(&format!("\\u{{{:04X}}}", c as u32));
    }
}

/// Characters that change how text reads without being seen (or that a terminal acts on).
pub fn is_hidden(c: char) -> bool {
    matches!(c as u32,
        0x00AD                      // soft hyphen
        | 0x034F                    // combining grapheme joiner
        | 0x061C                    // Arabic letter mark
        | 0x115F | 0x1160 | 0x3164 | 0xFFA0 // Hangul fillers
        | 0x17B4 | 0x17B5           // Khmer inherent vowels
        | 0x180B..=0x180F           // Mongolian variation selectors, vowel separator
        | 0x200B..=0x200F           // zero-width space/joiners, LRM, RLM
        | 0x2028..=0x202E           // line/paragraph separators, bidi embeddings/overrides
        | 0x205F..=0x206F           // word joiner, invisible operators, bidi isolates
        | 0xFE00..=0xFE0F           // variation selectors
        | 0xFEFF                    // zero-width no-break space (BOM)
        | 0xFFF9..=0xFFFB           // interlinear annotation
        | 0x1D173..=0x1D17A         // musical formatting
        | 0xE0000..=0xE007F         // Unicode tags
        | 0xE0100..=0xE01EF         // variation selectors supplement
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn invisible_characters_are_shown_as_code_points() {
        let text = arguments(
            &json!({ "path": "safe\u{202E}txt.exe", "note": "a\u{200B}b\u{E0041}\u{1b}[2J" }),
            MAX_TOTAL_CHARS,
        );
        assert!(text.contains("safe\\u{202E}txt.exe"), "{text}");
        assert!(text.contains("a\\u{200B}b\\u{E0041}"), "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(!text.contains('\u{202E}'), "{text}");
    }

    #[test]
    fn long_values_are_cut_with_a_visible_marker() {
        let long = "x".repeat(1000);
        let text = arguments(&json!({ "content": long }), MAX_TOTAL_CHARS);
        assert!(
            text.contains("… [truncated: 600 more characters]"),
            "{text}"
        );
        let many: Vec<String> = (0..500).map(|i| format!("item {i}")).collect();
        let text = arguments(&json!({ "items": many }), 200);
        assert!(text.contains("… [truncated:"), "{text}");
        assert!(text.chars().count() < 260, "{text}");
    }

    #[test]
    fn a_literal_backslash_u_cannot_pass_for_an_escaped_character() {
        let text = arguments(&json!({ "a": "\\u{202E}" }), MAX_TOTAL_CHARS);
        assert!(text.contains("\\\\u{202E}"), "{text}");
    }

    #[test]
    fn lines_are_escaped_and_bounded() {
        assert_eq!(line("a\u{7}b", 10), "a\\u{0007}b");
        assert_eq!(line("abcdef", 3), "abc… [truncated: 3 more characters]");
        assert_eq!(line("x\\u{202E}y", 20), "x\\\\u{202E}y");
        assert_ne!(line("x\\u{202E}y", 20), line("x\u{202E}y", 20));
    }
}
