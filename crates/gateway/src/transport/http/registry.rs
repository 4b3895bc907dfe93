//! The live HTTP sessions.
//!
//! A session is found by its id, its route *and* its owner: an id minted on `/mcp/a` is
//! unknown on `/mcp/b`, and an id used with another caller's token is unknown too (404,
//! exactly as for an id that never existed: a session id is never a credential, and a
//! different answer would confirm a stolen id is live). Sessions end on DELETE, on idle
//! timeout (a connected GET stream counts as activity), at the end of their lifetime, or
//! when the gateway stops; an ended id answers 404 forever after.
//!
//! Authenticated callers each have a cap of their own (`auth.max_sessions_per_principal`)
//! under the gateway's, so one token cannot take every place.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use portcullis_policy::Principal;

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
    /// Live and starting sessions per authenticated owner ([`owner_key`]).
    owners: std::sync::Mutex<HashMap<String, usize>>,
    max: usize,
    /// Places held by sessions still initializing (their upstreams starting), so that
    /// concurrent `initialize`s cannot together overshoot `max`.
    starting: AtomicUsize,
}

/// A place under the session cap, held while a session initializes; given back on drop
/// unless the session is inserted.
pub struct Reservation<'a> {
    sessions: &'a Sessions,
    /// The owner's place, given back on drop unless the session is inserted.
    owner: Option<String>,
}

impl Reservation<'_> {
    /// The session is up: it takes the place for good.
    pub fn insert(mut self, entry: SessionEntry) {
        // The owner's place now belongs to the live session; `remove` gives it back.
        self.owner = None;
        self.sessions.insert(entry);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.sessions.starting.fetch_sub(1, Ordering::AcqRel);
        if let Some(owner) = self.owner.take() {
            self.sessions.release_owner(&owner);
        }
    }
}

/// Why no place was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// `gateway.max_sessions` live sessions.
    Gateway,
    /// This caller holds `auth.max_sessions_per_principal` sessions.
    Owner,
}

/// The key sessions are counted under: authenticated callers only (local and anonymous
/// callers are all the same one, and only the gateway's cap applies to them).
fn owner_key(p: &Principal) -> Option<String> {
    p.is_oauth().then(|| {
        format!(
            "{}\n{}\n{}",
            p.issuer.as_deref().unwrap_or_default(),
            p.subject,
            p.client_id.as_deref().unwrap_or_default()
        )
    })
}

impl Sessions {
    pub fn new(max: usize) -> Self {
        Sessions {
            map: RwLock::new(HashMap::new()),
            owners: std::sync::Mutex::new(HashMap::new()),
            max,
            starting: AtomicUsize::new(0),
        }
    }

    /// Takes a place under the caps for a session `owner` is about to initialize:
    /// the gateway's, and the owner's own (`per_owner`) for an authenticated caller.
    pub fn reserve(&self, owner: &Principal, per_owner: usize) -> Result<Reservation<'_>, Full> {
        // Under the map's write lock, so the count cannot change between check and take.
        let map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.len() + self.starting.load(Ordering::Acquire) >= self.max {
            return Err(Full::Gateway);
        }
        let key = owner_key(owner);
        if let Some(key) = &key {
            let mut owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
            let held = owners.entry(key.clone()).or_insert(0);
            if *held >= per_owner {
                return Err(Full::Owner);
            }
            *held += 1;
        }
        self.starting.fetch_add(1, Ordering::AcqRel);
        Ok(Reservation {
            sessions: self,
            owner: key,
        })
    }

    fn release_owner(&self, key: &str) {
        let mut owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(held) = owners.get_mut(key) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                owners.remove(key);
            }
        }
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

    /// The session with this id on this route, if it is live and `caller`'s.
    pub fn get(&self, id: &str, route: &str, caller: &Principal) -> Option<SessionEntry> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let entry = map.get(id)?;
        (&*entry.session.route().name == route
            && !entry.session.is_closed()
            && entry.session.owner().same_identity(caller))
        .then(|| entry.clone())
    }

    pub fn remove(&self, id: &str) -> Option<SessionEntry> {
        let removed = self
            .map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if let Some(key) = removed.as_ref().and_then(|e| owner_key(e.session.owner())) {
            self.release_owner(&key);
        }
        removed
    }

    pub async fn close_all(&self) {
        let all: Vec<SessionEntry> = self
            .map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, e)| e)
            .collect();
        self.owners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        for e in all {
            e.session.close().await;
        }
    }

    /// Sessions idle longer than `idle` (a connected GET stream is activity), or older
    /// than `lifetime` (whatever they do).
    fn expired(&self, idle: Duration, lifetime: Duration) -> Vec<(Arc<str>, &'static str)> {
        let idle = idle.as_millis() as u64;
        let lifetime = lifetime.as_millis() as u64;
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|(id, e)| {
                if e.session.age_ms() > lifetime {
                    Some((id.clone(), "session lifetime over; ended"))
                } else if e.session.idle_ms() > idle && !e.outbound.has_live_standalone() {
                    Some((id.clone(), "session idle too long; ended"))
                } else {
                    None
                }
            })
            .collect()
    }
}

/// Ends sessions idle for longer than `idle` or older than `lifetime`, checking a few
/// times per the shorter of the two.
pub async fn reap_expired(state: SharedState, idle: Duration, lifetime: Duration) {
    let period =
        (idle.min(lifetime) / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
    let mut ticks = tokio::time::interval(period);
    loop {
        ticks.tick().await;
        for (id, why) in state.sessions.expired(idle, lifetime) {
            if let Some(entry) = state.sessions.remove(&id) {
                tracing::info!(session = %id, "{why}");
                entry.session.close().await;
            }
        }
    }
}
