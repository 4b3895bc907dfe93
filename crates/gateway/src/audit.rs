//! The audit trail of the gateway: one record per decision, in the state store's hash chain.
//!
//! A call the policy allows is recorded *before* it leaves: if the record cannot be made
//! durable (the store is down, the disk is full, it takes too long), the call is refused —
//! the gateway does not act unrecorded. What happened afterwards (the upstream's answer or
//! error, and how long it took) is a second record, written without holding the caller up.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis_store::{AuditRecord, Store};
use portcullis_wire::{ErrorObject, codes};
use serde_json::Value;

/// Longest a caller waits for its decision record to be committed.
const RECORD_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest the gateway waits, when it stops, for records still on their way to the store.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Clones share the store and the count of records in flight (the launch check of each
/// stdio server holds one).
#[derive(Clone)]
pub struct Audit {
    store: Arc<dyn Store>,
    include_args: bool,
    /// Records written with [`Audit::note`] and not committed yet, so that stopping the
    /// gateway (a host closing stdin right after its last call) does not drop them.
    in_flight: Arc<InFlight>,
}

#[derive(Default)]
struct InFlight {
    count: AtomicUsize,
    idle: tokio::sync::Notify,
}

/// The who and where of the records one session writes.
#[derive(Debug, Clone)]
pub struct Context {
    pub principal: String,
    pub session: String,
    pub transport: &'static str,
}

/// What one record says about one decision or outcome.
#[derive(Debug, Clone, Default)]
pub struct Entry<'a> {
    pub event: &'static str,
    pub server: &'a str,
    pub method: &'a str,
    pub name: &'a str,
    pub args: Option<&'a Value>,
    pub decision: &'a str,
    pub rule: Option<String>,
    pub reason: String,
    pub latency: Option<Duration>,
    pub trace: Option<String>,
}

impl Audit {
    pub fn new(store: Arc<dyn Store>, include_args: bool) -> Self {
        Audit {
            store,
            include_args,
            in_flight: Arc::default(),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn record(&self, ctx: &Context, e: Entry<'_>) -> AuditRecord {
        let time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        AuditRecord {
            time_ms,
            event: e.event.to_owned(),
            principal: ctx.principal.clone(),
            session: ctx.session.clone(),
            transport: ctx.transport.to_owned(),
            server: e.server.to_owned(),
            method: e.method.to_owned(),
            name: e.name.to_owned(),
            args_digest: e.args.map(portcullis_guard::digest),
            args: e
                .args
                .filter(|_| self.include_args)
                .map(portcullis_guard::redact),
            decision: e.decision.to_owned(),
            rule: e.rule,
            reason: e.reason,
            latency_us: e.latency.map(|d| d.as_micros() as u64),
            trace: e.trace,
        }
    }

    /// Records a decision and waits until it is durable. The error is what the caller gets
    /// instead of its call.
    pub async fn commit(&self, ctx: &Context, e: Entry<'_>) -> Result<u64, ErrorObject> {
        let record = self.record(ctx, e);
        match tokio::time::timeout(RECORD_TIMEOUT, self.store.append_audit(record)).await {
            Ok(Ok(seq)) => Ok(seq),
            Ok(Err(err)) => {
                tracing::error!(error = %err, "audit record not stored; call refused");
                Err(unavailable())
            }
            Err(_) => {
                tracing::error!("audit store did not answer in time; call refused");
                Err(unavailable())
            }
        }
    }

    /// Records something without waiting (outcomes, refusals: nothing is forwarded for
    /// them, so there is nothing to hold back). A failure is logged.
    pub fn note(&self, ctx: &Context, e: Entry<'_>) {
        let fut = self.store.append_audit_deferred(self.record(ctx, e));
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let in_flight = self.in_flight.clone();
        in_flight.count.fetch_add(1, Ordering::AcqRel);
        rt.spawn(async move {
            if let Err(err) = fut.await {
                tracing::error!(error = %err, "audit record not stored");
            }
            if in_flight.count.fetch_sub(1, Ordering::AcqRel) == 1 {
                in_flight.idle.notify_waiters();
            }
        });
    }

    /// Records an outbound connection the egress rules refused, without waiting: the
    /// gateway's own request (its guarded client) or a sandboxed server's (through its proxy;
    /// `e.server` names the server). Sets the event (`egress`), the decision (`refused`) and
    /// the principal (the gateway, whose socket it would have been).
    pub fn egress_refused(&self, transport: &'static str, e: Entry<'_>) {
        // The server and principal the request was made for, when its task said so.
        let asking = crate::on_behalf::current();
        let ctx = Context {
            principal: asking
                .as_ref()
                .map_or_else(|| "gateway".to_owned(), |a| a.principal.to_string()),
            session: String::new(),
            transport,
        };
        self.note(
            &ctx,
            Entry {
                event: "egress",
                decision: "refused",
                server: if e.server.is_empty() {
                    asking.as_ref().map_or("", |a| &a.server)
                } else {
                    e.server
                },
                ..e
            },
        );
    }

    /// Waits (a bounded time) until every noted record is committed: for shutdown.
    pub async fn flush(&self) {
        let wait = async {
            loop {
                let idle = self.in_flight.idle.notified();
                if self.in_flight.count.load(Ordering::Acquire) == 0 {
                    return;
                }
                idle.await;
            }
        };
        if tokio::time::timeout(FLUSH_TIMEOUT, wait).await.is_err() {
            tracing::error!("audit records still unwritten at shutdown");
        }
    }
}

fn unavailable() -> ErrorObject {
    ErrorObject::new(
        codes::AUDIT_UNAVAILABLE,
        "the gateway could not record this call in its audit log, so it did not make it",
    )
}
