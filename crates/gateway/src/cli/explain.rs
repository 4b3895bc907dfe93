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

pub(super) mod arguments;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Args, ValueEnum};
use portcullis_gateway::config::{Config, SystemPaths};
use portcullis_gateway::route::routes;
use portcullis_policy::{Decision, Kind, Principal, Request, Verdict};
use serde_json::{Map, Value, json};

use super::text::clean;
use super::{load_or_exit, usage_error};
use arguments::{Check, check_listed, check_schema, list_upstream, schema_file};

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
