//! A server with configured roots asks the gateway, not the client, for its roots.
//!
//! What it is told is the configured roots narrowed by the client's (see [`crate::roots`]),
//! in whichever way the two protocol eras allow:
//!
//! - **A stateful client** (2025-xx) has roots for its whole session. When it declared the
//!   `roots` capability the gateway asks it for them (`roots/list`, its own request) and
//!   keeps the answer until the client says they changed (`notifications/roots/list_changed`,
//!   passed on to the servers) — unless the client did not promise to say so, when it is
//!   asked each time. Without the capability the server gets the configured roots.
//! - **A 2026-07-28 client** declares its capabilities per request and can only be asked
//!   through an `input_required` round. A stateful server's `roots/list` in the middle of a
//!   call becomes such a round when the call declared `roots`, and the client's answer is
//!   narrowed before it goes upstream; otherwise the server gets the configured roots. A
//!   stateless server asks in its own `input_required` result: when the call declared
//!   `roots` the question reaches the client and the answer is narrowed on the retry;
//!   otherwise the gateway answers it and retries the call itself, and only the other
//!   questions, if any, reach the client.
//!
//! However it got there, a roots answer that goes to such a server is one the gateway
//! built: a client's own answer under any `inputResponses` key is narrowed first.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use portcullis_wire::{ErrorObject, Id, codes};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::relay::Outcome;
use super::{InboundRequest, Session};
use crate::config::SystemPaths;
use crate::mcp;
use crate::roots::{ClientRoot, ConfiguredRoots, client_roots};
use crate::upstream::{Reply, UpstreamConn};

/// Most rounds the gateway answers roots for a stateless server within one client request.
const MAX_ROUNDS: usize = 10;

/// The client's roots as last read, until it says they changed.
#[derive(Default)]
pub(super) struct ClientRootsCache {
    roots: Option<Arc<Vec<ClientRoot>>>,
    /// Bumped by every `notifications/roots/list_changed`: an answer read before the
    /// latest change is not kept.
    generation: u64,
}

impl Session {
    /// A stateful server with configured roots asked for them (`upstream_id`): answered by
    /// the gateway, never relayed as it is.
    pub(super) fn answer_roots_request(
        &self,
        conn: &Arc<UpstreamConn>,
        roots: Arc<ConfiguredRoots>,
        upstream_id: Id,
        related: Option<Id>,
    ) {
        if self.modern && self.call_declares_roots(related.as_ref()) {
            let request = super::mrtr::InputRequest {
                conn: conn.clone(),
                upstream_id: upstream_id.clone(),
                method: mcp::ROOTS_LIST.to_owned(),
                params: None,
                narrow: Some(roots.clone()),
            };
            if self
                .route_input_request(request, related.clone(), "roots")
                .is_ok()
            {
                return;
            }
        }
        let Some(this) = self.weak.upgrade() else {
            return;
        };
        let conn = conn.clone();
        tokio::spawn(async move {
            let reply = this
                .roots_reply(&roots, related.as_ref(), conn.timeout())
                .await;
            if let Err(e) = conn.respond(upstream_id, reply).await {
                tracing::debug!(session = %this.id, error = %e, "could not answer the upstream's roots/list");
            }
        });
    }

    /// Whether the 2026-07-28 client request `related` declared the `roots` capability.
    fn call_declares_roots(&self, related: Option<&Id>) -> bool {
        let st = self.lock();
        related
            .and_then(|id| st.inputs.get(id))
            .is_some_and(|channel| channel.caps.get("roots").is_some_and(Value::is_object))
    }

    /// The answer to a server's `roots/list`: the configured roots, narrowed by the roots
    /// of a stateful client that has some.
    pub(super) async fn roots_reply(
        &self,
        roots: &ConfiguredRoots,
        related: Option<&Id>,
        wait: Duration,
    ) -> Reply {
        if self.modern || !self.client_has("roots") {
            return Reply::Result(mcp::raw(&roots.result()));
        }
        match self.client_roots(related, wait).await {
            Ok(client) => Reply::Result(mcp::raw(&roots.narrowed_result(&client))),
            Err(e) => Reply::Error(mcp::error_raw(&e)),
        }
    }

    /// Same, delivered on a channel (for rounds that wait on several answers at once).
    pub(super) fn roots_reply_later(
        self: &Arc<Self>,
        roots: Arc<ConfiguredRoots>,
        related: Id,
        wait: Duration,
    ) -> tokio::sync::oneshot::Receiver<Reply> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let this = self.clone();
        tokio::spawn(async move {
            let _ = tx.send(this.roots_reply(&roots, Some(&related), wait).await);
        });
        rx
    }

    /// The stateful client's roots: kept from the last answer while the client promised to
    /// tell of changes, else asked now (at most `wait`).
    async fn client_roots(
        &self,
        related: Option<&Id>,
        wait: Duration,
    ) -> Result<Arc<Vec<ClientRoot>>, ErrorObject> {
        let generation = {
            let st = self.lock();
            if let Some(roots) = &st.client_roots.roots {
                return Ok(roots.clone());
            }
            st.client_roots.generation
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let id = self.next_inbound_id.fetch_add(1, Ordering::Relaxed);
        self.lock().inbound.insert(id, InboundRequest::Local(tx));
        self.outbound.send(
            portcullis_wire::Envelope::request(Id::Num(id), mcp::ROOTS_LIST, None),
            related,
        );
        let answer = tokio::time::timeout(wait, rx).await;
        self.lock().inbound.remove(&id);
        let result = match answer {
            Ok(Ok(Reply::Result(r))) => r,
            Ok(Ok(Reply::Error(e))) => {
                return Err(ErrorObject::new(
                    codes::INTERNAL_ERROR,
                    format!("the client refused roots/list: {}", e.get()),
                ));
            }
            Ok(Err(_)) => {
                return Err(ErrorObject::new(
                    codes::INTERNAL_ERROR,
                    "the client session ended before it listed its roots",
                ));
            }
            Err(_) => {
                return Err(ErrorObject::new(
                    codes::REQUEST_TIMEOUT,
                    "the client did not list its roots in time",
                ));
            }
        };
        let value: Value = serde_json::from_str(result.get()).unwrap_or(Value::Null);
        let roots = Arc::new(client_roots(&value, &SystemPaths));
        let tells_changes = self
            .lock()
            .client_caps
            .get("roots")
            .and_then(|r| r.get("listChanged"))
            .and_then(Value::as_bool)
            == Some(true);
        let mut st = self.lock();
        if tells_changes && st.client_roots.generation == generation {
            st.client_roots.roots = Some(roots.clone());
        }
        Ok(roots)
    }

    /// The client's roots changed: read them again when next needed.
    pub(super) fn forget_client_roots(&self) {
        let mut st = self.lock();
        st.client_roots.roots = None;
        st.client_roots.generation += 1;
    }

    /// A 2026-07-28 client's call to a stateless server with configured roots: the
    /// server's roots questions are answered as the module docs say.
    pub(super) async fn forward_answering_roots(
        self: &Arc<Self>,
        id: &Id,
        conn: &Arc<UpstreamConn>,
        method: &str,
        params: Option<Box<RawValue>>,
        roots: &ConfiguredRoots,
    ) -> Outcome {
        let declared = super::mrtr::request_caps(params.as_deref())
            .get("roots")
            .is_some_and(Value::is_object);
        let Some(mut params) = params
            .as_deref()
            .and_then(|p| serde_json::from_str::<Map<String, Value>>(p.get()).ok())
        else {
            return self.forward_once(id, conn, method, params).await;
        };
        offer_roots(&mut params);
        for _ in 0..MAX_ROUNDS {
            narrow_answers(&mut params, roots);
            let outcome = self
                .forward_once(
                    id,
                    conn,
                    method,
                    Some(mcp::raw(&Value::Object(params.clone()))),
                )
                .await;
            let result = match outcome {
                Outcome::Reply(Reply::Result(r)) if super::mrtr::is_input_required(&r) => r,
                other => return other,
            };
            let Ok(Value::Object(mut round)) = serde_json::from_str::<Value>(result.get()) else {
                return Outcome::Reply(Reply::Result(result));
            };
            let asked = round
                .get("inputRequests")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let (roots_keys, others): (Vec<String>, Vec<String>) =
                asked.keys().cloned().partition(|k| {
                    asked[k].get("method").and_then(Value::as_str) == Some(mcp::ROOTS_LIST)
                });
            if roots_keys.is_empty() || declared {
                // The client answers; its answer is narrowed on the retry.
                return Outcome::Reply(Reply::Result(result));
            }
            let answered = params
                .get("inputResponses")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if others.iter().all(|k| answered.contains_key(k)) {
                let mut responses = answered;
                for key in roots_keys {
                    responses.insert(key, roots.result());
                }
                params.insert("inputResponses".into(), Value::Object(responses));
                match round.get("requestState") {
                    Some(state) => params.insert("requestState".into(), state.clone()),
                    None => params.remove("requestState"),
                };
                continue;
            }
            // Other questions are the client's: it sees only those, and the server asks for
            // its roots again on the retry if it still needs them.
            let rest: Map<String, Value> = asked
                .into_iter()
                .filter(|(k, _)| !roots_keys.contains(k))
                .collect();
            round.insert("inputRequests".into(), Value::Object(rest));
            return Outcome::Reply(Reply::Result(mcp::raw(&Value::Object(round))));
        }
        Outcome::Error(ErrorObject::new(
            codes::INTERNAL_ERROR,
            "the upstream kept asking for its roots; the gateway gave up",
        ))
    }
}

/// Declares `roots` in the call's own client capabilities, when it carries some: the
/// gateway answers roots questions whatever the client can do.
fn offer_roots(params: &mut Map<String, Value>) {
    if let Some(Value::Object(caps)) = params
        .get_mut("_meta")
        .and_then(|m| m.get_mut(mcp::META_CLIENT_CAPABILITIES))
    {
        caps.entry("roots")
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// Narrows every roots answer among the call's `inputResponses` (a `ListRootsResult` is the
/// only input response with a `roots` member) to the configured roots.
fn narrow_answers(params: &mut Map<String, Value>, roots: &ConfiguredRoots) {
    if let Some(Value::Object(responses)) = params.get_mut("inputResponses") {
        for answer in responses.values_mut() {
            if answer.get("roots").is_some() {
                *answer = roots.narrow_answer(answer, &SystemPaths);
            }
        }
    }
}
