//! What an upstream sends on its own initiative, through this session: its requests to the
//! client (sampling, elicitation, roots — the gateway answers `roots/list` itself for a
//! server with configured roots) mapped onto the session's id space, and its notifications
//! translated (ids, progress tokens) before they leave through the session's [`Outbound`](super::Outbound).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use portcullis_wire::{Envelope, ErrorObject, Id, Kind, codes};
use serde_json::Value;

use super::{InboundRequest, Session, mrtr};
use crate::mcp;
use crate::upstream::{Reply, UpstreamConn, UpstreamListener};

impl Session {
    /// Maps an upstream's server→client request onto this session's own id space.
    fn relay_inbound_request(
        &self,
        conn: &Arc<UpstreamConn>,
        mut msg: Envelope,
        related: Option<Id>,
    ) {
        let method = msg.method().unwrap_or_default().to_owned();
        let Some(upstream_id) = msg.id.clone() else {
            return;
        };
        if method == mcp::ROOTS_LIST
            && let Some(roots) = conn.configured_roots()
        {
            self.answer_roots_request(conn, roots.clone(), upstream_id, related);
            return;
        }
        let needed = match method.as_str() {
            mcp::SAMPLING_CREATE_MESSAGE => Some("sampling"),
            mcp::ELICITATION_CREATE => Some("elicitation"),
            mcp::ROOTS_LIST => Some("roots"),
            _ => None,
        };
        let refuse = |why: String| {
            let conn = conn.clone();
            let upstream_id = upstream_id.clone();
            tokio::spawn(async move {
                conn.respond_error(upstream_id, &ErrorObject::new(codes::METHOD_NOT_FOUND, why))
                    .await;
            });
        };
        let Some(capability) = needed else {
            refuse(format!("the gateway does not relay {method} requests"));
            return;
        };
        if self.modern {
            let request = mrtr::InputRequest {
                conn: conn.clone(),
                upstream_id: upstream_id.clone(),
                method,
                params: msg.params,
                narrow: None,
            };
            if let Err(why) = self.route_input_request(request, related, capability) {
                refuse(why);
            }
            return;
        }
        if !self.client_has(capability) {
            refuse(format!(
                "the client did not declare the {capability:?} capability"
            ));
            return;
        }
        let id = self.next_inbound_id.fetch_add(1, Ordering::Relaxed);
        self.lock().inbound.insert(
            id,
            InboundRequest::Upstream {
                conn: Arc::downgrade(conn),
                upstream_id,
            },
        );
        msg.id = Some(Id::Num(id));
        self.outbound.send(msg, related.as_ref());
    }

    /// Asks the client a server→client request on the gateway's own behalf (see `mrtr`) and
    /// returns the channel its answer will arrive on.
    pub(crate) fn ask_client(
        &self,
        method: &str,
        params: Option<Box<serde_json::value::RawValue>>,
        related: Option<&Id>,
    ) -> tokio::sync::oneshot::Receiver<Reply> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let id = self.next_inbound_id.fetch_add(1, Ordering::Relaxed);
        self.lock().inbound.insert(id, InboundRequest::Local(tx));
        self.outbound
            .send(Envelope::request(Id::Num(id), method, params), related);
        rx
    }

    /// Rewrites what a virtual server must rewrite in a notification, and drops what the
    /// client may not see. Returns None to drop.
    fn translate_notification(&self, server: &str, mut msg: Envelope) -> Option<Envelope> {
        let method = msg.method().unwrap_or_default();
        match method {
            mcp::NOTIFICATION_RESOURCES_UPDATED => {
                let mut params = crate::json::RawObject::parse(msg.params.as_deref()?).ok()?;
                let uri = params.get_str("uri")?;
                let target = portcullis_policy::Target {
                    server,
                    kind: portcullis_policy::Kind::Resource,
                    name: &uri,
                };
                if !self.gateway.policy().allows(&self.caller(), &target) {
                    return None;
                }
                if self.route.is_virtual() {
                    params.set_str("uri", &self.route.expose_uri(server, &uri));
                    msg.params = Some(params.to_raw());
                }
                Some(msg)
            }
            mcp::NOTIFICATION_CANCELLED => {
                // The upstream withdraws a request it sent: name it by the id the client knows.
                #[derive(serde::Deserialize)]
                struct Cancelled {
                    #[serde(rename = "requestId")]
                    request_id: Id,
                }
                let c: Cancelled = msg.params_as().ok().flatten()?;
                let mut st = self.lock();
                let ours = st
                    .inbound
                    .iter()
                    .find(|(_, r)| matches!(r, InboundRequest::Upstream { upstream_id, .. } if *upstream_id == c.request_id))
                    .map(|(id, _)| *id)?;
                st.inbound.remove(&ours);
                drop(st);
                let mut params = crate::json::RawObject::parse(msg.params.as_deref()?).ok()?;
                params.set("requestId", mcp::raw(&Value::from(ours)));
                msg.params = Some(params.to_raw());
                Some(msg)
            }
            // Text a person or a model reads: cleaned (`content_step`).
            mcp::NOTIFICATION_PROGRESS | mcp::NOTIFICATION_MESSAGE => {
                self.clean_notification(server, msg)
            }
            mcp::NOTIFICATION_TOOLS_LIST_CHANGED
            | mcp::NOTIFICATION_PROMPTS_LIST_CHANGED
            | mcp::NOTIFICATION_RESOURCES_LIST_CHANGED
            | mcp::NOTIFICATION_ELICITATION_COMPLETE => Some(msg),
            other => {
                tracing::debug!(server, method = other, "upstream notification not relayed");
                None
            }
        }
    }
}

impl UpstreamListener for Session {
    fn on_upstream_message(&self, conn: &Arc<UpstreamConn>, msg: Envelope, related: Option<Id>) {
        if self.is_closed() {
            return;
        }
        match msg.kind() {
            Kind::Request => self.relay_inbound_request(conn, msg, related),
            Kind::Notification => {
                if let Some(msg) = self.translate_notification(conn.server(), msg) {
                    self.outbound.send(msg, related.as_ref());
                }
            }
            Kind::Response | Kind::ErrorResponse => {}
        }
    }
}
