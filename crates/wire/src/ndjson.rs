//! Newline-delimited JSON framing, as used by the stdio transport.
//!
//! MCP over stdio sends one JSON-RPC message per line, with no embedded newlines. The reader
//! is bounded: a line longer than the limit is never buffered past the limit; the reader
//! counts and discards it up to the next newline and reports [`Line::TooLong`], so a hostile
//! peer sending a gigabyte without a newline costs O(limit) memory, and the stream stays
//! usable afterwards.

use std::io;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

/// One line read from the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// A line within the limit, without its line ending.
    Frame(Vec<u8>),
    /// A line over the limit, discarded; `len` is its full length in bytes.
    TooLong { len: usize },
}

/// Reads NDJSON lines from an [`AsyncBufRead`].
///
/// Lines end at `\n`; a trailing `\r` is removed; blank lines (empty or only ASCII
/// whitespace) are skipped. At end of stream a final line without a newline is returned if it
/// is within the limit. [`next_line`](Self::next_line) is cancel-safe: if its future is
/// dropped, no input is lost and the next call continues where it stopped.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    max_line_bytes: usize,
    line: Vec<u8>,
    /// While discarding an over-long line: its length so far.
    overflow: Option<usize>,
}

impl<R> LineReader<R> {
    /// A reader refusing lines longer than `max_line_bytes` (line ending excluded).
    pub fn new(inner: R, max_line_bytes: usize) -> Self {
        LineReader {
            inner,
            max_line_bytes,
            line: Vec::new(),
            overflow: None,
        }
    }

    /// The underlying reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The underlying reader (any partially read line is lost).
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    /// The next non-blank line; `Ok(None)` at end of stream.
    pub async fn next_line(&mut self) -> io::Result<Option<Line>> {
        loop {
            let buf = self.inner.fill_buf().await?;
            if buf.is_empty() {
                return Ok(self.finish_line());
            }
            let (chunk, found) = match memchr::memchr(b'\n', buf) {
                Some(i) => (&buf[..i], true),
                None => (buf, false),
            };
            let used = chunk.len() + usize::from(found);
            append(
                &mut self.line,
                &mut self.overflow,
                self.max_line_bytes,
                chunk,
            );
            self.inner.consume(used);
            if found && let Some(line) = self.finish_line() {
                return Ok(Some(line));
            }
        }
    }

    /// Ends the current line: `None` if it was blank.
    fn finish_line(&mut self) -> Option<Line> {
        if let Some(len) = self.overflow.take() {
            return Some(Line::TooLong { len });
        }
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        if self.line.len() > self.max_line_bytes {
            let len = self.line.len();
            self.line = Vec::new();
            return Some(Line::TooLong { len });
        }
        if self.line.iter().all(u8::is_ascii_whitespace) {
            self.line.clear();
            return None;
        }
        Some(Line::Frame(std::mem::take(&mut self.line)))
    }
}

/// Adds `chunk` to the current line, or switches to discarding once it would go over the
/// limit. One byte of slack is kept for a `\r` that the line ending will remove.
fn append(line: &mut Vec<u8>, overflow: &mut Option<usize>, max: usize, chunk: &[u8]) {
    if let Some(len) = overflow {
        *len = len.saturating_add(chunk.len());
    } else if line.len() + chunk.len() > max.saturating_add(1) {
        *overflow = Some(line.len() + chunk.len());
        *line = Vec::new();
    } else {
        line.extend_from_slice(chunk);
    }
}

/// Writes `bytes` and a `\n` in one `write_all`, then flushes.
///
/// Refuses (`InvalidInput`) bytes that contain a `\n`: that would split the frame and let
/// its second half be read as another message.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> io::Result<()> {
    if memchr::memchr(b'\n', bytes).is_some() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an NDJSON frame must not contain a newline",
        ));
    }
    let mut buf = Vec::with_capacity(bytes.len() + 1);
    buf.extend_from_slice(bytes);
    buf.push(b'\n');
    w.write_all(&buf).await?;
    w.flush().await
}
