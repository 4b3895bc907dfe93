//! The consent step of admission: a call whose deciding rule says `consent` is held here
//! until the consent engine ([`crate::consent`]) has a person's decision, or none in time.
//!
//! This file is the session's side of it: what the call's params say about asking (a
//! progress token, a 2026-07-28 retry carrying the gateway's consent state and answer), the
//! [`ClientSide`] through which the engine reaches this session's client (an elicitation on
//! the call's own stream, notifications about the wait), and the `consent` audit records,
//! written under the session's principal and the call's server, method and name.

use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use portcullis_policy::Decision;
use portcullis_wire::{Envelope, ErrorObject, Id, ProtocolVersion, codes};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::admission::{Call, Refused};
use super::{InboundRequest, Session};
use crate::audit::Entry;
use crate::consent::request::ConsentRequest;
use crate::consent::{ApprovalsChannel, ClientSide, Held, Verdict, input};
use crate::mcp;
use crate::upstream::Reply;

/// What a call's params say about asking a person for it.
pub(super) struct ConsentContext {
    /// The client's request id: where notifications and an elicitation about the call go.
    pub id: Id,
    /// `_meta.progressToken`.
    pub progress_token: Option<Value>,
    /// A retry's consent state and answer (2026-07-28).
    pub retry: input::Retry,
    /// The request declared `elicitation` (form) in its own `_meta` (2026-07-28).
    pub inline_elicitation: bool,
}

impl ConsentContext {
    /// Read from the call's params, already split into members by the relay: only `_meta`
    /// is parsed (small), and `inputResponses` only for a retry carrying our state — the
    /// arguments are not parsed again for a call no consent rule holds.
    pub fn new(id: &Id, method: &str, params: &crate::json::RawObject) -> ConsentContext {
        let meta: Value = params
            .get("_meta")
            .and_then(|m| serde_json::from_str(m.get()).ok())
            .unwrap_or(Value::Null);
        let progress_token = meta
            .get("progressToken")
            .filter(|t| t.is_string() || t.is_number())
            .cloned();
        let inline_elicitation = super::mrtr::may_require_input(method)
            && meta
                .get(mcp::META_CLIENT_CAPABILITIES)
                .and_then(|c| c.get("elicitation"))
                .is_some_and(takes_forms);
        let state = params.get_str("requestState");
        let responses = || {
            let raw = params.get("inputResponses")?;
            serde_json::from_str::<Value>(raw.get()).ok()
        };
        ConsentContext {
            id: id.clone(),
            progress_token,
            retry: input::Retry::new(state, responses),
            inline_elicitation,
        }
    }

    /// The params to forward: without the gateway's own consent state and answer, which
    /// are for the gateway and mean nothing (or something else) to the upstream.
    pub fn strip(
        &self,
        obj: &mut crate::json::RawObject,
        params: Option<Box<RawValue>>,
    ) -> Option<Box<RawValue>> {
        if self.retry.state.is_none() {
            return params;
        }
        obj.remove("requestState");
        obj.remove("inputResponses");
        Some(obj.to_raw())
    }
}

/// Whether an `elicitation` capability object includes form mode: an empty object does
/// (2025-06-18, and 2025-11-25's backwards-compatible form), or one naming `form`.
fn takes_forms(cap: &Value) -> bool {
    cap.as_object()
        .is_some_and(|o| o.is_empty() || o.get("form").is_some_and(Value::is_object))
}

/// The principal's key in remembered approvals and consent states: who, and through which
/// OAuth client (the display form leaves the client out).
fn identity(p: &portcullis_policy::Principal) -> String {
    format!("{p}\u{1f}{}", p.client_id.as_deref().unwrap_or(""))
}

/// This session's client, as the consent engine reaches it for one call.
struct SessionClient<'a> {
    session: &'a Session,
    call_id: &'a Id,
}

impl ClientSide for SessionClient<'_> {
    fn can_elicit(&self) -> Result<bool, String> {
        let s = self.session;
        let version = s
            .version()
            .unwrap_or(ProtocolVersion::LATEST_WITH_INITIALIZE);
        if version < ProtocolVersion::V2025_06_18 {
            return Err(format!(
                "the client speaks {version}, which has no elicitation (2025-06-18 and later)"
            ));
        }
        let cap = s.lock().client_caps.get("elicitation").cloned();
        match cap {
            None => Err("the client did not declare the elicitation capability".into()),
            Some(c) if !takes_forms(&c) => {
                Err("the client declared elicitation without form mode".into())
            }
            Some(_) => Ok(version >= ProtocolVersion::V2025_11_25),
        }
    }

    fn elicit(&self, params: Value) -> (i64, oneshot::Receiver<Reply>) {
        let s = self.session;
        let (tx, rx) = oneshot::channel();
        let id = s.next_inbound_id.fetch_add(1, Ordering::Relaxed);
        s.lock().inbound.insert(id, InboundRequest::Local(tx));
        s.outbound.send(
            Envelope::request(
                Id::Num(id),
                mcp::ELICITATION_CREATE,
                Some(mcp::raw(&params)),
            ),
            Some(self.call_id),
        );
        (id, rx)
    }

    fn withdraw(&self, id: i64, reason: &str) {
        let s = self.session;
        if s.lock().inbound.remove(&id).is_some() {
            let params = json!({ "requestId": id, "reason": reason });
            s.outbound.send(
                Envelope::notification(mcp::NOTIFICATION_CANCELLED, Some(mcp::raw(&params))),
                Some(self.call_id),
            );
        }
    }

    fn notify(&self, method: &str, params: Value) {
        self.session.outbound.send(
            Envelope::notification(method, Some(mcp::raw(&params))),
            Some(self.call_id),
        );
    }
}

impl Session {
    /// Holds a call its rule wants consent for; `Ok` with how it was approved (for the
    /// decision record), or what to answer instead: a denial, a bad retry, or (2026-07-28)
    /// the `input_required` result that asks the client's person.
    pub(super) async fn hold_for_consent(
        &self,
        call: &Call<'_>,
        decision: &Decision,
        rule: &str,
    ) -> Result<String, Refused> {
        let gateway = &self.gateway;
        let policy = gateway.policy();
        let rule_index = decision
            .rule
            .and_then(|i| policy.rules().get(i))
            .map(|r| r.origin.index);
        let server = decision.server.as_str();
        let settings = gateway.config.consent.settings(server, rule_index);
        let caller = self.caller();
        let arguments = call.args.cloned().unwrap_or_else(|| json!({}));
        let request = ConsentRequest {
            id: crate::ids::random_token(32),
            principal: caller.to_string(),
            session: if self.modern {
                String::new()
            } else {
                self.id.to_string()
            },
            server: server.to_owned(),
            tool: call.name.to_owned(),
            arguments_digest: portcullis_guard::digest(&arguments),
            arguments,
            rule: rule.to_owned(),
            created: SystemTime::now(),
            deadline: Instant::now() + settings.timeout,
        };
        let audit = |what: &'static str, reason: String| {
            gateway.audit.note(
                self.audit_context(),
                Entry {
                    event: "consent",
                    server,
                    method: call.method,
                    name: &decision.name,
                    args: call.args,
                    decision: what,
                    rule: Some(rule.to_owned()),
                    reason,
                    ..Entry::default()
                },
            )
        };
        let client = SessionClient {
            session: self,
            call_id: &call.consent.id,
        };
        let held = Held {
            request,
            identity: identity(&caller),
            method: call.method,
            upstream_name: &decision.name,
            rule_index,
            rule_key: gateway.config.consent.rule_key(rule_index),
            settings,
            stateless: self.modern,
            inline_elicitation: call.consent.inline_elicitation,
            retry: call.consent.retry.clone(),
            progress_token: call.consent.progress_token.clone(),
            client: &client,
            approvals: Some(&*gateway.approvals as &dyn ApprovalsChannel),
            stdio: gateway.config.run_mode == crate::config::RunMode::Stdio,
            session_ttl: gateway.config.gateway.session_lifetime,
            audit: &audit,
        };
        // The client may cancel the call while it waits: the wait (and with it a pending
        // approval, or an open question) ends, and nothing is answered.
        let (cancel, cancelled) = oneshot::channel();
        self.lock().held.insert(call.consent.id.clone(), cancel);
        let verdict = tokio::select! {
            v = gateway.consent.hold(held) => Some(v),
            Ok(()) = cancelled => None,
        };
        self.lock().held.remove(&call.consent.id);
        let Some(verdict) = verdict else {
            audit("cancelled", "the client cancelled the call".to_owned());
            return Err(Refused::Cancelled);
        };
        match verdict {
            Verdict::Approved(how) => Ok(how),
            Verdict::Ask(result) => Err(Refused::Answer(mcp::raw(&result))),
            Verdict::Denied(why) => {
                let err = ErrorObject::new(
                    codes::POLICY_DENIED,
                    format!(
                        "{rule} requires a person's consent for this call, and there is none: {why}; the call was not made"
                    ),
                );
                Err(self.refuse_decision(call, decision, rule, "consent", err))
            }
            Verdict::BadState(e) => {
                let err =
                    ErrorObject::new(codes::INVALID_PARAMS, "Invalid or expired requestState")
                        .with_data(
                            json!({ "reason": "invalid_request_state", "detail": e.to_string() }),
                        );
                Err(self.refuse_decision(call, decision, rule, "consent", err))
            }
        }
    }
}
