//! `portcullis explain`: what the policy decides for one call, and why.
//!
//! ```text
//! call: tool "add" on server "demo" by local:bob over http
//! decision: allow
//! by: rule 3 (policy.toml:14)
//! reason: rule 3 (policy.toml:14) allows tool "add" on server "demo"
//! rules tried:
//!   rule 1 (policy.toml:3): skipped: about server "tickets"
//!   rule 2 (policy.toml:8): skipped: condition is false: args.a < 10
//!   rule 3 (policy.toml:14): matched: allow
//! arguments: invalid (inputSchema of tool "add" listed by server "demo")
//!   arguments/a: "x" is not of type "number"
//! ```
//!
//! The middle part is [`Policy::explain`](portcullis_policy::Policy::explain). The last
//! part is what the gateway checks besides the policy: a tool's arguments against its
//! `inputSchema` (from `--schema FILE`, or listed by the upstream, which is started for
//! it), a prompt's arguments against its declaration, a resource URI against the listed
//! resources and templates. An upstream that cannot be reached leaves the arguments "not
//! checked" and does not change the exit code: 0 when the call would go through, 1 when
//! the policy or a check refuses it, 2 for usage and config errors.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgGroup, Args, ValueEnum};
use portcullis_gateway::config::{Config, SystemPaths, Upstream};
use portcullis_gateway::gateway::Gateway;
use portcullis_gateway::route::routes;
use portcullis_gateway::upstream::UpstreamError;
use portcullis_gateway::upstream::catalog::{self, ListKind, Listing};
use portcullis_gateway::upstream::handshake::Era;
use portcullis_guard::{Invalid, ResourceIndex, check_prompt_arguments};
use portcullis_policy::{Decision, Kind, Principal, Request, Verdict};
use portcullis_store::{
    AuditQuery, AuditRecord, BoxFuture, GENESIS_HASH, Store, StoreError, StoredRecord,
    VerifyOutcome,
};
use serde_json::{Map, Value, json};

use super::text::clean;
use super::{load_or_exit, usage_error};

/// The longest `explain` waits for an upstream to start and list (less when the server's
/// own `timeout` is shorter).
const UPSTREAM_WAIT: Duration = Duration::from_secs(30);
/// How long a stdio upstream gets to exit after `explain` is done with it.
const CHILD_EXIT_WAIT: Duration = Duration::from_secs(3);

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("target").required(true).args(["tool", "prompt", "resource"])))]
pub struct ExplainArgs {
    /// The config (default: the built-in quickstart).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The server the call is for (or a virtual server; then name the tool or prompt as
    /// <server>.<name> and the resource as <server>+<uri>).
    #[arg(long)]
    server: String,
    /// A tools/call of this tool.
    #[arg(long)]
    tool: Option<String>,
    /// A prompts/get of this prompt.
    #[arg(long)]
    prompt: Option<String>,
    /// A resources/read of this URI.
    #[arg(long)]
    resource: Option<String>,
    /// Who calls: sub:<subject> (a token's subject), local:<user>, or anonymous. Default:
    /// as the gateway sees callers of --transport: anonymous over http, local:<the user
    /// running this command> over stdio.
    #[arg(long)]
    principal: Option<String>,
    /// The token's issuer (with --principal sub:…; default "explain").
    #[arg(long)]
    issuer: Option<String>,
    /// The OAuth client id (with --principal sub:…).
    #[arg(long)]
    client: Option<String>,
    /// The token's scopes, comma-separated (with --principal sub:…).
    #[arg(long, value_delimiter = ',')]
    scopes: Vec<String>,
    /// The caller's groups, comma-separated (with --principal sub:…).
    #[arg(long, value_delimiter = ',')]
    groups: Vec<String>,
    /// The token's other claims, a JSON object (with --principal sub:…); @FILE reads it
    /// from a file.
    #[arg(long)]
    claims: Option<String>,
    /// The call's arguments, a JSON object; @FILE reads them from a file.
    #[arg(long)]
    args: Option<String>,
    /// The transport the call arrives on (conditions can read it).
    #[arg(long, value_enum, default_value_t = Transport::Http)]
    transport: Transport,
    /// Check a tool's arguments against this inputSchema instead of the upstream's: a JSON
    /// file holding the schema, a tool definition ({name, inputSchema}) or a tools/list
    /// result ({tools: [...]}).
    #[arg(long, conflicts_with = "no_upstream", requires = "tool")]
    schema: Option<PathBuf>,
    /// Do not start the upstream: the arguments are not checked.
    #[arg(long)]
    no_upstream: bool,
    /// Print one JSON object (verdict, rule, reason, trace, arguments) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Transport {
    Http,
    Stdio,
}

impl Transport {
    fn as_str(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Stdio => "stdio",
        }
    }
}

/// The call, resolved against the config: the server as the policy knows it and the name
/// as the upstream knows it.
struct Target {
    server: String,
    kind: Kind,
    name: String,
    /// The virtual server the call was addressed to, if any.
    via: Option<String>,
}

/// What the gateway's own checks (besides the policy) say about the call.
enum Check {
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
    fn status(&self) -> &'static str {
        match self {
            Check::Valid { .. } => "valid",
            Check::Invalid { .. } => "invalid",
            Check::Unusable { .. } => "schema_unusable",
            Check::NotListed { .. } => "not_listed",
            Check::NotChecked { .. } => "not_checked",
        }
    }

    /// Does it keep the call from going through?
    fn refuses(&self) -> bool {
        matches!(
            self,
            Check::Invalid { .. } | Check::Unusable { .. } | Check::NotListed { .. }
        )
    }

    fn text(&self, label: &str) -> String {
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

    fn json(&self) -> Value {
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

pub fn run(args: ExplainArgs) -> anyhow::Result<ExitCode> {
    Ok(explain(args).unwrap_or_else(|code| code))
}

fn explain(args: ExplainArgs) -> Result<ExitCode, ExitCode> {
    let config = load_or_exit(args.config.as_ref())?;
    let target = target(&config, &args).map_err(usage_error)?;
    let principal = principal(&args).map_err(usage_error)?;
    let call_args = match &args.args {
        Some(text) => Some(Value::Object(
            json_object("--args", text).map_err(usage_error)?,
        )),
        None => None,
    };
    if call_args.is_some() && target.kind == Kind::Resource {
        return Err(usage_error(
            "--args: a resource read has no arguments (the policy sees the URI as `uri`)",
        ));
    }
    let schema = match &args.schema {
        Some(path) => Some(schema_file(path, &target.name).map_err(usage_error)?),
        None => None,
    };

    // What the upstream lists, when it is needed and may be asked.
    let listed = if schema.is_some() {
        Ok(Vec::new())
    } else if args.no_upstream {
        Err("--no-upstream".to_owned())
    } else {
        list_upstream(&config, &target)
    };

    let annotations = listed
        .as_ref()
        .ok()
        .filter(|_| target.kind == Kind::Tool)
        .and_then(|lists| lists.first())
        .and_then(|tools| tools.get(&target.name))
        .and_then(|tool| serde_json::from_str::<Value>(tool.get()).ok())
        .and_then(|tool| tool.get("annotations").cloned());
    let mut request = Request::new(&principal, &target.server, target.kind, &target.name)
        .in_session("", args.transport.as_str());
    if let Some(a) = &call_args {
        request = request.with_args(a);
    }
    if let Some(a) = &annotations {
        request = request.with_annotations(a);
    }
    let decision = config.policy.decide(&request, &SystemPaths);

    let absent = Value::Null;
    let given = call_args.as_ref().unwrap_or(&absent);
    let check = match (&schema, listed) {
        (Some((schema, source)), _) => check_schema(schema, given, source.clone()),
        (None, Err(why)) => Check::NotChecked { why },
        (None, Ok(lists)) => check_listed(&target, &lists, given),
    };

    let trace = config.policy.explain(&decision);
    if args.json {
        println!(
            "{}",
            report_json(&config, &target, &decision, &trace, &check)
        );
    } else {
        print!("{}", report_text(&target, &decision, &trace, &check, &args));
    }
    Ok(if decision.is_allowed() && !check.refuses() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `--server` and `--tool`/`--prompt`/`--resource`, resolved through a virtual server when
/// `--server` names one.
fn target(config: &Config, args: &ExplainArgs) -> Result<Target, String> {
    let (kind, name) = match (&args.tool, &args.prompt, &args.resource) {
        (Some(t), _, _) => (Kind::Tool, t.clone()),
        (_, Some(p), _) => (Kind::Prompt, p.clone()),
        (_, _, Some(r)) => (Kind::Resource, r.clone()),
        _ => return Err("name a --tool, --prompt or --resource".to_owned()),
    };
    if config.servers.contains_key(&args.server) {
        return Ok(Target {
            server: args.server.clone(),
            kind,
            name,
            via: None,
        });
    }
    let route = routes(config)
        .into_iter()
        .find(|r| *r.name == args.server && r.is_virtual());
    let Some(route) = route else {
        let mut known: Vec<&str> = config.servers.keys().map(String::as_str).collect();
        known.extend(config.virtuals.keys().map(String::as_str));
        return Err(format!(
            "unknown server \"{}\" (known: {})",
            clean(&args.server),
            known.join(", ")
        ));
    };
    let resolved = match kind {
        Kind::Resource => route.resolve_uri(&name),
        Kind::Tool | Kind::Prompt => route.resolve_name(&name),
    };
    let Some(resolved) = resolved else {
        let form = match kind {
            Kind::Resource => "<server>+<uri>",
            Kind::Tool | Kind::Prompt => "<server>.<name>",
        };
        return Err(format!(
            "\"{}\" is not a {kind} of virtual server \"{}\": write {form} with one of its servers ({})",
            clean(&name),
            route.name,
            route
                .members
                .iter()
                .map(|m| &**m)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    Ok(Target {
        server: resolved.server.to_owned(),
        name: resolved.name.to_owned(),
        kind,
        via: Some(args.server.clone()),
    })
}

/// The caller, from `--principal` and the token options.
fn principal(args: &ExplainArgs) -> Result<Principal, String> {
    let token_options = [
        ("--issuer", args.issuer.is_some()),
        ("--client", args.client.is_some()),
        ("--scopes", !args.scopes.is_empty()),
        ("--groups", !args.groups.is_empty()),
        ("--claims", args.claims.is_some()),
    ];
    let base = match &args.principal {
        Some(spec) => Principal::from_spec(spec, args.issuer.as_deref())?,
        None => match args.transport {
            Transport::Stdio => portcullis_gateway::transport::stdio::local_principal(),
            Transport::Http => Principal::anonymous(),
        },
    };
    if !base.is_oauth() {
        if let Some((option, _)) = token_options.iter().find(|(_, given)| *given) {
            return Err(format!(
                "{option} describes a token: it needs --principal sub:<subject> (local and anonymous callers carry no token)"
            ));
        }
        return Ok(base);
    }
    let mut p = base
        .with_scopes(args.scopes.iter().cloned())
        .with_groups(args.groups.iter().cloned());
    if let Some(client) = &args.client {
        p = p.with_client(client.clone());
    }
    if let Some(claims) = &args.claims {
        p = p.with_claims(json_object("--claims", claims)?);
    }
    Ok(p)
}

/// A JSON object given on the command line, or `@FILE`.
fn json_object(option: &str, text: &str) -> Result<Map<String, Value>, String> {
    let text = match text.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("{option}: cannot read {path}: {e}"))?,
        None => text.to_owned(),
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(format!("{option} must be a JSON object")),
        Err(e) => Err(format!("{option} is not valid JSON: {e}")),
    }
}

/// `--schema FILE`: a schema, a tool definition, or a tools/list result naming the tool.
fn schema_file(path: &std::path::Path, tool: &str) -> Result<(Value, String), String> {
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

fn check_schema(schema: &Value, args: &Value, source: String) -> Check {
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
fn check_listed(target: &Target, lists: &[Arc<Listing>], args: &Value) -> Check {
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
fn list_upstream(config: &Config, target: &Target) -> Result<Vec<Arc<Listing>>, String> {
    let server = config
        .servers
        .get(&target.server)
        .ok_or_else(|| format!("unknown server \"{}\"", target.server))?;
    let wait = server.timeout.min(UPSTREAM_WAIT);
    let is_stdio = matches!(server.upstream, Upstream::Stdio(_));
    let runtime = super::runtime(None).map_err(|e| e.to_string())?;
    runtime.block_on(async {
        // Listing tools is not a call: nothing is recorded, and the state store (which
        // `Gateway::new` would open, creating it) is not touched.
        let gateway = Gateway::with_store(config.clone(), Arc::new(NoAudit))
            .map_err(|e| format!("upstream unavailable: {e}"))?;
        let listed = tokio::time::timeout(wait, fetch(&gateway, &target.server, target.kind)).await;
        gateway.shutdown().await;
        drop(gateway);
        if is_stdio {
            // The child is stopped by a task (stdin closed, then signals to its process
            // group); let it finish rather than cut it short when the runtime ends.
            let deadline = tokio::time::Instant::now() + CHILD_EXIT_WAIT;
            let metrics = tokio::runtime::Handle::current().metrics();
            while metrics.num_alive_tasks() > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
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
/// so it has nothing to record, and must not open (or create) the real state database.
struct NoAudit;

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

fn report_text(
    target: &Target,
    decision: &Decision,
    trace: &str,
    check: &Check,
    args: &ExplainArgs,
) -> String {
    let via = target
        .via
        .as_ref()
        .map(|v| format!(" (through virtual server \"{v}\")"))
        .unwrap_or_default();
    let mut out = format!(
        "call: {} \"{}\" on server \"{}\"{via} by {} over {}\n",
        target.kind,
        clean(&target.name),
        target.server,
        clean(&decision.principal),
        args.transport.as_str()
    );
    for line in trace.lines() {
        out.push_str(&clean(line));
        out.push('\n');
    }
    let label = match target.kind {
        Kind::Resource => "uri",
        Kind::Tool | Kind::Prompt => "arguments",
    };
    out.push_str(&check.text(label));
    out
}

fn report_json(
    config: &Config,
    target: &Target,
    decision: &Decision,
    trace: &str,
    check: &Check,
) -> Value {
    let rule = decision.rule.and_then(|i| config.policy.rules().get(i));
    let missing = match &decision.verdict {
        Verdict::InsufficientScope { missing } => json!(missing),
        _ => Value::Null,
    };
    json!({
        "verdict": decision.verdict.as_str(),
        "rule": rule.map(|r| r.origin.to_string()),
        "rule_number": rule.map(|r| r.origin.index + 1),
        "file": rule.and_then(|r| r.origin.file.as_deref()),
        "line": rule.and_then(|r| r.origin.line),
        "reason": decision.reason,
        "missing_scopes": missing,
        "rate": decision.rate.as_ref().map(ToString::to_string),
        "principal": decision.principal,
        "server": target.server,
        "via": target.via,
        "kind": target.kind.to_string(),
        "name": target.name,
        "trace": trace,
        "arguments": check.json(),
    })
}
