//! Connect tickets: one user's pending "connect this server" request, from the moment an
//! upstream asked for authorization to the callback that delivers the tokens.
//!
//! A ticket is what the link `/oauth/connect/<id>` names. It is an explicit state machine,
//! so that each page can only do what its step allows:
//!
//! ```text
//! Offered --(consent page POST approve)--> Consented --(callback)--> removed
//!    \--(deny, expiry)--> removed
//! ```
//!
//! The id is 256 random bits and carries no authority by itself: opening the link shows the
//! consent page, and nothing is sent to the authorization server before the person approves
//! (the `state` of the authorization request exists only from then on). Tickets expire
//! (10 minutes) and their number is bounded, so a flood of unauthenticated requests cannot
//! grow memory without limit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

/// How long a link stays usable.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(600);
/// Most tickets alive at once (expired ones are dropped first).
pub const MAX_TICKETS: usize = 10_000;

/// Who asked, for what. Shown on the consent page; checked at the callback.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub server: String,
    /// The gateway principal the tokens will belong to (its display form, the vault key).
    pub principal: String,
    /// The MCP client the request came through (its OAuth client id), when known.
    pub client: Option<String>,
    /// The scope to ask for (the challenge's, the metadata's, or a step-up's union).
    pub scope: Option<String>,
    /// The elicitation id given to the MCP client (the ticket id's public twin).
    pub elicitation_id: String,
    pub step: Step,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The link exists; the consent page has not been approved.
    Offered,
    /// Approved: the authorization request with this `state` was sent to the browser.
    Consented { state: String },
}

struct Entry {
    ticket: Ticket,
    created: Instant,
}

/// Every live ticket, by id.
#[derive(Default)]
pub struct Tickets {
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TicketError {
    #[error("this link is unknown, was already used, or has expired; ask your MCP client again")]
    Unknown,
    #[error("too many connections are waiting for approval; try again in a few minutes")]
    Full,
    #[error("this link was already approved; finish the authorization in the window it opened")]
    AlreadyConsented,
}

impl Tickets {
    /// Records a new ticket and returns its id; a live, unapproved ticket for the same
    /// principal, client, server and scope is returned instead, so that a client (or a
    /// stream) retrying before the person acts does not mint a link each time and fill the
    /// table for everyone.
    pub fn offer(&self, mut ticket: Ticket) -> Result<String, TicketError> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let same = entries.iter().find(|(_, e)| {
            e.created.elapsed() < TICKET_LIFETIME
                && e.ticket.step == Step::Offered
                && e.ticket.principal == ticket.principal
                && e.ticket.client == ticket.client
                && e.ticket.server == ticket.server
                && e.ticket.scope == ticket.scope
        });
        if let Some((id, _)) = same {
            return Ok(id.clone());
        }
        if entries.len() >= MAX_TICKETS {
            entries.retain(|_, e| e.created.elapsed() < TICKET_LIFETIME);
            if entries.len() >= MAX_TICKETS {
                return Err(TicketError::Full);
            }
        }
        let id = random_id();
        ticket.elicitation_id = random_id();
        ticket.step = Step::Offered;
        entries.insert(
            id.clone(),
            Entry {
                ticket,
                created: Instant::now(),
            },
        );
        Ok(id)
    }

    /// The ticket behind a link, if it is live.
    pub fn get(&self, id: &str) -> Result<Ticket, TicketError> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(id)
            .filter(|e| e.created.elapsed() < TICKET_LIFETIME)
            .map(|e| e.ticket.clone())
            .ok_or(TicketError::Unknown)
    }

    /// Offered → Consented: the one transition that may start an authorization request.
    /// Two approvals of one link (a double click, a replayed form) start one request.
    pub fn consent(&self, id: &str, state: String) -> Result<Ticket, TicketError> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries
            .get_mut(id)
            .filter(|e| e.created.elapsed() < TICKET_LIFETIME)
            .ok_or(TicketError::Unknown)?;
        if entry.ticket.step != Step::Offered {
            return Err(TicketError::AlreadyConsented);
        }
        entry.ticket.step = Step::Consented { state };
        Ok(entry.ticket.clone())
    }

    /// Whether `id` is offered and not yet approved (the approval reserves it first, so two
    /// concurrent approvals cannot both reach the authorization server).
    pub fn reserve(&self, id: &str) -> Result<Ticket, TicketError> {
        self.consent(id, String::new())
    }

    /// Sets the state of a reserved ticket once the authorization request exists.
    pub fn set_state(&self, id: &str, state: String) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = entries.get_mut(id) {
            e.ticket.step = Step::Consented { state };
        }
    }

    /// Removes a ticket (denied, failed, or finished), returning it.
    pub fn remove(&self, id: &str) -> Option<Ticket> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(id).map(|e| e.ticket)
    }
}

/// 256 random bits, base64url: unguessable, and safe in a URL path.
pub fn random_id() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket() -> Ticket {
        Ticket {
            server: "tickets".into(),
            principal: "alice".into(),
            client: Some("desktop".into()),
            scope: Some("read".into()),
            elicitation_id: String::new(),
            step: Step::Offered,
        }
    }

    #[test]
    fn a_link_is_approved_once_and_an_approval_replay_is_refused() {
        let tickets = Tickets::default();
        let id = tickets.offer(ticket()).unwrap();
        assert_eq!(tickets.get(&id).unwrap().step, Step::Offered);
        tickets.reserve(&id).unwrap();
        assert_eq!(
            tickets.reserve(&id).unwrap_err(),
            TicketError::AlreadyConsented
        );
        tickets.set_state(&id, "s1".into());
        assert_eq!(
            tickets.get(&id).unwrap().step,
            Step::Consented { state: "s1".into() }
        );
        assert!(tickets.remove(&id).is_some());
        assert_eq!(tickets.get(&id).unwrap_err(), TicketError::Unknown);
    }

    #[test]
    fn ids_are_unguessable_and_distinct_from_the_elicitation_id() {
        let tickets = Tickets::default();
        let a = tickets.offer(ticket()).unwrap();
        let mut other = ticket();
        other.client = Some("ide".into());
        let b = tickets.offer(other).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_ne!(tickets.get(&a).unwrap().elicitation_id, a);
    }

    #[test]
    fn a_retry_before_the_person_acts_gets_the_same_link_not_a_new_one() {
        let tickets = Tickets::default();
        let a = tickets.offer(ticket()).unwrap();
        for _ in 0..MAX_TICKETS + 1 {
            assert_eq!(tickets.offer(ticket()).unwrap(), a, "no new link");
        }
        let mut wider = ticket();
        wider.scope = Some("read write".into());
        assert_ne!(
            tickets.offer(wider).unwrap(),
            a,
            "another scope is another link"
        );
        tickets.reserve(&a).unwrap();
        assert_ne!(
            tickets.offer(ticket()).unwrap(),
            a,
            "an approved link is not handed out again"
        );
    }

    #[test]
    fn an_unknown_link_is_refused() {
        let tickets = Tickets::default();
        assert_eq!(tickets.get("nope").unwrap_err(), TicketError::Unknown);
        assert_eq!(tickets.reserve("nope").unwrap_err(), TicketError::Unknown);
    }
}
