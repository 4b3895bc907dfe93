//! The gateway as a whole: configuration, routes, upstream specs and the connections shared
//! between sessions. Transports hold one `Arc<Gateway>` and create sessions from it.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use portcullis_egress::{EgressClient, EgressConfig};
use portcullis_policy::Policy;

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
    /// One connection per server and client era, shared by every session that may share
    /// it: sessions of servers with `instances = "shared"` (stateful era), and stateless
    /// (2026-07-28) clients, which have no session of their own.
    shared: HashMap<(String, Era), Arc<UpstreamSlot>>,
    routes: HashMap<String, Arc<Route>>,
    /// Calls waiting for a stateless client's input (see `session::mrtr`).
    pub parked: ParkedCalls,
}

impl Gateway {
    pub fn new(config: Config) -> Result<Arc<Self>, GatewayError> {
        let egress = EgressClient::new(&EgressConfig::default())?;
        let max = config.gateway.max_message_bytes;
        let mut specs = HashMap::new();
        let mut shared = HashMap::new();
        for (name, server) in &config.servers {
            let spec =
                UpstreamSpec::from_config(server, max).map_err(|reason| GatewayError::Server {
                    server: name.clone(),
                    reason,
                })?;
            let spec = Arc::new(spec);
            for era in [Era::Legacy, Era::Modern] {
                let slot = UpstreamSlot::new(
                    spec.clone(),
                    egress.clone(),
                    None,
                    ClientCapsForUpstream::shared(),
                    era,
                );
                shared.insert((name.clone(), era), Arc::new(slot));
            }
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
            shared,
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
            return self.shared_slot(server, Era::Legacy);
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

    /// The connection shared by the sessions of clients of one era.
    pub fn shared_slot(&self, server: &str, era: Era) -> Option<Arc<UpstreamSlot>> {
        self.shared.get(&(server.to_owned(), era)).cloned()
    }

    /// Stops every shared connection (child processes included).
    pub async fn shutdown(&self) {
        for slot in self.shared.values() {
            slot.shutdown().await;
        }
    }
}
