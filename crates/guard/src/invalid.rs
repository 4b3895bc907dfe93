//! What a caller is told when its arguments are refused: at most [`MAX_PROBLEMS`] problems,
//! each naming a JSON pointer into the arguments, and never more than [`MAX_ECHO`] bytes of the
//! value that failed.

use serde_json::Value;
use std::fmt;
use std::io::{self, Write};

/// The most problems one refusal lists.
pub const MAX_PROBLEMS: usize = 5;
/// The most bytes of an offending value (or of a list of offending keys) a message repeats.
pub const MAX_ECHO: usize = 100;
/// The most bytes of one message, schema-supplied text (enum lists, patterns) included.
pub(crate) const MAX_MESSAGE: usize = 300;
/// The most bytes of a path shown.
pub(crate) const MAX_PATH: usize = 200;

/// The arguments were refused; nothing was forwarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Invalid {
    /// At most [`MAX_PROBLEMS`], in the validator's order.
    pub problems: Vec<Problem>,
}

/// One reason for a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON pointer into the arguments (`""` for the arguments object itself, `"/items/0"`).
    pub path: String,
    /// What is wrong, in the validator's words, with the offending value shortened.
    pub message: String,
}

impl Invalid {
    pub(crate) fn one(path: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid {
            problems: vec![Problem::new(path, message)],
        }
    }
}

impl Problem {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            path: shorten(path.into(), MAX_PATH),
            message: shorten(message.into(), MAX_MESSAGE),
        }
    }
}

/// `arguments/path: message; arguments/other: message`
impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.problems.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "arguments{}: {}", self.path, self.message)
    }
}

/// The JSON text of `value`, cut after [`MAX_ECHO`] bytes (marked with `…`). Values under a
/// secret-looking key, and strings that look like credentials, are not shown at all.
pub(crate) fn preview(value: &Value, path: &str) -> String {
    if crate::redact::path_names_secret(path, value)
        || value.as_str().is_some_and(crate::redact::looks_like_secret)
    {
        return "[REDACTED]".to_owned();
    }
    let mut out = Bounded {
        buffer: Vec::with_capacity(MAX_ECHO + 4),
        full: false,
    };
    let _ = serde_json::to_writer(&mut out, value);
    let text = String::from_utf8_lossy(&out.buffer).into_owned();
    if out.full {
        shorten(text, MAX_ECHO)
    } else {
        text
    }
}

/// A JSON pointer segment: `~` → `~0`, `/` → `~1`.
pub(crate) fn pointer_segment(name: &str) -> String {
    format!("/{}", name.replace('~', "~0").replace('/', "~1"))
}

/// `text` cut to at most `limit` bytes at a character boundary, with `…` appended when cut.
pub(crate) fn shorten(mut text: String, limit: usize) -> String {
    if text.len() > limit {
        let mut end = limit;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// Keeps the first `MAX_ECHO + 1` bytes and stops the serializer there.
struct Bounded {
    buffer: Vec<u8>,
    full: bool,
}

impl Write for Bounded {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let room = (MAX_ECHO + 1).saturating_sub(self.buffer.len());
        self.buffer
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
        if bytes.len() > room {
            self.full = true;
            return Err(io::Error::other("preview is full"));
        }
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
    fn preview_is_bounded_and_marks_the_cut() {
        let long = "é".repeat(10_000);
        let shown = preview(&json!(long), "/text");
        assert!(shown.len() <= MAX_ECHO + '…'.len_utf8(), "{}", shown.len());
        assert!(shown.starts_with("\"éé") && shown.ends_with('…'));
        assert_eq!(preview(&json!({"a": 1}), ""), r#"{"a":1}"#);
    }

    #[test]
    fn preview_hides_secrets() {
        assert_eq!(preview(&json!("hunter2"), "/password"), "[REDACTED]");
        // A GitHub-format token (varied, as real ones are), built at run time.
        let token = format!("ghp_{}", "a1B2c3D4e5F6".repeat(3));
        assert_eq!(preview(&json!(token), "/note"), "[REDACTED]");
    }

    #[test]
    fn display_names_paths() {
        let invalid = Invalid {
            problems: vec![
                Problem::new("/path", r#""x" is not of type "integer""#),
                Problem::new("", "\"mode\" is a required property"),
            ],
        };
        assert_eq!(
            invalid.to_string(),
            r#"arguments/path: "x" is not of type "integer"; arguments: "mode" is a required property"#
        );
    }

    #[test]
    fn pointer_segments_are_escaped() {
        assert_eq!(pointer_segment("a/b~c"), "/a~1b~0c");
    }
}
