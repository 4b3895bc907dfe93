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

use portcullis_wire::{Envelope, ErrorObject, Id};

use crate::mcp::{self as methods, raw_error_envelope};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::oneshot;

mod inbound;
mod outgoing;

pub(crate) use outgoing::Routing;

use super::catalog::Catalog;
use super::handshake::{Era, ServerIdentity};
use super::http::HttpIo;
use super::stdio::StdioIo;
use super::{Reply, UpstreamError};
use crate::roots::ConfiguredRoots;

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

// One per connection, never in a collection: the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
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
    identity: OnceLock<Arc<ServerIdentity>>,
    /// The server's configured roots: its `roots/list` is answered by the gateway.
    configured_roots: OnceLock<Arc<ConfiguredRoots>>,
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
    /// For an HTTP upstream: the exchange itself (send, read the answer), driven by whoever
    /// waits — one task fewer per call than spawning it.
    driver: Option<Driver>,
    /// Still pending: dropping the call forgets it, so an abandoned wait leaks nothing.
    armed: bool,
}

/// The future that carries one request to an HTTP upstream and reads what comes back.
pub(crate) type Driver = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

impl Drop for PendingCall {
    fn drop(&mut self) {
        if self.armed {
            self.conn.forget(self.id);
        }
    }
}

impl PendingCall {
    pub fn upstream_id(&self) -> u64 {
        self.id
    }

    pub fn conn(&self) -> &Arc<UpstreamConn> {
        &self.conn
    }

    /// The answer, or None when the time ran out.
    async fn answer(&mut self) -> Option<Result<Reply, UpstreamError>> {
        let mut driver = self.driver.take();
        let mut driven_out = false;
        let rx = &mut self.rx;
        let outcome = tokio::time::timeout(self.conn.timeout, async {
            if let Some(d) = driver.as_mut() {
                tokio::select! {
                    biased;
                    r = &mut *rx => return r,
                    () = d.as_mut() => driven_out = true,
                }
            }
            rx.await
        })
        .await;
        // The answer came on a stream that has not ended yet: read it to its end in the
        // background, so that the connection goes back to the pool instead of being dropped.
        if let Some(d) = driver.filter(|_| !driven_out) {
            let bound = self.conn.timeout;
            tokio::spawn(async move {
                let _ = tokio::time::timeout(bound, d).await;
            });
        }
        match outcome {
            Ok(Ok(result)) => {
                self.armed = false;
                Some(result)
            }
            Ok(Err(_)) => {
                self.armed = false;
                Some(Err(UpstreamError::Cancelled))
            }
            Err(_) => None,
        }
    }

    fn timed_out(&self) -> UpstreamError {
        UpstreamError::Timeout {
            server: self.conn.server.to_string(),
            timeout: self.conn.timeout,
        }
    }

    /// Waits like [`PendingCall::wait`] but never sends a cancellation: `initialize` and
    /// `server/discover` must not be cancelled (the lifecycle forbids it).
    pub async fn wait_quietly(mut self) -> Result<Reply, UpstreamError> {
        match self.answer().await {
            Some(result) => result,
            None => Err(self.timed_out()),
        }
    }

    /// Waits for the answer within the connection's timeout. On timeout the upstream is told
    /// to cancel (`notifications/cancelled`), so it can stop the work.
    pub async fn wait(mut self) -> Result<Reply, UpstreamError> {
        match self.answer().await {
            Some(result) => result,
            None => {
                self.armed = false;
                self.conn
                    .cancel(self.id, "request timed out at the gateway")
                    .await;
                Err(self.timed_out())
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
            configured_roots: OnceLock::new(),
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
        self.identity.get().map(|i| &**i)
    }

    pub(crate) fn set_identity(&self, identity: Arc<ServerIdentity>) {
        let _ = self.identity.set(identity);
    }

    /// The roots the gateway answers this server's `roots/list` with, if configured.
    pub fn configured_roots(&self) -> Option<&Arc<ConfiguredRoots>> {
        self.configured_roots.get()
    }

    pub(crate) fn set_configured_roots(&self, roots: Arc<ConfiguredRoots>) {
        let _ = self.configured_roots.set(roots);
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
        let driver = match self.send_request(id, bytes, method, &routing).await {
            Ok(driver) => driver,
            Err(e) => {
                self.forget(id);
                return Err(e);
            }
        };
        Ok(PendingCall {
            conn: self.clone(),
            id,
            rx,
            driver,
            armed: true,
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
        if self.forget(id) {
            self.send_cancelled(id, reason).await;
        }
    }

    /// Tells the upstream to stop working on request `id` (whether or not it is still
    /// pending here: a waiter that gave up has already forgotten it).
    pub(crate) async fn send_cancelled(self: &Arc<Self>, id: u64, reason: &str) {
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

    /// Sends a request: written to a child's stdin now, or (HTTP) returned as the driver
    /// the waiter runs.
    async fn send_request(
        self: &Arc<Self>,
        id: u64,
        bytes: Vec<u8>,
        method: &str,
        routing: &Routing,
    ) -> Result<Option<Driver>, UpstreamError> {
        match &self.transport {
            Transport::Stdio(io) => io.send(self, &bytes).await.map(|()| None),
            Transport::Http(io) => Ok(Some(io.post_request(self, id, bytes, method, routing))),
        }
    }
}
