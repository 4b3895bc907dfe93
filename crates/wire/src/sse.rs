//! Server-Sent Events: the encoder for what the gateway sends and a bounded decoder for what
//! upstream servers send, following the WHATWG EventSource parsing rules.
//!
//! Decoder deviations from WHATWG, both deliberate:
//! - An event whose data is empty is still returned if it carried an `id` field (MCP servers
//!   send such "priming" events so that clients can resume with `Last-Event-ID`; the caller
//!   needs them to track the last event id). Events with neither data nor id are dropped.
//! - The decoder is bounded: an event, or a pending line, larger than `max_event_bytes` fails
//!   with [`SseError::TooLarge`], after which the decoder refuses all further input (the
//!   stream cannot be trusted to resynchronize, so the caller should drop it).

use bytes::Bytes;

/// One SSE event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `id` field of this event, if it had one.
    pub id: Option<String>,
    /// The event type; `None` means the default, `message`.
    pub event: Option<String>,
    /// The data, lines joined with `\n`.
    pub data: String,
    /// A `retry` (reconnection time, ms) sent with this event.
    pub retry: Option<u64>,
}

/// Errors of the SSE encoder and decoder.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum SseError {
    /// An event or line over the decoder's bound.
    #[error("SSE event larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// An `id` or `event` value that cannot be encoded (contains CR, LF or, for ids, NUL).
    #[error("SSE {field} must not contain CR, LF or NUL")]
    InvalidField { field: &'static str },
}

impl SseEvent {
    /// A default-type event carrying `data`.
    pub fn message(data: impl Into<String>) -> Self {
        SseEvent {
            data: data.into(),
            ..SseEvent::default()
        }
    }

    /// Checks that `id` and `event` can be encoded: no CR or LF (they would end the field and
    /// let the rest be read as other fields) and no NUL in the id (receivers ignore such ids).
    pub fn validate(&self) -> Result<(), SseError> {
        let bad = |s: &Option<String>, nul: bool| {
            s.as_deref().is_some_and(|s| {
                s.bytes()
                    .any(|b| b == b'\r' || b == b'\n' || (nul && b == 0))
            })
        };
        if bad(&self.id, true) {
            return Err(SseError::InvalidField { field: "id" });
        }
        if bad(&self.event, false) {
            return Err(SseError::InvalidField { field: "event" });
        }
        Ok(())
    }

    /// [`encode`](Self::encode), refusing events that [`validate`](Self::validate) refuses.
    pub fn try_encode(&self) -> Result<Bytes, SseError> {
        self.validate()?;
        Ok(self.encode())
    }

    /// The event in wire form: `event:`, `id:`, `retry:` lines, one `data:` line per line of
    /// data (split on CRLF, LF or CR), then a blank line.
    ///
    /// Never fails: CR, LF (and NUL in the id) in `id` or `event` are replaced by a space so
    /// that they cannot inject fields or events. Use [`try_encode`](Self::try_encode) to
    /// refuse them instead.
    pub fn encode(&self) -> Bytes {
        let mut out = String::with_capacity(self.data.len() + 32);
        let clean =
            |s: &str, nul: bool| s.replace(|c| c == '\r' || c == '\n' || (nul && c == '\0'), " ");
        if let Some(event) = &self.event {
            out.push_str("event: ");
            out.push_str(&clean(event, false));
            out.push('\n');
        }
        if let Some(id) = &self.id {
            out.push_str("id: ");
            out.push_str(&clean(id, true));
            out.push('\n');
        }
        if let Some(retry) = self.retry {
            out.push_str("retry: ");
            out.push_str(&retry.to_string());
            out.push('\n');
        }
        for line in data_lines(&self.data) {
            out.push_str("data:");
            if !line.is_empty() {
                out.push(' ');
                out.push_str(line);
            }
            out.push('\n');
        }
        out.push('\n');
        Bytes::from(out)
    }
}

/// Splits on CRLF, LF and CR, as the decoder does.
fn data_lines(data: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let s = rest?;
        match s.find(['\r', '\n']) {
            None => {
                rest = None;
                Some(s)
            }
            Some(i) => {
                let skip = if s[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&s[i + skip..]);
                Some(&s[..i])
            }
        }
    })
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// An incremental SSE decoder with a bound on event size.
#[derive(Debug)]
pub struct SseDecoder {
    max_event_bytes: usize,
    /// Bytes of the current, incomplete line.
    line: Vec<u8>,
    /// The previous chunk ended with CR: a LF at the start of the next one belongs to it.
    pending_cr: bool,
    /// Still at the start of the stream, where a BOM may be (partly) buffered in `line`.
    at_start: bool,
    data: String,
    event: String,
    /// The `id` and `retry` fields of the current event.
    event_id: Option<String>,
    event_retry: Option<u64>,
    last_event_id: Option<String>,
    reconnection_ms: Option<u64>,
    failed: bool,
}

impl SseDecoder {
    /// A decoder refusing events (data, event type and id together) or lines larger than
    /// `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        SseDecoder {
            max_event_bytes,
            line: Vec::new(),
            pending_cr: false,
            at_start: true,
            data: String::new(),
            event: String::new(),
            event_id: None,
            event_retry: None,
            last_event_id: None,
            reconnection_ms: None,
            failed: false,
        }
    }

    /// Feeds the next chunk of the stream; returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut events = Vec::new();
        if self.failed {
            return Err(self.too_large());
        }
        let result = self.feed(chunk, &mut events);
        if result.is_err() {
            self.failed = true;
            self.line = Vec::new();
            self.data = String::new();
            self.event = String::new();
        }
        result.map(|()| events)
    }

    /// The last event id received (the value for `Last-Event-ID`); `None` if none was sent
    /// or the last `id` field was empty (which resets it).
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref().filter(|s| !s.is_empty())
    }

    /// The last valid `retry` value received, in milliseconds.
    pub fn retry(&self) -> Option<u64> {
        self.reconnection_ms
    }

    fn too_large(&self) -> SseError {
        SseError::TooLarge {
            limit: self.max_event_bytes,
        }
    }

    fn feed(&mut self, mut rest: &[u8], events: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if self.at_start {
            // Hold back up to three bytes until we know whether the stream starts with a BOM.
            let take = rest.len().min(BOM.len() - self.line.len());
            self.line.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.line.len() < BOM.len() && BOM.starts_with(&self.line) {
                return Ok(());
            }
            self.at_start = false;
            let held = std::mem::take(&mut self.line);
            let held = held.strip_prefix(BOM).unwrap_or(&held);
            self.feed_lines(held, events)?;
        }
        self.feed_lines(rest, events)
    }

    fn feed_lines(&mut self, mut rest: &[u8], events: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if self.pending_cr && !rest.is_empty() {
            self.pending_cr = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while let Some(i) = memchr::memchr2(b'\r', b'\n', rest) {
            if self.line.is_empty() {
                self.check(i)?;
                self.process_line(&rest[..i], events)?;
            } else {
                self.check(self.line.len() + i)?;
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&rest[..i]);
                self.process_line(&line, events)?;
                line.clear();
                self.line = line;
            }
            let was_cr = rest[i] == b'\r';
            rest = &rest[i + 1..];
            if was_cr {
                match rest.first() {
                    None => self.pending_cr = true,
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                }
            }
        }
        self.check(self.line.len() + rest.len())?;
        self.line.extend_from_slice(rest);
        Ok(())
    }

    /// Fails if a line of `line_len` bytes plus the event so far would exceed the bound.
    fn check(&self, line_len: usize) -> Result<(), SseError> {
        let event_len =
            self.data.len() + self.event.len() + self.event_id.as_ref().map_or(0, String::len);
        if line_len.saturating_add(event_len) > self.max_event_bytes {
            return Err(self.too_large());
        }
        Ok(())
    }

    fn process_line(&mut self, line: &[u8], events: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if line.is_empty() {
            self.dispatch(events);
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        // CR and LF never occur inside a multi-byte UTF-8 sequence, so decoding line by line
        // is the same as decoding the stream.
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.find(':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (&line[..], ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => {
                self.event_id = Some(value.to_owned());
                self.last_event_id = Some(value.to_owned());
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(ms) = value.parse() {
                    self.event_retry = Some(ms);
                    self.reconnection_ms = Some(ms);
                }
            }
            _ => {}
        }
        self.check(0)
    }

    fn dispatch(&mut self, events: &mut Vec<SseEvent>) {
        let id = self.event_id.take();
        let retry = self.event_retry.take();
        let event = std::mem::take(&mut self.event);
        if self.data.is_empty() && id.is_none() {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        if data.ends_with('\n') {
            data.pop();
        }
        events.push(SseEvent {
            id,
            event: (!event.is_empty()).then_some(event),
            data,
            retry,
        });
    }
}
