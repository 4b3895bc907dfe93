//! The audit record of something a person did on the command line (`trust`, `connections
//! forget`, …): written and made durable before the action, so that an action the audit
//! log cannot hold does not happen.

use portcullis_store::{AuditRecord, Store};

use super::{runtime, time};

/// One command-line action.
pub struct CliAction<'a> {
    pub event: &'a str,
    pub principal: &'a str,
    pub server: &'a str,
    pub method: &'a str,
    pub name: &'a str,
    pub decision: &'a str,
    pub reason: String,
}

/// Writes `action`'s record and waits until it is durable; the error says that `what`
/// (the action) was therefore not done.
pub fn audit(store: &dyn Store, action: CliAction<'_>, what: &str) -> anyhow::Result<()> {
    let record = AuditRecord {
        time_ms: time::now_ms(),
        event: action.event.to_owned(),
        principal: action.principal.to_owned(),
        session: String::new(),
        transport: "cli".to_owned(),
        server: action.server.to_owned(),
        method: action.method.to_owned(),
        name: action.name.to_owned(),
        args_digest: None,
        args: None,
        decision: action.decision.to_owned(),
        rule: None,
        reason: action.reason,
        latency_us: None,
        trace: None,
    };
    runtime(None)?
        .block_on(store.append_audit(record))
        .map_err(|e| anyhow::anyhow!("the audit record could not be written, so {what}: {e}"))?;
    Ok(())
}
