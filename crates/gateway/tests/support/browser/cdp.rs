//! The Chrome DevTools Protocol over one websocket, with no task of its own: a command is
//! sent and its answer read inline, and every event read on the way is kept in arrival order
//! under a sequence number. A caller takes a [`Cdp::mark`] before acting and then looks only
//! at events after it, so an event that arrived before the wait started is still found (a
//! load event can beat the answer to `Page.navigate`), and a stale one is never mistaken for
//! a fresh one.
//!
//! Having no background task keeps the driver usable from any tokio runtime, including the
//! throwaway one of a plain `#[test]`; the cost is `&mut self` everywhere.

use std::collections::VecDeque;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::BrowserError;

/// Events kept for look-ups; older ones are dropped (a test page makes a few hundred).
const EVENTS_KEPT: usize = 20_000;

/// One CDP event: `method` (e.g. `Page.loadEventFired`), the session of the target that sent
/// it (none for the browser itself) and its parameters.
#[derive(Debug, Clone)]
pub struct Event {
    pub seq: u64,
    pub method: String,
    pub session: Option<String>,
    pub params: Value,
}

pub struct Cdp {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    events: VecDeque<Event>,
    /// The sequence number the next event gets.
    next_seq: u64,
}

impl Cdp {
    /// Connects to the browser endpoint `ws://127.0.0.1:{port}{path}` (from
    /// `DevToolsActivePort`).
    pub async fn connect(port: u16, path: &str, deadline: Instant) -> Result<Cdp, BrowserError> {
        let url = format!("ws://127.0.0.1:{port}{path}");
        let (ws, _) = tokio::time::timeout_at(deadline, tokio_tungstenite::connect_async(&url))
            .await
            .map_err(|_| timeout("the DevTools websocket to accept a connection"))?
            .map_err(|e| BrowserError::Connection(format!("{url}: {e}")))?;
        Ok(Cdp {
            ws,
            next_id: 1,
            events: VecDeque::new(),
            next_seq: 0,
        })
    }

    /// The sequence number of the next event: look for events `>=` this after acting.
    pub fn mark(&self) -> u64 {
        self.next_seq
    }

    /// Sends `method` to the target attached as `session` (the browser itself when `None`)
    /// and returns its `result`; a CDP error answer is [`BrowserError::Command`].
    pub async fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
        deadline: Instant,
    ) -> Result<Value, BrowserError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        tokio::time::timeout_at(deadline, self.ws.send(Message::text(msg.to_string())))
            .await
            .map_err(|_| timeout(&format!("sending {method}")))?
            .map_err(|e| BrowserError::Connection(e.to_string()))?;
        loop {
            let what = format!("chromium's answer to {method}");
            if let Some(mut answer) = self.read(deadline, &what).await? {
                if answer.get("id").and_then(Value::as_u64) != Some(id) {
                    continue; // the answer to a command whose wait already ran out
                }
                if let Some(err) = answer.get("error") {
                    return Err(BrowserError::Command {
                        method: method.to_owned(),
                        message: err["message"].as_str().unwrap_or("?").to_owned(),
                    });
                }
                return Ok(answer["result"].take());
            }
        }
    }

    /// The first event at or after `after` that `matches`, reading more until `deadline`.
    /// `what` names the wait in the timeout error.
    pub async fn wait_event(
        &mut self,
        after: u64,
        deadline: Instant,
        what: &str,
        mut matches: impl FnMut(&Event) -> bool,
    ) -> Result<Event, BrowserError> {
        let mut checked = after;
        loop {
            if let Some(e) = self.since(checked).find(|e| matches(e)) {
                return Ok(e.clone());
            }
            checked = self.next_seq;
            while self.next_seq == checked {
                self.read(deadline, what).await?;
            }
        }
    }

    /// Reads whatever arrives within `wait` (bounded by `deadline`), so that later look-ups
    /// with [`Cdp::since`] see it.
    pub async fn drain_for(&mut self, wait: Duration, deadline: Instant) {
        let until = (Instant::now() + wait).min(deadline);
        while self.read(until, "").await.is_ok() {}
    }

    /// The events kept at or after `after`, oldest first.
    pub fn since(&self, after: u64) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(move |e| e.seq >= after)
    }

    /// Reads one message: an event is stored (and `None` returned), an answer is returned.
    async fn read(&mut self, deadline: Instant, what: &str) -> Result<Option<Value>, BrowserError> {
        let frame = tokio::time::timeout_at(deadline, self.ws.next())
            .await
            .map_err(|_| timeout(what))?;
        let text = match frame {
            None => return Err(BrowserError::Connection("chromium closed DevTools".into())),
            Some(Err(e)) => return Err(BrowserError::Connection(e.to_string())),
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(_))) => {
                return Err(BrowserError::Connection("chromium closed DevTools".into()));
            }
            Some(Ok(_)) => return Ok(None), // ping/pong/binary: not CDP
        };
        let mut msg: Value = serde_json::from_str(text.as_str()).map_err(|e| {
            BrowserError::Connection(format!("chromium sent something that is not JSON: {e}"))
        })?;
        if msg.get("id").is_some() {
            return Ok(Some(msg));
        }
        let event = Event {
            seq: self.next_seq,
            method: msg["method"].as_str().unwrap_or_default().to_owned(),
            session: msg["sessionId"].as_str().map(str::to_owned),
            params: msg["params"].take(),
        };
        self.next_seq += 1;
        if self.events.len() == EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back(event);
        Ok(None)
    }
}

/// The error of a wait that ran out: it says what was awaited.
pub fn timeout(what: &str) -> BrowserError {
    BrowserError::Timeout {
        what: what.to_owned(),
    }
}
