//! The request path: what the gateway does with each client request, in one place.
//!
//! For a call (`tools/call`, `prompts/get`, `resources/read|subscribe|unsubscribe`,
//! `completion/complete`) the order is always: admission (see [`super::admission`]: resolve,
//! exists upstream, visible, decide, rate limit, validate, audit) → forward with a
//! gateway-minted id → relay the answer → record the outcome. A name the policy hides and a
//! name that does not exist get the same error, produced by the gateway, so a caller cannot
//! probe for hidden tools.

use std::sync::Arc;

use portcullis_policy::Kind;
use portcullis_wire::{Envelope, ErrorObject, Id, ProtocolVersion, codes};
use serde_json::value::RawValue;

use super::Session;
use super::admission::Call;
use super::consent_step::ConsentContext;
use crate::json::RawObject;
use crate::mcp::{self, raw_error_envelope};
use crate::upstream::catalog::ListKind;
use crate::upstream::handshake::Era;
use crate::upstream::{Origin, Reply, UpstreamConn, UpstreamError};
use serde_json::Value;

/// The outcome of one client request.
pub(super) enum Outcome {
    Reply(Reply),
    Error(ErrorObject),
    /// Cancelled by the client: no response is sent.
    Cancelled,
}

impl From<ErrorObject> for Outcome {
    fn from(e: ErrorObject) -> Self {
        Outcome::Error(e)
    }
}

/// The error for a name that is hidden or missing: one error for both.
pub(super) fn unknown(kind: Kind, name: &str) -> ErrorObject {
    match kind {
        Kind::Tool => ErrorObject::new(codes::INVALID_PARAMS, format!("Unknown tool: {name}")),
        Kind::Prompt => ErrorObject::new(codes::INVALID_PARAMS, format!("Unknown prompt: {name}")),
        Kind::Resource => ErrorObject::new(codes::RESOURCE_NOT_FOUND, "Resource not found")
            .with_data(serde_json::json!({ "uri": name })),
    }
}

/// Whether an upstream error says that `uri` does not exist: -32002, or the -32602 with
/// `data.uri` that 2026-07-28 servers answer instead (SEP-2164).
fn is_not_found(error: &RawValue, uri: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct View {
        code: i64,
        data: Option<serde_json::Value>,
    }
    let Ok(e) = serde_json::from_str::<View>(error.get()) else {
        return false;
    };
    let names_uri = e
        .data
        .as_ref()
        .and_then(|d| d.get("uri"))
        .and_then(|u| u.as_str())
        == Some(uri);
    e.code == codes::RESOURCE_NOT_FOUND || (e.code == codes::INVALID_PARAMS && names_uri)
}

fn invalid_params(msg: impl Into<String>) -> ErrorObject {
    ErrorObject::new(codes::INVALID_PARAMS, msg.into())
}

/// The params of a call, which must be an object.
fn params_object(params: Option<&RawValue>) -> Result<RawObject, ErrorObject> {
    let raw = params.ok_or_else(|| invalid_params("params are required"))?;
    RawObject::parse(raw).map_err(|_| invalid_params("params must be an object"))
}

/// The `arguments` of `tools/call` or `prompts/get`: an object, when present.
fn arguments(params: &RawObject) -> Result<Option<Value>, ErrorObject> {
    match params.get("arguments") {
        None => Ok(None),
        Some(raw) => match serde_json::from_str::<Value>(raw.get()) {
            Ok(v @ Value::Object(_)) => Ok(Some(v)),
            Ok(Value::Null) => Ok(None),
            _ => Err(invalid_params("params.arguments must be an object")),
        },
    }
}

/// The params of a call, and the string member naming what it is about.
fn named_params(params: Option<&RawValue>, key: &str) -> Result<(RawObject, String), ErrorObject> {
    let obj = params_object(params)?;
    let name = obj
        .get_str(key)
        .ok_or_else(|| invalid_params(format!("params.{key} must be a string")))?;
    Ok((obj, name))
}

impl Session {
    pub(super) async fn handle_request(self: &Arc<Self>, msg: Envelope) -> Option<Envelope> {
        let id = msg.id.clone()?;
        let method = msg.method().unwrap_or_default().to_owned();
        let params = msg.params;
        let version = self
            .version()
            .unwrap_or(ProtocolVersion::LATEST_WITH_INITIALIZE);
        if !portcullis_wire::method::lookup_in(&method, version)
            .is_some_and(|m| m.direction.from_client())
        {
            // Also what a client gets for a method its own protocol version does not have
            // (e.g. `ping` or `resources/subscribe` in 2026-07-28).
            let err = ErrorObject::new(
                codes::METHOD_NOT_FOUND,
                format!("Method not found: {method}"),
            );
            return Some(Envelope::error_response(Some(id), &err));
        }
        if self.modern
            && super::mrtr::may_require_input(&method)
            && let Some(token) = super::mrtr::our_token(params.as_deref())
        {
            let outcome = self.resume(&id, &method, params.as_deref(), &token).await;
            let outcome = self.clean_resumed(&method, params.as_deref(), outcome);
            return self.finish(id, &method, outcome);
        }
        let outcome = match method.as_str() {
            mcp::INITIALIZE => Outcome::Error(ErrorObject::new(
                codes::INVALID_REQUEST,
                "this session is already initialized; start a new session to initialize again",
            )),
            mcp::PING => Outcome::Reply(Reply::Result(mcp::empty_object())),
            mcp::SERVER_DISCOVER => match self.discover_result().await {
                Ok(r) => Outcome::Reply(Reply::Result(r)),
                Err(e) => Outcome::Error(e),
            },
            mcp::TOOLS_CALL => {
                let out = self.call_named(&id, Kind::Tool, &method, params).await;
                self.url_elicitation_as_tool_error(out)
            }
            mcp::PROMPTS_GET => self.call_named(&id, Kind::Prompt, &method, params).await,
            mcp::RESOURCES_READ | mcp::RESOURCES_SUBSCRIBE | mcp::RESOURCES_UNSUBSCRIBE => {
                self.call_resource(&id, &method, params).await
            }
            mcp::COMPLETION_COMPLETE => self.complete(&id, &method, params).await,
            mcp::LOGGING_SET_LEVEL => self.set_level(&id, &method, params).await,
            other => match ListKind::from_method(other) {
                Some(kind) => self.list(&id, kind, params).await,
                None => Outcome::Error(ErrorObject::new(
                    codes::METHOD_NOT_FOUND,
                    format!("Method not found: {other}"),
                )),
            },
        };
        self.watch_url_elicitation(&outcome);
        self.finish(id, &method, outcome)
    }

    /// A `-32042` told this session about a link: it hears when the person has finished
    /// (`notifications/elicitation/complete`), if it can hear anything unsolicited.
    fn watch_url_elicitation(&self, outcome: &Outcome) {
        let Outcome::Error(e) = outcome else {
            return;
        };
        if e.code != codes::URL_ELICITATION_REQUIRED
            || self.modern
            || !self.takes_url_elicitations()
        {
            return;
        }
        let Some(user_auth) = &self.gateway.user_auth else {
            return;
        };
        let Some(data) = e
            .data
            .as_ref()
            .and_then(|d| serde_json::from_str::<serde_json::Value>(d.get()).ok())
        else {
            return;
        };
        let ids = data["elicitations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|el| el["elicitationId"].as_str());
        for id in ids {
            user_auth.completions.watch(id, &self.outbound);
        }
    }

    /// The response to a request, its result fitted to the client's era.
    fn finish(&self, id: Id, method: &str, outcome: Outcome) -> Option<Envelope> {
        let outcome = match outcome {
            Outcome::Reply(Reply::Result(r)) => match self.adapt_result(method, r) {
                Ok(r) => Outcome::Reply(Reply::Result(r)),
                Err(e) => Outcome::Error(e),
            },
            other => other,
        };
        match outcome {
            Outcome::Reply(Reply::Result(r)) => Some(Envelope::response(id, r)),
            Outcome::Reply(Reply::Error(e)) => Some(raw_error_envelope(id, e)),
            Outcome::Error(e) => Some(Envelope::error_response(Some(id), &e)),
            Outcome::Cancelled => None,
        }
    }

    /// Fits a result to the client's protocol era. A 2026-07-28 client gets `resultType`
    /// on every result and cache hints on cacheable ones — always `private`, because what
    /// the gateway returns is filtered for this principal. A stateful client cannot carry a
    /// 2026-07-28 `input_required` result (an older client would read it as an empty
    /// success), so it gets an error that says so instead.
    fn adapt_result(
        &self,
        method: &str,
        result: Box<RawValue>,
    ) -> Result<Box<RawValue>, ErrorObject> {
        let mentions_type = crate::json::may_mention(result.get(), "resultType");
        if !self.modern && !mentions_type {
            return Ok(result);
        }
        let Ok(mut obj) = RawObject::parse(&result) else {
            return Ok(result);
        };
        let result_type = obj.get_str("resultType");
        if !self.modern {
            if result_type.as_deref() == Some("input_required") {
                return Err(ErrorObject::new(
                    codes::INTERNAL_ERROR,
                    "the upstream needs more input from the client (a 2026-07-28 input_required result), which this client's protocol version cannot carry",
                ));
            }
            return Ok(result);
        }
        if result_type.is_none() {
            obj.set_str("resultType", "complete");
        }
        let cacheable = ListKind::from_method(method).is_some()
            || matches!(method, mcp::RESOURCES_READ | mcp::SERVER_DISCOVER);
        if cacheable && result_type.as_deref().is_none_or(|t| t == "complete") {
            if obj.get("ttlMs").is_none() {
                obj.set("ttlMs", mcp::raw(&serde_json::json!(0)));
            }
            obj.set_str("cacheScope", "private");
        }
        Ok(obj.to_raw())
    }

    /// The live connection to `server`, started if needed.
    pub(crate) async fn conn(&self, server: &str) -> Result<Arc<UpstreamConn>, ErrorObject> {
        let member = self.member(server).ok_or_else(|| {
            ErrorObject::new(
                codes::INTERNAL_ERROR,
                format!("{server:?} is not part of this route"),
            )
        })?;
        member.slot.get().await.map_err(|e| e.to_error_object())
    }

    /// Sends a request upstream on behalf of client request `id` and waits for the answer.
    /// While it waits, the client can cancel it and the upstream's messages about it are
    /// routed to the client's request.
    pub(super) async fn forward(
        self: &Arc<Self>,
        id: &Id,
        conn: &Arc<UpstreamConn>,
        method: &str,
        params: Option<Box<RawValue>>,
    ) -> Outcome {
        if self.modern
            && super::mrtr::may_require_input(method)
            && conn.identity().is_some_and(|i| i.era == Era::Modern)
            && let Some(roots) = conn.configured_roots()
        {
            // A stateless upstream with configured roots asks for them in its own
            // `input_required` results: see `roots`.
            return self
                .forward_answering_roots(id, conn, method, params, roots)
                .await;
        }
        // A stateless upstream may answer a stateful client `input_required`: the gateway
        // then asks the client itself and retries (see `mrtr`), so it keeps the params.
        let retry_params =
            (!self.modern && super::mrtr::may_require_input(method)).then(|| params.clone());
        match (
            self.forward_once(id, conn, method, params).await,
            retry_params,
        ) {
            (Outcome::Reply(Reply::Result(r)), Some(params))
                if super::mrtr::is_input_required(&r) =>
            {
                self.fulfil_input_required(id, conn, method, params, r)
                    .await
            }
            (outcome, _) => outcome,
        }
    }

    /// One request upstream on behalf of client request `id`.
    pub(super) async fn forward_once(
        self: &Arc<Self>,
        id: &Id,
        conn: &Arc<UpstreamConn>,
        method: &str,
        params: Option<Box<RawValue>>,
    ) -> Outcome {
        let origin = Origin {
            listener: self.listener(),
            downstream_id: Some(id.clone()),
        };
        if super::mrtr::may_require_input(method) {
            // The upstream may ask for input while it works on this, on a stream of its own
            // when it is a stateful HTTP server: have that stream open.
            conn.ensure_listening();
        }
        if self.modern && super::mrtr::may_require_input(method) {
            // The upstream may ask this stateless client for input mid-call: the channel for
            // its questions must exist before the request leaves, or an early question finds
            // nobody to ask. (See `mrtr` for what identifies a round of the call.)
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let caps = super::mrtr::request_caps(params.as_deref());
            let identity = super::mrtr::call_identity(params.as_deref());
            self.lock()
                .inputs
                .insert(id.clone(), super::mrtr::InputChannel { tx, caps });
            let call = match conn.start_request(method, params, Some(origin)).await {
                Ok(call) => call,
                Err(e) => {
                    self.lock().inputs.remove(id);
                    return Outcome::Error(e.to_error_object());
                }
            };
            return self.await_with_inputs(id, call, rx, method, identity).await;
        }
        let call = match conn.start_request(method, params, Some(origin)).await {
            Ok(call) => call,
            Err(e) => return Outcome::Error(e.to_error_object()),
        };
        let inflight = self.begin_inflight(id, conn, call.upstream_id());
        let out = call.wait().await;
        inflight.finish();
        match out {
            Ok(reply) => Outcome::Reply(reply),
            Err(UpstreamError::Cancelled) => Outcome::Cancelled,
            Err(e) => {
                tracing::warn!(session = %self.id, server = conn.server(), method, error = %e, "upstream request failed");
                Outcome::Error(e.to_error_object())
            }
        }
    }

    /// A client that cannot take a URL elicitation (`-32042`) gets the link in a tool
    /// error instead: the model and the person see it either way.
    fn url_elicitation_as_tool_error(&self, out: Outcome) -> Outcome {
        match out {
            Outcome::Error(e)
                if e.code == codes::URL_ELICITATION_REQUIRED && !self.takes_url_elicitations() =>
            {
                let result = serde_json::json!({
                    "content": [{ "type": "text", "text": e.message }],
                    "isError": true,
                });
                match serde_json::value::to_raw_value(&result) {
                    Ok(raw) => Outcome::Reply(Reply::Result(raw)),
                    Err(_) => Outcome::Error(e),
                }
            }
            other => other,
        }
    }

    /// Whether the client declared `elicitation.url` (MCP 2025-11-25).
    fn takes_url_elicitations(&self) -> bool {
        self.lock()
            .client_caps
            .get("elicitation")
            .and_then(|e| e.get("url"))
            .is_some_and(serde_json::Value::is_object)
    }

    /// `tools/call` and `prompts/get`.
    async fn call_named(
        self: &Arc<Self>,
        id: &Id,
        kind: Kind,
        method: &str,
        params: Option<Box<RawValue>>,
    ) -> Outcome {
        let (mut obj, name) = match named_params(params.as_deref(), "name") {
            Ok(p) => p,
            Err(e) => return e.into(),
        };
        let args = match arguments(&obj) {
            Ok(args) => args,
            Err(e) => return e.into(),
        };
        let consent = ConsentContext::new(id, method, &obj);
        let call = Call {
            method,
            kind,
            name: &name,
            args: args.as_ref(),
            consent: &consent,
        };
        let admission = match self.admit(&call).await {
            Ok(admission) => admission,
            Err(refused) => return refused.into_outcome(),
        };
        let params = consent.strip(&mut obj, params);
        let params = if self.route.is_virtual() {
            obj.set_str("name", &admission.upstream_name);
            Some(obj.to_raw())
        } else {
            params
        };
        let outcome = self.forward(id, &admission.conn, method, params).await;
        let (outcome, content) =
            self.clean_outcome(method, &admission.server, &admission.upstream_name, outcome);
        self.note_outcome(&call, &admission, &outcome, &content);
        outcome
    }

    /// `resources/read`, `resources/subscribe`, `resources/unsubscribe`.
    async fn call_resource(
        self: &Arc<Self>,
        id: &Id,
        method: &str,
        params: Option<Box<RawValue>>,
    ) -> Outcome {
        let (mut obj, uri) = match named_params(params.as_deref(), "uri") {
            Ok(p) => p,
            Err(e) => return e.into(),
        };
        let consent = ConsentContext::new(id, method, &obj);
        let call = Call {
            method,
            kind: Kind::Resource,
            name: &uri,
            args: None,
            consent: &consent,
        };
        let admission = match self.admit(&call).await {
            Ok(admission) => admission,
            Err(refused) => return refused.into_outcome(),
        };
        let params = consent.strip(&mut obj, params);
        let (conn, upstream_uri) = (&admission.conn, admission.upstream_name.as_str());
        if method == mcp::RESOURCES_SUBSCRIBE {
            // Updates arrive on the upstream's own stream: make sure it is open.
            conn.ensure_listening();
        }
        let params = if self.route.is_virtual() {
            obj.set_str("uri", upstream_uri);
            Some(obj.to_raw())
        } else {
            params
        };
        let outcome = self.forward(id, conn, method, params).await;
        let (outcome, content) =
            self.clean_outcome(method, &admission.server, &admission.upstream_name, outcome);
        self.note_outcome(&call, &admission, &outcome, &content);
        match outcome {
            // The upstream's own "not found" (worded its own way) would tell a URI that does
            // not exist from one the policy hides: answer both with the gateway's error.
            Outcome::Reply(Reply::Error(e)) if is_not_found(&e, upstream_uri) => {
                unknown(Kind::Resource, &uri).into()
            }
            Outcome::Reply(Reply::Result(r))
                if self.route.is_virtual() && method == mcp::RESOURCES_READ =>
            {
                Outcome::Reply(Reply::Result(self.expose_contents(conn.server(), r)))
            }
            other => other,
        }
    }

    /// The `uri` of each content of a virtual server's `resources/read` result, in the form
    /// the client knows (`<server>+<uri>`), so it can read or subscribe to it again.
    fn expose_contents(&self, server: &str, result: Box<RawValue>) -> Box<RawValue> {
        let Ok(mut obj) = RawObject::parse(&result) else {
            return result;
        };
        let Some(Ok(contents)) = obj.get("contents").map(crate::json::raw_array) else {
            return result;
        };
        let exposed: Vec<Box<RawValue>> = contents
            .into_iter()
            .map(|item| match RawObject::parse(&item) {
                Ok(mut c) => match c.get_str("uri") {
                    Some(uri) => {
                        c.set_str("uri", &self.route.expose_uri(server, &uri));
                        c.to_raw()
                    }
                    None => item,
                },
                Err(_) => item,
            })
            .collect();
        obj.set("contents", crate::json::to_raw_array(&exposed));
        obj.to_raw()
    }

    /// `completion/complete`: completes an argument of a prompt or a resource template, so
    /// it is decided like the prompt or resource it refers to.
    async fn complete(
        self: &Arc<Self>,
        id: &Id,
        method: &str,
        params: Option<Box<RawValue>>,
    ) -> Outcome {
        let mut obj = match params_object(params.as_deref()) {
            Ok(obj) => obj,
            Err(e) => return e.into(),
        };
        let Some(Ok(mut reference)) = obj.get("ref").map(RawObject::parse) else {
            return invalid_params("params.ref must be an object").into();
        };
        let (kind, key) = match reference.get_str("type").as_deref() {
            Some("ref/prompt") => (Kind::Prompt, "name"),
            Some("ref/resource") => (Kind::Resource, "uri"),
            _ => {
                return invalid_params("params.ref.type must be ref/prompt or ref/resource").into();
            }
        };
        let Some(name) = reference.get_str(key) else {
            return invalid_params(format!("params.ref.{key} must be a string")).into();
        };
        let consent = ConsentContext::new(id, method, &obj);
        let call = Call {
            method,
            kind,
            name: &name,
            args: None,
            consent: &consent,
        };
        let admission = match self.admit(&call).await {
            Ok(admission) => admission,
            Err(refused) => return refused.into_outcome(),
        };
        let params = if self.route.is_virtual() {
            reference.set_str(key, &admission.upstream_name);
            obj.set("ref", reference.to_raw());
            Some(obj.to_raw())
        } else {
            params
        };
        let outcome = self.forward(id, &admission.conn, method, params).await;
        let (outcome, content) =
            self.clean_outcome(method, &admission.server, &admission.upstream_name, outcome);
        self.note_outcome(&call, &admission, &outcome, &content);
        outcome
    }

    /// `logging/setLevel`: one server's answer for a single route; fanned out to every
    /// member that logs for a virtual one.
    async fn set_level(
        self: &Arc<Self>,
        id: &Id,
        method: &str,
        params: Option<Box<RawValue>>,
    ) -> Outcome {
        if !self.route.is_virtual() {
            let server = self.route.members[0].clone();
            return match self.conn(&server).await {
                Ok(conn) => self.forward(id, &conn, method, params).await,
                Err(e) => e.into(),
            };
        }
        for member in &self.members {
            let Some(conn) = member.slot.current() else {
                continue;
            };
            if !conn.identity().is_some_and(|i| i.has_capability("logging")) {
                continue;
            }
            if let Err(e) = conn.request(method, params.clone(), None).await {
                tracing::warn!(session = %self.id, server = %member.server, error = %e, "logging/setLevel failed upstream");
            }
        }
        Outcome::Reply(Reply::Result(mcp::empty_object()))
    }
}
