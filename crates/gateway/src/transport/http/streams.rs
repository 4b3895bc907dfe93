//! Server-sent event streams of one HTTP session, and where each message goes.
//!
//! A message about a client request goes to that request's response stream while the
//! request is open; anything else goes to the session's standalone GET stream, or waits in a
//! small backlog until the client opens one. Each message goes to exactly one stream.
//!
//! A stream outlives its HTTP connection: events are kept in a bounded replay buffer, so a
//! client that lost the connection resumes with `Last-Event-ID` on *that* stream. Event ids
//! are `<stream token>.<sequence>`, where the token is 96 random bits: ids are not
//! guessable, and an id names its stream, so a resumption can only ever replay the stream
//! it came from — of the session it came from.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use portcullis_wire::{Envelope, Id, SseEvent};
use tokio::sync::mpsc;

use crate::session::{Handled, Outbound};

/// Events kept for resumption, per stream.
const REPLAY_EVENTS: usize = 256;
/// Bytes kept for resumption, per stream.
const REPLAY_BYTES: usize = 8 * 1024 * 1024;
/// Events queued for a slow reader before its connection is dropped (it can resume).
const LIVE_QUEUE: usize = 1024;
/// Messages kept while no GET stream is open.
const BACKLOG: usize = 256;
/// Finished streams kept for resumption, per session.
const KEPT_STREAMS: usize = 64;
/// Comment lines keep idle streams alive through proxies.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

/// What a request's handler task sends to its HTTP response.
pub enum StreamItem {
    Message(Envelope),
    Done(Handled),
}

struct SseState {
    next_seq: u64,
    buffer: VecDeque<(u64, Bytes)>,
    buffered_bytes: usize,
    live: Option<mpsc::Sender<Bytes>>,
    finished: bool,
}

/// One resumable event stream.
pub struct SseStream {
    token: String,
    state: Mutex<SseState>,
}

impl SseStream {
    fn new() -> Arc<Self> {
        Arc::new(SseStream {
            token: crate::ids::random_token(12),
            state: Mutex::new(SseState {
                next_seq: 1,
                buffer: VecDeque::new(),
                buffered_bytes: 0,
                live: None,
                finished: false,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, SseState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn push(&self, msg: &Envelope) {
        let mut st = self.lock();
        let seq = st.next_seq;
        st.next_seq += 1;
        let event = SseEvent {
            id: Some(format!("{}.{seq}", self.token)),
            event: Some("message".into()),
            data: String::from_utf8_lossy(&msg.to_bytes()).into_owned(),
            retry: None,
        };
        let bytes = event.encode();
        st.buffered_bytes += bytes.len();
        st.buffer.push_back((seq, bytes.clone()));
        while st.buffer.len() > REPLAY_EVENTS
            || (st.buffered_bytes > REPLAY_BYTES && st.buffer.len() > 1)
        {
            if let Some((_, old)) = st.buffer.pop_front() {
                st.buffered_bytes -= old.len();
            }
        }
        if let Some(live) = &st.live
            && live.try_send(bytes).is_err()
        {
            // Closed, or a reader too slow to keep up: let it go; it can resume.
            st.live = None;
        }
    }

    /// No more events: the live connection (if any) ends after what it has.
    pub fn finish(&self) {
        let mut st = self.lock();
        st.finished = true;
        st.live = None;
    }

    pub fn is_live(&self) -> bool {
        self.lock().live.as_ref().is_some_and(|l| !l.is_closed())
    }

    /// Attaches a connection: replays what came after `after`, then follows live.
    pub fn attach(&self, after: Option<u64>) -> mpsc::Receiver<Bytes> {
        let (tx, rx) = mpsc::channel(LIVE_QUEUE + REPLAY_EVENTS);
        let mut st = self.lock();
        for (seq, bytes) in &st.buffer {
            if after.is_none_or(|a| *seq > a) {
                let _ = tx.try_send(bytes.clone());
            }
        }
        if !st.finished {
            st.live = Some(tx);
        }
        rx
    }
}

/// Splits an event id into its stream token and sequence number.
pub fn parse_event_id(id: &str) -> Option<(&str, u64)> {
    let (token, seq) = id.rsplit_once('.')?;
    Some((token, seq.parse().ok()?))
}

#[derive(Default)]
struct Streams {
    requests: HashMap<Id, mpsc::UnboundedSender<StreamItem>>,
    standalone: Option<Arc<SseStream>>,
    backlog: VecDeque<Envelope>,
    by_token: HashMap<String, Arc<SseStream>>,
    order: VecDeque<String>,
    closed: bool,
}

/// The [`Outbound`] of an HTTP session.
#[derive(Default)]
pub struct HttpOutbound {
    streams: Mutex<Streams>,
}

impl HttpOutbound {
    fn lock(&self) -> MutexGuard<'_, Streams> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens the message channel of a client request; false if that id is already open.
    pub fn open_request(&self, id: &Id, tx: mpsc::UnboundedSender<StreamItem>) -> bool {
        let mut s = self.lock();
        if s.requests.contains_key(id) {
            return false;
        }
        s.requests.insert(id.clone(), tx);
        true
    }

    pub fn close_request(&self, id: &Id) {
        self.lock().requests.remove(id);
    }

    /// Creates a resumable stream and remembers it (the oldest finished ones are forgotten).
    pub fn new_stream(&self) -> Arc<SseStream> {
        let stream = SseStream::new();
        let mut s = self.lock();
        s.by_token.insert(stream.token.clone(), stream.clone());
        s.order.push_back(stream.token.clone());
        while s.order.len() > KEPT_STREAMS {
            if let Some(old) = s.order.pop_front() {
                s.by_token.remove(&old);
            }
        }
        stream
    }

    pub fn find_stream(&self, token: &str) -> Option<Arc<SseStream>> {
        self.lock().by_token.get(token).cloned()
    }

    /// Whether a client is connected to the standalone stream right now.
    pub fn has_live_standalone(&self) -> bool {
        self.lock().standalone.as_ref().is_some_and(|s| s.is_live())
    }

    /// Opens the standalone stream; None if one is already connected.
    pub fn open_standalone(&self) -> Option<Arc<SseStream>> {
        if self.lock().standalone.as_ref().is_some_and(|s| s.is_live()) {
            return None;
        }
        let stream = self.new_stream();
        let mut s = self.lock();
        if let Some(old) = s.standalone.replace(stream.clone()) {
            old.finish();
        }
        for msg in s.backlog.drain(..) {
            stream.push(&msg);
        }
        Some(stream)
    }
}

impl Outbound for HttpOutbound {
    fn send(&self, msg: Envelope, related: Option<&Id>) {
        let mut s = self.lock();
        if s.closed {
            return;
        }
        let msg = match related.and_then(|id| s.requests.get(id)) {
            Some(tx) => match tx.send(StreamItem::Message(msg)) {
                Ok(()) => return,
                Err(mpsc::error::SendError(StreamItem::Message(m))) => m,
                Err(_) => return,
            },
            None => msg,
        };
        if let Some(standalone) = &s.standalone {
            standalone.push(&msg);
            return;
        }
        if s.backlog.len() >= BACKLOG {
            s.backlog.pop_front();
            tracing::warn!("no GET stream open: oldest undelivered server message dropped");
        }
        s.backlog.push_back(msg);
    }

    fn close(&self) {
        let mut s = self.lock();
        s.closed = true;
        s.requests.clear();
        s.backlog.clear();
        for stream in s.by_token.values() {
            stream.finish();
        }
        s.by_token.clear();
        s.standalone = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(n: u64) -> Envelope {
        Envelope::notification(
            "notifications/message",
            Some(crate::mcp::raw(&serde_json::json!({ "n": n }))),
        )
    }

    #[test]
    fn event_ids_name_their_stream() {
        assert_eq!(parse_event_id("abc.7"), Some(("abc", 7)));
        assert_eq!(parse_event_id("abc"), None);
        assert_eq!(parse_event_id("a.b.x"), None);
    }

    #[tokio::test]
    async fn a_resumed_stream_replays_only_what_came_after_the_last_event() {
        let out = HttpOutbound::default();
        let stream = out.new_stream();
        for n in 1..=3 {
            stream.push(&note(n));
        }
        let mut rx = stream.attach(Some(2));
        let got = rx.recv().await.unwrap();
        assert!(std::str::from_utf8(&got).unwrap().contains("\"n\":3"));
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn messages_wait_for_a_get_stream_then_flow_into_it() {
        let out = HttpOutbound::default();
        out.send(note(1), None);
        let stream = out.open_standalone().unwrap();
        let mut rx = stream.attach(None);
        assert!(
            std::str::from_utf8(&rx.recv().await.unwrap())
                .unwrap()
                .contains("\"n\":1")
        );
        // A second GET while the first is connected is refused.
        assert!(out.open_standalone().is_none());
    }

    #[test]
    fn the_replay_buffer_is_bounded() {
        let stream = SseStream::new();
        for n in 0..(REPLAY_EVENTS as u64 + 50) {
            stream.push(&note(n));
        }
        assert_eq!(stream.lock().buffer.len(), REPLAY_EVENTS);
    }
}
