//! `portcullis approvals remembered|forget`: the consent approvals a person asked to keep
//! "always", as the state database of `gateway.state` (or `PORTCULLIS_STATE`) holds them.
//!
//! Unlike `list|approve|deny`, these need no running gateway: the approvals live in the
//! store, and a running gateway asks the store at every held call, so `forget` revokes an
//! approval at once. `remembered` opens the database read-only. `forget` writes an audit
//! record first (`consent/forgotten`) and changes nothing if that record cannot be written.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use portcullis_gateway::config::StateLocation;
use portcullis_gateway::gateway::open_store;
use portcullis_gateway::transport::stdio::local_principal;
use portcullis_store::{RememberedApproval, Store};
use serde_json::{Value, json};

use super::connections::render_table;
use super::text::{clean, emit};
use super::{load_or_exit, state, time};

#[derive(Args, Debug)]
pub struct RememberedArgs {
    /// The config whose gateway.state names the database. PORTCULLIS_STATE overrides it.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ForgetArgs {
    /// The server (its name in the config) whose remembered approvals to remove.
    #[arg(required_unless_present = "all")]
    server: Option<String>,
    /// Only this principal's approvals, as `remembered` lists them.
    #[arg(long)]
    principal: Option<String>,
    /// Every remembered approval, of every server.
    #[arg(long, conflicts_with = "server")]
    all: bool,
    /// The config whose gateway.state names the database. PORTCULLIS_STATE overrides it.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

/// The principal and the OAuth client of an approval's identity (`principal\u{1f}client`,
/// as the consent engine keys it; the client is empty when there was none).
fn who(a: &RememberedApproval) -> (&str, Option<&str>) {
    match a.key.identity.split_once('\u{1f}') {
        Some((principal, client)) => (principal, (!client.is_empty()).then_some(client)),
        None => (&a.key.identity, None),
    }
}

/// What an approval covers, for people: these arguments (digest prefix) or the whole tool.
fn covers(a: &RememberedApproval) -> String {
    if a.key.digest.is_empty() {
        "any arguments".to_owned()
    } else {
        let short: String = a.key.digest.chars().take(7 + 12).collect();
        format!("arguments {short}…")
    }
}

pub fn remembered(args: RememberedArgs) -> anyhow::Result<ExitCode> {
    let config = match load_or_exit(args.config.as_ref()) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let StateLocation::Sqlite(path) = &config.gateway.state;
    let now = time::now_ms();
    let rows = match state::open_for_listing(&config) {
        Ok(Some(store)) => store.list_approvals(now)?,
        Ok(None) => Vec::new(),
        Err(code) => return Ok(code),
    };
    if args.json {
        let items: Vec<Value> = rows
            .iter()
            .map(|a| {
                json!({
                    "principal": who(a).0,
                    "client": who(a).1,
                    "server": a.key.server,
                    "tool": a.key.name,
                    "rule": a.key.rule,
                    "arguments_digest": (!a.key.digest.is_empty()).then_some(&a.key.digest),
                    "given": time::format_ms(a.created_at_ms),
                    "expires": time::format_ms(a.expires_at_ms),
                    "how": a.how,
                })
            })
            .collect();
        emit(&format!("{}\n", json!({ "remembered": items })));
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        emit(&format!(
            "No remembered approvals in {}.\n",
            clean(&path.display().to_string())
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|a| {
            [
                clean(who(a).0),
                clean(&a.key.server),
                clean(&a.key.name),
                covers(a),
                clean(a.key.rule.split(" sha256:").next().unwrap_or_default()),
                time::format_ms(a.expires_at_ms),
            ]
        })
        .collect();
    emit(&render_table(
        ["PRINCIPAL", "SERVER", "TOOL", "COVERS", "RULE", "EXPIRES"],
        &table,
    ));
    Ok(ExitCode::SUCCESS)
}

pub fn forget(args: ForgetArgs) -> anyhow::Result<ExitCode> {
    let config = match load_or_exit(args.config.as_ref()) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let server = args.server.as_deref();
    let principal = args.principal.as_deref();
    let mut scope = match server {
        Some(s) => format!("server \"{}\"", clean(s)),
        None => "any server".to_owned(),
    };
    if let Some(p) = principal {
        scope.push_str(&format!(", principal \"{}\"", clean(p)));
    }
    let StateLocation::Sqlite(path) = &config.gateway.state;
    let none = || {
        emit(&format!("No remembered approvals for {scope}.\n"));
        Ok(ExitCode::SUCCESS)
    };
    if !path.exists() {
        return none();
    }
    let store = open_store(&config)?;
    let now = time::now_ms();
    let matching: Vec<RememberedApproval> = store
        .list_approvals(now)?
        .into_iter()
        .filter(|a| {
            server.is_none_or(|s| a.key.server == s) && principal.is_none_or(|p| who(a).0 == p)
        })
        .collect();
    if matching.is_empty() {
        return none();
    }
    let reason = format!(
        "remembered approvals forgotten: {} for {}",
        matching.len(),
        super::record::named(
            &matching
                .iter()
                .map(|a| format!("{:?} on {}/{}", who(a).0, a.key.server, a.key.name))
                .collect::<Vec<_>>()
        )
    );
    // Recorded first: an approval never vanishes without an account of who removed it.
    super::record::audit(
        store.as_ref(),
        super::record::CliAction {
            event: "consent",
            principal: &local_principal().to_string(),
            server: server.unwrap_or(""),
            method: "consent/forget",
            name: server.unwrap_or("*"),
            decision: "forgotten",
            reason,
        },
        "nothing was removed",
    )?;
    // By the stored identities of the principal (one per OAuth client it came through).
    let removed = match principal {
        None => store.remove_approvals(server, None, now)?,
        Some(_) => {
            let mut identities: Vec<&str> =
                matching.iter().map(|a| a.key.identity.as_str()).collect();
            identities.sort_unstable();
            identities.dedup();
            let mut removed = 0;
            for identity in identities {
                removed += store.remove_approvals(server, Some(identity), now)?;
            }
            removed
        }
    };
    emit(&format!(
        "Forgot {removed} remembered approval(s) for {scope}: those calls are asked again.\n"
    ));
    Ok(ExitCode::SUCCESS)
}
