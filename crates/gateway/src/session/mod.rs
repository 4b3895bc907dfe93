//! A downstream session: one client, one route, its own upstream connections.
//!
//! The session is where the two sides meet. Requests from the client go through the relay
//! ([`relay`]) to the upstreams; what the upstreams send on their own (progress, logging,
//! list changes, sampling/elicitation/roots requests) comes back through
//! [`UpstreamListener::on_upstream_message`] and leaves through the session's [`Outbound`].
//! Every id that crosses is remapped: the client's request ids never reach an upstream, and
//! an upstream's request ids never reach the client, so ids of different sessions and
//! upstreams can never collide or be used to answer someone else's request.

mod admission;
mod caller;
mod consent_step;
mod content_step;
mod init;
mod lists;
mod mrtr;
pub mod outbound;
pub(crate) use caller::{as_caller, caller_token};
mod relay;
mod roots;
mod scanning;
mod upstream_traffic;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use portcullis_policy::Principal;
use portcullis_wire::{Envelope, ErrorObject, Id, Kind, ProtocolVersion, codes};
use serde_json::{Map, Value};

pub use init::InitOutcome;
pub use mrtr::ParkedCalls;
pub use outbound::Outbound;
pub use scanning::{ScanVerdict, Scans};

use crate::gateway::Gateway;
use crate::mcp;
use crate::route::Route;
use crate::upstream::handshake::Era;
use crate::upstream::{ClientCapsForUpstream, Reply, UpstreamConn, UpstreamListener, UpstreamSlot};

/// How the client reached the gateway; recorded with every decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    Stdio,
    Http,
}

impl TransportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Stdio => "stdio",
            TransportKind::Http => "http",
        }
    }
}

/// One upstream server of the session's route.
pub(crate) struct Member {
    pub server: Arc<str>,
    pub slot: Arc<UpstreamSlot>,
}

/// A server→client request the client has not answered yet: one an upstream sent (relayed
/// under a gateway id), or one the gateway itself asks on a stateless upstream's behalf.
enum InboundRequest {
    Upstream {
        conn: Weak<UpstreamConn>,
        upstream_id: Id,
    },
    Local(tokio::sync::oneshot::Sender<Reply>),
}

/// A client request the upstream has not answered yet (for cancellation).
struct InflightRequest {
    conn: Weak<UpstreamConn>,
    upstream_id: u64,
}

#[derive(Default)]
struct SessionState {
    version: Option<ProtocolVersion>,
    client_caps: Map<String, Value>,
    inbound: HashMap<i64, InboundRequest>,
    inflight: HashMap<Id, InflightRequest>,
    /// Stateless clients' requests that may be asked for input, by request id.
    inputs: HashMap<Id, mrtr::InputChannel>,
    /// A stateful client's roots, for servers with configured roots (see `roots`).
    client_roots: roots::ClientRootsCache,
    /// Calls held for consent, by request id: cancelling one stops its wait.
    held: HashMap<Id, tokio::sync::oneshot::Sender<()>>,
}

/// A client request in flight upstream. If the wait for it is abandoned before the answer —
/// the HTTP client went away — a stateless client's request is cancelled upstream (for
/// 2026-07-28 a closed stream *is* the cancellation); a stateful client's is not (its
/// protocol says a disconnect is not a cancellation), the answer just has nowhere to go.
pub(crate) struct Inflight<'a> {
    session: &'a Session,
    id: &'a Id,
    conn: Arc<UpstreamConn>,
    upstream_id: u64,
    finished: bool,
}

impl Inflight<'_> {
    /// The answer came (or the call failed): nothing to cancel.
    pub(crate) fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for Inflight<'_> {
    fn drop(&mut self) {
        self.session.lock().inflight.remove(self.id);
        if !self.finished && self.session.modern {
            let (conn, upstream_id) = (self.conn.clone(), self.upstream_id);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    conn.send_cancelled(upstream_id, "the client went away")
                        .await
                });
            }
        }
    }
}

/// What became of one message from the client.
#[derive(Debug)]
pub enum Handled {
    /// The answer to a request.
    Response(Envelope),
    /// A notification or a response was taken (HTTP 202).
    Accepted,
    /// A message the gateway will not take (HTTP 400); the error says why.
    Rejected(ErrorObject),
    /// The request was cancelled by the client: nothing is sent back.
    Cancelled,
}

pub struct Session {
    pub id: Arc<str>,
    pub(crate) gateway: Arc<Gateway>,
    pub(crate) route: Arc<Route>,
    /// The identity the session belongs to (see [`caller`] for the one decisions use).
    pub(crate) principal: Arc<Principal>,
    pub(crate) transport: TransportKind,
    /// Who and where, as every audit record of this session names them.
    audit_ctx: crate::audit::Context,
    /// A 2026-07-28 client: no server→client requests, version per request.
    pub(crate) modern: bool,
    /// Upstream connections shared with other sessions (stateless HTTP clients).
    shared_upstreams: bool,
    pub(crate) members: Vec<Member>,
    outbound: Arc<dyn Outbound>,
    state: Mutex<SessionState>,
    next_inbound_id: AtomicI64,
    last_seen_ms: AtomicU64,
    /// When the session began ([`now_ms`]), for its absolute lifetime.
    started_ms: u64,
    closed: AtomicBool,
    weak: Weak<Session>,
}

/// Milliseconds since the gateway started: cheap to store, enough for idle timeouts.
pub fn now_ms() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

pub(crate) struct SessionParams {
    pub id: Arc<str>,
    pub gateway: Arc<Gateway>,
    pub route: Arc<Route>,
    pub principal: Principal,
    pub transport: TransportKind,
    pub modern: bool,
    pub shared_upstreams: bool,
    pub outbound: Arc<dyn Outbound>,
    pub client_caps: Map<String, Value>,
}

impl Session {
    pub(crate) fn new(p: SessionParams) -> Arc<Session> {
        // A stateless client declares its capabilities per request (checked when the upstream
        // asks, see `mrtr`); its upstream may ask for anything the gateway can relay.
        let caps = if p.modern {
            ClientCapsForUpstream::shared()
        } else {
            ClientCapsForUpstream::from_client(&p.client_caps)
        };
        Arc::new_cyclic(|weak: &Weak<Session>| {
            let owner: Weak<dyn UpstreamListener> = weak.clone();
            let members = p
                .route
                .members
                .iter()
                .filter_map(|server| {
                    let era = if p.modern { Era::Modern } else { Era::Legacy };
                    let slot = if p.shared_upstreams {
                        p.gateway.shared_slot(server, era, Some(&p.principal))?
                    } else {
                        let caps = caps.clone().with_roots(p.gateway.configured_roots(server));
                        p.gateway.slot_for_session(
                            server,
                            owner.clone(),
                            caps,
                            era,
                            &p.principal,
                        )?
                    };
                    Some(Member {
                        server: server.clone(),
                        slot,
                    })
                })
                .collect();
            let audit_ctx = crate::audit::Context {
                principal: p.principal.to_string(),
                session: p.id.to_string(),
                transport: p.transport.as_str(),
            };
            Session {
                audit_ctx,
                id: p.id,
                gateway: p.gateway,
                route: p.route,
                principal: Arc::new(p.principal),
                transport: p.transport,
                modern: p.modern,
                shared_upstreams: p.shared_upstreams,
                members,
                outbound: p.outbound,
                state: Mutex::new(SessionState {
                    client_caps: p.client_caps,
                    ..SessionState::default()
                }),
                next_inbound_id: AtomicI64::new(1),
                last_seen_ms: AtomicU64::new(now_ms()),
                started_ms: now_ms(),
                closed: AtomicBool::new(false),
                weak: weak.clone(),
            }
        })
    }

    fn lock(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn audit_context(&self) -> &crate::audit::Context {
        &self.audit_ctx
    }

    pub fn route(&self) -> &Route {
        &self.route
    }

    pub fn version(&self) -> Option<ProtocolVersion> {
        self.lock().version
    }

    pub(crate) fn set_version(&self, version: ProtocolVersion) {
        self.lock().version = Some(version);
    }

    pub(crate) fn client_has(&self, capability: &str) -> bool {
        self.lock()
            .client_caps
            .get(capability)
            .is_some_and(Value::is_object)
    }

    pub fn touch(&self) {
        self.last_seen_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// How long ago the session began.
    pub fn age_ms(&self) -> u64 {
        now_ms().saturating_sub(self.started_ms)
    }

    /// The identity the session belongs to.
    pub fn owner(&self) -> &Principal {
        &self.principal
    }

    pub fn idle_ms(&self) -> u64 {
        now_ms().saturating_sub(self.last_seen_ms.load(Ordering::Relaxed))
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn member(&self, server: &str) -> Option<&Member> {
        self.members.iter().find(|m| &*m.server == server)
    }

    pub(crate) fn listener(&self) -> Weak<dyn UpstreamListener> {
        self.weak.clone()
    }

    /// Asks every started upstream to deliver its unsolicited messages (see
    /// [`UpstreamConn::ensure_listening`]): called when the client can receive them.
    pub fn listen_upstreams(&self) {
        for member in &self.members {
            if let Some(conn) = member.slot.current() {
                conn.ensure_listening();
            }
        }
    }

    /// Handles one message from the client.
    pub async fn handle(self: &Arc<Self>, msg: Envelope) -> Handled {
        self.touch();
        match msg.kind() {
            Kind::Request => match self.handle_request(msg).await {
                Some(response) => Handled::Response(response),
                None => Handled::Cancelled,
            },
            Kind::Notification => {
                self.handle_notification(msg).await;
                Handled::Accepted
            }
            Kind::Response | Kind::ErrorResponse => self.handle_client_response(msg).await,
        }
    }

    /// Registers a client request as in flight upstream, refusing a duplicate id.
    /// Marks a client request as in flight upstream until the returned guard is finished or
    /// dropped (so that the client can cancel it meanwhile).
    pub(crate) fn begin_inflight<'a>(
        &'a self,
        id: &'a Id,
        conn: &Arc<UpstreamConn>,
        upstream_id: u64,
    ) -> Inflight<'a> {
        self.lock().inflight.insert(
            id.clone(),
            InflightRequest {
                conn: Arc::downgrade(conn),
                upstream_id,
            },
        );
        Inflight {
            session: self,
            id,
            conn: conn.clone(),
            upstream_id,
            finished: false,
        }
    }

    /// Cancels one of this session's own requests that is in flight upstream (any other id
    /// is ignored: a client can only ever cancel its own work).
    pub async fn cancel_inflight(&self, id: &Id, reason: &str) {
        if let Some(held) = self.lock().held.remove(id) {
            let _ = held.send(());
        }
        let inflight = self.lock().inflight.remove(id);
        if let Some(r) = inflight
            && let Some(conn) = r.conn.upgrade()
        {
            conn.cancel(r.upstream_id, reason).await;
        }
    }

    async fn handle_notification(self: &Arc<Self>, msg: Envelope) {
        let method = msg.method().unwrap_or_default();
        match method {
            mcp::NOTIFICATION_INITIALIZED => {}
            mcp::NOTIFICATION_CANCELLED => {
                #[derive(serde::Deserialize)]
                struct Cancelled {
                    #[serde(rename = "requestId")]
                    request_id: Id,
                    reason: Option<String>,
                }
                let Ok(Some(c)) = msg.params_as::<Cancelled>() else {
                    return;
                };
                let reason = c.reason.unwrap_or_else(|| "cancelled by the client".into());
                self.cancel_inflight(&c.request_id, &reason).await;
            }
            mcp::NOTIFICATION_ROOTS_LIST_CHANGED | mcp::NOTIFICATION_PROGRESS => {
                if method == mcp::NOTIFICATION_ROOTS_LIST_CHANGED {
                    // Before the servers hear of it: their next roots/list reads them anew.
                    self.forget_client_roots();
                }
                for m in &self.members {
                    if let Some(conn) = m.slot.current() {
                        let _ = conn.notify(method, msg.params.clone()).await;
                    }
                }
            }
            other => {
                tracing::debug!(session = %self.id, method = other, "client notification not relayed")
            }
        }
    }

    /// The client answers a server→client request the gateway relayed to it.
    async fn handle_client_response(self: &Arc<Self>, msg: Envelope) -> Handled {
        let inbound = match &msg.id {
            Some(Id::Num(n)) => self.lock().inbound.remove(n),
            _ => None,
        };
        let Some(inbound) = inbound else {
            tracing::warn!(session = %self.id, id = ?msg.id, "client sent a response with an id nobody asked for");
            return Handled::Rejected(ErrorObject::new(
                codes::INVALID_REQUEST,
                "response to a request this session never sent (or already answered)",
            ));
        };
        let reply = match (msg.result, msg.error) {
            (Some(r), _) => Reply::Result(r),
            (None, Some(e)) => Reply::Error(e),
            (None, None) => return Handled::Accepted,
        };
        match inbound {
            InboundRequest::Local(tx) => {
                let _ = tx.send(reply);
            }
            InboundRequest::Upstream { conn, upstream_id } => {
                let Some(conn) = conn.upgrade() else {
                    return Handled::Accepted;
                };
                if let Err(e) = conn.respond(upstream_id, reply).await {
                    tracing::warn!(session = %self.id, error = %e, "could not pass the client's answer upstream");
                }
            }
        }
        Handled::Accepted
    }

    /// Ends the session: per-session upstreams are stopped, pending relays dropped.
    pub async fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared: Vec<bool> = self
            .members
            .iter()
            .map(|m| self.shared_upstreams || self.gateway.is_shared(&m.server))
            .collect();
        for (m, is_shared) in self.members.iter().zip(shared) {
            if !is_shared {
                m.slot.shutdown().await;
            }
        }
        {
            let mut st = self.lock();
            st.inbound.clear();
            st.inflight.clear();
        }
        self.outbound.close();
        tracing::info!(session = %self.id, route = %self.route.name, "session ended");
    }
}
