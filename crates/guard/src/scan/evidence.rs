//! Evidence that is safe to print: what a server wrote, with everything a terminal or a
//! reader would not show as itself made visible, and cut to a bounded length.

use std::fmt::Write as _;

use super::chars::is_invisible;

/// Longest evidence, in characters of the escaped text (the `…` marker included).
pub const MAX_EVIDENCE_CHARS: usize = 160;

/// `text` escaped and truncated: backslash doubled, `\n` `\r` `\t` as those two characters,
/// every other control, invisible or non-space whitespace character as `\u{hex}`; longer
/// than [`MAX_EVIDENCE_CHARS`] it ends with `…`.
pub fn escape(text: &str) -> String {
    escape_max(text, MAX_EVIDENCE_CHARS)
}

pub(super) fn escape_max(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut shown = 0;
    for c in text.chars() {
        let piece = match c {
            '\\' => "\\\\".to_owned(),
            '\n' => "\\n".to_owned(),
            '\r' => "\\r".to_owned(),
            '\t' => "\\t".to_owned(),
            c if needs_escape(c) => {
                let mut s = String::new();
                let _ = write!(s, "\\u{{{:x}}}", c as u32);
                s
            }
            c => c.to_string(),
        };
        let len = piece.chars().count();
        if shown + len > max.saturating_sub(1) {
            out.push('…');
            return out;
        }
        shown += len;
        out.push_str(&piece);
    }
    out
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || is_invisible(c)
        || (c.is_whitespace() && c != ' ')
        || matches!(c as u32, 0xE000..=0xF8FF | 0xF0000..=0x10FFFF)
}

/// `U+XXXX` names of the distinct code points of `chars`, at most `max`, then `…`.
pub(super) fn code_points(chars: impl IntoIterator<Item = char>, max: usize) -> String {
    let mut seen: Vec<char> = Vec::new();
    let mut more = false;
    for c in chars {
        if seen.contains(&c) {
            continue;
        }
        if seen.len() == max {
            more = true;
            break;
        }
        seen.push(c);
    }
    let mut out: Vec<String> = seen
        .iter()
        .map(|c| format!("U+{:04X}", *c as u32))
        .collect();
    if more {
        out.push("…".to_owned());
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_and_control_characters_are_shown_as_code_points() {
        assert_eq!(escape("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(escape("x\u{200b}y\u{202e}z"), "x\\u{200b}y\\u{202e}z");
        assert_eq!(escape("t\u{e0041}"), "t\\u{e0041}");
        assert_eq!(escape("line\nnext\\"), "line\\nnext\\\\");
        assert_eq!(escape("naïve ✓ 日本"), "naïve ✓ 日本");
        assert_eq!(escape("a\u{a0}b"), "a\\u{a0}b");
    }

    #[test]
    fn long_evidence_is_cut_with_a_visible_marker() {
        let long = "x".repeat(1000);
        let cut = escape(&long);
        assert_eq!(cut.chars().count(), MAX_EVIDENCE_CHARS);
        assert!(cut.ends_with('…'));
        // An escape is never cut in half.
        let tags: String = std::iter::repeat_n('\u{e0041}', 100).collect();
        let cut = escape(&tags);
        assert!(cut.ends_with("}…"), "{cut}");
        assert_eq!(escape("short"), "short");
    }

    #[test]
    fn code_points_are_listed_once_each() {
        assert_eq!(
            code_points("\u{200b}\u{200b}\u{200c}".chars(), 5),
            "U+200B U+200C"
        );
        assert_eq!(code_points("abc".chars(), 2), "U+0061 U+0062 …");
    }
}
