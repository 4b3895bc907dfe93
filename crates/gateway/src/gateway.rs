//! The gateway as a whole: configuration, routes, upstream specs and the connections shared
//! between sessions. Transports hold one `Arc<Gateway>` and create sessions from it.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use portcullis_auth::upstream::{CredentialSpec, UpstreamCredential};
use portcullis_egress::guard::{EgressGuard, GuardLimits, Refusal};
use portcullis_egress::{EgressClient, EgressConfig, RefusalObserver};
use portcullis_guard::SchemaCache;
use portcullis_policy::{Policy, Principal};
use portcullis_store::{SqliteOptions, SqliteStore, Store};

use crate::audit::Audit;
use crate::config::{AuditMirror, Config, Instances, StateLocation, Upstream};
use crate::consent::approvals::{AdminAuth, ApprovalQueue};
use crate::limits::RateLimiter;
use crate::oauth::UserAuthorization;
use crate::roots::ConfiguredRoots;
use crate::route::{Route, routes};
use crate::session::ParkedCalls;
use crate::upstream::definitions::DefinitionGuard;
use crate::upstream::handshake::Era;
use crate::upstream::pinning::LaunchGuard;
use crate::upstream::proxy::SandboxEgress;
use crate::upstream::slot::{Target, UpstreamSpec};
use crate::upstream::{ClientCapsForUpstream, UpstreamListener, UpstreamSlot};

/// Why the gateway could not be assembled from a configuration.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("server {server:?}: {reason}")]
    Server { server: String, reason: String },
    #[error("outbound HTTP client: {0}")]
    Egress(#[from] portcullis_egress::EgressError),
    #[error("gateway.state {path}: {source}")]
    Store {
        path: String,
        #[source]
        source: portcullis_store::StoreError,
    },
    #[error(transparent)]
    Approvals(#[from] crate::consent::approvals::AdminAuthError),
    #[error("audit.mirror {path}: {source}")]
    Mirror {
        path: String,
        #[source]
        source: std::io::Error,
    },
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
    /// Consent: remembered approvals, the signer of `input_required` consent states, the
    /// terminal (see `consent`).
    pub consent: crate::consent::Consent,
    /// The audit trail, in the state store.
    pub audit: Audit,
    /// Rate limits per principal × server × name.
    pub limiter: RateLimiter,
    /// Compiled `inputSchema`s of the tools called through the gateway.
    pub schemas: SchemaCache,
    /// Description-scan results of the tools listed through the gateway (`session::scanning`).
    pub scans: crate::session::Scans,
    /// Per-user OAuth at remote servers (`credential = { oauth }`); `None` without any.
    pub user_auth: Option<Arc<UserAuthorization>>,
    /// Calls waiting for a decision on the approvals page or from `portcullis approvals`
    /// (closed, answering nothing, without `[approvals]`).
    pub approvals: Arc<ApprovalQueue>,
    /// Who may decide them: the admin token of `[approvals]`.
    pub approvals_admin: Option<Arc<AdminAuth>>,
}

/// The gateway's one outbound client: behind the SSRF guard with `[egress]`'s exceptions,
/// logging and auditing every refusal whoever asked (an upstream, `[auth]`, a credential).
/// The guard's own bounds are raised to the config's where those are larger, so a slow tool
/// call (`servers.<name>.timeout`) or a large message (`gateway.max_message_bytes`) is bounded
/// by the setting its operator chose.
fn egress_client(config: &Config, audit: Audit) -> Result<EgressClient, GatewayError> {
    let defaults = GuardLimits::default();
    let longest = config
        .servers
        .values()
        .map(|s| s.timeout)
        .chain([config.gateway.request_timeout, defaults.total_timeout])
        .max()
        .unwrap_or(defaults.total_timeout);
    let limits = GuardLimits {
        total_timeout: longest,
        max_response_bytes: defaults
            .max_response_bytes
            .max(config.gateway.max_message_bytes),
        ..defaults
    };
    let guard = EgressGuard::new(config.egress.clone(), limits);
    let transport = audit_transport(config);
    let observer = RefusalObserver::new(move |refusal| record_refusal(&audit, transport, refusal));
    Ok(EgressClient::guarded(&EgressConfig::default(), guard)?.with_refusal_observer(observer))
}

/// The transport the gateway's own records (egress refusals) are written under: its run mode.
fn audit_transport(config: &Config) -> &'static str {
    match config.run_mode {
        crate::config::RunMode::Serve => "http",
        crate::config::RunMode::Stdio => "stdio",
    }
}

/// A refused outbound request, logged and audited with its URL (already without userinfo
/// and query), the address that decided it, and the rule.
fn record_refusal(audit: &Audit, transport: &'static str, refusal: &Refusal) {
    let address = refusal
        .address
        .map_or_else(|| "-".to_owned(), |a| a.to_string());
    tracing::warn!(
        url = %refusal.url,
        address = %address,
        rule = refusal.rule.code(),
        "outbound request refused by the egress guard: {}",
        refusal.rule
    );
    audit.egress_refused(
        transport,
        crate::audit::Entry {
            name: &refusal.url,
            rule: Some(refusal.rule.code().to_owned()),
            reason: format!("{} (address {address})", refusal.rule),
            ..crate::audit::Entry::default()
        },
    );
}

impl Gateway {
    /// Assembles the gateway and opens its state store (creating it, and its directory,
    /// on first use).
    pub fn new(config: Config) -> Result<Arc<Self>, GatewayError> {
        let store = open_store(&config)?;
        Self::with_store(config, store)
    }

    /// Assembles the gateway on a store opened elsewhere.
    pub fn with_store(config: Config, store: Arc<dyn Store>) -> Result<Arc<Self>, GatewayError> {
        let max = config.gateway.max_message_bytes;
        let audit = Audit::new(store.clone(), config.audit.include_args);
        let egress = egress_client(&config, audit.clone())?;
        // The sandboxes' proxies decide with the same policy, and audit alike (issue 6).
        let sandbox_egress = SandboxEgress::new(
            config.egress.clone(),
            audit.clone(),
            audit_transport(&config),
        );
        let user_auth = UserAuthorization::from_config(&config, egress.clone(), audit.clone())
            .map_err(|(server, reason)| GatewayError::Server { server, reason })?
            .map(Arc::new);
        let mut specs = HashMap::new();
        for (name, server) in &config.servers {
            let spec =
                UpstreamSpec::from_config(server, max, config.run_mode).map_err(|reason| {
                    GatewayError::Server {
                        server: name.clone(),
                        reason,
                    }
                })?;
            let mut spec = spec;
            if let (Upstream::Http(h), Target::Http(http)) = (&server.upstream, &mut spec.target)
                && let Some(CredentialSpec::Oauth(_)) = &h.credential
            {
                http.user_auth = user_auth.clone();
            } else if let (Upstream::Http(h), Target::Http(http)) =
                (&server.upstream, &mut spec.target)
                && let Some(c) = &h.credential
            {
                // Secrets are read now: a missing variable or file stops the start.
                let built = UpstreamCredential::new(c, egress.clone()).map_err(|e| {
                    GatewayError::Server {
                        server: name.clone(),
                        reason: format!("credential: {e}"),
                    }
                })?;
                http.credential = Some(Arc::new(built));
            }
            if let Target::Stdio(launch) = &mut spec.target {
                launch.egress = sandbox_egress.clone();
            }
            if let (Upstream::Stdio(s), Target::Stdio(launch)) = (&server.upstream, &spec.target) {
                spec.launch_guard = LaunchGuard::new(
                    name,
                    s,
                    launch.program.clone(),
                    config.run_mode,
                    audit.store().clone(),
                    audit.clone(),
                );
            }
            spec.definitions = DefinitionGuard::new(
                server,
                audit.store().clone(),
                audit.clone(),
                config.run_mode,
            );
            specs.insert(name.clone(), Arc::new(spec));
        }
        // The admin token is read now: a missing or weak one stops the start.
        let (approvals, approvals_admin) = match &config.approvals {
            Some(a) => (
                ApprovalQueue::new(a.max_pending),
                Some(Arc::new(AdminAuth::from_config(a)?)),
            ),
            None => (ApprovalQueue::closed(), None),
        };
        if let Some(url) = &config.gateway.public_url {
            approvals.set_base(url);
        }
        let routes = routes(&config)
            .into_iter()
            .map(|r| (r.name.to_string(), r))
            .collect();
        Ok(Arc::new(Gateway {
            audit,
            limiter: RateLimiter::default(),
            schemas: SchemaCache::default(),
            scans: crate::session::Scans::default(),
            config: Arc::new(config),
            egress,
            specs,
            shared: std::sync::Mutex::new(HashMap::new()),
            routes,
            user_auth,
            parked: ParkedCalls::default(),
            consent: crate::consent::Consent::with_store(store),
            approvals: Arc::new(approvals),
            approvals_admin,
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

    /// The definition pins of `server` at work; `None` with `definitions = "off"`.
    pub fn definitions(&self, server: &str) -> Option<&Arc<DefinitionGuard>> {
        self.specs.get(server)?.definitions.as_ref()
    }

    /// Whether sessions share one connection to `server`.
    pub fn is_shared(&self, server: &str) -> bool {
        match self.config.servers.get(server).map(|s| &s.upstream) {
            Some(Upstream::Stdio(s)) => s.instances == Instances::Shared,
            _ => false,
        }
    }

    /// The roots the gateway answers `server`'s `roots/list` with (`servers.<name>.roots`);
    /// `None` when it has none.
    pub fn configured_roots(&self, server: &str) -> Option<Arc<ConfiguredRoots>> {
        ConfiguredRoots::new(&self.config.servers.get(server)?.roots)
    }

    /// The connection slot a session uses for `server`: its own, or the shared one.
    pub fn slot_for_session(
        &self,
        server: &str,
        owner: Weak<dyn UpstreamListener>,
        caps: ClientCapsForUpstream,
        era: Era,
        principal: &Principal,
    ) -> Option<Arc<UpstreamSlot>> {
        if self.is_shared(server) {
            return self.shared_slot(server, Era::Legacy, None);
        }
        let spec = self.specs.get(server)?.clone();
        Some(Arc::new(
            UpstreamSlot::new(spec, self.egress.clone(), Some(owner), caps, era)
                .for_user(user_of(principal)),
        ))
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
            let slot = UpstreamSlot::new(
                spec.clone(),
                self.egress.clone(),
                None,
                ClientCapsForUpstream::shared().with_roots(self.configured_roots(server)),
                era,
            );
            Arc::new(match principal {
                Some(p) => slot.for_user(user_of(p)),
                None => slot,
            })
        });
        Some(slot.clone())
    }

    /// Stops every shared connection (child processes included), and waits for the audit
    /// records still on their way.
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
        self.audit.flush().await;
    }
}

/// Who an upstream connection acts for, for per-user OAuth.
fn user_of(principal: &Principal) -> crate::oauth::User {
    crate::oauth::User {
        principal: principal.to_string(),
        client: principal.client_id.clone(),
    }
}

/// Opens the store `gateway.state` names, with the `[audit]` mirror (also for
/// `portcullis trust`, which writes pins and records there).
pub fn open_store(config: &Config) -> Result<Arc<dyn Store>, GatewayError> {
    let StateLocation::Sqlite(path) = &config.gateway.state;
    let shown = path.display().to_string();
    let store_error = |source| GatewayError::Store {
        path: shown.clone(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The directory is private: the audit log names who called what.
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| {
                store_error(portcullis_store::StoreError::Io {
                    op: "create the state directory",
                    source,
                })
            })?;
    }
    let mirror = match &config.audit.mirror {
        None => None,
        Some(AuditMirror::Stdout) => Some(portcullis_store::AuditMirror::stdout()),
        Some(AuditMirror::Stderr) => Some(portcullis_store::AuditMirror::stderr()),
        Some(AuditMirror::File(file)) => {
            Some(portcullis_store::AuditMirror::file(file).map_err(|source| {
                GatewayError::Mirror {
                    path: file.display().to_string(),
                    source,
                }
            })?)
        }
    };
    let options = SqliteOptions {
        mirror,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(path, options).map_err(store_error)?;
    Ok(store)
}

/// What a shared connection is shared by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SharedKey {
    server: String,
    era: Era,
    principal: Option<String>,
}
