//! The gateway's own handshake with an upstream.
//!
//! The gateway negotiates with each side on its own: the version a client chose says nothing
//! about what an upstream speaks. With `protocol = "auto"` the gateway first offers the
//! newest stateful version (`initialize`, 2025-11-25) — the era in which server→client
//! requests (sampling, elicitation, roots) can be relayed — and falls back to the stateless
//! 2026-07-28 protocol (`server/discover`) when the upstream refuses `initialize`.

use std::sync::Arc;

use portcullis_wire::ProtocolVersion;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::conn::Transport;
use super::{Reply, UpstreamConn, UpstreamError};
use crate::config::UpstreamProtocol;
use crate::mcp;
use crate::roots::ConfiguredRoots;

/// Which family of the protocol a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Era {
    /// 2024-11-05 … 2025-11-25: `initialize`, sessions, server→client requests.
    Legacy,
    /// 2026-07-28: stateless, `server/discover`, per-request `_meta`.
    Modern,
}

/// What an upstream said about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerIdentity {
    pub era: Era,
    pub version: ProtocolVersion,
    pub capabilities: Map<String, Value>,
    pub server_info: Value,
    pub instructions: Option<String>,
    /// `_meta` members the 2026-07-28 protocol wants on every request.
    pub request_meta: Map<String, Value>,
}

impl ServerIdentity {
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities.get(name).is_some_and(|v| !v.is_null())
    }
}

/// Many sessions of one server see the same identity: they share one copy of it (an idle
/// session then costs the gateway about a kilobyte less).
fn intern(identity: ServerIdentity) -> Arc<ServerIdentity> {
    static SEEN: std::sync::Mutex<Vec<Arc<ServerIdentity>>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(same) = seen.iter().find(|s| ***s == identity) {
        return same.clone();
    }
    let identity = Arc::new(identity);
    // Bounded: a server that varies its identity per session is simply not shared.
    if seen.len() < 64 {
        seen.push(identity.clone());
    }
    identity
}

/// The client capabilities the gateway declares upstream: those of the downstream client it
/// relays for (so an upstream never sends a request the client cannot answer), or, for a
/// connection shared by many clients, all that the gateway can relay. A server with
/// configured roots is always offered `roots`: the gateway answers its `roots/list` itself.
#[derive(Debug, Clone, Default)]
pub struct ClientCapsForUpstream {
    caps: Map<String, Value>,
    roots: Option<Arc<ConfiguredRoots>>,
}

impl ClientCapsForUpstream {
    /// For a connection shared by many clients.
    pub fn shared() -> Self {
        let mut m = Map::new();
        m.insert("roots".into(), json!({ "listChanged": true }));
        m.insert("sampling".into(), json!({}));
        m.insert("elicitation".into(), json!({}));
        ClientCapsForUpstream {
            caps: m,
            roots: None,
        }
    }

    /// The relayable subset of a downstream client's capabilities.
    pub fn from_client(caps: &Map<String, Value>) -> Self {
        let mut m = Map::new();
        for key in ["roots", "sampling", "elicitation"] {
            if let Some(v) = caps.get(key).filter(|v| v.is_object()) {
                m.insert(key.into(), v.clone());
            }
        }
        ClientCapsForUpstream {
            caps: m,
            roots: None,
        }
    }

    /// The server's configured roots, if it has some: the connection answers `roots/list`
    /// with them, so `roots` is declared whatever the client declared (with `listChanged`:
    /// the gateway passes the client's root changes on).
    pub fn with_roots(mut self, roots: Option<Arc<ConfiguredRoots>>) -> Self {
        if roots.is_some() {
            self.caps
                .insert("roots".into(), json!({ "listChanged": true }));
        }
        self.roots = roots;
        self
    }

    /// What is declared.
    pub fn declared(&self) -> &Map<String, Value> {
        &self.caps
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitializeResult {
    protocol_version: String,
    #[serde(default)]
    capabilities: Map<String, Value>,
    #[serde(default)]
    server_info: Value,
    instructions: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DiscoverResult {
    #[serde(default)]
    supported_versions: Vec<String>,
    #[serde(default)]
    capabilities: Map<String, Value>,
    instructions: Option<String>,
    #[serde(default)]
    server_info: Option<Value>,
    #[serde(rename = "_meta", default)]
    meta: Map<String, Value>,
}

/// Runs the handshake and records the upstream's identity on the connection. With
/// `protocol = "auto"` the era the client speaks is tried first (`prefer`), then the other:
/// a stateless client is best served by a stateless upstream (its `input_required` results
/// and per-request capabilities pass straight through), a stateful client by a stateful one
/// (server→client requests are relayed as they are).
pub async fn handshake(
    conn: &Arc<UpstreamConn>,
    protocol: UpstreamProtocol,
    caps: &ClientCapsForUpstream,
    prefer: Era,
) -> Result<(), UpstreamError> {
    // Known before the server can ask (it may, as soon as it is initialized).
    if let Some(roots) = &caps.roots {
        conn.set_configured_roots(roots.clone());
    }
    let result = match protocol {
        UpstreamProtocol::Fixed(v) if !v.has_initialize() => discover(conn, caps).await,
        UpstreamProtocol::Fixed(v) => initialize(conn, v, caps).await,
        UpstreamProtocol::Auto if prefer == Era::Modern => match discover(conn, caps).await {
            Err(Refusal::Refused(why)) => {
                tracing::info!(
                    server = conn.server(),
                    why,
                    "upstream refused server/discover; trying initialize"
                );
                reset_version_header(conn);
                initialize(conn, ProtocolVersion::LATEST_WITH_INITIALIZE, caps).await
            }
            other => other,
        },
        UpstreamProtocol::Auto => {
            match initialize(conn, ProtocolVersion::LATEST_WITH_INITIALIZE, caps).await {
                Err(Refusal::Refused(why)) => {
                    tracing::info!(
                        server = conn.server(),
                        why,
                        "upstream refused initialize; trying the 2026-07-28 protocol"
                    );
                    discover(conn, caps).await
                }
                other => other,
            }
        }
    };
    result.map_err(|r| r.into_error(conn.server()))
}

fn reset_version_header(conn: &UpstreamConn) {
    if let Transport::Http(io) = &conn.transport {
        io.clear_protocol_version();
    }
}

/// Sorts a failed handshake request: a live server refusing (worth trying the other era), or
/// a failure of the transport.
fn refusal(method: &str, reply: Result<Reply, UpstreamError>) -> Result<Box<RawValue>, Refusal> {
    match reply {
        Ok(Reply::Result(r)) => Ok(r),
        Ok(Reply::Error(e)) => Err(Refusal::Refused(format!("{method} answered {}", e.get()))),
        Err(UpstreamError::HttpStatus { status, .. }) if (400..500).contains(&status) => {
            Err(Refusal::Refused(format!("{method} answered HTTP {status}")))
        }
        Err(e) => Err(Refusal::Failed(e)),
    }
}

/// An `initialize` that failed: refused by a live server (worth trying the other era), or
/// failed outright.
enum Refusal {
    Refused(String),
    Failed(UpstreamError),
}

impl Refusal {
    fn into_error(self, server: &str) -> UpstreamError {
        match self {
            Refusal::Refused(reason) => UpstreamError::Protocol {
                server: server.to_owned(),
                reason,
            },
            Refusal::Failed(e) => e,
        }
    }
}

fn client_info() -> Value {
    json!({ "name": mcp::GATEWAY_NAME, "version": mcp::GATEWAY_VERSION })
}

async fn initialize(
    conn: &Arc<UpstreamConn>,
    version: ProtocolVersion,
    caps: &ClientCapsForUpstream,
) -> Result<(), Refusal> {
    let server = conn.server().to_owned();
    let params = json!({
        "protocolVersion": version.as_str(),
        "capabilities": caps.declared(),
        "clientInfo": client_info(),
    });
    let reply = conn
        .request_quietly(mcp::INITIALIZE, Some(mcp::raw(&params)), None)
        .await;
    let result = refusal(mcp::INITIALIZE, reply)?;
    let init: InitializeResult = serde_json::from_str(result.get()).map_err(|e| {
        Refusal::Failed(UpstreamError::Protocol {
            server: server.clone(),
            reason: format!("bad initialize result: {e}"),
        })
    })?;
    let negotiated = ProtocolVersion::parse(&init.protocol_version)
        .filter(|v| v.has_initialize())
        .ok_or_else(|| {
            Refusal::Failed(UpstreamError::Protocol {
                server: server.clone(),
                reason: format!(
                    "upstream chose protocol version {:?}, which the gateway does not speak",
                    init.protocol_version
                ),
            })
        })?;
    if let Transport::Http(io) = &conn.transport
        && negotiated >= ProtocolVersion::V2025_06_18
    {
        io.set_protocol_version(negotiated.as_str(), false);
    }
    conn.set_identity(intern(ServerIdentity {
        era: Era::Legacy,
        version: negotiated,
        capabilities: init.capabilities,
        server_info: init.server_info,
        instructions: init.instructions,
        request_meta: Map::new(),
    }));
    conn.notify(mcp::NOTIFICATION_INITIALIZED, None)
        .await
        .map_err(Refusal::Failed)?;
    tracing::info!(server, version = %negotiated, "upstream initialized");
    Ok(())
}

async fn discover(conn: &Arc<UpstreamConn>, caps: &ClientCapsForUpstream) -> Result<(), Refusal> {
    let server = conn.server().to_owned();
    let version = ProtocolVersion::V2026_07_28;
    let mut meta = Map::new();
    meta.insert(mcp::META_PROTOCOL_VERSION.into(), json!(version.as_str()));
    meta.insert(
        mcp::META_CLIENT_CAPABILITIES.into(),
        Value::Object(caps.declared().clone()),
    );
    meta.insert(mcp::META_CLIENT_INFO.into(), client_info());
    if let Transport::Http(io) = &conn.transport {
        io.set_protocol_version(version.as_str(), true);
    }
    let params = json!({ "_meta": meta });
    let reply = conn
        .request_quietly(mcp::SERVER_DISCOVER, Some(mcp::raw(&params)), None)
        .await;
    let result = refusal(mcp::SERVER_DISCOVER, reply)?;
    let Ok(found) = serde_json::from_str::<DiscoverResult>(result.get()) else {
        return Err(Refusal::Refused(
            "server/discover answered something that is not a discover result".into(),
        ));
    };
    if !found
        .supported_versions
        .iter()
        .any(|v| v == version.as_str())
    {
        return Err(Refusal::Refused(format!(
            "server/discover lists {:?}, no stateless version the gateway speaks",
            found.supported_versions
        )));
    }
    let server_info = found
        .server_info
        .or_else(|| found.meta.get(mcp::META_SERVER_INFO).cloned())
        .unwrap_or(Value::Null);
    conn.set_identity(intern(ServerIdentity {
        era: Era::Modern,
        version,
        capabilities: found.capabilities,
        server_info,
        instructions: found.instructions,
        request_meta: meta,
    }));
    tracing::info!(server, version = %version, "upstream discovered");
    Ok(())
}
