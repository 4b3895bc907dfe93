//! The live HTTP sessions.
//!
//! A session is found by its id *and* route: an id minted on `/mcp/a` is unknown on
//! `/mcp/b`. Sessions end on DELETE, on idle timeout (a connected GET stream counts as
//! activity), or when the gateway stops; an ended id answers 404 forever after.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::SharedState;
use super::streams::HttpOutbound;
use crate::session::Session;

#[derive(Clone)]
pub struct SessionEntry {
    pub session: Arc<Session>,
    pub outbound: Arc<HttpOutbound>,
}

pub struct Sessions {
    map: RwLock<HashMap<Arc<str>, SessionEntry>>,
    max: usize,
    /// Places held by sessions still initializing (their upstreams starting), so that
    /// concurrent `initialize`s cannot together overshoot `max`.
    starting: AtomicUsize,
}

/// A place under the session cap, held while a session initializes; given back on drop
/// unless the session is inserted.
pub struct Reservation<'a> {
    sessions: &'a Sessions,
}

impl Reservation<'_> {
    /// The session is up: it takes the place for good.
    pub fn insert(self, entry: SessionEntry) {
        self.sessions.insert(entry);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.sessions.starting.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Sessions {
    pub fn new(max: usize) -> Self {
        Sessions {
            map: RwLock::new(HashMap::new()),
            max,
            starting: AtomicUsize::new(0),
        }
    }

    /// Takes a place under the cap for a session about to initialize; None when full.
    pub fn reserve(&self) -> Option<Reservation<'_>> {
        // Under the map's write lock, so the count cannot change between check and take.
        let map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.len() + self.starting.load(Ordering::Acquire) >= self.max {
            return None;
        }
        self.starting.fetch_add(1, Ordering::AcqRel);
        Some(Reservation { sessions: self })
    }

    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_full(&self) -> bool {
        self.len() + self.starting.load(Ordering::Acquire) >= self.max
    }

    pub fn insert(&self, entry: SessionEntry) {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(entry.session.id.clone(), entry);
    }

    /// The session with this id on this route, if it is live.
    pub fn get(&self, id: &str, route: &str) -> Option<SessionEntry> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let entry = map.get(id)?;
        (&*entry.session.route().name == route && !entry.session.is_closed()).then(|| entry.clone())
    }

    pub fn remove(&self, id: &str) -> Option<SessionEntry> {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
    }

    pub async fn close_all(&self) {
        let all: Vec<SessionEntry> = self
            .map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, e)| e)
            .collect();
        for e in all {
            e.session.close().await;
        }
    }

    fn idle(&self, timeout: Duration) -> Vec<Arc<str>> {
        let limit = timeout.as_millis() as u64;
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, e)| e.session.idle_ms() > limit && !e.outbound.has_live_standalone())
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// Ends sessions idle for longer than `timeout`, checking a few times per timeout.
pub async fn reap_idle(state: SharedState, timeout: Duration) {
    let period = (timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
    let mut ticks = tokio::time::interval(period);
    loop {
        ticks.tick().await;
        for id in state.sessions.idle(timeout) {
            if let Some(entry) = state.sessions.remove(&id) {
                tracing::info!(session = %id, "session idle too long; ended");
                entry.session.close().await;
            }
        }
    }
}
