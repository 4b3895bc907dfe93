//! What the upstream sends: answers are matched to the requests this connection sent, and
//! everything else is routed to the session (and client request) it belongs to.

use std::sync::{Arc, Weak};

use portcullis_wire::{Envelope, ErrorObject, Id, Kind, codes};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{Ordering, UpstreamConn, UpstreamListener};
use crate::mcp as methods;
use crate::upstream::Reply;

impl UpstreamConn {
    /// Entry point for every message a transport reads from the upstream. `stream_of` is the
    /// id of the request whose HTTP response stream carried the message, if any.
    pub(crate) fn dispatch(self: &Arc<Self>, msg: Envelope, stream_of: Option<u64>) {
        match msg.kind() {
            Kind::Response | Kind::ErrorResponse => self.complete(msg),
            Kind::Request | Kind::Notification => self.route_inbound(msg, stream_of),
        }
    }

    fn complete(&self, msg: Envelope) {
        let id = match &msg.id {
            Some(Id::Num(n)) => u64::try_from(*n).ok(),
            _ => None,
        };
        let pending = id.and_then(|id| {
            let mut st = self.lock();
            let p = st.pending.remove(&id)?;
            if let Some((token, _)) = &p.progress {
                st.progress.remove(token);
            }
            Some(p)
        });
        let Some(pending) = pending else {
            let issued = id.is_some_and(|id| id < self.next_id.load(Ordering::Relaxed));
            if issued {
                // A request the gateway already gave up on (cancelled, timed out): servers
                // may still answer it, and the answer has nowhere to go.
                tracing::debug!(server = %self.server, id = ?msg.id, "late answer to a finished request; dropped");
            } else {
                tracing::warn!(server = %self.server, id = ?msg.id, "upstream sent a response with an id nobody asked for; dropped");
            }
            return;
        };
        let reply = match (msg.result, msg.error) {
            (Some(result), _) => Reply::Result(result),
            (None, Some(error)) => Reply::Error(error),
            (None, None) => return,
        };
        let _ = pending.tx.send(Ok(reply));
    }

    fn route_inbound(self: &Arc<Self>, mut msg: Envelope, stream_of: Option<u64>) {
        let method = msg.method().unwrap_or_default().to_owned();
        let is_request = msg.kind() == Kind::Request;
        if is_request && method == methods::PING {
            if let Some(id) = msg.id.clone() {
                let this = self.clone();
                tokio::spawn(async move {
                    let _ = this
                        .respond(id, Reply::Result(methods::empty_object()))
                        .await;
                });
            }
            return;
        }
        if is_request
            && method == methods::ROOTS_LIST
            && self.shared
            && let (Some(roots), Some(id)) = (self.configured_roots(), msg.id.clone())
        {
            // A connection several sessions share cannot take one client's roots for all
            // of them: it gets the configured roots (a session's own connection gets them
            // narrowed by its client's, see `session::roots`).
            let (this, result) = (self.clone(), methods::raw(&roots.result()));
            tokio::spawn(async move {
                let _ = this.respond(id, Reply::Result(result)).await;
            });
            return;
        }
        if let Some(kind) = crate::upstream::catalog::ListKind::changed_by(&method) {
            self.catalog.invalidate(kind);
        }

        let target = if method == methods::NOTIFICATION_PROGRESS {
            match self.progress_target(&mut msg) {
                Some(t) => Some(t),
                None => {
                    tracing::debug!(server = %self.server, "progress for no pending request; dropped");
                    return;
                }
            }
        } else if method == methods::NOTIFICATION_CANCELLED {
            self.cancelled_target(&msg)
        } else {
            self.attribute(stream_of)
        };

        let Some((listener, related)) = target else {
            if is_request {
                if let Some(id) = msg.id.clone() {
                    let this = self.clone();
                    tokio::spawn(async move {
                        let err = ErrorObject::new(
                            codes::METHOD_NOT_FOUND,
                            format!("the gateway has no client to route {method} to"),
                        );
                        this.respond_error(id, &err).await;
                    });
                }
            } else {
                tracing::debug!(server = %self.server, method, "notification with no client to route to; dropped");
            }
            return;
        };
        let Some(listener) = listener.upgrade() else {
            return;
        };
        if is_request && let Some(id) = &msg.id {
            self.lock()
                .inbound
                .insert(id.to_string(), Arc::downgrade(&listener));
        }
        listener.on_upstream_message(self, msg, related);
    }

    /// Progress belongs to the request that carried the token; on a shared connection the
    /// caller's own token is restored.
    fn progress_target(
        &self,
        msg: &mut Envelope,
    ) -> Option<(Weak<dyn UpstreamListener>, Option<Id>)> {
        let params: Map<String, Value> = msg.params_as().ok().flatten()?;
        let token = params.get("progressToken")?.to_string();
        let st = self.lock();
        let id = *st.progress.get(&token)?;
        let pending = st.pending.get(&id)?;
        let origin = pending.origin.clone()?;
        if let Some((_, Some(original))) = &pending.progress {
            let mut params = params;
            params.insert("progressToken".into(), original.clone());
            msg.params = serde_json::to_string(&params)
                .ok()
                .and_then(|s| RawValue::from_string(s).ok());
        }
        Some((origin.listener, origin.downstream_id))
    }

    fn cancelled_target(&self, msg: &Envelope) -> Option<(Weak<dyn UpstreamListener>, Option<Id>)> {
        #[derive(serde::Deserialize)]
        struct Cancelled {
            #[serde(rename = "requestId")]
            request_id: Id,
        }
        let c: Cancelled = msg.params_as().ok().flatten()?;
        let listener = self.lock().inbound.remove(&c.request_id.to_string())?;
        Some((listener, None))
    }

    /// Which caller an unsolicited message belongs to (see the module docs).
    fn attribute(
        &self,
        stream_of: Option<u64>,
    ) -> Option<(Weak<dyn UpstreamListener>, Option<Id>)> {
        let st = self.lock();
        if let Some(id) = stream_of
            && let Some(origin) = st.pending.get(&id).and_then(|p| p.origin.clone())
        {
            return Some((origin.listener, origin.downstream_id));
        }
        if let Some(owner) = &self.owner {
            let newest = st
                .pending
                .iter()
                .filter(|(_, p)| p.origin.as_ref().is_some_and(|o| o.downstream_id.is_some()))
                .max_by_key(|(id, _)| **id)
                .and_then(|(_, p)| p.origin.as_ref()?.downstream_id.clone());
            return Some((owner.clone(), newest));
        }
        // A connection shared between sessions has no relation to go by for a message that
        // came on no request's stream (stdio, or an HTTP server's standalone stream). With
        // exactly one call in flight it is about that call's work and goes to it; otherwise a
        // request is refused and a notification dropped. (Shared connections never span
        // principals, see `Gateway::shared_slot`, except where `instances = "shared"` asks
        // for one child for everybody.)
        let mut callers = st.pending.values().filter_map(|p| p.origin.clone());
        match (callers.next(), callers.next()) {
            (Some(only), None) => Some((only.listener, only.downstream_id)),
            _ => None,
        }
    }
}
