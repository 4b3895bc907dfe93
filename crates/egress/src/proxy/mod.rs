//! The HTTP proxy through which a sandboxed server reaches its network allow list.
//!
//! A server with `sandbox.network = { allow = ["host:port", …] }` runs in a network namespace
//! with nothing but loopback; its `HTTP_PROXY`/`HTTPS_PROXY` point at a listener the gateway
//! placed in that namespace, and [`SandboxProxy`] serves it from the gateway's side. Each
//! connection carries one request:
//!
//! - `CONNECT host:port` opens a tunnel (HTTPS and anything else over TCP);
//! - an absolute-form request (`GET http://host:port/path`) is forwarded in origin form with
//!   `Connection: close`, and the answer relayed;
//! - anything else is answered `400`.
//!
//! A destination passes only if its host and port are exactly an allow-list entry, and if the
//! gateway's egress policy ([`EgressPolicy`], `[egress]`) lets the gateway reach it: the same
//! rules, with the same exceptions and refusal codes, as the gateway's own outbound client
//! (see [`crate::guard`] and `decide.rs`). An address the rules block (loopback, private,
//! link-local, …), whether written as an IP literal or resolved from a name, is reachable only
//! when `egress.allow` opens it. The connection then goes to the checked address, never to a
//! second lookup's answer.
//!
//! Everything is bounded: connections at once (more are answered `503`), head size and time,
//! resolution and connect time, and idle time of a relay. Each decision is reported as a
//! [`ProxyEvent`] for the gateway's audit.

mod connect;
mod decide;
mod destination;
mod event;
mod forward;
mod head;
mod reply;
mod resolve;
mod splice;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub use destination::{Destination, DestinationError, Host};
pub use event::{ProxyEvent, Reason, RequestKind};
pub(crate) use resolve::resolve_bounded;
pub use resolve::{MAX_ADDRESSES, Resolve, SystemResolver};

use head::HeadError;
use reply::Status;

use crate::guard::{Denial, EgressPolicy, Rule};

/// At most this many resolved addresses are tried in turn before giving up.
const MAX_CONNECT_ATTEMPTS: usize = 4;

/// The proxy's settings. [`ProxyConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The destinations the server may reach; nothing else.
    pub allow: Vec<Destination>,
    /// The gateway's egress policy: which blocked addresses and names `egress.allow` opens.
    /// The one the gateway's own client is guarded with, so both judge a destination alike.
    pub policy: Arc<EgressPolicy>,
    /// Connections served at once; more are answered `503` and closed.
    pub max_connections: usize,
    /// Largest request head accepted (request line and headers).
    pub max_head_bytes: usize,
    /// Time for a client to send its whole request head.
    pub head_timeout: Duration,
    /// Time for a name to resolve.
    pub resolve_timeout: Duration,
    /// Time to connect to one address of the destination.
    pub connect_timeout: Duration,
    /// A tunnel or forwarded request is closed after this long with no bytes either way.
    pub idle_timeout: Duration,
}

impl ProxyConfig {
    /// The server's allow list and the gateway's egress policy, with the default bounds.
    pub fn new(allow: Vec<Destination>, policy: Arc<EgressPolicy>) -> Self {
        ProxyConfig {
            allow,
            policy,
            max_connections: 64,
            max_head_bytes: 16 * 1024,
            head_timeout: Duration::from_secs(10),
            resolve_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// Why the proxy could not serve at all.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("the proxy's listener cannot be used: {0}")]
    Listener(#[source] io::Error),
}

/// Receives every decision. Called on the connection's task: it must not block (send to a
/// channel, or append to the audit queue).
pub type EventSink = Arc<dyn Fn(ProxyEvent) + Send + Sync>;

/// The proxy for one sandboxed server. Cheap to clone.
#[derive(Clone)]
pub struct SandboxProxy {
    inner: Arc<Inner>,
}

struct Inner {
    config: ProxyConfig,
    resolver: Arc<dyn Resolve>,
    on_event: EventSink,
}

impl fmt::Debug for SandboxProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxProxy")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl SandboxProxy {
    /// A proxy allowing `config.allow`, resolving names with `resolver` (in production
    /// [`SystemResolver`]) and reporting each decision to `on_event`.
    pub fn new(
        config: ProxyConfig,
        resolver: Arc<dyn Resolve>,
        on_event: impl Fn(ProxyEvent) + Send + Sync + 'static,
    ) -> Self {
        SandboxProxy {
            inner: Arc::new(Inner {
                config,
                resolver,
                on_event: Arc::new(on_event),
            }),
        }
    }

    /// Serves `listener` (for the sandbox: a socket bound in the child's network namespace and
    /// passed back to the gateway) until this future is dropped. Dropping it also ends every
    /// connection it serves, so the gateway ends the proxy with the child by aborting its task.
    pub async fn serve(self, listener: TcpListener) {
        let mut tasks = JoinSet::new();
        let slots = Arc::new(Semaphore::new(self.inner.config.max_connections));
        loop {
            while tasks.try_join_next().is_some() {}
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of descriptors or a connection reset before accept: wait a moment
                    // rather than spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match Arc::clone(&slots).try_acquire_owned() {
                Ok(permit) => {
                    let inner = Arc::clone(&self.inner);
                    tasks.spawn(async move {
                        inner.handle(stream).await;
                        drop(permit);
                    });
                }
                Err(_) => {
                    // A full proxy answers at once instead of leaving the client hanging;
                    // `try_write` never waits on a client that does not read.
                    let busy = reply::response(Status::ServiceUnavailable, "too many connections");
                    let _ = stream.try_write(&busy);
                }
            }
        }
    }

    /// [`serve`](Self::serve) for a standard-library listener, such as one received over a
    /// Unix socket from the sandbox's setup. Must run inside a tokio runtime.
    pub async fn serve_std(self, listener: std::net::TcpListener) -> Result<(), ProxyError> {
        listener
            .set_nonblocking(true)
            .map_err(ProxyError::Listener)?;
        let listener = TcpListener::from_std(listener).map_err(ProxyError::Listener)?;
        self.serve(listener).await;
        Ok(())
    }
}

impl Inner {
    /// Bound on writing the proxy's own short answers, and on draining before closing.
    fn reply_wait(&self) -> Duration {
        self.config.head_timeout.min(Duration::from_secs(2))
    }

    async fn handle(self: Arc<Self>, mut client: TcpStream) {
        let _ = client.set_nodelay(true);
        let cfg = &self.config;
        let head = match head::read_head(&mut client, cfg.max_head_bytes, cfg.head_timeout).await {
            Ok(head) => head,
            Err(HeadError::Closed | HeadError::Io(_)) => return,
            Err(e @ HeadError::Timeout(_)) => {
                return reply::send(
                    client,
                    Status::RequestTimeout,
                    &e.to_string(),
                    self.reply_wait(),
                )
                .await;
            }
            Err(e @ (HeadError::TooLarge(_) | HeadError::Malformed(_))) => {
                return reply::send(
                    client,
                    Status::BadRequest,
                    &e.to_string(),
                    self.reply_wait(),
                )
                .await;
            }
        };
        if head.method.eq_ignore_ascii_case("CONNECT") {
            connect::handle(&self, client, head).await;
        } else if head.target.contains("://") {
            forward::handle(&self, client, head).await;
        } else {
            let text = "this is a proxy: send CONNECT host:port, or a request with an absolute URL";
            reply::send(client, Status::BadRequest, text, self.reply_wait()).await;
        }
    }

    /// Decides on `dest` and connects to it. On refusal or failure the client has been
    /// answered and `None` is returned; either way the decision has been reported.
    async fn open(
        &self,
        client: TcpStream,
        dest: &Destination,
        kind: RequestKind,
    ) -> Option<(TcpStream, TcpStream)> {
        let cfg = &self.config;
        let checked = decide::check(cfg, self.resolver.as_ref(), dest).await;
        let approved = match checked {
            Ok(approved) => approved,
            Err(refused) => {
                let status = match &refused.reason {
                    Reason::Refused(Denial {
                        rule: Rule::ResolveFailed(_) | Rule::NoAddresses,
                        ..
                    }) => Status::BadGateway,
                    _ => Status::Forbidden,
                };
                let text = format!("{dest} {}", client_text(dest, &refused.reason));
                self.report(dest, kind, refused.resolved, refused.reason);
                reply::send(client, status, &text, self.reply_wait()).await;
                return None;
            }
        };
        match connect_first(&approved.addrs, cfg.connect_timeout).await {
            Ok((upstream, addr)) => {
                self.report(dest, kind, approved.resolved, Reason::Connected(addr));
                Some((client, upstream))
            }
            Err(why) => {
                let text = format!("{dest} is allowed but could not be reached");
                self.report(dest, kind, approved.resolved, Reason::Unreachable(why));
                reply::send(client, Status::BadGateway, &text, self.reply_wait()).await;
                None
            }
        }
    }

    fn report(
        &self,
        dest: &Destination,
        kind: RequestKind,
        resolved: Vec<std::net::IpAddr>,
        reason: Reason,
    ) {
        (self.on_event)(ProxyEvent {
            destination: dest.to_string(),
            kind,
            resolved,
            allowed: reason.is_allowed(),
            reason,
        });
    }
}

/// Connects to the first of `addrs` (checked addresses, in order) that answers, trying at most
/// [`MAX_CONNECT_ATTEMPTS`], each bounded by `connect_timeout`. Shared with the egress guard's
/// connector. The error says why the last attempt failed.
pub(crate) async fn connect_first(
    addrs: &[SocketAddr],
    connect_timeout: Duration,
) -> Result<(TcpStream, SocketAddr), String> {
    let mut last = String::from("no address to connect to");
    for addr in addrs.iter().take(MAX_CONNECT_ATTEMPTS) {
        match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok((stream, *addr));
            }
            Ok(Err(e)) => last = format!("{addr}: {e}"),
            Err(_) => {
                last = format!(
                    "{addr}: no connection within {} ms",
                    connect_timeout.as_millis()
                );
            }
        }
    }
    Err(last)
}

/// The refusal as told to the sandboxed client: the rule and its code, without the addresses
/// a name resolved to (those are for the audit).
fn client_text(dest: &Destination, reason: &Reason) -> String {
    let code = reason.code();
    match (reason, &dest.host) {
        (
            Reason::Refused(Denial {
                rule: Rule::BlockedAddress(why),
                ..
            }),
            host,
        ) => {
            let what = match host {
                Host::Name(_) => "resolves to",
                Host::Ip(_) => "is",
            };
            format!("{what} a blocked address ({why}) that egress.allow does not open [{code}]")
        }
        (
            Reason::Refused(Denial {
                rule: Rule::ResolveFailed(_),
                ..
            }),
            _,
        ) => format!("could not be resolved [{code}]"),
        (other, _) => format!("is refused: {other} [{code}]"),
    }
}
