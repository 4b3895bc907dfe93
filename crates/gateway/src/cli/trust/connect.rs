//! Reaching a server from `portcullis trust` to see what it lists now: its tools and its
//! instructions.
//!
//! The server is reached through the gateway library, as a shared connection would be (a
//! stdio server is started with its sandbox, after its launch check; an HTTP server through
//! the egress guard with the gateway's own credential), and stopped again. Its definitions
//! are not pinned on the way (`definitions = "off"` for this one connection): accepting them
//! is the person's decision, made after they are shown.

use std::sync::Arc;
use std::time::Duration;

use portcullis_gateway::config::{Config, Upstream};
use portcullis_gateway::gateway::Gateway;
use portcullis_gateway::upstream::catalog::{self, ListKind};
use portcullis_gateway::upstream::definitions::DefinitionMode;
use portcullis_gateway::upstream::handshake::Era;
use portcullis_store::Store;
use serde_json::Value;

use crate::cli::runtime;

/// The longest `trust` waits for a server to start and list (less when the server's own
/// `timeout` is shorter).
const UPSTREAM_WAIT: Duration = Duration::from_secs(30);
/// How long a stdio server gets to exit once `trust` is done with it.
const CHILD_EXIT_WAIT: Duration = Duration::from_secs(3);

/// What a server lists now.
pub(crate) struct Listed {
    /// Its tools, as listed (items that are not JSON objects left out).
    pub tools: Vec<Value>,
    /// Its `instructions`, if it sends any.
    pub instructions: Option<String>,
}

/// Starts (or connects to) `name`, lists its tools and reads its instructions, and stops
/// it again; the error says why it could not.
pub(crate) fn list_now(
    config: &Config,
    name: &str,
    store: Arc<dyn Store>,
) -> Result<Listed, String> {
    let server = config
        .servers
        .get(name)
        .ok_or_else(|| format!("no server \"{name}\""))?;
    let wait = server.timeout.min(UPSTREAM_WAIT);
    let is_stdio = matches!(server.upstream, Upstream::Stdio(_));
    let mut config = config.clone();
    if let Some(server) = config.servers.get_mut(name) {
        server.definitions = DefinitionMode::Off;
    }
    let runtime = runtime(None).map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let gateway = Gateway::with_store(config, store).map_err(|e| e.to_string())?;
        let listed = tokio::time::timeout(wait, fetch(&gateway, name)).await;
        stop(gateway, is_stdio).await;
        listed.map_err(|_| format!("no answer within {} s", wait.as_secs()))?
    })
}

/// Stops a gateway a command assembled to reach an upstream: its connections closed, and a
/// stdio child given [`CHILD_EXIT_WAIT`] to exit (it is stopped by a task — stdin closed,
/// then signals to its process group — which must not be cut short when the runtime ends).
pub(crate) async fn stop(gateway: Arc<Gateway>, is_stdio: bool) {
    gateway.shutdown().await;
    drop(gateway);
    if is_stdio {
        let deadline = tokio::time::Instant::now() + CHILD_EXIT_WAIT;
        let metrics = tokio::runtime::Handle::current().metrics();
        while metrics.num_alive_tasks() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn fetch(gateway: &Arc<Gateway>, name: &str) -> Result<Listed, String> {
    let slot = gateway
        .shared_slot(name, Era::Legacy, None)
        .ok_or_else(|| format!("no server \"{name}\""))?;
    let conn = slot.get().await.map_err(|e| e.to_string())?;
    let identity = conn.identity();
    let instructions = identity.and_then(|i| i.instructions.clone());
    if !identity.is_some_and(|i| i.has_capability("tools")) {
        return Ok(Listed {
            tools: Vec::new(),
            instructions,
        });
    }
    let listing = catalog::fetch_all(&conn, ListKind::Tools)
        .await
        .map_err(|e| e.to_string())?;
    let tools = listing
        .items
        .iter()
        .filter_map(|raw| serde_json::from_str::<Value>(raw.get()).ok())
        .filter(Value::is_object)
        .collect();
    Ok(Listed {
        tools,
        instructions,
    })
}
