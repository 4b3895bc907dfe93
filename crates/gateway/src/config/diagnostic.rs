//! Config errors that point at the offending text: `file:line:column: message`.
//!
//! Validation records byte spans (what `toml` and `serde_spanned` give) and converts them to
//! line and column only once, at the end, so every check can be written against spans and
//! the output is sorted in file order whatever order the checks ran in.

use std::fmt;
use std::ops::Range;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file (or `<embedded …>` source) the problem is in.
    pub file: String,
    /// One-based line; 0 when the problem is with the file as a whole (it cannot be read).
    pub line: usize,
    /// One-based column, counted in characters; 0 with line 0.
    pub column: usize,
    /// What is wrong, and where it helps, how to fix it.
    pub message: String,
}

/// `file:line:column: message`, or `file: message` for whole-file problems.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

/// Every problem found in a config, in file order. Loading reports all of them at once so
/// that fixing a config is one round trip, not one per mistake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The problems, sorted by line and column.
    pub errors: Vec<Diagnostic>,
}

/// One line per diagnostic.
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Problems found so far, by byte offset into the text.
#[derive(Debug, Default)]
pub(crate) struct Issues {
    found: Vec<(usize, String)>,
}

impl Issues {
    /// Records a problem at the start of `span`.
    pub(crate) fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.found.push((span.start, message.into()));
    }

    /// Records a `toml` deserialization error, at its own span when it has one (it points at
    /// the offending key or value), else at `fallback`.
    pub(crate) fn toml(&mut self, err: &toml::de::Error, fallback: Range<usize>) {
        let span = err.span().unwrap_or(fallback);
        self.at(span, err.message().trim_end().to_owned());
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// How many problems were found so far.
    pub(crate) fn len(&self) -> usize {
        self.found.len()
    }

    /// Turns the problems into diagnostics for `file`, sorted in file order (ties keep the
    /// order they were found in), duplicates removed.
    pub(crate) fn into_error(mut self, file: &str, text: &str) -> ConfigError {
        self.found.sort_by_key(|(offset, _)| *offset);
        self.found.dedup();
        let lines = LineIndex::new(text);
        ConfigError {
            errors: self
                .found
                .into_iter()
                .map(|(offset, message)| {
                    let (line, column) = lines.line_col(offset);
                    Diagnostic {
                        file: file.to_owned(),
                        line,
                        column,
                        message,
                    }
                })
                .collect(),
        }
    }
}

/// Converts byte offsets to one-based line and character column.
pub(crate) struct LineIndex<'t> {
    text: &'t str,
    /// Byte offset of the start of each line.
    starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    pub(crate) fn new(text: &'t str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { text, starts }
    }

    /// One-based line and column of `offset`. Columns count characters, as editors do; an
    /// offset past the end maps to just after the last character.
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&start| start <= offset);
        let start = self.starts[line.saturating_sub(1)];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line, column + 1)
    }

    /// The text being indexed.
    pub(crate) fn text(&self) -> &'t str {
        self.text
    }

    /// One-based line of `offset`.
    pub(crate) fn line(&self, offset: usize) -> usize {
        self.line_col(offset).0
    }
}

/// A single whole-file diagnostic (read errors).
pub(crate) fn file_error(file: &str, message: String) -> ConfigError {
    ConfigError {
        errors: vec![Diagnostic {
            file: file.to_owned(),
            line: 0,
            column: 0,
            message,
        }],
    }
}
