//! The gateway as a whole: configuration, routes, upstream specs and the connections shared
//! between sessions. Transports hold one `Arc<Gateway>` and create sessions from it.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use portcullis_egress::{EgressClient, EgressConfig};
use portcullis_policy::{Policy, Principal};

use crate::config::{Config, Instances, Upstream};
use crate::route::{Route, routes};
use crate::session::ParkedCalls;
use crate::upstream::handshake::Era;
use crate::upstream::slot::UpstreamSpec;
use crate::upstream::{ClientCapsForUpstream, UpstreamListener, UpstreamSlot};

/// Why the gateway could not be assembled from a configuration.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("server {server:?}: {reason}")]
    Server { server: String, reason: String },
    #[error("outbound HTTP client: {0}")]
    Egress(#[from] portcullis_egress::EgressError),
}

pub struct Gateway {
    pub config: Arc<Config>,
    pub egress: EgressClient,
    specs: HashMap<String, Arc<UpstreamSpec>>,
    /// Connections shared between sessions: one per server for servers with
    /// `instances = "shared"` (stateful era); and, for stateless (2026-07-28) clients, which
    /// have no session of their own, one per server and principal — so that whatever an
    /// upstream says that cannot be tied to a request stays within one principal.
    shared: std::sync::Mutex<HashMap<SharedKey, Arc<UpstreamSlot>>>,
    routes: HashMap<String, Arc<Route>>,
    /// Calls waiting for a stateless client's input (see `session::mrtr`).
    pub parked: ParkedCalls,
}

impl Gateway {
    pub fn new(config: Config) -> Result<Arc<Self>, GatewayError> {
        let egress = EgressClient::new(&EgressConfig::default())?;
        let max = config.gateway.max_message_bytes;
        let mut specs = HashMap::new();
        for (name, server) in &config.servers {
            let spec =
                UpstreamSpec::from_config(server, max).map_err(|reason| GatewayError::Server {
                    server: name.clone(),
                    reason,
                })?;
            let spec = Arc::new(spec);
            specs.insert(name.clone(), spec);
        }
        let routes = routes(&config)
            .into_iter()
            .map(|r| (r.name.to_string(), r))
            .collect();
        Ok(Arc::new(Gateway {
            config: Arc::new(config),
            egress,
            specs,
            shared: std::sync::Mutex::new(HashMap::new()),
            routes,
            parked: ParkedCalls::default(),
        }))
    }

    pub fn policy(&self) -> &Policy {
        &self.config.policy
    }

    pub fn route(&self, name: &str) -> Option<Arc<Route>> {
        self.routes.get(name).cloned()
    }

    pub fn route_names(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }

    /// Whether sessions share one connection to `server`.
    pub fn is_shared(&self, server: &str) -> bool {
        match self.config.servers.get(server).map(|s| &s.upstream) {
            Some(Upstream::Stdio(s)) => s.instances == Instances::Shared,
            _ => false,
        }
    }

    /// The connection slot a session uses for `server`: its own, or the shared one.
    pub fn slot_for_session(
        &self,
        server: &str,
        owner: Weak<dyn UpstreamListener>,
        caps: ClientCapsForUpstream,
        era: Era,
    ) -> Option<Arc<UpstreamSlot>> {
        if self.is_shared(server) {
            return self.shared_slot(server, Era::Legacy, None);
        }
        let spec = self.specs.get(server)?.clone();
        Some(Arc::new(UpstreamSlot::new(
            spec,
            self.egress.clone(),
            Some(owner),
            caps,
            era,
        )))
    }

    /// A connection shared by sessions: of clients of one era, and (when given) of one
    /// principal. Created on first use.
    pub fn shared_slot(
        &self,
        server: &str,
        era: Era,
        principal: Option<&Principal>,
    ) -> Option<Arc<UpstreamSlot>> {
        let spec = self.specs.get(server)?;
        let key = SharedKey {
            server: server.to_owned(),
            era,
            principal: principal.map(|p| p.to_string()),
        };
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        let slot = shared.entry(key).or_insert_with(|| {
            Arc::new(UpstreamSlot::new(
                spec.clone(),
                self.egress.clone(),
                None,
                ClientCapsForUpstream::shared(),
                era,
            ))
        });
        Some(slot.clone())
    }

    /// Stops every shared connection (child processes included).
    pub async fn shutdown(&self) {
        let slots: Vec<Arc<UpstreamSlot>> = self
            .shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, s)| s)
            .collect();
        for slot in slots {
            slot.shutdown().await;
        }
    }
}

/// What a shared connection is shared by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SharedKey {
    server: String,
    era: Era,
    principal: Option<String>,
}
