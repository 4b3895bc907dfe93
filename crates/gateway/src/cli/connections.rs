//! `portcullis connections list|forget`: the users connected to remote servers through
//! per-user OAuth (`credential = { oauth }`), as the state database of `gateway.state` (or
//! `PORTCULLIS_STATE`) holds them.
//!
//! `list` opens the database read-only (safe next to a running gateway) and prints, per
//! grant, the principal, server, issuer, when it was last stored and its state, which it
//! learns by opening the grant with the vault key (`PORTCULLIS_VAULT_KEY`, else `vault.key`
//! beside the database; never created here): valid until when, expired (and whether a
//! refresh token may renew it), or unreadable (another key). It never prints a token.
//!
//! `forget <server>` removes the grants for a server — everyone's, or one principal's — so
//! that those users must connect again. Like `trust --remove`, it writes an audit record
//! first (`oauth/forgotten`), and changes nothing if that record cannot be written.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use portcullis_gateway::config::StateLocation;
use portcullis_gateway::gateway::open_store;
use portcullis_gateway::oauth::vault::{GrantVault, GrantVaultError};
use portcullis_gateway::transport::stdio::local_principal;
use portcullis_store::{GrantRow, Store};
use serde_json::{Value, json};

use super::text::{clean, emit};
use super::{load_or_exit, state, time};

#[derive(Subcommand, Debug)]
pub enum ConnectionsCommand {
    /// List who is connected to which remote server (principal, server, issuer, when the
    /// grant was last stored, and whether it is still valid). Never prints a token.
    List(ListArgs),
    /// Forget the OAuth grants for a server: every user's, or one principal's. They must
    /// connect again. Recorded in the audit log.
    Forget(ForgetArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// The config whose gateway.state names the database. PORTCULLIS_STATE overrides it.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ForgetArgs {
    /// The server (its name in the config) whose grants to remove.
    server: String,
    /// Only this principal's grants, as listed (`local:alice`, `iss|sub`).
    #[arg(long)]
    principal: Option<String>,
    /// The config whose gateway.state names the database. PORTCULLIS_STATE overrides it.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

pub fn run(command: ConnectionsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConnectionsCommand::List(args) => list(args),
        ConnectionsCommand::Forget(args) => forget(args),
    }
}

/// What opening a grant with the vault key told.
enum GrantState {
    /// Opened; when the access token expires (`None`: the server did not say) and whether
    /// a refresh token can renew it.
    Open {
        expires_ms: Option<i64>,
        refreshable: bool,
    },
    /// No key to open it with (neither `PORTCULLIS_VAULT_KEY` nor the key file).
    NoKey,
    /// The key or the row is not usable; the reason names files and rows, no secret.
    Unreadable(String),
}

impl GrantState {
    fn of(vault: &Result<Option<GrantVault>, GrantVaultError>, row: &GrantRow) -> GrantState {
        let vault = match vault {
            Ok(Some(vault)) => vault,
            Ok(None) => return GrantState::NoKey,
            Err(e) => return GrantState::Unreadable(e.to_string()),
        };
        let k = &row.key;
        match vault.get_grant(&k.principal, &k.server, &k.issuer) {
            Ok(Some(grant)) => GrantState::Open {
                expires_ms: grant.expires_at().map(unix_ms),
                refreshable: grant.tokens.refresh_token.is_some(),
            },
            Ok(None) => GrantState::Unreadable("removed while listing".into()),
            Err(e) => GrantState::Unreadable(e.to_string()),
        }
    }

    /// The state for the table: `valid until …`, `expired …`, `no key`, `unreadable`.
    fn text(&self, now_ms: i64) -> String {
        match self {
            GrantState::Open {
                expires_ms: None, ..
            } => "valid (no expiry given)".into(),
            GrantState::Open {
                expires_ms: Some(at),
                refreshable,
            } if *at <= now_ms => format!(
                "expired {}{}",
                time::format_ms(*at),
                if *refreshable { " (refreshable)" } else { "" }
            ),
            GrantState::Open {
                expires_ms: Some(at),
                ..
            } => format!("valid until {}", time::format_ms(*at)),
            GrantState::NoKey => "no vault key".into(),
            GrantState::Unreadable(_) => "unreadable".into(),
        }
    }

    fn json(&self, now_ms: i64) -> Value {
        match self {
            GrantState::Open {
                expires_ms,
                refreshable,
            } => json!({
                "state": match expires_ms {
                    Some(at) if *at <= now_ms => "expired",
                    _ => "valid",
                },
                "expires": expires_ms.map(time::format_ms),
                "refreshable": refreshable,
            }),
            GrantState::NoKey => json!({ "state": "no-key" }),
            GrantState::Unreadable(reason) => json!({ "state": "unreadable", "reason": reason }),
        }
    }
}

fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let config = match load_or_exit(args.config.as_ref()) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let StateLocation::Sqlite(path) = &config.gateway.state;
    let store = match state::open_for_listing(&config) {
        Ok(store) => store,
        Err(code) => return Ok(code),
    };
    let rows = if let Some(store) = store {
        let rows = store.list_grants()?;
        let store: Arc<dyn Store> = store;
        let vault = if rows.is_empty() {
            Ok(None)
        } else {
            GrantVault::open_existing_for(&config, store)
        };
        rows.into_iter()
            .map(|row| {
                let state = GrantState::of(&vault, &row);
                (row, state)
            })
            .collect()
    } else {
        Vec::new()
    };
    let now = time::now_ms();
    if args.json {
        let items: Vec<Value> = rows
            .iter()
            .map(|(row, state)| {
                let mut item = json!({
                    "principal": row.key.principal,
                    "server": row.key.server,
                    "issuer": row.key.issuer,
                    "updated": time::format_ms(row.updated_at_ms),
                });
                if let (Some(item), Value::Object(more)) = (item.as_object_mut(), state.json(now)) {
                    item.extend(more);
                }
                item
            })
            .collect();
        emit(&format!("{}\n", json!({ "connections": items })));
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        emit(&format!(
            "No connections in {}.\n",
            clean(&path.display().to_string())
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<[String; 5]> = rows
        .iter()
        .map(|(row, state)| {
            [
                clean(&row.key.principal),
                clean(&row.key.server),
                clean(&row.key.issuer),
                time::format_ms(row.updated_at_ms),
                state.text(now),
            ]
        })
        .collect();
    emit(&render_table(
        ["PRINCIPAL", "SERVER", "ISSUER", "UPDATED", "STATE"],
        &table,
    ));
    // Why a grant is unreadable, once per distinct reason, after the table.
    let mut reasons: Vec<&str> = rows
        .iter()
        .filter_map(|(_, state)| match state {
            GrantState::Unreadable(reason) => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    reasons.sort_unstable();
    reasons.dedup();
    for reason in reasons {
        eprintln!("portcullis: {}", clean(reason));
    }
    if rows
        .iter()
        .any(|(_, state)| matches!(state, GrantState::NoKey))
    {
        eprintln!(
            "portcullis: no vault key (neither {} nor vault.key beside the database): the grants cannot be opened",
            portcullis_auth::vault::VAULT_KEY_ENV
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Left-aligned columns, two spaces apart, the header first.
pub(super) fn render_table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; N]| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header);
    for row in rows {
        line(row.each_ref().map(String::as_str));
    }
    out
}

fn forget(args: ForgetArgs) -> anyhow::Result<ExitCode> {
    let config = match load_or_exit(args.config.as_ref()) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let server = args.server.as_str();
    let principal = args.principal.as_deref();
    let whose = match principal {
        Some(p) => format!(" of principal \"{}\"", clean(p)),
        None => String::new(),
    };
    let StateLocation::Sqlite(path) = &config.gateway.state;
    let none = || {
        emit(&format!(
            "No OAuth grants for server \"{}\"{whose}.\n",
            clean(server)
        ));
        Ok(ExitCode::SUCCESS)
    };
    if !path.exists() {
        return none();
    }
    let store = open_store(&config)?;
    let matching: Vec<GrantRow> = store
        .list_grants()?
        .into_iter()
        .filter(|row| row.key.server == server && principal.is_none_or(|p| row.key.principal == p))
        .collect();
    if matching.is_empty() {
        return none();
    }
    let mut principals: Vec<&str> = matching
        .iter()
        .map(|row| row.key.principal.as_str())
        .collect();
    principals.dedup();
    let reason = format!(
        "OAuth grants forgotten: {} grant(s) of {}",
        matching.len(),
        super::record::named(
            &principals
                .iter()
                .map(|p| format!("{p:?}"))
                .collect::<Vec<_>>()
        )
    );
    // Recorded first: grants never vanish without an account of who removed them.
    audit(store.as_ref(), server, reason)?;
    let removed = store.remove_grants(server, principal)?;
    emit(&format!(
        "Forgot {removed} OAuth grant(s) for server \"{}\"{whose}: {} must connect again.\n",
        clean(server),
        if principals.len() == 1 {
            "that user"
        } else {
            "those users"
        }
    ));
    Ok(ExitCode::SUCCESS)
}

/// Writes the `oauth/forgotten` record and waits until it is durable.
fn audit(store: &dyn Store, server: &str, reason: String) -> anyhow::Result<()> {
    super::record::audit(
        store,
        super::record::CliAction {
            event: "oauth",
            principal: &local_principal().to_string(),
            server,
            method: "oauth/forget",
            name: server,
            decision: "forgotten",
            reason,
        },
        "nothing was removed",
    )
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_aligns_columns_by_characters() {
        let rows = [
            ["local:zoë".to_owned(), "tickets".to_owned()],
            ["a".to_owned(), "b".to_owned()],
        ];
        assert_eq!(
            render_table(["PRINCIPAL", "SERVER"], &rows),
            "PRINCIPAL  SERVER\nlocal:zoë  tickets\na          b\n"
        );
    }

    #[test]
    fn expiry_reads_as_valid_expired_or_refreshable() {
        let now = 1_800_000_000_000;
        let open = |expires_ms, refreshable| GrantState::Open {
            expires_ms,
            refreshable,
        };
        assert_eq!(
            open(Some(now + 1000), false).text(now),
            "valid until 2027-01-15T08:00:01.000Z"
        );
        assert_eq!(
            open(Some(now), true).text(now),
            "expired 2027-01-15T08:00:00.000Z (refreshable)"
        );
        assert_eq!(open(None, false).text(now), "valid (no expiry given)");
        assert_eq!(open(Some(now - 1), false).json(now)["state"], "expired");
    }
}
