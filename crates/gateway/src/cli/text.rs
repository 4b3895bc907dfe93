//! Text for a terminal. Names, principals and reasons in audit records and decisions come
//! from clients and servers nobody vouches for: printed raw, a control sequence in a tool
//! name could rewrite the operator's screen. Everything shown goes through [`clean`].

use std::fmt::Write as _;

/// `text` with control characters (C0, DEL, C1) and the bidirectional overrides escaped as
/// `\u{…}` (`\n`, `\t`, `\r` as themselves, escaped), and backslashes doubled.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// One field of a space-separated line: [`clean`], then quoted when it is empty or holds a
/// space or a quote, so that the fields stay apart.
pub fn field(text: &str) -> String {
    let cleaned = clean(text);
    if cleaned.is_empty() || cleaned.contains([' ', '"']) {
        format!("\"{}\"", cleaned.replace('"', "\\\""))
    } else {
        cleaned
    }
}

/// Writes `text` to stdout. A reader that went away (`portcullis audit verify | head -1`)
/// is its own business: the error is ignored instead of panicking as `print!` would.
pub fn emit(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_sequences_cannot_reach_the_terminal() {
        assert_eq!(clean("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(clean("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(clean("line\nnext"), "line\\nnext");
        assert_eq!(clean("read_file"), "read_file");
        assert_eq!(clean("naïve ✓"), "naïve ✓");
    }

    #[test]
    fn fields_with_spaces_or_nothing_are_quoted() {
        assert_eq!(field("echo"), "echo");
        assert_eq!(field(""), "\"\"");
        assert_eq!(field("a b"), "\"a b\"");
        assert_eq!(field("say \"hi\""), "\"say \\\"hi\\\"\"");
    }
}
