//! `portcullis trust <server>`: review exactly what a local (stdio) server's launch runs, and
//! pin it.
//!
//! The review ([`show`]) prints, without truncation, the argv, the executable (resolved)
//! and its SHA-256, the script or package an interpreter or runner runs and whether it is
//! pinned, the environment the server gets (secrets by their source only), its sandbox
//! profile, the dangerous patterns found, and — when the server has a pin — how the launch
//! differs from it. Then it asks on the terminal (`/dev/tty`); `--yes` skips the question,
//! and without a terminal and without `--yes` nothing is trusted (exit 1).
//!
//! Trusting writes an audit record (`trust/trusted`), then the pin, to the state store of
//! `gateway.state` (or `PORTCULLIS_STATE`); a running gateway sees the pin at the next
//! launch. `--remove` deletes the pin (`trust/untrusted`).

mod show;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use portcullis_gateway::config::{Config, StateLocation, Upstream};
use portcullis_gateway::gateway::open_store;
use portcullis_gateway::transport::stdio::local_principal;
use portcullis_gateway::upstream::pinning::{
    describe, fingerprint_of, is_gateway_itself, program_of, review_launch, to_pin,
};
use portcullis_sandbox::review::diff;
use portcullis_store::Store;

use super::text::{clean, emit};
use super::{load_or_exit, time, usage_error};

/// Longest answer read from the terminal.
const MAX_ANSWER: u64 = 256;

#[derive(Args, Debug)]
pub struct TrustArgs {
    /// The local (stdio) server to review and pin.
    server: String,
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Trust without asking (for scripts). The review is printed all the same.
    #[arg(long)]
    yes: bool,
    /// Remove the server's pin instead (under `pinning = "required"` it will not start
    /// until trusted again).
    #[arg(long, conflicts_with = "yes")]
    remove: bool,
    /// Print the review as one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: TrustArgs) -> anyhow::Result<ExitCode> {
    let config = match load_or_exit(args.config.as_ref()) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let name = args.server.as_str();
    let Some(server) = config.servers.get(name) else {
        return Ok(usage_error(format!(
            "no server \"{}\" in {}",
            clean(name),
            config.source
        )));
    };
    let Upstream::Stdio(stdio) = &server.upstream else {
        return Ok(usage_error(format!(
            "server \"{name}\" is an HTTP server: only local (stdio) servers are launched, and pinned"
        )));
    };
    let store: Arc<dyn Store> = open_store(&config)?;
    if args.remove {
        return remove(&config, store.as_ref(), name);
    }
    let program = program_of(stdio).map_err(anyhow::Error::msg)?;
    let review = match review_launch(stdio, &program) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("portcullis: cannot review server \"{name}\": {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let pin = store.get_pin(name);
    let changes = match &pin {
        Ok(Some(p)) => Some(diff(&fingerprint_of(p), &review.fingerprint)),
        _ => None,
    };
    let report = show::Report {
        server: name,
        source: &config.source,
        stdio,
        review: &review,
        gateway_itself: is_gateway_itself(Path::new(&review.fingerprint.executable)),
        pin: &pin,
        changes: changes.as_deref(),
    };
    emit(&if args.json {
        report.json()
    } else {
        report.text()
    });
    if changes.as_ref().is_some_and(Vec::is_empty) {
        if !args.json {
            emit("The launch matches its pin: nothing to trust.\n");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !args.yes {
        match confirm(name) {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("portcullis: not trusted; nothing was stored");
                return Ok(ExitCode::FAILURE);
            }
            Err(_) => {
                eprintln!(
                    "portcullis: no terminal to confirm on: review the launch above and run `portcullis trust {name} --yes` to trust it without asking"
                );
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    let who = local_principal().to_string();
    let new_pin = to_pin(name, &review.fingerprint, &who, time::now_ms());
    let mut reason = format!(
        "launch pinned: argv {:?}, executable {} sha256 {}",
        new_pin.argv, new_pin.executable, new_pin.executable_sha256
    );
    if let (Some(script), digest) = (&new_pin.script, &new_pin.script_sha256) {
        reason.push_str(&format!(
            ", script {script} sha256 {}",
            digest.as_deref().unwrap_or("unreadable")
        ));
    }
    if let Some(package) = &new_pin.package {
        reason.push_str(&format!(", package {package}"));
    }
    if let Some(changes) = changes.as_deref() {
        reason.push_str(&format!(" (was: {})", describe(changes)));
    }
    // Recorded first: a pin nobody can account for is never stored.
    audit(store.as_ref(), &who, name, "trusted", reason)?;
    store.put_pin(&new_pin)?;
    if !args.json {
        emit(&format!(
            "Trusted \"{name}\": its launch is pinned in {}.\n",
            state_path(&config)
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// `--remove`: deletes the pin, recorded in the audit log.
fn remove(config: &Config, store: &dyn Store, name: &str) -> anyhow::Result<ExitCode> {
    // A pin that cannot be read is removed like any other.
    if let Ok(None) = store.get_pin(name) {
        emit(&format!("Server \"{name}\" has no launch pin.\n"));
        return Ok(ExitCode::SUCCESS);
    }
    let who = local_principal().to_string();
    audit(
        store,
        &who,
        name,
        "untrusted",
        "launch pin removed".to_owned(),
    )?;
    store.remove_pin(name)?;
    emit(&format!(
        "Removed the launch pin of \"{name}\" from {}.\n",
        state_path(config)
    ));
    Ok(ExitCode::SUCCESS)
}

/// The state database, for messages.
fn state_path(config: &Config) -> String {
    let StateLocation::Sqlite(path) = &config.gateway.state;
    clean(&path.display().to_string())
}

/// Writes one `trust` record and waits until it is durable.
fn audit(
    store: &dyn Store,
    principal: &str,
    server: &str,
    decision: &str,
    reason: String,
) -> anyhow::Result<()> {
    super::record::audit(
        store,
        super::record::CliAction {
            event: "trust",
            principal,
            server,
            method: "",
            name: "",
            decision,
            reason,
        },
        "nothing was changed",
    )
}

/// Why no answer could be asked for.
#[derive(Debug)]
struct NoTerminal;

/// Asks on the controlling terminal (never stdin, which may be a pipe feeding `yes`).
fn confirm(server: &str) -> Result<bool, NoTerminal> {
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| NoTerminal)?;
    write!(tty, "Trust this launch of \"{server}\"? [y/N] ")
        .and_then(|()| tty.flush())
        .map_err(|_| NoTerminal)?;
    let mut answer = String::new();
    BufReader::new(tty.take(MAX_ANSWER))
        .read_line(&mut answer)
        .map_err(|_| NoTerminal)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
