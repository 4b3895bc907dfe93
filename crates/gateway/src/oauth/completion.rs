//! `notifications/elicitation/complete` (MCP 2025-11-25, URL mode): a client that was
//! answered `-32042` hears when the person has finished in the browser, so it can retry the
//! request without waiting for the person to say so.
//!
//! A session that receives a `-32042` watches that elicitation id (weakly: a watch never
//! keeps a session alive); when the callback for the link's ticket stores the grant, each
//! session still watching gets the notification on its standalone stream. Only the sessions
//! the gateway itself told about the id watch it, and the notification carries nothing but
//! the id. Watches end with the link (the ticket's lifetime) and are bounded in number.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use portcullis_wire::Envelope;

use super::ticket::TICKET_LIFETIME;
use crate::session::Outbound;

/// Most elicitation ids watched at once, gateway-wide.
pub const MAX_WATCHED: usize = 10_000;
/// Most sessions watching one id (one user's clients; more is not one person).
const MAX_WATCHERS_PER_ID: usize = 16;

struct Watch {
    until: Instant,
    sessions: Vec<Weak<dyn Outbound>>,
}

#[derive(Default)]
pub struct CompletionWatchers {
    inner: Mutex<HashMap<String, Watch>>,
}

impl CompletionWatchers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Watch>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `session` was told about `elicitation_id`; it hears when that completes.
    pub fn watch(&self, elicitation_id: &str, session: &Arc<dyn Outbound>) {
        self.watch_for(elicitation_id, session, TICKET_LIFETIME);
    }

    fn watch_for(&self, elicitation_id: &str, session: &Arc<dyn Outbound>, lifetime: Duration) {
        if elicitation_id.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= MAX_WATCHED && !map.contains_key(elicitation_id) {
            map.retain(|_, w| w.until > now);
            if map.len() >= MAX_WATCHED {
                return;
            }
        }
        let watch = map
            .entry(elicitation_id.to_owned())
            .or_insert_with(|| Watch {
                until: now + lifetime,
                sessions: Vec::new(),
            });
        watch.sessions.retain(|s| s.strong_count() > 0);
        let already = watch
            .sessions
            .iter()
            .any(|s| s.upgrade().is_some_and(|s| Arc::ptr_eq(&s, session)));
        if !already && watch.sessions.len() < MAX_WATCHERS_PER_ID {
            watch.sessions.push(Arc::downgrade(session));
        }
    }

    /// The elicitation is complete: every live session watching it is told, once. How many.
    pub fn complete(&self, elicitation_id: &str) -> usize {
        let Some(watch) = self.lock().remove(elicitation_id) else {
            return 0;
        };
        if watch.until <= Instant::now() {
            return 0;
        }
        let params = serde_json::json!({ "elicitationId": elicitation_id });
        let mut told = 0;
        for session in watch.sessions.iter().filter_map(Weak::upgrade) {
            session.send(
                Envelope::notification(
                    crate::mcp::NOTIFICATION_ELICITATION_COMPLETE,
                    Some(crate::mcp::raw(&params)),
                ),
                None,
            );
            told += 1;
        }
        told
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_wire::Id;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Outbound for Recorder {
        fn send(&self, msg: Envelope, related: Option<&Id>) {
            assert!(related.is_none(), "on the standalone stream");
            self.0
                .lock()
                .unwrap()
                .push(String::from_utf8(msg.to_bytes()).unwrap());
        }
    }

    fn recorder() -> (Arc<Recorder>, Arc<dyn Outbound>) {
        let r = Arc::new(Recorder::default());
        let o: Arc<dyn Outbound> = r.clone();
        (r, o)
    }

    #[test]
    fn only_the_sessions_told_about_an_id_hear_it_complete_and_only_once() {
        let w = CompletionWatchers::default();
        let (alice, alice_out) = recorder();
        let (other, other_out) = recorder();
        w.watch("e1", &alice_out);
        w.watch("e1", &alice_out);
        w.watch("e2", &other_out);
        assert_eq!(w.complete("e1"), 1);
        assert_eq!(w.complete("e1"), 0, "once");
        let heard = alice.0.lock().unwrap().clone();
        assert_eq!(heard.len(), 1, "{heard:?}");
        assert!(
            heard[0].contains(crate::mcp::NOTIFICATION_ELICITATION_COMPLETE)
                && heard[0].contains("\"e1\"")
        );
        assert!(other.0.lock().unwrap().is_empty());
    }

    #[test]
    fn a_watch_keeps_no_session_alive_and_ends_with_the_link() {
        let w = CompletionWatchers::default();
        let (alice, alice_out) = recorder();
        w.watch("e1", &alice_out);
        drop(alice_out);
        drop(alice);
        assert_eq!(w.complete("e1"), 0);
        let (bob, bob_out) = recorder();
        w.watch_for("e2", &bob_out, Duration::ZERO);
        assert_eq!(w.complete("e2"), 0, "expired");
        assert!(bob.0.lock().unwrap().is_empty());
    }

    #[test]
    fn watches_are_bounded() {
        let w = CompletionWatchers::default();
        let (_r, out) = recorder();
        for i in 0..MAX_WATCHED + 5 {
            w.watch(&format!("e{i}"), &out);
        }
        assert_eq!(w.lock().len(), MAX_WATCHED);
    }
}
