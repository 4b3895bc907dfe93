//! How a session begins, and how the gateway describes itself to a client.
//!
//! `initialize` (stateful era) creates a session: the gateway picks the protocol version
//! with the client on its own, starts the route's upstreams with the client's relayable
//! capabilities, and answers with the capabilities of the upstreams *as filtered by the
//! policy*: a kind of item the principal may never see is not announced at all.
//! `server/discover` (2026-07-28) gets the same description without creating anything.

use std::sync::Arc;

use portcullis_policy::Kind;
use portcullis_wire::{Envelope, ErrorObject, ProtocolVersion, codes};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::{Session, SessionParams};
use crate::config::FailureMode;
use crate::mcp;
use crate::upstream::UpstreamConn;

/// A started session and the response to its `initialize`.
pub struct InitOutcome {
    pub session: Arc<Session>,
    pub response: Envelope,
    pub version: ProtocolVersion,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitializeParams {
    protocol_version: String,
    #[serde(default)]
    capabilities: Map<String, Value>,
}

/// The version the gateway answers a client's `initialize` with: the client's own if the
/// gateway speaks it, else the newest stateful version (the client may then disconnect).
pub fn negotiate(requested: &str) -> ProtocolVersion {
    ProtocolVersion::parse(requested)
        .filter(|v| v.has_initialize())
        .unwrap_or(ProtocolVersion::LATEST_WITH_INITIALIZE)
}

impl Session {
    /// Creates a session from a client's `initialize` request. On failure the error
    /// response to send is returned and no session exists.
    pub(crate) async fn initialize(
        mut params: SessionParams,
        msg: &Envelope,
    ) -> Result<InitOutcome, Envelope> {
        let id = msg.id.clone();
        let fail = |e: ErrorObject| Envelope::error_response(id.clone(), &e);
        let init: InitializeParams = match msg.params_as() {
            Ok(Some(p)) => p,
            Ok(None) => {
                return Err(fail(ErrorObject::new(
                    codes::INVALID_PARAMS,
                    "initialize needs params",
                )));
            }
            Err(e) => {
                return Err(fail(ErrorObject::new(
                    codes::INVALID_PARAMS,
                    format!("invalid initialize params: {e}"),
                )));
            }
        };
        let version = negotiate(&init.protocol_version);
        params.client_caps = init.capabilities;
        let session = Session::new(params);
        session.set_version(version);
        if let Err(e) = session.start_members().await {
            session.close().await;
            return Err(fail(e));
        }
        let result = session.describe(Some(version));
        let Some(id) = id else {
            return Err(fail(ErrorObject::new(
                codes::INVALID_REQUEST,
                "initialize needs an id",
            )));
        };
        tracing::info!(session = %session.id, route = %session.route.name, version = %version, "session started");
        Ok(InitOutcome {
            session,
            response: Envelope::response(id, mcp::raw(&result)),
            version,
        })
    }

    /// Starts every member's upstream. A single server must start; a virtual server
    /// tolerates failures unless `on_upstream_failure = "fail"`.
    pub(crate) async fn start_members(&self) -> Result<(), ErrorObject> {
        let results = futures::future::join_all(self.members.iter().map(|m| m.slot.get())).await;
        let mut started = 0;
        for (member, result) in self.members.iter().zip(results) {
            match result {
                Ok(conn) => {
                    if let Some(guard) = self.gateway.definitions(&member.server) {
                        let instructions = conn.identity().and_then(|i| i.instructions.clone());
                        guard.check_instructions(instructions.as_deref()).await;
                    }
                    started += 1;
                }
                // A server waiting for its user's authorization: the session starts (the
                // first request for it answers with the link), it just is not live yet.
                Err(crate::upstream::UpstreamError::AuthorizationRequired(_)) => {
                    tracing::info!(route = %self.route.name, server = %member.server, "upstream waits for the user's authorization");
                    started += 1;
                }
                Err(e) if self.route.virtual_mode == Some(FailureMode::Omit) => {
                    tracing::warn!(route = %self.route.name, server = %member.server, error = %e, "upstream left out of the virtual server");
                }
                Err(e) => return Err(e.to_error_object()),
            }
        }
        if started == 0 && !self.members.is_empty() {
            return Err(ErrorObject::new(
                codes::UPSTREAM_UNAVAILABLE,
                "no upstream of this route could be started",
            ));
        }
        Ok(())
    }

    fn live_members(&self) -> Vec<(Arc<str>, Arc<UpstreamConn>)> {
        self.members
            .iter()
            .filter_map(|m| Some((m.server.clone(), m.slot.current()?)))
            .collect()
    }

    /// The `initialize` result (with `version`) or the `server/discover` body (without).
    pub(crate) fn describe(&self, version: Option<ProtocolVersion>) -> Value {
        let live = self.live_members();
        let capabilities = self.capabilities(&live);
        let (server_info, instructions) = if self.route.is_virtual() {
            let info = json!({ "name": format!("portcullis/{}", self.route.name), "version": mcp::GATEWAY_VERSION });
            let text: Vec<String> = live
                .iter()
                .filter_map(|(server, conn)| {
                    let i = conn.identity()?.instructions.as_deref()?;
                    self.instructions_shown(server, i).then_some(())?;
                    Some(format!("## {server}\nTools and prompts of this server are named `{server}.<name>`.\n{i}"))
                })
                .collect();
            (info, (!text.is_empty()).then(|| text.join("\n\n")))
        } else {
            let identity = live.first().and_then(|(_, c)| c.identity().cloned());
            let info = identity
                .as_ref()
                .map(|i| i.server_info.clone())
                .filter(|v| v.is_object())
                .unwrap_or_else(
                    || json!({ "name": mcp::GATEWAY_NAME, "version": mcp::GATEWAY_VERSION }),
                );
            let server = live.first().map(|(s, _)| s.clone());
            let instructions = identity
                .and_then(|i| i.instructions.clone())
                .filter(|text| server.is_some_and(|s| self.instructions_shown(&s, text)));
            (info, instructions)
        };
        let mut out = Map::new();
        match version {
            Some(v) => {
                out.insert("protocolVersion".into(), json!(v.as_str()));
                out.insert("capabilities".into(), Value::Object(capabilities));
                out.insert("serverInfo".into(), server_info);
            }
            None => {
                out.insert(
                    "supportedVersions".into(),
                    json!([ProtocolVersion::V2026_07_28.as_str()]),
                );
                out.insert(
                    "capabilities".into(),
                    Value::Object(stateless_capabilities(capabilities)),
                );
                out.insert(
                    "_meta".into(),
                    json!({ mcp::META_SERVER_INFO: server_info }),
                );
            }
        }
        if let Some(text) = instructions {
            out.insert("instructions".into(), Value::String(text));
        }
        Value::Object(out)
    }

    /// Whether `server`'s instructions may be told to the client: not when they differ
    /// from their pin (`upstream::definitions`), nor when the description scan blocks them
    /// (`scanning`).
    fn instructions_shown(&self, server: &str, text: &str) -> bool {
        self.gateway
            .definitions(server)
            .is_none_or(|guard| guard.instructions_shown(text))
            && self.scan_shows_instructions(server, text)
    }

    /// The `server/discover` answer; starts the route's upstreams if they are not up.
    pub(crate) async fn discover_result(&self) -> Result<Box<RawValue>, ErrorObject> {
        self.start_members().await?;
        Ok(mcp::raw(&self.describe(None)))
    }

    /// Merges the members' capabilities, keeping only what the policy lets this principal
    /// use. Experimental features and tasks are never announced: the gateway does not relay
    /// them, so announcing them would promise what it cannot keep.
    fn capabilities(&self, live: &[(Arc<str>, Arc<UpstreamConn>)]) -> Map<String, Value> {
        let policy = self.gateway.policy();
        let caller = self.caller();
        let mut out = Map::new();
        // A server that waits for its user's authorization has not said what it offers:
        // tools are announced, so the client asks for them and meets the link.
        for m in &self.members {
            let waiting = !live.iter().any(|(s, _)| *s == m.server)
                && self
                    .gateway
                    .user_auth
                    .as_ref()
                    .is_some_and(|ua| ua.handles(&m.server));
            if waiting && policy.may_expose(&caller, &m.server, Kind::Tool) {
                merge_into(&mut out, "tools", &json!({ "listChanged": true }));
            }
        }
        for (server, conn) in live {
            let Some(identity) = conn.identity() else {
                continue;
            };
            let caps = &identity.capabilities;
            let mut exposed_any = false;
            for (cap, kind) in [
                ("tools", Kind::Tool),
                ("prompts", Kind::Prompt),
                ("resources", Kind::Resource),
            ] {
                if let Some(v) = caps.get(cap).filter(|v| v.is_object())
                    && policy.may_expose(&caller, server, kind)
                {
                    merge_into(&mut out, cap, v);
                    exposed_any |= kind != Kind::Tool;
                }
            }
            if let Some(v) = caps.get("logging").filter(|v| v.is_object()) {
                merge_into(&mut out, "logging", v);
            }
            if exposed_any && let Some(v) = caps.get("completions").filter(|v| v.is_object()) {
                merge_into(&mut out, "completions", v);
            }
        }
        out
    }
}

/// What a 2026-07-28 client may rely on. Change notifications and resource subscriptions
/// travel on `subscriptions/listen` in that protocol, which the gateway does not relay yet:
/// so it does not announce them.
fn stateless_capabilities(mut caps: Map<String, Value>) -> Map<String, Value> {
    for kind in ["tools", "prompts", "resources"] {
        if let Some(Value::Object(c)) = caps.get_mut(kind) {
            c.remove("listChanged");
            c.remove("subscribe");
        }
    }
    caps
}

/// Adds one server's capability object: flags are or-ed, other members kept from the first.
fn merge_into(out: &mut Map<String, Value>, cap: &str, value: &Value) {
    let Some(incoming) = value.as_object() else {
        return;
    };
    let entry = out.entry(cap).or_insert_with(|| Value::Object(Map::new()));
    let Some(existing) = entry.as_object_mut() else {
        return;
    };
    for (k, v) in incoming {
        match (existing.get_mut(k), v) {
            (Some(Value::Bool(a)), Value::Bool(b)) => *a |= *b,
            (Some(_), _) => {}
            (None, v) => {
                existing.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_keeps_a_known_stateful_version_and_falls_back_otherwise() {
        assert_eq!(negotiate("2025-03-26"), ProtocolVersion::V2025_03_26);
        assert_eq!(negotiate("2024-11-05"), ProtocolVersion::V2024_11_05);
        assert_eq!(
            negotiate("1999-01-01"),
            ProtocolVersion::LATEST_WITH_INITIALIZE
        );
        // 2026-07-28 has no initialize: a client asking for it in initialize gets the newest
        // version that does.
        assert_eq!(
            negotiate("2026-07-28"),
            ProtocolVersion::LATEST_WITH_INITIALIZE
        );
    }

    #[test]
    fn merged_capability_flags_are_or_ed() {
        let mut out = Map::new();
        merge_into(&mut out, "tools", &json!({ "listChanged": false }));
        merge_into(&mut out, "tools", &json!({ "listChanged": true }));
        merge_into(&mut out, "resources", &json!({ "subscribe": true }));
        merge_into(
            &mut out,
            "resources",
            &json!({ "listChanged": true, "subscribe": false }),
        );
        assert_eq!(
            Value::Object(out),
            json!({ "tools": { "listChanged": true }, "resources": { "subscribe": true, "listChanged": true } })
        );
    }
}
