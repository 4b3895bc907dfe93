//! `portcullis stdio <route>`: the gateway as a desktop host's stdio MCP server.
//!
//! The host starts the gateway in place of the server's own command. Stdin carries the
//! host's messages, stdout carries nothing but MCP (every line written by one task, so lines
//! never interleave), and logs go to stderr or a file. When the host closes stdin, the
//! session ends and the upstream child processes are stopped.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::sync::Arc;

use futures::future::join_all;
use portcullis_policy::Principal;
use portcullis_wire::{
    Envelope, ErrorObject, Frame, IngressError, Line, LineReader, codes, parse_frame, write_frame,
};
use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, BufReader};
use tokio::sync::mpsc;

use super::era::{self, ClientEra};
use crate::gateway::Gateway;
use crate::mcp;
use crate::session::outbound::ChannelOutbound;
use crate::session::{Handled, Session, SessionParams, TransportKind};

/// The principal of a stdio session: the operating-system user the gateway runs as, by its
/// uid — not `$USER`, which whoever starts the process can set to anything.
pub fn local_principal() -> Principal {
    let uid = nix::unistd::getuid();
    let name = match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => user.name,
        _ => format!("uid-{uid}"),
    };
    Principal::local(name)
}

/// Serves one route over the process's stdin and stdout until stdin closes.
pub async fn serve(gateway: Arc<Gateway>, route: &str) -> anyhow::Result<()> {
    let stdin = BufReader::with_capacity(64 * 1024, process_stdin());
    serve_on(gateway, route, stdin, process_stdout()).await
}

type Input = Box<dyn AsyncRead + Send + Unpin>;
type Output = Box<dyn AsyncWrite + Send + Unpin>;

// Tokio's `Stdin` and `Stdout` hand every read and write to a blocking thread: a thread
// switch each way per message, the largest cost of a call through the stdio gateway. Hosts
// connect stdio with pipes (Node/libuv hosts with Unix sockets), which the runtime's reactor
// drives directly once non-blocking; anything else (a terminal, a file) keeps tokio's streams.

fn process_stdin() -> Input {
    let fd = std::io::stdin().as_fd().try_clone_to_owned();
    let direct = fd.and_then(|fd| -> std::io::Result<Input> {
        match fd_kind(&fd) {
            FdKind::Pipe => Ok(Box::new(tokio::net::unix::pipe::Receiver::from_owned_fd(
                fd,
            )?)),
            FdKind::Socket => Ok(Box::new(unix_stream(fd)?)),
            FdKind::Other => Err(std::io::ErrorKind::Unsupported.into()),
        }
    });
    direct.unwrap_or_else(|_| Box::new(tokio::io::stdin()))
}

fn process_stdout() -> Output {
    let fd = std::io::stdout().as_fd().try_clone_to_owned();
    let direct = fd.and_then(|fd| -> std::io::Result<Output> {
        match fd_kind(&fd) {
            FdKind::Pipe => Ok(Box::new(tokio::net::unix::pipe::Sender::from_owned_fd(fd)?)),
            FdKind::Socket => Ok(Box::new(unix_stream(fd)?)),
            FdKind::Other => Err(std::io::ErrorKind::Unsupported.into()),
        }
    });
    direct.unwrap_or_else(|_| Box::new(tokio::io::stdout()))
}

enum FdKind {
    Pipe,
    Socket,
    Other,
}

fn fd_kind(fd: &OwnedFd) -> FdKind {
    let meta = fd
        .try_clone()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata());
    match meta.map(|m| m.file_type()) {
        Ok(t) if t.is_fifo() => FdKind::Pipe,
        Ok(t) if t.is_socket() => FdKind::Socket,
        _ => FdKind::Other,
    }
}

fn unix_stream(fd: OwnedFd) -> std::io::Result<tokio::net::UnixStream> {
    let stream = std::os::unix::net::UnixStream::from(fd);
    stream.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(stream)
}

/// Serves one route over any reader/writer pair (tests drive it with in-memory pipes).
pub async fn serve_on<R, W>(
    gateway: Arc<Gateway>,
    route: &str,
    input: R,
    output: W,
) -> anyhow::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let route = gateway.route(route).ok_or_else(|| {
        anyhow::anyhow!("no server or virtual server named {route:?} in the config")
    })?;
    let max = gateway.config.gateway.max_message_bytes;
    let limits = portcullis_wire::Limits {
        max_frame_bytes: max,
        ..Default::default()
    };
    let (tx, rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(write_lines(output, rx));

    let principal = local_principal();
    // One id per gateway process, so that the audit log tells one host's session from the
    // next.
    let session_id: Arc<str> = Arc::from(format!("stdio-{}", crate::ids::random_token(9)));
    let params = |modern: bool| SessionParams {
        id: session_id.clone(),
        gateway: gateway.clone(),
        route: route.clone(),
        principal: principal.clone(),
        transport: TransportKind::Stdio,
        modern,
        shared_upstreams: false,
        outbound: Arc::new(ChannelOutbound::new(tx.clone())),
        client_caps: Default::default(),
    };

    let mut session: Option<Arc<Session>> = None;
    let inflight = InFlight::default();
    let mut lines = LineReader::new(input, max);
    loop {
        let frame = match lines.next_line().await {
            Ok(Some(Line::Frame(bytes))) => bytes,
            Ok(Some(Line::TooLong { len })) => {
                send_ingress_error(
                    &tx,
                    &IngressError::TooLarge {
                        limit: max,
                        actual: len,
                    },
                );
                continue;
            }
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(error = %e, "reading stdin failed");
                break;
            }
        };
        let frame = match parse_frame(&frame, &limits) {
            Ok(frame) => frame,
            Err(e) => {
                send_ingress_error(&tx, &e);
                continue;
            }
        };
        let batch_allowed = session
            .as_ref()
            .and_then(|s| s.version())
            .is_some_and(|v| v.allows_batch());
        let msg = match frame {
            Frame::Single(msg) => msg,
            Frame::Batch(_) if !batch_allowed => {
                send_ingress_error(&tx, &IngressError::BatchNotAllowed);
                continue;
            }
            Frame::Batch(msgs) => {
                if let Some(s) = session.clone() {
                    let msgs = msgs
                        .into_iter()
                        .map(|m| inflight.claim(&m).map(|()| m))
                        .collect();
                    tokio::spawn(handle_batch(s, msgs, tx.clone(), inflight.clone()));
                }
                continue;
            }
        };

        let Some(current) = session.clone() else {
            // Before a session exists: initialize (stateful), or any request of a
            // 2026-07-28 client (stateless: the first request locks the era), or ping.
            match era::classify(&msg, None) {
                ClientEra::Initialize => match Session::initialize(params(false), &msg).await {
                    Ok(outcome) => {
                        let _ = tx.send(outcome.response.to_bytes());
                        // A desktop host stays connected: let unsolicited upstream messages
                        // (list changes, resource updates) reach it.
                        outcome.session.listen_upstreams();
                        session = Some(outcome.session);
                    }
                    Err(response) => {
                        let _ = tx.send(response.to_bytes());
                    }
                },
                ClientEra::Modern => {
                    if let Err(err) = check_modern(&msg) {
                        reply_error(&tx, &msg, &err);
                        continue;
                    }
                    let s = Session::new(params(true));
                    s.set_version(portcullis_wire::ProtocolVersion::V2026_07_28);
                    session = Some(s.clone());
                    if let Err(refusal) = inflight.claim(&msg) {
                        let _ = tx.send(refusal.to_bytes());
                        continue;
                    }
                    tokio::spawn(handle_one(s, msg, tx.clone(), inflight.clone()));
                }
                ClientEra::Legacy if msg.method() == Some(mcp::PING) => {
                    if let Some(id) = msg.id.clone() {
                        let _ = tx.send(Envelope::response(id, mcp::empty_object()).to_bytes());
                    }
                }
                ClientEra::Legacy => {
                    let err = ErrorObject::new(
                        codes::INVALID_REQUEST,
                        "the session is not initialized: send initialize first",
                    );
                    reply_error(&tx, &msg, &err);
                }
            }
            continue;
        };
        if current.modern
            && let Err(err) = check_modern(&msg)
        {
            reply_error(&tx, &msg, &err);
            continue;
        }
        if let Err(refusal) = inflight.claim(&msg) {
            let _ = tx.send(refusal.to_bytes());
            continue;
        }
        tokio::spawn(handle_one(current, msg, tx.clone(), inflight.clone()));
    }

    if let Some(s) = session {
        s.close().await;
    }
    drop(tx);
    let _ = writer.await;
    Ok(())
}

/// The ids of the host's requests still being handled. JSON-RPC forbids reusing an id while
/// its request is in flight: both answers would carry the same id, and a cancellation could
/// name only one of them. A duplicate is refused, as over HTTP.
#[derive(Clone, Default)]
struct InFlight(Arc<std::sync::Mutex<std::collections::HashSet<portcullis_wire::Id>>>);

impl InFlight {
    fn ids(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<portcullis_wire::Id>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims the id of a request (anything else passes); Err is the refusal to send.
    fn claim(&self, msg: &Envelope) -> Result<(), Envelope> {
        let Some(id) = request_id(msg) else {
            return Ok(());
        };
        if self.ids().insert(id.clone()) {
            return Ok(());
        }
        let err = ErrorObject::new(
            codes::INVALID_REQUEST,
            format!("request id {id} is already in use in this session"),
        );
        Err(Envelope::error_response(Some(id.clone()), &err))
    }

    fn release(&self, id: Option<portcullis_wire::Id>) {
        if let Some(id) = id {
            self.ids().remove(&id);
        }
    }
}

fn request_id(msg: &Envelope) -> Option<&portcullis_wire::Id> {
    (msg.kind() == portcullis_wire::Kind::Request)
        .then_some(msg.id.as_ref())
        .flatten()
}

async fn handle_one(
    session: Arc<Session>,
    msg: Envelope,
    tx: mpsc::UnboundedSender<Vec<u8>>,
    inflight: InFlight,
) {
    let id = request_id(&msg).cloned();
    let handled = session.handle(msg).await;
    inflight.release(id);
    match handled {
        Handled::Response(response) => {
            let _ = tx.send(response.to_bytes());
        }
        Handled::Rejected(err) => {
            tracing::warn!(error = %err.message, "message from the host refused")
        }
        Handled::Accepted | Handled::Cancelled => {}
    }
}

/// A JSON-RPC batch (protocol 2025-03-26 and earlier): every member is handled, and the
/// answers to its requests go back as one array. A member refused before it ran (`Err`: its
/// request id is already in flight) is answered with that refusal.
async fn handle_batch(
    session: Arc<Session>,
    msgs: Vec<Result<Envelope, Envelope>>,
    tx: mpsc::UnboundedSender<Vec<u8>>,
    inflight: InFlight,
) {
    let outcomes = join_all(msgs.into_iter().map(|m| {
        let s = session.clone();
        let inflight = inflight.clone();
        async move {
            match m {
                Ok(m) => {
                    let id = request_id(&m).cloned();
                    let handled = s.handle(m).await;
                    inflight.release(id);
                    handled
                }
                Err(refusal) => Handled::Response(refusal),
            }
        }
    }))
    .await;
    let mut out = b"[".to_vec();
    let mut first = true;
    for outcome in outcomes {
        if let Handled::Response(r) = outcome {
            if !first {
                out.push(b',');
            }
            first = false;
            r.write_to(&mut out);
        }
    }
    out.push(b']');
    if !first {
        let _ = tx.send(out);
    }
}

/// The checks of a 2026-07-28 request over stdio: its `_meta` envelope, then its version.
fn check_modern(msg: &Envelope) -> Result<(), ErrorObject> {
    let declared = era::check_envelope(msg)?;
    era::check_version(declared.as_deref())
}

/// Answers a request with an error (a notification gets nothing back).
fn reply_error(tx: &mpsc::UnboundedSender<Vec<u8>>, msg: &Envelope, err: &ErrorObject) {
    if msg.kind() == portcullis_wire::Kind::Request {
        let _ = tx.send(Envelope::error_response(msg.id.clone(), err).to_bytes());
    }
}

fn send_ingress_error(tx: &mpsc::UnboundedSender<Vec<u8>>, e: &IngressError) {
    tracing::warn!(error = %e, "refused a message from the host");
    let _ = tx.send(Envelope::error_response(e.response_id(), &e.to_error_object()).to_bytes());
}

async fn write_lines<W: AsyncWrite + Unpin>(mut out: W, mut rx: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(frame) = rx.recv().await {
        if let Err(e) = write_frame(&mut out, &frame).await {
            tracing::warn!(error = %e, "writing to stdout failed");
            return;
        }
    }
}
