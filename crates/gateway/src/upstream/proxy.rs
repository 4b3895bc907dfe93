//! The network proxy of a sandboxed stdio server (`sandbox.network = { allow = [...] }`):
//! started with the child on the socket its sandbox made, ended with it.
//!
//! The proxy decides with the gateway's `[egress]` policy, the one its own outbound client is
//! guarded with (issue 6: all outbound traffic under one set of rules): the server's list
//! says what it may ask for, `egress.allow` which internal addresses the gateway may reach at
//! all. Each refusal is logged and audited like the guard's own (an `egress` record,
//! `decision = "refused"`, the rule's code), with the server's name.

use std::fmt;
use std::sync::Arc;

use portcullis_egress::guard::EgressPolicy;
use portcullis_egress::proxy::{
    Destination, ProxyConfig, ProxyEvent, SandboxProxy, SystemResolver,
};

use crate::audit::{Audit, Entry};

/// What the proxies of stdio servers decide with and report to. Set by the gateway, which
/// holds the config's policy and the audit log; the default opens nothing and only logs.
#[derive(Clone, Default)]
pub struct SandboxEgress {
    policy: Arc<EgressPolicy>,
    audit: Option<(Audit, &'static str)>,
}

impl fmt::Debug for SandboxEgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxEgress")
            .field("policy", &self.policy)
            .field("audited", &self.audit.is_some())
            .finish()
    }
}

impl SandboxEgress {
    /// `policy` (`config.egress`), with refusals recorded in `audit` under `transport` (the
    /// gateway's run mode, as for the guard's own refusals).
    pub fn new(policy: EgressPolicy, audit: Audit, transport: &'static str) -> Self {
        SandboxEgress {
            policy: Arc::new(policy),
            audit: Some((audit, transport)),
        }
    }

    /// Logs one decision of `server`'s proxy, and audits it if it is a refusal. The log has
    /// every address a name resolved to, the audit record's reason the one that decided (the
    /// sandboxed client was told neither).
    fn report(&self, server: &str, event: &ProxyEvent) {
        if event.allowed {
            tracing::info!(server, destination = %event.destination, resolved = ?event.resolved, "sandbox proxy: allowed");
            return;
        }
        let code = event.reason.code();
        tracing::warn!(server, destination = %event.destination, resolved = ?event.resolved, rule = code, kind = %event.kind, "sandbox proxy: refused: {}", event.reason);
        if let Some((audit, transport)) = &self.audit {
            let method = event.kind.to_string();
            let entry = Entry {
                server,
                method: &method,
                name: &event.destination,
                rule: Some(code.to_owned()),
                reason: format!("sandbox proxy: {}", event.reason),
                ..Entry::default()
            };
            audit.egress_refused(transport, entry);
        }
    }
}

/// The proxy's task; aborted (ending every connection it serves) when the server ends.
pub(crate) struct ProxyTask(tokio::task::AbortHandle);

impl Drop for ProxyTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves the proxy for `server`, whose sandbox profile's network is `network`, on the
/// socket its sandbox made inside its network namespace.
pub(crate) fn start(
    server: &str,
    network: &portcullis_sandbox::Network,
    egress: &SandboxEgress,
    listener: std::net::TcpListener,
) -> Result<ProxyTask, String> {
    let portcullis_sandbox::Network::Allow(list) = network else {
        return Err("a proxy socket for a server without an allow list".into());
    };
    let allow = list
        .iter()
        .map(|hp| Destination::new(&hp.host, hp.port).map_err(|e| format!("{hp}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let name = server.to_owned();
    let reporter = egress.clone();
    let proxy = SandboxProxy::new(
        ProxyConfig::new(allow, Arc::clone(&egress.policy)),
        Arc::new(SystemResolver),
        move |event| reporter.report(&name, &event),
    );
    let task = tokio::spawn(async move {
        if let Err(e) = proxy.serve_std(listener).await {
            tracing::warn!(error = %e, "sandbox proxy stopped");
        }
    });
    Ok(ProxyTask(task.abort_handle()))
}
