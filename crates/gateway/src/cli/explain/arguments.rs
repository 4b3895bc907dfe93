//! The argument check of `portcullis explain`: what the gateway checks besides the policy.
//!
//! A tool's arguments against its `inputSchema` (from `--schema FILE`, or as the upstream
//! lists it: the upstream is started, or connected to, for the purpose and stopped again, on
//! a store that records nothing), a prompt's arguments against its declaration, a resource
//! URI against the listed resources and templates.

use std::sync::Arc;
use std::time::Duration;

use portcullis_gateway::config::{Config, Upstream};
use portcullis_gateway::gateway::Gateway;
use portcullis_gateway::upstream::UpstreamError;
use portcullis_gateway::upstream::catalog::{self, ListKind, Listing};
use portcullis_gateway::upstream::handshake::Era;
use portcullis_guard::{Invalid, ResourceIndex, check_prompt_arguments};
use portcullis_policy::Kind;
use portcullis_store::{
    ApprovalKey, AuditQuery, AuditRecord, BoxFuture, DefinitionKey, DefinitionPin, GENESIS_HASH,
    GrantKey, GrantRow, LaunchPin, RememberedApproval, SqliteStore, Store, StoreError,
    StoredRecord, VerifyOutcome,
};
use serde_json::{Map, Value, json};

use super::Target;
use crate::cli::text::clean;

/// The longest `explain` waits for an upstream to start and list (less when the server's
/// own `timeout` is shorter).
const UPSTREAM_WAIT: Duration = Duration::from_secs(30);

/// What the gateway's own checks (besides the policy) say about the call.
pub(super) enum Check {
    /// Passed; `source` says against what.
    Valid { source: String },
    /// The arguments are refused: the caller would get a tool error.
    Invalid { source: String, invalid: Invalid },
    /// The tool's inputSchema cannot be used: the gateway refuses the call (fail closed).
    Unusable { source: String, error: String },
    /// The upstream does not list it: the gateway refuses the call as unknown.
    NotListed { message: String },
    /// Not checked; the exit code does not depend on it.
    NotChecked { why: String },
}

impl Check {
    pub(super) fn status(&self) -> &'static str {
        match self {
            Check::Valid { .. } => "valid",
            Check::Invalid { .. } => "invalid",
            Check::Unusable { .. } => "schema_unusable",
            Check::NotListed { .. } => "not_listed",
            Check::NotChecked { .. } => "not_checked",
        }
    }

    /// Does it keep the call from going through?
    pub(super) fn refuses(&self) -> bool {
        matches!(
            self,
            Check::Invalid { .. } | Check::Unusable { .. } | Check::NotListed { .. }
        )
    }

    pub(super) fn text(&self, label: &str) -> String {
        match self {
            Check::Valid { source } => format!("{label}: valid ({source})\n"),
            Check::Invalid { source, invalid } => {
                let mut out = format!("{label}: invalid ({source})\n");
                for problem in &invalid.problems {
                    out.push_str(&format!("  {}\n", clean(&problem.to_string())));
                }
                out
            }
            Check::Unusable { source, error } => {
                format!("{label}: refused ({source}): {}\n", clean(error))
            }
            Check::NotListed { message } => format!("{label}: refused: {}\n", clean(message)),
            Check::NotChecked { why } => format!("{label}: not checked ({})\n", clean(why)),
        }
    }

    pub(super) fn json(&self) -> Value {
        let mut out = Map::new();
        out.insert("status".into(), json!(self.status()));
        match self {
            Check::Valid { source } => {
                out.insert("source".into(), json!(source));
            }
            Check::Invalid { source, invalid } => {
                out.insert("source".into(), json!(source));
                let problems: Vec<Value> = invalid
                    .problems
                    .iter()
                    .map(|p| json!({ "path": p.path, "message": p.message }))
                    .collect();
                out.insert("problems".into(), Value::Array(problems));
                out.insert("message".into(), json!(invalid.to_string()));
            }
            Check::Unusable { source, error } => {
                out.insert("source".into(), json!(source));
                out.insert("message".into(), json!(error));
            }
            Check::NotListed { message } | Check::NotChecked { why: message } => {
                out.insert("message".into(), json!(message));
            }
        }
        Value::Object(out)
    }
}

/// `--schema FILE`: a schema, a tool definition, or a tools/list result naming the tool.
pub(super) fn schema_file(path: &std::path::Path, tool: &str) -> Result<(Value, String), String> {
    let shown = path.display();
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("--schema: cannot read {shown}: {e}"))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| format!("--schema: {shown} is not valid JSON: {e}"))?;
    if let Some(tools) = value.get("tools").and_then(Value::as_array) {
        let found = tools
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some(tool))
            .ok_or_else(|| format!("--schema: {shown} lists no tool \"{}\"", clean(tool)))?;
        let schema = found.get("inputSchema").cloned().unwrap_or(Value::Null);
        return Ok((
            schema,
            format!("inputSchema of tool \"{}\" in {shown}", clean(tool)),
        ));
    }
    if let Some(schema) = value.get("inputSchema") {
        return Ok((schema.clone(), format!("inputSchema in {shown}")));
    }
    Ok((value, format!("inputSchema from {shown}")))
}

pub(super) fn check_schema(schema: &Value, args: &Value, source: String) -> Check {
    match portcullis_guard::compile(schema) {
        Err(e) => Check::Unusable {
            source,
            error: e.to_string(),
        },
        Ok(compiled) => match compiled.validate(args) {
            Ok(()) => Check::Valid { source },
            Err(invalid) => Check::Invalid { source, invalid },
        },
    }
}

/// The check against what the upstream listed (`lists` in the order [`list_kinds`] gives).
pub(super) fn check_listed(target: &Target, lists: &[Arc<Listing>], args: &Value) -> Check {
    let server = &target.server;
    let name = clean(&target.name);
    let item = |listing: &Listing| {
        listing
            .get(&target.name)
            .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
    };
    let not_listed = || Check::NotListed {
        message: format!(
            "server \"{server}\" does not list {} \"{name}\" (the gateway refuses it as unknown)",
            target.kind
        ),
    };
    match target.kind {
        Kind::Tool => {
            let Some(tool) = lists.first().and_then(|l| item(l)) else {
                return not_listed();
            };
            let schema = tool.get("inputSchema").cloned().unwrap_or(Value::Null);
            let source = format!("inputSchema of tool \"{name}\" listed by server \"{server}\"");
            check_schema(&schema, args, source)
        }
        Kind::Prompt => {
            let Some(prompt) = lists.first().and_then(|l| item(l)) else {
                return not_listed();
            };
            let source = format!("prompt \"{name}\" as listed by server \"{server}\"");
            match check_prompt_arguments(&prompt, args) {
                Ok(()) => Check::Valid { source },
                Err(invalid) => Check::Invalid { source, invalid },
            }
        }
        Kind::Resource => {
            let names = |i: usize, kind: ListKind| -> Vec<String> {
                lists.get(i).map_or_else(Vec::new, |l| {
                    l.items
                        .iter()
                        .filter_map(|item| catalog::item_name(kind, item))
                        .collect()
                })
            };
            let uris = names(0, ListKind::Resources);
            let listed_exactly = uris.contains(&target.name);
            let index = ResourceIndex::new(uris, names(1, ListKind::ResourceTemplates));
            if !index.allows(&target.name) {
                return Check::NotListed {
                    message: format!(
                        "server \"{server}\" lists no resource \"{name}\" and no template matching it (the gateway refuses it as unknown)"
                    ),
                };
            }
            let how = if listed_exactly {
                "listed"
            } else {
                "matches a template listed"
            };
            Check::Valid {
                source: format!("{how} by server \"{server}\""),
            }
        }
    }
}

/// The lists a check of `kind` needs.
fn list_kinds(kind: Kind) -> &'static [ListKind] {
    match kind {
        Kind::Tool => &[ListKind::Tools],
        Kind::Prompt => &[ListKind::Prompts],
        Kind::Resource => &[ListKind::Resources, ListKind::ResourceTemplates],
    }
}

/// Starts the target's upstream through the gateway library (as a shared connection would
/// be), collects the lists the check needs, and stops it again. Bounded by
/// [`UPSTREAM_WAIT`] (or the server's `timeout`, when shorter). The error is the reason
/// shown as "not checked (…)".
pub(super) fn list_upstream(config: &Config, target: &Target) -> Result<Vec<Arc<Listing>>, String> {
    let server = config
        .servers
        .get(&target.server)
        .ok_or_else(|| format!("unknown server \"{}\"", target.server))?;
    let wait = server.timeout.min(UPSTREAM_WAIT);
    let is_stdio = matches!(server.upstream, Upstream::Stdio(_));
    let runtime = crate::cli::runtime(None).map_err(|e| e.to_string())?;
    runtime.block_on(async {
        // Listing tools is not a call: nothing is recorded, and the state store (which
        // `Gateway::new` would open, creating it) is not touched.
        let gateway = Gateway::with_store(config.clone(), Arc::new(NoAudit::new(config)))
            .map_err(|e| format!("upstream unavailable: {e}"))?;
        let listed = tokio::time::timeout(wait, fetch(&gateway, &target.server, target.kind)).await;
        crate::cli::trust::connect::stop(gateway, is_stdio).await;
        match listed {
            Ok(result) => result,
            Err(_) => Err(format!(
                "upstream unavailable: no answer within {}",
                human(wait)
            )),
        }
    })
}

async fn fetch(
    gateway: &Arc<Gateway>,
    server: &str,
    kind: Kind,
) -> Result<Vec<Arc<Listing>>, String> {
    let slot = gateway
        .shared_slot(server, Era::Legacy, None)
        .ok_or_else(|| format!("upstream unavailable: unknown server \"{server}\""))?;
    let conn = slot.get().await.map_err(unavailable)?;
    let mut lists = Vec::new();
    for &list in list_kinds(kind) {
        let listing = catalog::listing(&conn, list).await.map_err(|e| match e {
            catalog::ListError::Upstream(e) => unavailable(e),
            other => format!("the upstream's list could not be read: {other}"),
        })?;
        lists.push(listing);
    }
    Ok(lists)
}

/// The store of the gateway `explain` assembles to reach an upstream: it makes no calls,
/// so it has nothing to record, and must not create the real state database. Launch pins
/// are read from it (opened read-only, when it exists): a server is started for its lists
/// only when its launch is trusted, as `serve` would start it.
pub(crate) struct NoAudit {
    pins: Option<Arc<SqliteStore>>,
}

impl NoAudit {
    pub(crate) fn new(config: &Config) -> NoAudit {
        let portcullis_gateway::config::StateLocation::Sqlite(path) = &config.gateway.state;
        let pins = path
            .exists()
            .then(|| SqliteStore::open_read_only(path).ok())
            .flatten();
        NoAudit { pins }
    }
}

impl Store for NoAudit {
    fn append_audit(&self, _: AuditRecord) -> BoxFuture<'static, Result<u64, StoreError>> {
        Box::pin(async { Err(StoreError::ReadOnly) })
    }

    fn query_audit(&self, _: &AuditQuery) -> Result<Vec<StoredRecord>, StoreError> {
        Ok(Vec::new())
    }

    fn verify_audit(&self) -> Result<VerifyOutcome, StoreError> {
        Ok(VerifyOutcome::Intact {
            records: 0,
            head: GENESIS_HASH.to_owned(),
        })
    }

    fn put_pin(&self, _: &LaunchPin) -> Result<(), StoreError> {
        Err(StoreError::ReadOnly)
    }

    fn get_pin(&self, server: &str) -> Result<Option<LaunchPin>, StoreError> {
        match &self.pins {
            Some(store) => store.get_pin(server),
            None => Ok(None),
        }
    }

    fn remove_pin(&self, _: &str) -> Result<bool, StoreError> {
        Err(StoreError::ReadOnly)
    }

    fn list_pins(&self) -> Result<Vec<LaunchPin>, StoreError> {
        Ok(Vec::new())
    }

    // `explain` lists an upstream's tools; a server that needs a user's OAuth grant has
    // none to offer here: it is reached as if nobody were connected.
    fn put_grant(&self, _: &GrantKey, _: &[u8]) -> Result<(), StoreError> {
        Err(StoreError::ReadOnly)
    }

    fn get_grant(&self, _: &GrantKey) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }

    fn remove_grants(&self, _: &str, _: Option<&str>) -> Result<usize, StoreError> {
        Err(StoreError::ReadOnly)
    }

    fn list_grants(&self) -> Result<Vec<GrantRow>, StoreError> {
        Ok(Vec::new())
    }

    fn put_client(&self, _: &str, _: &str, _: &[u8]) -> Result<(), StoreError> {
        Err(StoreError::ReadOnly)
    }

    fn get_client(&self, _: &str, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }

    fn remove_clients(&self, _: &str) -> Result<usize, StoreError> {
        Err(StoreError::ReadOnly)
    }

    fn definition_pins(&self, identity: &str) -> Result<Vec<DefinitionPin>, StoreError> {
        match &self.pins {
            Some(store) => store.definition_pins(identity),
            None => Ok(Vec::new()),
        }
    }

    fn update_definition_pins(
        &self,
        _: &str,
        _: &[DefinitionPin],
        _: &[DefinitionKey],
    ) -> Result<(), StoreError> {
        Err(StoreError::ReadOnly)
    }

    fn remove_definition_pins(&self, _: &str) -> Result<usize, StoreError> {
        Err(StoreError::ReadOnly)
    }

    // `explain` calls no tool, so no consent is asked or remembered.
    fn put_approval(&self, _: &RememberedApproval) -> Result<(), StoreError> {
        Err(StoreError::ReadOnly)
    }

    fn find_approval(
        &self,
        _: &ApprovalKey,
        _: i64,
    ) -> Result<Option<RememberedApproval>, StoreError> {
        Ok(None)
    }

    fn list_approvals(&self, _: i64) -> Result<Vec<RememberedApproval>, StoreError> {
        Ok(Vec::new())
    }

    fn remove_approvals(
        &self,
        _: Option<&str>,
        _: Option<&str>,
        _: i64,
    ) -> Result<usize, StoreError> {
        Err(StoreError::ReadOnly)
    }
}

/// "upstream unavailable: <why>", without saying "unavailable" twice.
fn unavailable(e: UpstreamError) -> String {
    match e {
        UpstreamError::Unavailable { reason, .. } => format!("upstream unavailable: {reason}"),
        other => format!("upstream unavailable: {other}"),
    }
}

fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
