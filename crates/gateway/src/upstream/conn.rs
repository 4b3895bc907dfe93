//! One live connection to an upstream server, independent of its transport.
//!
//! The connection owns the upstream side of every id: requests get ids minted here, and a
//! response is matched only against requests this connection sent. A response with an id
//! nobody asked for is dropped and logged, never delivered anywhere.
//!
//! Messages the upstream sends on its own initiative (progress, logging, list changes,
//! sampling/elicitation/roots requests) are handed to an [`UpstreamListener`] — the
//! downstream session — together with the downstream request they relate to, when that is
//! known. Relation comes from, in order: the progress token; the HTTP response stream the
//! message arrived on; for a connection owned by one session, the newest request in flight.
//! A connection shared between sessions goes by the one call in flight, if there is exactly
//! one; otherwise a request it cannot relate is refused and a notification dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use portcullis_wire::{Envelope, ErrorObject, Id, Kind, codes};

use crate::mcp::{self as methods, raw_error_envelope};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use super::catalog::Catalog;
use super::handshake::{Era, ServerIdentity};
use super::http::HttpIo;
use super::stdio::StdioIo;
use super::{Reply, UpstreamError};

/// Receives what an upstream sends on its own initiative.
pub trait UpstreamListener: Send + Sync {
    /// A notification or a server→client request from `conn`. `related` is the downstream
    /// client's request id this message belongs to, when known.
    fn on_upstream_message(&self, conn: &Arc<UpstreamConn>, msg: Envelope, related: Option<Id>);
}

/// Who a request was sent for: used to route what the upstream sends while serving it.
#[derive(Clone)]
pub struct Origin {
    pub listener: Weak<dyn UpstreamListener>,
    pub downstream_id: Option<Id>,
}

/// Headers of the 2026-07-28 protocol that mirror a request's body (HTTP upstreams only).
#[derive(Debug, Default)]
pub(crate) struct Routing {
    pub name: Option<String>,
    pub params: Vec<(String, String)>,
}

pub(crate) enum Transport {
    Stdio(StdioIo),
    Http(HttpIo),
}

struct Pending {
    tx: oneshot::Sender<Result<Reply, UpstreamError>>,
    origin: Option<Origin>,
    /// The progress token as the upstream sees it (JSON text) and, when the gateway
    /// rewrote it, the caller's original token.
    progress: Option<(String, Option<Value>)>,
}

#[derive(Default)]
struct ConnState {
    pending: HashMap<u64, Pending>,
    /// Upstream-visible progress token (JSON text) → request id.
    progress: HashMap<String, u64>,
    /// Server→client requests handed to a listener, by the upstream's id (JSON text), so a
    /// later `notifications/cancelled` from the upstream reaches the same listener.
    inbound: HashMap<String, Weak<dyn UpstreamListener>>,
    closed: Option<String>,
}

/// A live connection to one upstream server.
pub struct UpstreamConn {
    server: Arc<str>,
    /// Shared between downstream sessions (no single owner): progress tokens are rewritten
    /// and unattributable messages are refused.
    shared: bool,
    owner: Option<Weak<dyn UpstreamListener>>,
    pub(crate) transport: Transport,
    identity: OnceLock<ServerIdentity>,
    state: Mutex<ConnState>,
    next_id: AtomicU64,
    pub(crate) catalog: Catalog,
    started_at: Instant,
    timeout: Duration,
    max_message_bytes: usize,
}

/// A request sent upstream whose answer has not been awaited yet.
pub struct PendingCall {
    conn: Arc<UpstreamConn>,
    id: u64,
    rx: oneshot::Receiver<Result<Reply, UpstreamError>>,
}

impl PendingCall {
    pub fn upstream_id(&self) -> u64 {
        self.id
    }

    pub fn conn(&self) -> &Arc<UpstreamConn> {
        &self.conn
    }

    /// Waits like [`PendingCall::wait`] but never sends a cancellation: `initialize` and
    /// `server/discover` must not be cancelled (the lifecycle forbids it).
    pub async fn wait_quietly(self) -> Result<Reply, UpstreamError> {
        let timeout = self.conn.timeout;
        match tokio::time::timeout(timeout, self.rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(UpstreamError::Cancelled),
            Err(_) => {
                self.conn.forget(self.id);
                Err(UpstreamError::Timeout {
                    server: self.conn.server.to_string(),
                    timeout,
                })
            }
        }
    }

    /// Waits for the answer within the connection's timeout. On timeout the upstream is told
    /// to cancel (`notifications/cancelled`), so it can stop the work.
    pub async fn wait(self) -> Result<Reply, UpstreamError> {
        let timeout = self.conn.timeout;
        match tokio::time::timeout(timeout, self.rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(UpstreamError::Cancelled),
            Err(_) => {
                self.conn
                    .cancel(self.id, "request timed out at the gateway")
                    .await;
                Err(UpstreamError::Timeout {
                    server: self.conn.server.to_string(),
                    timeout,
                })
            }
        }
    }
}

pub(crate) struct ConnParams {
    pub server: Arc<str>,
    pub shared: bool,
    pub owner: Option<Weak<dyn UpstreamListener>>,
    pub timeout: Duration,
    pub max_message_bytes: usize,
}

impl UpstreamConn {
    pub(crate) fn new(params: ConnParams, transport: Transport) -> Arc<Self> {
        Arc::new(UpstreamConn {
            server: params.server,
            shared: params.shared,
            owner: params.owner,
            transport,
            identity: OnceLock::new(),
            state: Mutex::new(ConnState::default()),
            next_id: AtomicU64::new(1),
            catalog: Catalog::default(),
            started_at: Instant::now(),
            timeout: params.timeout,
            max_message_bytes: params.max_message_bytes,
        })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn is_shared(&self) -> bool {
        self.shared
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    pub fn started_at(&self) -> Instant {
        self.started_at
    }

    /// What the upstream said about itself in the handshake.
    pub fn identity(&self) -> Option<&ServerIdentity> {
        self.identity.get()
    }

    pub(crate) fn set_identity(&self, identity: ServerIdentity) {
        let _ = self.identity.set(identity);
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed.is_some()
    }

    pub fn closed_reason(&self) -> Option<String> {
        self.lock().closed.clone()
    }

    fn lock(&self) -> MutexGuard<'_, ConnState> {
        // A poisoned lock only means another thread panicked mid-update; the map itself is
        // still consistent enough to fail requests, which is all we do with it then.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn era(&self) -> Era {
        self.identity.get().map(|i| i.era).unwrap_or(Era::Legacy)
    }

    /// Sends a request and returns a handle to await its answer.
    pub async fn start_request(
        self: &Arc<Self>,
        method: &str,
        params: Option<Box<RawValue>>,
        origin: Option<Origin>,
    ) -> Result<PendingCall, UpstreamError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (params, progress) = self.prepare_params(id, method, params)?;
        let routing = if self.era() == Era::Modern {
            self.routing(method, params.as_deref())
        } else {
            Routing::default()
        };
        let envelope = Envelope::request(Id::Num(id as i64), method, params);
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.lock();
            if let Some(reason) = &st.closed {
                return Err(UpstreamError::Unavailable {
                    server: self.server.to_string(),
                    reason: reason.clone(),
                });
            }
            if let Some((token, _)) = &progress {
                st.progress.insert(token.clone(), id);
            }
            st.pending.insert(
                id,
                Pending {
                    tx,
                    origin,
                    progress,
                },
            );
        }
        let bytes = envelope.to_bytes();
        if let Err(e) = self.send_request(id, bytes, method, &routing).await {
            self.forget(id);
            return Err(e);
        }
        Ok(PendingCall {
            conn: self.clone(),
            id,
            rx,
        })
    }

    /// Sends a request and waits for its answer.
    pub async fn request(
        self: &Arc<Self>,
        method: &str,
        params: Option<Box<RawValue>>,
        origin: Option<Origin>,
    ) -> Result<Reply, UpstreamError> {
        self.start_request(method, params, origin)
            .await?
            .wait()
            .await
    }

    /// Sends a request that must never be cancelled (`initialize`, `server/discover`) and
    /// waits for its answer.
    pub async fn request_quietly(
        self: &Arc<Self>,
        method: &str,
        params: Option<Box<RawValue>>,
        origin: Option<Origin>,
    ) -> Result<Reply, UpstreamError> {
        self.start_request(method, params, origin)
            .await?
            .wait_quietly()
            .await
    }

    /// Sends a notification.
    pub async fn notify(
        self: &Arc<Self>,
        method: &str,
        params: Option<Box<RawValue>>,
    ) -> Result<(), UpstreamError> {
        let params = if self.era() == Era::Modern {
            self.with_modern_meta(params)?
        } else {
            params
        };
        let bytes = Envelope::notification(method, params).to_bytes();
        match &self.transport {
            Transport::Stdio(io) => io.send(self, &bytes).await,
            Transport::Http(io) => io.post_message(self, bytes, method).await,
        }
    }

    /// Answers a server→client request the upstream sent (id as the upstream chose it).
    pub async fn respond(
        self: &Arc<Self>,
        upstream_id: Id,
        reply: Reply,
    ) -> Result<(), UpstreamError> {
        self.lock().inbound.remove(&upstream_id.to_string());
        let envelope = match reply {
            Reply::Result(result) => Envelope::response(upstream_id, result),
            Reply::Error(error) => raw_error_envelope(upstream_id, error),
        };
        let bytes = envelope.to_bytes();
        match &self.transport {
            Transport::Stdio(io) => io.send(self, &bytes).await,
            Transport::Http(io) => io.post_message(self, bytes, "").await,
        }
    }

    /// Answers a server→client request with an error.
    pub async fn respond_error(self: &Arc<Self>, upstream_id: Id, err: &ErrorObject) {
        let raw = methods::error_raw(err);
        if let Err(e) = self.respond(upstream_id, Reply::Error(raw)).await {
            tracing::debug!(server = %self.server, error = %e, "could not answer upstream request");
        }
    }

    /// Abandons a request: its waiter gets [`UpstreamError::Cancelled`] and the upstream is
    /// told to stop (`notifications/cancelled`).
    pub async fn cancel(self: &Arc<Self>, id: u64, reason: &str) {
        if !self.forget(id) {
            return;
        }
        let params = methods::raw(&serde_json::json!({ "requestId": id, "reason": reason }));
        if let Err(e) = self
            .notify(methods::NOTIFICATION_CANCELLED, Some(params))
            .await
        {
            tracing::debug!(server = %self.server, error = %e, "could not send cancellation upstream");
        }
    }

    /// Fails one pending request (its transport could not deliver it or its answer).
    pub(crate) fn fail_pending(&self, id: u64, err: UpstreamError) {
        let pending = {
            let mut st = self.lock();
            let p = st.pending.remove(&id);
            if let Some((token, _)) = p.as_ref().and_then(|p| p.progress.as_ref()) {
                st.progress.remove(token);
            }
            p
        };
        if let Some(p) = pending {
            let _ = p.tx.send(Err(err));
        }
    }

    /// An answer the transport could not read (say, over the size limit): when exactly one
    /// request is pending the answer can only be its, so it fails now rather than at its
    /// timeout. Returns whether one was failed.
    pub(crate) fn fail_sole_pending(&self, err: UpstreamError) -> bool {
        let sole = {
            let st = self.lock();
            let mut ids = st.pending.keys();
            match (ids.next(), ids.next()) {
                (Some(&id), None) => Some(id),
                _ => None,
            }
        };
        match sole {
            Some(id) => {
                self.fail_pending(id, err);
                true
            }
            None => false,
        }
    }

    pub(crate) fn is_pending(&self, id: u64) -> bool {
        self.lock().pending.contains_key(&id)
    }

    /// Asks the upstream for the messages it sends on its own initiative (list changes,
    /// resource updates). Over HTTP that opens its GET stream; stdio always delivers them.
    pub fn ensure_listening(self: &Arc<Self>) {
        if let Transport::Http(io) = &self.transport {
            io.ensure_listening(self);
        }
    }

    /// Removes a pending request; true if it was still pending.
    fn forget(&self, id: u64) -> bool {
        let mut st = self.lock();
        match st.pending.remove(&id) {
            Some(p) => {
                if let Some((token, _)) = p.progress {
                    st.progress.remove(&token);
                }
                true
            }
            None => false,
        }
    }

    /// Marks the connection dead: every pending request fails, later ones are refused, and
    /// the transport is shut down (a child process and its group are killed).
    pub fn close(&self, reason: &str) {
        let pending = {
            let mut st = self.lock();
            if st.closed.is_some() {
                return;
            }
            st.closed = Some(reason.to_owned());
            st.progress.clear();
            st.inbound.clear();
            std::mem::take(&mut st.pending)
        };
        if !pending.is_empty() {
            tracing::warn!(server = %self.server, pending = pending.len(), reason, "upstream closed with requests pending");
        }
        for (_, p) in pending {
            let _ = p.tx.send(Err(UpstreamError::Closed {
                server: self.server.to_string(),
                reason: reason.to_owned(),
            }));
        }
        match &self.transport {
            Transport::Stdio(io) => io.shutdown(),
            Transport::Http(io) => io.shutdown(),
        }
    }

    async fn send_request(
        self: &Arc<Self>,
        id: u64,
        bytes: Vec<u8>,
        method: &str,
        routing: &Routing,
    ) -> Result<(), UpstreamError> {
        match &self.transport {
            Transport::Stdio(io) => io.send(self, &bytes).await,
            Transport::Http(io) => {
                io.post_request(self, id, bytes, method, routing);
                Ok(())
            }
        }
    }

    /// The 2026-07-28 headers that mirror a request's body: `Mcp-Name`, and `Mcp-Param-*`
    /// for the arguments the tool's schema (from the cached list) marks with `x-mcp-header`.
    fn routing(&self, method: &str, params: Option<&RawValue>) -> Routing {
        let name = standard_name(method, params);
        let mut routing = Routing {
            name: name.clone(),
            params: Vec::new(),
        };
        if method == methods::TOOLS_CALL
            && let Some(name) = name
            && let Some(tools) = self.catalog.cached(super::catalog::ListKind::Tools)
            && let Some(tool) = tools.get(&name)
            && let Ok(tool) = serde_json::from_str::<Value>(tool.get())
        {
            let arguments = params
                .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
                .and_then(|p| p.get("arguments").cloned());
            let schema = tool.get("inputSchema").cloned().unwrap_or_default();
            routing.params = crate::standard_headers::params_for(&schema, arguments.as_ref());
        }
        routing
    }

    /// Rewrites what must be rewritten before a request leaves: the progress token on a
    /// shared connection (two sessions may both use token `1`), and the per-request `_meta`
    /// of the 2026-07-28 protocol. Everything else is forwarded as the caller sent it.
    #[allow(clippy::type_complexity)]
    fn prepare_params(
        &self,
        id: u64,
        method: &str,
        params: Option<Box<RawValue>>,
    ) -> Result<(Option<Box<RawValue>>, Option<(String, Option<Value>)>), UpstreamError> {
        let token = params.as_deref().and_then(progress_token);
        let mut params = params;
        let mut progress = None;
        if let Some(token) = token {
            if self.shared {
                let ours = Value::String(format!("portcullis-{id}"));
                params = Some(self.edit_params(params, |obj| {
                    meta_mut(obj).insert("progressToken".into(), ours.clone());
                })?);
                progress = Some((ours.to_string(), Some(token)));
            } else {
                progress = Some((token.to_string(), None));
            }
        }
        if self.era() == Era::Modern {
            if method != methods::SERVER_DISCOVER {
                params = self.with_modern_meta(params)?;
            }
        } else if self.identity.get().is_some()
            && params.as_deref().is_some_and(|p| {
                memchr::memmem::find(p.get().as_bytes(), b"io.modelcontextprotocol/").is_some()
            })
        {
            // A 2026-07-28 client's per-request envelope means nothing in a stateful upstream
            // session, and would contradict the version that session negotiated.
            params = Some(self.edit_params(params, |obj| {
                if let Some(Value::Object(meta)) = obj.get_mut("_meta") {
                    for key in methods::ENVELOPE_META_KEYS {
                        meta.remove(key);
                    }
                }
            })?);
        }
        Ok((params, progress))
    }

    fn with_modern_meta(
        &self,
        params: Option<Box<RawValue>>,
    ) -> Result<Option<Box<RawValue>>, UpstreamError> {
        let Some(identity) = self.identity.get() else {
            return Ok(params);
        };
        let meta = identity.request_meta.clone();
        Ok(Some(self.edit_params(params, |obj| {
            let m = meta_mut(obj);
            for (k, v) in &meta {
                // What the client itself declared for this request (its capabilities, its
                // log level) still holds: a stateless upstream must not ask it for input
                // it cannot give. The version and the client identity are the gateway's.
                let client_owned =
                    k == methods::META_CLIENT_CAPABILITIES || k == methods::META_LOG_LEVEL;
                if !(client_owned && m.contains_key(k)) {
                    m.insert(k.clone(), v.clone());
                }
            }
        })?))
    }

    fn edit_params(
        &self,
        params: Option<Box<RawValue>>,
        edit: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<Box<RawValue>, UpstreamError> {
        let mut obj: Map<String, Value> = match params {
            Some(raw) => serde_json::from_str(raw.get()).map_err(|e| UpstreamError::Protocol {
                server: self.server.to_string(),
                reason: format!("request params are not an object: {e}"),
            })?,
            None => Map::new(),
        };
        edit(&mut obj);
        let text = serde_json::to_string(&obj).map_err(|e| UpstreamError::Protocol {
            server: self.server.to_string(),
            reason: e.to_string(),
        })?;
        RawValue::from_string(text).map_err(|e| UpstreamError::Protocol {
            server: self.server.to_string(),
            reason: e.to_string(),
        })
    }

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
        if method == methods::NOTIFICATION_TOOLS_LIST_CHANGED {
            self.catalog.invalidate_tools();
        } else if method == methods::NOTIFICATION_PROMPTS_LIST_CHANGED {
            self.catalog.invalidate_prompts();
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

/// `params._meta.progressToken`, if the request asks for progress.
fn progress_token(params: &RawValue) -> Option<Value> {
    #[derive(serde::Deserialize)]
    struct Meta {
        #[serde(rename = "progressToken")]
        progress_token: Option<Value>,
    }
    #[derive(serde::Deserialize)]
    struct View {
        #[serde(rename = "_meta")]
        meta: Option<Meta>,
    }
    let view: View = serde_json::from_str(params.get()).ok()?;
    view.meta?
        .progress_token
        .filter(|t| t.is_string() || t.is_i64() || t.is_u64())
}

fn meta_mut(obj: &mut Map<String, Value>) -> &mut Map<String, Value> {
    let meta = obj
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    match meta {
        Value::Object(m) => m,
        _ => unreachable!("replaced by an object above"),
    }
}

/// The value of the 2026-07-28 `Mcp-Name` header: the name or URI the request is about.
fn standard_name(method: &str, params: Option<&RawValue>) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct View {
        name: Option<String>,
        uri: Option<String>,
    }
    let key_is_name = matches!(method, methods::TOOLS_CALL | methods::PROMPTS_GET);
    let key_is_uri = matches!(method, methods::RESOURCES_READ);
    if !key_is_name && !key_is_uri {
        return None;
    }
    let view: View = serde_json::from_str(params?.get()).ok()?;
    if key_is_name { view.name } else { view.uri }
}
