//! Input requests across protocol eras: a stateful upstream asking a stateless client.
//!
//! A server of the stateful era asks its client for input (sampling, elicitation, roots) with
//! a server→client request in the middle of a call. A 2026-07-28 client cannot receive one:
//! its server answers `input_required` instead, and the client retries the same call with the
//! answers (MRTR). The gateway bridges the two. When the upstream asks, the client's request
//! is answered with `input_required` while the upstream call stays open, *parked* under a
//! random token that travels as `requestState`. The retry carries the token and the answers:
//! the gateway hands each answer to the upstream as the response to its request, and goes on
//! waiting for the call's result — or for the next question.
//!
//! The other way round — a stateless upstream answering a stateful client `input_required`
//! — the gateway asks the client the questions itself, as server→client requests on the
//! client's request stream, and retries the call upstream with the answers.
//!
//! The token is an unguessable key to state the gateway keeps, bound to the principal, the
//! method and the call's parameters: a retry by someone else, or for other arguments, is
//! refused. Parked calls are bounded in number and in time; an abandoned one is cancelled
//! upstream when it expires.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_wire::{ErrorObject, Id, codes};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::Session;
use super::relay::Outcome;
use crate::config::SystemPaths;
use crate::mcp;
use crate::roots::ConfiguredRoots;
use crate::upstream::{PendingCall, Reply, UpstreamConn, UpstreamError};

/// Marks the `requestState` tokens the gateway itself issued (others belong to a stateless
/// upstream and pass through untouched).
const TOKEN_PREFIX: &str = "portcullis.";
/// Most calls parked at once, gateway-wide.
const MAX_PARKED: usize = 1024;
/// Longest a parked call waits for the client's retry.
const PARK_TTL: Duration = Duration::from_secs(300);
/// Most rounds of questions the gateway answers for a stateful client before giving up.
const MAX_ROUNDS: usize = 10;

/// A server→client request of a stateful upstream, waiting to be put to a stateless client.
pub(crate) struct InputRequest {
    pub conn: Arc<UpstreamConn>,
    pub upstream_id: Id,
    pub method: String,
    pub params: Option<Box<RawValue>>,
    /// A roots question of a server with configured roots: the client's answer is narrowed
    /// to them before it goes upstream (see `roots`).
    pub narrow: Option<Arc<ConfiguredRoots>>,
}

/// Where the input requests for one client request go, and what that client can answer.
pub(crate) struct InputChannel {
    pub tx: mpsc::UnboundedSender<InputRequest>,
    pub caps: Map<String, Value>,
}

type Waiting = Pin<Box<dyn Future<Output = Result<Reply, UpstreamError>> + Send>>;

/// An upstream call whose client was asked for input and has not answered yet.
struct ParkedCall {
    /// The session the upstream routes its messages to (kept alive while parked).
    origin: Arc<Session>,
    origin_id: Id,
    conn: Arc<UpstreamConn>,
    upstream_id: u64,
    wait: Waiting,
    inputs: mpsc::UnboundedReceiver<InputRequest>,
    /// Asked and not answered yet, by the key the client sees.
    asked: Vec<(String, InputRequest)>,
    principal: String,
    method: String,
    params: Value,
    expires: Instant,
}

/// The parked calls of the whole gateway (stateless clients have no session to keep them).
#[derive(Default)]
pub struct ParkedCalls {
    map: Mutex<HashMap<String, ParkedCall>>,
}

impl ParkedCalls {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ParkedCall>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops expired calls, cancelling them upstream.
    fn sweep(map: &mut HashMap<String, ParkedCall>) {
        let now = Instant::now();
        let expired: Vec<String> = map
            .iter()
            .filter(|(_, c)| c.expires <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            if let Some(call) = map.remove(&key) {
                tokio::spawn(async move {
                    call.conn
                        .cancel(
                            call.upstream_id,
                            "the client never answered the input request",
                        )
                        .await;
                });
            }
        }
    }

    fn park(&self, call: ParkedCall) -> Result<String, Box<ParkedCall>> {
        let mut map = self.lock();
        Self::sweep(&mut map);
        if map.len() >= MAX_PARKED {
            return Err(Box::new(call));
        }
        let token = format!("{TOKEN_PREFIX}{}", crate::ids::random_token(32));
        map.insert(token.clone(), call);
        Ok(token)
    }

    fn take(&self, token: &str) -> Option<ParkedCall> {
        let mut map = self.lock();
        Self::sweep(&mut map);
        map.remove(token)
    }
}

/// Whether a request may be answered with `input_required` (the protocol allows it on these
/// three only).
pub(super) fn may_require_input(method: &str) -> bool {
    matches!(
        method,
        mcp::TOOLS_CALL | mcp::PROMPTS_GET | mcp::RESOURCES_READ
    )
}

/// The request's own client capabilities (`_meta`), which bound what it may be asked.
pub(super) fn request_caps(params: Option<&RawValue>) -> Map<String, Value> {
    params
        .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
        .and_then(|p| {
            p.get("_meta")?
                .get(mcp::META_CLIENT_CAPABILITIES)?
                .as_object()
                .cloned()
        })
        .unwrap_or_default()
}

/// The parameters that identify a call, without what changes between its rounds.
pub(super) fn call_identity(params: Option<&RawValue>) -> Value {
    let mut v: Value = params
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        for key in ["_meta", "inputResponses", "requestState"] {
            m.remove(key);
        }
    }
    v
}

/// The gateway's `requestState` token in a retry, if there is one.
pub(super) fn our_token(params: Option<&RawValue>) -> Option<String> {
    let v: Value = serde_json::from_str(params?.get()).ok()?;
    let token = v.get("requestState")?.as_str()?;
    token.starts_with(TOKEN_PREFIX).then(|| token.to_owned())
}

fn invalid_state() -> ErrorObject {
    ErrorObject::new(codes::INVALID_PARAMS, "Invalid or expired requestState")
        .with_data(json!({ "reason": "invalid_request_state" }))
}

impl Session {
    /// Routes an upstream's server→client request to the stateless client request it is
    /// about; refuses it when that client cannot answer it.
    pub(super) fn route_input_request(
        &self,
        request: InputRequest,
        related: Option<Id>,
        capability: &str,
    ) -> Result<(), String> {
        let st = self.lock();
        let channel = related.as_ref().and_then(|id| st.inputs.get(id));
        let Some(channel) = channel else {
            return Err("no client request of this stateless client is waiting for input".into());
        };
        if !channel.caps.get(capability).is_some_and(Value::is_object) {
            return Err(format!(
                "the client did not declare the {capability:?} capability for this request"
            ));
        }
        channel
            .tx
            .send(request)
            .map_err(|_| "the client request is over".to_owned())
    }

    /// Waits for a call that may need the client's input: either its result, or (first)
    /// questions from the upstream, which park the call and answer `input_required`.
    pub(super) async fn await_with_inputs(
        self: &Arc<Self>,
        id: &Id,
        call: PendingCall,
        inputs: mpsc::UnboundedReceiver<InputRequest>,
        method: &str,
        params: Value,
    ) -> Outcome {
        let conn = call.conn().clone();
        let upstream_id = call.upstream_id();
        let parked = ParkedCall {
            origin: self.clone(),
            origin_id: id.clone(),
            conn: conn.clone(),
            upstream_id,
            wait: Box::pin(call.wait()),
            inputs,
            asked: Vec::new(),
            principal: self.principal.to_string(),
            method: method.to_owned(),
            params,
            expires: Instant::now() + PARK_TTL.min(conn.timeout()),
        };
        self.run_round(id, parked).await
    }

    async fn run_round(self: &Arc<Self>, id: &Id, mut call: ParkedCall) -> Outcome {
        let inflight = self.begin_inflight(id, &call.conn, call.upstream_id);
        let outcome = tokio::select! {
            biased;
            reply = &mut call.wait => Some(reply),
            Some(first) = call.inputs.recv() => {
                let n = call.asked.len();
                call.asked.push((format!("input-{}", n + 1), first));
                while let Ok(more) = call.inputs.try_recv() {
                    let n = call.asked.len();
                    call.asked.push((format!("input-{}", n + 1), more));
                }
                None
            }
        };
        // Answered, or parked for the client's input: either way not abandoned.
        inflight.finish();
        match outcome {
            Some(reply) => {
                call.origin.lock().inputs.remove(&call.origin_id);
                match reply {
                    Ok(reply) => Outcome::Reply(reply),
                    Err(UpstreamError::Cancelled) => Outcome::Cancelled,
                    Err(e) => Outcome::Error(e.to_error_object()),
                }
            }
            None => self.ask(call),
        }
    }

    /// Parks the call and tells the client what the upstream asked.
    fn ask(&self, call: ParkedCall) -> Outcome {
        let mut requests = Map::new();
        for (key, req) in &call.asked {
            let params = req
                .params
                .as_deref()
                .and_then(|p| serde_json::from_str::<Value>(p.get()).ok());
            let mut entry = Map::new();
            entry.insert("method".into(), Value::String(req.method.clone()));
            if let Some(p) = params {
                entry.insert("params".into(), p);
            }
            requests.insert(key.clone(), Value::Object(entry));
        }
        let token = match self.gateway.parked.park(call) {
            Ok(token) => token,
            Err(call) => {
                let conn = call.conn.clone();
                tokio::spawn(async move {
                    conn.cancel(call.upstream_id, "too many calls waiting for input")
                        .await
                });
                return Outcome::Error(ErrorObject::new(
                    codes::INTERNAL_ERROR,
                    "the gateway holds too many calls waiting for input; try again later",
                ));
            }
        };
        let result = json!({ "resultType": "input_required", "inputRequests": requests, "requestState": token });
        Outcome::Reply(Reply::Result(mcp::raw(&result)))
    }

    /// A retry carrying the gateway's `requestState`: answers the upstream's questions and
    /// goes on waiting for the call.
    pub(super) async fn resume(
        self: &Arc<Self>,
        id: &Id,
        method: &str,
        params: Option<&RawValue>,
        token: &str,
    ) -> Outcome {
        let Some(mut call) = self.gateway.parked.take(token) else {
            return Outcome::Error(invalid_state());
        };
        if call.principal != self.principal.to_string()
            || call.method != method
            || call.params != call_identity(params)
        {
            tracing::warn!(session = %self.id, method, "a requestState was replayed by another caller or for another call; refused");
            let conn = call.conn.clone();
            tokio::spawn(async move { conn.cancel(call.upstream_id, "requestState misuse").await });
            return Outcome::Error(invalid_state());
        }
        let answers: Map<String, Value> = params
            .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
            .and_then(|v| v.get("inputResponses")?.as_object().cloned())
            .unwrap_or_default();
        let mut unanswered = Vec::new();
        for (key, req) in std::mem::take(&mut call.asked) {
            match answers.get(&key) {
                Some(answer) => {
                    let answer = match &req.narrow {
                        Some(roots) => roots.narrow_answer(answer, &SystemPaths),
                        None => answer.clone(),
                    };
                    if let Err(e) = req
                        .conn
                        .respond(req.upstream_id, Reply::Result(mcp::raw(&answer)))
                        .await
                    {
                        tracing::warn!(session = %self.id, error = %e, "could not hand the client's answer upstream");
                    }
                }
                None => unanswered.push((key, req)),
            }
        }
        if !unanswered.is_empty() {
            // Missing answers get the questions again, not an error.
            call.asked = unanswered;
            return self.ask(call);
        }
        self.run_round(id, call).await
    }
}

/// Whether a result is a 2026-07-28 `input_required` result.
pub(super) fn is_input_required(result: &RawValue) -> bool {
    crate::json::may_mention(result.get(), "input_required")
        && serde_json::from_str::<Value>(result.get())
            .ok()
            .is_some_and(|v| v.get("resultType").and_then(Value::as_str) == Some("input_required"))
}

/// The client capability an input request needs.
fn capability_for(method: &str) -> Option<&'static str> {
    match method {
        mcp::SAMPLING_CREATE_MESSAGE => Some("sampling"),
        mcp::ELICITATION_CREATE => Some("elicitation"),
        mcp::ROOTS_LIST => Some("roots"),
        _ => None,
    }
}

impl Session {
    /// A stateless upstream asked a stateful client for input: ask the client (server→client
    /// requests on its request's stream), then retry the call with the answers.
    pub(super) async fn fulfil_input_required(
        self: &Arc<Self>,
        id: &Id,
        conn: &Arc<UpstreamConn>,
        method: &str,
        params: Option<Box<RawValue>>,
        first: Box<RawValue>,
    ) -> Outcome {
        let mut result = first;
        for _ in 0..MAX_ROUNDS {
            let Ok(round) = serde_json::from_str::<Value>(result.get()) else {
                break;
            };
            if round.get("resultType").and_then(Value::as_str) != Some("input_required") {
                return Outcome::Reply(Reply::Result(result));
            }
            let mut asked = Vec::new();
            for (key, request) in round
                .get("inputRequests")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let method = request
                    .get("method")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if method == mcp::ROOTS_LIST
                    && let Some(roots) = conn.configured_roots()
                {
                    // The gateway's own answer, whatever the client can do (see `roots`).
                    let rx = self.roots_reply_later(roots.clone(), id.clone(), conn.timeout());
                    asked.push((key.clone(), rx));
                    continue;
                }
                let Some(capability) = capability_for(method) else {
                    return Outcome::Error(ErrorObject::new(
                        codes::INTERNAL_ERROR,
                        format!(
                            "the upstream asked for {method:?}, which the gateway cannot relay"
                        ),
                    ));
                };
                if !self.client_has(capability) {
                    return Outcome::Error(
                        ErrorObject::new(
                            codes::MISSING_REQUIRED_CLIENT_CAPABILITY,
                            format!("the upstream needs the client's {capability:?} capability for this request"),
                        )
                        .with_data(json!({ "requiredCapabilities": { capability: {} } })),
                    );
                }
                let params = request.get("params").map(mcp::raw);
                asked.push((key.clone(), self.ask_client(method, params, Some(id))));
            }
            let answers = tokio::time::timeout(
                conn.timeout(),
                futures::future::join_all(
                    asked
                        .into_iter()
                        .map(|(key, rx)| async move { (key, rx.await) }),
                ),
            )
            .await;
            let Ok(answers) = answers else {
                return Outcome::Error(ErrorObject::new(
                    codes::REQUEST_TIMEOUT,
                    "the client did not answer the upstream's input request in time",
                ));
            };
            let mut responses = Map::new();
            for (key, answer) in answers {
                match answer {
                    Ok(Reply::Result(r)) => {
                        responses.insert(key, serde_json::from_str(r.get()).unwrap_or(Value::Null));
                    }
                    // The client refused: that is the answer to the whole call.
                    Ok(Reply::Error(e)) => return Outcome::Reply(Reply::Error(e)),
                    Err(_) => return Outcome::Cancelled,
                }
            }
            let mut retry: Map<String, Value> = params
                .as_deref()
                .and_then(|p| serde_json::from_str(p.get()).ok())
                .unwrap_or_default();
            retry.insert("inputResponses".into(), Value::Object(responses));
            match round.get("requestState") {
                Some(state) => retry.insert("requestState".into(), state.clone()),
                None => retry.remove("requestState"),
            };
            match self
                .forward_once(id, conn, method, Some(mcp::raw(&Value::Object(retry))))
                .await
            {
                Outcome::Reply(Reply::Result(r)) => result = r,
                other => return other,
            }
        }
        Outcome::Error(ErrorObject::new(
            codes::INTERNAL_ERROR,
            "the upstream kept asking for input; the gateway gave up",
        ))
    }
}
