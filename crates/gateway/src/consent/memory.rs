//! Approvals a person asked to be remembered: for the session, or "always" (until an
//! expiry), for the exact arguments or for any arguments to the tool.
//!
//! What an approval covers is fixed by its key, so that it can never reach further than the
//! person meant: the same principal (issuer, subject *and* OAuth client), the same server,
//! tool and deciding rule (by its number and the digest of its text: an edited rule asks
//! again), and — for `session` — the same downstream session; for the arguments scope, the
//! same argument digest. A different caller, session, rule or argument finds nothing and is
//! asked again.
//!
//! `session` approvals live in memory (a session ends with the process anyway). `always`
//! ones are kept in the state store with their expiry, so they survive a restart and
//! `portcullis approvals forget` revokes them in a running gateway: the store is asked at
//! every held call, never a copy. Without a store (unit tests) they stay in memory. Memory is
//! bounded in number; expired entries go first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use portcullis_store::{ApprovalKey, RememberedApproval, Store};

use super::request::{Remember, Scope};

/// Most remembered approvals kept at once, gateway-wide.
pub const MAX_REMEMBERED: usize = 10_000;

/// What a remembered approval is about (every part must match).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject {
    /// The principal's identity key (display form and OAuth client).
    pub identity: String,
    pub server: String,
    /// The tool (or prompt, resource) as the upstream knows it.
    pub name: String,
    /// The deciding rule: its number and text digest (`ConsentConfig::rule_key`).
    pub rule: String,
}

#[derive(Debug, Clone)]
struct Entry {
    /// `Some` for a `session` approval: only this session.
    session: Option<String>,
    /// `Some` for the arguments scope: only this digest.
    digest: Option<String>,
    expires: Instant,
    /// How it was given, for the audit record of a later call it covers.
    how: String,
}

/// An approval to remember, for one call's session and arguments.
#[derive(Debug, Clone)]
pub struct Grant<'a> {
    pub session: &'a str,
    pub digest: &'a str,
    pub remember: Remember,
    pub scope: Scope,
    /// How it was given (channel, choice, request), for the records of calls it covers.
    pub how: String,
}

/// A remembered approval that covers a call, described for its audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Covered {
    pub how: String,
}

#[derive(Default)]
pub struct ConsentMemory {
    inner: Mutex<Inner>,
    /// Where `always` approvals are kept; `None` keeps them in memory.
    store: Option<Arc<dyn Store>>,
}

/// What looking for a remembered approval found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Covered(Covered),
    Nothing,
    /// The store could not be read: the call is not covered (a person is asked), and why.
    Failed(String),
}

#[derive(Default)]
struct Inner {
    map: HashMap<Subject, Vec<Entry>>,
    count: usize,
}

impl Inner {
    /// Drops expired entries; if still full, the live one closest to expiring.
    fn make_room(&mut self, now: Instant) {
        for entries in self.map.values_mut() {
            entries.retain(|e| e.expires > now);
        }
        self.map.retain(|_, v| !v.is_empty());
        self.count = self.map.values().map(Vec::len).sum();
        if self.count < MAX_REMEMBERED {
            return;
        }
        let soonest = self
            .map
            .iter()
            .flat_map(|(k, v)| v.iter().enumerate().map(move |(i, e)| (e.expires, k, i)))
            .min_by_key(|(expires, _, _)| *expires)
            .map(|(_, k, i)| (k.clone(), i));
        if let Some((k, i)) = soonest
            && let Some(v) = self.map.get_mut(&k)
        {
            v.remove(i);
            self.count -= 1;
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn stored_key(subject: &Subject, digest: &str) -> ApprovalKey {
    ApprovalKey {
        identity: subject.identity.clone(),
        server: subject.server.clone(),
        name: subject.name.clone(),
        rule: subject.rule.clone(),
        digest: digest.to_owned(),
    }
}

/// Runs a blocking store call off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, portcullis_store::StoreError> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(e) => Err(format!("the store task failed: {e}")),
    }
}

impl ConsentMemory {
    /// A memory that keeps `always` approvals in `store`.
    pub fn with_store(store: Arc<dyn Store>) -> Self {
        ConsentMemory {
            inner: Mutex::default(),
            store: Some(store),
        }
    }

    /// The remembered approval that covers this call: in memory (`session`, or `always`
    /// without a store), else in the store.
    pub async fn lookup(&self, subject: &Subject, session: &str, digest: &str) -> Lookup {
        if let Some(c) = self.covers(subject, session, digest) {
            return Lookup::Covered(c);
        }
        let Some(store) = self.store.clone() else {
            return Lookup::Nothing;
        };
        let key = stored_key(subject, digest);
        match blocking(move || store.find_approval(&key, now_ms())).await {
            Ok(Some(a)) => Lookup::Covered(Covered { how: a.how }),
            Ok(None) => Lookup::Nothing,
            Err(e) => Lookup::Failed(e),
        }
    }

    /// Remembers an approval as [`remember`](Self::remember) does, but an `always` one goes
    /// to the store when there is one. An error says why it could not be kept (the call it
    /// approved still goes through; the next one is asked again).
    pub async fn keep(
        &self,
        subject: Subject,
        grant: Grant<'_>,
        session_ttl: Duration,
    ) -> Result<(), String> {
        let (Remember::Always { ttl }, Some(store)) = (grant.remember, self.store.clone()) else {
            self.remember(subject, grant, session_ttl);
            return Ok(());
        };
        let digest = match grant.scope {
            Scope::Arguments => grant.digest,
            Scope::Tool => "",
        };
        let now = now_ms();
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let approval = RememberedApproval {
            key: stored_key(&subject, digest),
            expires_at_ms: now.saturating_add(ttl_ms),
            created_at_ms: now,
            how: grant.how,
        };
        blocking(move || store.put_approval(&approval)).await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The remembered approval that covers this call, if any.
    pub fn covers(&self, subject: &Subject, session: &str, digest: &str) -> Option<Covered> {
        let now = Instant::now();
        let inner = self.lock();
        inner
            .map
            .get(subject)?
            .iter()
            .find(|e| {
                e.expires > now
                    && e.session
                        .as_deref()
                        .is_none_or(|s| !s.is_empty() && s == session)
                    && e.digest.as_deref().is_none_or(|d| d == digest)
            })
            .map(|e| Covered { how: e.how.clone() })
    }

    /// Remembers an approval (`Once` is not remembered). `session_ttl` bounds a session
    /// approval (a session ends by then anyway); an `always` one lasts its own ttl. A session
    /// approval needs a session: a stateless call has none, and remembers nothing.
    pub fn remember(&self, subject: Subject, grant: Grant<'_>, session_ttl: Duration) {
        let now = Instant::now();
        let (session, expires) = match grant.remember {
            Remember::Once => return,
            Remember::Session if grant.session.is_empty() => return,
            Remember::Session => (Some(grant.session.to_owned()), now + session_ttl),
            Remember::Always { ttl } => (None, now + ttl),
        };
        let digest = match grant.scope {
            Scope::Arguments => Some(grant.digest.to_owned()),
            Scope::Tool => None,
        };
        let how = grant.how;
        let mut inner = self.lock();
        if inner.count >= MAX_REMEMBERED {
            inner.make_room(now);
        }
        inner.map.entry(subject).or_default().push(Entry {
            session,
            digest,
            expires,
            how,
        });
        inner.count += 1;
    }

    /// How many approvals are remembered (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.lock().count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(identity: &str) -> Subject {
        Subject {
            identity: identity.to_owned(),
            server: "files".to_owned(),
            name: "write_file".to_owned(),
            rule: "rule 2 sha256:ab".to_owned(),
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_session_approval_covers_only_its_session_principal_and_arguments() {
        let m = ConsentMemory::default();
        m.remember(
            subject("alice"),
            Grant {
                session: "s1",
                digest: "sha256:a",
                remember: Remember::Session,
                scope: Scope::Arguments,
                how: "elicitation".into(),
            },
            HOUR,
        );
        assert!(m.covers(&subject("alice"), "s1", "sha256:a").is_some());
        assert!(m.covers(&subject("alice"), "s2", "sha256:a").is_none());
        assert!(m.covers(&subject("bob"), "s1", "sha256:a").is_none());
        assert!(m.covers(&subject("alice"), "s1", "sha256:b").is_none());
        let mut other_rule = subject("alice");
        other_rule.rule = "rule 2 sha256:cd".to_owned();
        assert!(m.covers(&other_rule, "s1", "sha256:a").is_none());
    }

    #[test]
    fn a_tool_wide_always_approval_covers_other_arguments_and_sessions_until_it_expires() {
        let m = ConsentMemory::default();
        m.remember(
            subject("alice"),
            Grant {
                session: "s1",
                digest: "sha256:a",
                remember: Remember::Always { ttl: HOUR },
                scope: Scope::Tool,
                how: "approvals".into(),
            },
            HOUR,
        );
        assert!(m.covers(&subject("alice"), "s9", "sha256:z").is_some());
        assert!(m.covers(&subject("bob"), "s1", "sha256:a").is_none());
        m.remember(
            subject("carol"),
            Grant {
                session: "s1",
                digest: "sha256:a",
                remember: Remember::Always {
                    ttl: Duration::ZERO,
                },
                scope: Scope::Tool,
                how: "approvals".into(),
            },
            HOUR,
        );
        assert!(m.covers(&subject("carol"), "s1", "sha256:a").is_none());
    }

    #[test]
    fn once_and_sessionless_approvals_are_not_remembered() {
        let m = ConsentMemory::default();
        m.remember(
            subject("alice"),
            Grant {
                session: "s1",
                digest: "d",
                remember: Remember::Once,
                scope: Scope::Tool,
                how: String::new(),
            },
            HOUR,
        );
        m.remember(
            subject("alice"),
            Grant {
                session: "",
                digest: "d",
                remember: Remember::Session,
                scope: Scope::Tool,
                how: String::new(),
            },
            HOUR,
        );
        assert!(m.is_empty());
        assert!(m.covers(&subject("alice"), "", "d").is_none());
    }

    #[test]
    fn the_memory_is_bounded() {
        let m = ConsentMemory::default();
        for i in 0..MAX_REMEMBERED + 10 {
            m.remember(
                subject(&format!("p{i}")),
                Grant {
                    session: "s",
                    digest: "d",
                    remember: Remember::Always { ttl: HOUR },
                    scope: Scope::Arguments,
                    how: String::new(),
                },
                HOUR,
            );
        }
        assert_eq!(m.len(), MAX_REMEMBERED);
    }
}
