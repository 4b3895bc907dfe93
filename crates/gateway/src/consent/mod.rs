//! Consent: a call that a rule with `effect = "consent"` holds until a person decides.
//!
//! The engine ([`Consent::hold`]) first looks for a remembered approval that covers the call
//! ([`memory`]); otherwise it asks the channels the config lists (`consent.channels`, see
//! `config::consent`), in order, until one answers or `consent.timeout` passes — then the
//! call is denied. A channel that cannot reach a person for this call (a client that did not
//! declare elicitation, no `[approvals]`, no terminal) is skipped, and says why in the audit.
//!
//! - [`elicit`]: an `elicitation/create` form to a 2025-06-18+ client with a session;
//! - [`input`]: the same form in an `input_required` result to a 2026-07-28 client, whose
//!   retry brings the answer back with a signed, single-use state;
//! - the approvals queue (`approvals`): the gateway's page and `portcullis approvals`; the
//!   caller gets progress notifications while it waits, and a message saying where;
//! - [`tty`]: a prompt on `/dev/tty` under `portcullis stdio`.
//!
//! A client can answer an elicitation by itself, so an approval through the first two counts
//! only where the config trusts them (`consent.trust_elicitation`); otherwise it is audited
//! and the next channel is asked. A denial through any channel counts. An approval never
//! covers another principal, another session (for `session`), another rule, or other
//! arguments (unless remembered for the tool). Every step is an audit record of event
//! `consent`: `requested`, `remembered`, `asked`, `skipped`, `failed`, `untrusted`,
//! `approved`, `denied`, `timeout`, `unavailable`, `refused` (a bad `requestState`).

pub mod approvals;
mod channels;
pub mod elicit;
pub mod input;
pub mod memory;
pub mod render;
pub mod request;
pub mod tty;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::oneshot;

use crate::config::{ConsentChannel as Channel, ConsentSettings, RememberChoice};
use crate::upstream::Reply;
use channels::Asked;
use request::{ConsentAnswer, ConsentRequest, Remember, Scope};

/// How often a caller waiting for the approvals page (or the terminal) hears that it still
/// waits.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The gateway's consent state: remembered approvals, the signer of `input_required`
/// states, and the terminal.
#[derive(Default)]
pub struct Consent {
    pub memory: memory::ConsentMemory,
    states: input::StateSigner,
    terminal: tty::Terminal,
}

impl Consent {
    /// Consent whose `always` approvals are kept in the state store.
    pub fn with_store(store: std::sync::Arc<dyn portcullis_store::Store>) -> Self {
        Consent {
            memory: memory::ConsentMemory::with_store(store),
            ..Consent::default()
        }
    }
}

/// The client's side of a held call (implemented by the session).
pub trait ClientSide: Send + Sync {
    /// Whether the client can show a form now: `Ok(with_mode)` (`with_mode` for 2025-11-25
    /// and later, where form requests carry `mode`), or why not.
    fn can_elicit(&self) -> Result<bool, String>;
    /// Sends `elicitation/create` with `params`; the request's id and where its answer comes.
    fn elicit(&self, params: Value) -> (i64, oneshot::Receiver<Reply>);
    /// Withdraws an elicitation nobody answered in time.
    fn withdraw(&self, id: i64, reason: &str);
    /// Sends a notification about the held call, on its request's stream.
    fn notify(&self, method: &str, params: Value);
}

/// A person's decision from the approvals queue, and who made it (`None`: none in time).
pub type QueueWait<'a> = Pin<Box<dyn Future<Output = Option<(ConsentAnswer, String)>> + Send + 'a>>;

/// The approvals queue, as the engine asks it.
pub trait ApprovalsChannel: Send + Sync {
    /// Whether a person can decide there at all (the gateway has `[approvals]`).
    fn is_open(&self) -> bool;
    /// Waits for a person's decision on the page or the CLI, and who made it: `None` when
    /// the request's deadline passes or the queue cannot take it.
    fn wait<'a>(&'a self, req: &'a ConsentRequest) -> QueueWait<'a>;
    /// Where a person decides on `id`, for the caller's notification.
    fn location(&self, id: &str) -> String;
}

impl ApprovalsChannel for approvals::ApprovalQueue {
    fn is_open(&self) -> bool {
        approvals::ApprovalQueue::is_open(self)
    }

    fn wait<'a>(&'a self, req: &'a ConsentRequest) -> QueueWait<'a> {
        Box::pin(async move { self.wait_for_decision(req).await.map(|d| (d.answer, d.by)) })
    }

    fn location(&self, id: &str) -> String {
        self.page_url(id)
            .unwrap_or_else(|| "the gateway's approvals page".to_owned())
    }
}

/// A call held for consent, with what the engine needs to ask about it.
pub struct Held<'a> {
    pub request: ConsentRequest,
    /// The principal's identity key (display form and OAuth client).
    pub identity: String,
    pub method: &'a str,
    /// The name as the upstream knows it (what approvals are remembered for).
    pub upstream_name: &'a str,
    /// The deciding rule's position in the file.
    pub rule_index: Option<usize>,
    /// The deciding rule's key for remembered approvals (`ConsentConfig::rule_key`).
    pub rule_key: String,
    pub settings: ConsentSettings,
    /// A 2026-07-28 client: no session, no server→client requests.
    pub stateless: bool,
    /// For a stateless call: whether the request declared `elicitation` (form) in `_meta`.
    pub inline_elicitation: bool,
    /// The consent parts of a retry (`requestState`, `inputResponses`).
    pub retry: input::Retry,
    /// The call's `_meta.progressToken`, if it sent one.
    pub progress_token: Option<Value>,
    pub client: &'a dyn ClientSide,
    pub approvals: Option<&'a dyn ApprovalsChannel>,
    /// Running as `portcullis stdio` (the only mode with a terminal channel).
    pub stdio: bool,
    /// Longest a `session` approval can matter: the session's lifetime.
    pub session_ttl: Duration,
    /// Writes one `consent` audit record: (decision, reason).
    pub audit: &'a (dyn Fn(&'static str, String) + Send + Sync),
}

/// What became of a held call.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Approved (now, or earlier and remembered): how, for the decision record.
    Approved(String),
    /// Denied, timed out, or no channel could ask: why.
    Denied(String),
    /// A stateless client is asked: the `input_required` result to answer the call with.
    Ask(Value),
    /// A retry's `requestState` was forged, foreign, expired or replayed.
    BadState(input::StateError),
}

/// What one channel's answer settled.
enum Settled {
    Done(Verdict),
    /// A client's own approval where it is not trusted: the next channel decides.
    Untrusted,
}

impl Held<'_> {
    fn subject(&self) -> memory::Subject {
        memory::Subject {
            identity: self.identity.clone(),
            server: self.request.server.clone(),
            name: self.upstream_name.to_owned(),
            rule: self.rule_key.clone(),
        }
    }

    fn binding(&self) -> input::Binding {
        input::Binding {
            identity: self.identity.clone(),
            server: self.request.server.clone(),
            name: self.upstream_name.to_owned(),
            method: self.method.to_owned(),
            rule: self.rule_index,
            digest: self.request.arguments_digest.clone(),
        }
    }

    fn form_context(&self, with_mode: bool) -> elicit::FormContext<'_> {
        elicit::FormContext {
            method: self.method,
            settings: &self.settings,
            has_session: !self.stateless && !self.request.session.is_empty(),
            with_mode,
        }
    }

    fn audit(&self, decision: &'static str, reason: String) {
        (self.audit)(decision, reason)
    }
}

fn describe_answer(remember: Remember, scope: Scope) -> String {
    let how_long = match remember {
        Remember::Once => "once".to_owned(),
        Remember::Session => "for this session".to_owned(),
        Remember::Always { ttl } => format!("for {}", elicit::say(ttl)),
    };
    let what = match scope {
        Scope::Arguments => "these arguments",
        Scope::Tool => "any arguments",
    };
    format!("{how_long}, {what}")
}

impl Consent {
    /// Decides a held call: see the module docs.
    pub async fn hold(&self, mut held: Held<'_>) -> Verdict {
        let mut start = 0;
        if let Some(state) = held.retry.state.clone() {
            let verified = match self.states.verify(&state, &held.binding()) {
                Ok(v) => v,
                Err(e) => {
                    held.audit("refused", format!("input_required: {e}"));
                    return Verdict::BadState(e);
                }
            };
            held.request.id = verified.request;
            held.request.deadline = Instant::now() + verified.remaining;
            let Some(result) = held.retry.answer.clone() else {
                // The retry did not answer: ask again, within what is left of the time.
                return self.ask_inline(&held);
            };
            let answer = elicit::answer(&result, &held.form_context(true));
            match self.settle(&held, Channel::InputRequired, answer).await {
                Settled::Done(v) => return v,
                Settled::Untrusted => {
                    start = held
                        .settings
                        .channels
                        .iter()
                        .position(|c| *c == Channel::InputRequired)
                        .map_or(held.settings.channels.len(), |i| i + 1);
                }
            }
        } else {
            held.audit(
                "requested",
                format!(
                    "request {}; channels {}; timeout {}",
                    held.request.id,
                    held.settings
                        .channels
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    elicit::say(held.settings.timeout)
                ),
            );
            let found = self
                .memory
                .lookup(
                    &held.subject(),
                    &held.request.session,
                    &held.request.arguments_digest,
                )
                .await;
            match found {
                memory::Lookup::Covered(c) => {
                    held.audit("remembered", c.how.clone());
                    return Verdict::Approved(format!("approved earlier: {}", c.how));
                }
                memory::Lookup::Failed(why) => {
                    held.audit(
                        "failed",
                        format!("remembered approvals: {why}; a person is asked"),
                    );
                }
                memory::Lookup::Nothing => {}
            }
        }
        self.ask_channels(&held, start).await
    }

    async fn ask_channels(&self, held: &Held<'_>, start: usize) -> Verdict {
        let deadline = held.request.deadline;
        // A client's own approval that did not count (earlier in this exchange, or below).
        let mut untrusted = start > 0;
        let mut skipped: Vec<String> = Vec::new();
        let mut skip = |held: &Held<'_>, channel: Channel, why: String| {
            held.audit("skipped", format!("{}: {why}", channel.as_str()));
            skipped.push(format!("{}: {why}", channel.as_str()));
        };
        let channels = held.settings.channels.get(start..).unwrap_or_default();
        let mut timed_out = false;
        for &channel in channels {
            if Instant::now() >= deadline {
                timed_out = true;
                break;
            }
            let answer = match channel {
                Channel::Elicitation => {
                    if held.stateless {
                        skip(
                            held,
                            channel,
                            "a 2026-07-28 client is asked with input_required".into(),
                        );
                        continue;
                    }
                    let with_mode = match held.client.can_elicit() {
                        Ok(m) => m,
                        Err(why) => {
                            skip(held, channel, why);
                            continue;
                        }
                    };
                    match self.elicit(held, with_mode).await {
                        Asked::Answer(a) => a,
                        Asked::TimedOut => {
                            timed_out = true;
                            break;
                        }
                        Asked::Failed(why) => {
                            held.audit("failed", format!("elicitation: {why}"));
                            continue;
                        }
                    }
                }
                Channel::InputRequired => {
                    if !held.stateless {
                        skip(
                            held,
                            channel,
                            "only 2026-07-28 clients answer input_required".into(),
                        );
                        continue;
                    }
                    if held.retry.state.is_some() {
                        // Asked already in this exchange, and answered untrusted.
                        continue;
                    }
                    if !held.inline_elicitation {
                        skip(
                            held,
                            channel,
                            "the request did not declare the elicitation capability".into(),
                        );
                        continue;
                    }
                    return self.ask_inline(held);
                }
                Channel::Approvals => {
                    let Some(queue) = held.approvals.filter(|q| q.is_open()) else {
                        skip(held, channel, "[approvals] is not configured".into());
                        continue;
                    };
                    match self.wait_approvals(held, queue).await {
                        Some(a) => a,
                        None if Instant::now() >= deadline => {
                            timed_out = true;
                            break;
                        }
                        None => {
                            held.audit(
                                "failed",
                                "approvals: the queue could not take the request".into(),
                            );
                            continue;
                        }
                    }
                }
                Channel::Tty => {
                    if !held.stdio {
                        skip(held, channel, "only under portcullis stdio".into());
                        continue;
                    }
                    if !tty::available() {
                        skip(held, channel, "no interactive terminal".into());
                        continue;
                    }
                    match self.ask_terminal(held).await {
                        Ok(a) => a,
                        Err(tty::TtyError::TimedOut) => {
                            timed_out = true;
                            break;
                        }
                        Err(e) => {
                            held.audit("failed", format!("tty: {e}"));
                            continue;
                        }
                    }
                }
            };
            match self.settle(held, channel, answer).await {
                Settled::Done(v) => return v,
                Settled::Untrusted => untrusted = true,
            }
        }
        if timed_out || Instant::now() >= deadline {
            let why = format!("no decision within {}", elicit::say(held.settings.timeout));
            held.audit("timeout", why.clone());
            return Verdict::Denied(why);
        }
        let why = if untrusted {
            "only the client approved it, and this rule does not count a client's own approval (consent.trust_elicitation); no other channel decided".to_owned()
        } else if skipped.is_empty() {
            "no consent channel gave a decision".to_owned()
        } else {
            format!(
                "no consent channel could ask a person ({})",
                skipped.join("; ")
            )
        };
        held.audit("unavailable", why.clone());
        Verdict::Denied(why)
    }

    /// What an answer through `channel` decides.
    async fn settle(&self, held: &Held<'_>, channel: Channel, answer: ConsentAnswer) -> Settled {
        let name = channel.as_str();
        let (remember, scope) = match answer {
            ConsentAnswer::Deny { reason } => {
                held.audit("denied", format!("{name}: {reason}"));
                return Settled::Done(Verdict::Denied(format!(
                    "a person denied it through {name}: {reason}"
                )));
            }
            ConsentAnswer::Approve { remember, scope } => (remember, scope),
        };
        if channel.answered_by_client() && !held.settings.trust_elicitation {
            held.audit(
                "untrusted",
                format!(
                    "{name}: the client approved, but this rule does not count a client's own answer (consent.trust_elicitation = false); the next channel decides"
                ),
            );
            return Settled::Untrusted;
        }
        // Never more than the config offers, whatever a channel says.
        let remember = match remember {
            Remember::Session if held.settings.allows(RememberChoice::Session) => {
                if held.stateless || held.request.session.is_empty() {
                    Remember::Once
                } else {
                    Remember::Session
                }
            }
            Remember::Always { ttl } if held.settings.allows(RememberChoice::Always) => {
                Remember::Always {
                    ttl: ttl.min(held.settings.always_ttl),
                }
            }
            _ => Remember::Once,
        };
        let scope = if held.settings.for_tool {
            scope
        } else {
            Scope::Arguments
        };
        let described = describe_answer(remember, scope);
        let kept = self
            .memory
            .keep(
                held.subject(),
                memory::Grant {
                    session: &held.request.session,
                    digest: &held.request.arguments_digest,
                    remember,
                    scope,
                    how: format!("{name}, {described}, request {}", held.request.id),
                },
                held.session_ttl,
            )
            .await;
        held.audit("approved", format!("{name}: {described}"));
        if let Err(why) = kept {
            held.audit(
                "failed",
                format!(
                    "the approval could not be remembered ({why}); the next call is asked again"
                ),
            );
        }
        Settled::Done(Verdict::Approved(format!(
            "approved by a person through {name} ({described})"
        )))
    }

    /// The `input_required` result asking a stateless client, with a fresh signed state.
    fn ask_inline(&self, held: &Held<'_>) -> Verdict {
        let remaining = held
            .request
            .deadline
            .saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            let why = format!("no decision within {}", elicit::say(held.settings.timeout));
            held.audit("timeout", why.clone());
            return Verdict::Denied(why);
        }
        let state = self
            .states
            .issue(held.binding(), &held.request.id, remaining);
        let form = elicit::form(&held.request, &held.form_context(true));
        held.audit(
            "asked",
            format!("input_required: request {}", held.request.id),
        );
        Verdict::Ask(input::input_required(form, &state))
    }
}

#[cfg(test)]
mod tests;
