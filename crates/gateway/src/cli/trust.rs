//! `portcullis trust <server>`: review exactly what a server runs and says, and pin it.
//!
//! For a local (stdio) server, first its launch. The review ([`show`]) prints, without
//! truncation, the argv, the executable (resolved) and its SHA-256, the script or package an
//! interpreter or runner runs and whether it is pinned, the environment the server gets
//! (secrets by their source only), its sandbox profile, the dangerous patterns found, and —
//! when the server has a pin — how the launch differs from it. Then it asks on the terminal
//! (`/dev/tty`); `--yes` skips the question, and without a terminal and without `--yes`
//! nothing is trusted (exit 1). Trusting writes an audit record (`trust/trusted`), then the
//! pin, to the state store of `gateway.state` (or `PORTCULLIS_STATE`); a running gateway
//! sees the pin at the next launch.
//!
//! Then, for every server, its definitions: it is started (or connected to) and its tools and
//! instructions are compared with their definition pins ([`definitions`]); each new, changed,
//! renamed or removed definition is shown with a readable difference
//! ([`definitions_show`]), and accepting it (asked again, or `--yes`) writes `trust/accepted`,
//! then the pins. A running gateway shows an accepted tool again at its next list (a call
//! looks again by itself). `--remove` deletes the launch pin and the definition pins
//! (`trust/untrusted`). `--json` prints one JSON document: the launch review (stdio) with
//! the definitions review under `definitions`.

pub(super) mod connect;
mod definitions;
mod definitions_show;
mod show;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use portcullis_gateway::config::{Config, ServerConfig, StateLocation, StdioUpstream, Upstream};
use portcullis_gateway::gateway::open_store;
use portcullis_gateway::transport::stdio::local_principal;
use portcullis_gateway::upstream::definitions::{DefinitionMode, fits, identity, shown_identity};
use portcullis_gateway::upstream::pinning::{
    describe, fingerprint_of, is_gateway_itself, program_of, review_launch, to_pin,
};
use portcullis_sandbox::review::diff;
use portcullis_store::Store;
use serde_json::{Map, Value, json};

use super::text::{clean, emit};
use super::{load_or_exit, time, usage_error};
use definitions::DefinitionsReview;

/// Longest answer read from the terminal.
const MAX_ANSWER: u64 = 256;

#[derive(Args, Debug)]
pub struct TrustArgs {
    /// The server to review: a local (stdio) server's launch and definitions, or an HTTP
    /// server's definitions.
    server: String,
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Trust and accept without asking (for scripts). The review is printed all the same.
    #[arg(long)]
    yes: bool,
    /// Remove the server's launch pin and definition pins instead (under `pinning =
    /// "required"` it will not start until trusted again; its definitions are pinned
    /// afresh).
    #[arg(long, conflicts_with = "yes")]
    remove: bool,
    /// Print the review as one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

/// How the launch stage ended.
enum Launch {
    /// Trusted now, or already matching its pin: go on to the definitions.
    Trusted,
    /// Not trusted: stop with this exit code.
    Stopped(ExitCode),
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
    let store: Arc<dyn Store> = open_store(&config)?;
    if args.remove {
        return remove(&config, store.as_ref(), server);
    }
    let mut doc = Map::new();
    match &server.upstream {
        Upstream::Stdio(stdio) => {
            if let Launch::Stopped(code) = launch(&args, &config, stdio, store.as_ref(), &mut doc)?
            {
                if args.json {
                    emit(&format!("{}\n", Value::Object(doc)));
                }
                return Ok(code);
            }
        }
        Upstream::Http(http) => {
            doc.insert("server".into(), json!(name));
            doc.insert("url".into(), json!(http.url));
        }
    }
    let code = accept_definitions(&args, &config, server, store, &mut doc)?;
    if args.json {
        emit(&format!("{}\n", Value::Object(doc)));
    }
    Ok(code)
}

/// The launch review of a stdio server, and its pin once trusted.
fn launch(
    args: &TrustArgs,
    config: &Config,
    stdio: &StdioUpstream,
    store: &dyn Store,
    doc: &mut Map<String, Value>,
) -> anyhow::Result<Launch> {
    let name = args.server.as_str();
    let program = program_of(stdio).map_err(anyhow::Error::msg)?;
    let review = match review_launch(stdio, &program) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("portcullis: cannot review server \"{name}\": {e}");
            return Ok(Launch::Stopped(ExitCode::FAILURE));
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
    if args.json {
        if let Value::Object(launch) = report.json() {
            doc.extend(launch);
        }
    } else {
        emit(&report.text());
    }
    if changes.as_ref().is_some_and(Vec::is_empty) {
        if !args.json {
            emit("The launch matches its pin: nothing to trust.\n");
        }
        return Ok(Launch::Trusted);
    }
    if !args.yes {
        match confirm(&format!("Trust this launch of \"{name}\"?")) {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("portcullis: not trusted; nothing was stored");
                return Ok(Launch::Stopped(ExitCode::FAILURE));
            }
            Err(_) => {
                eprintln!(
                    "portcullis: no terminal to confirm on: review the launch above and run `portcullis trust {name} --yes` to trust it without asking"
                );
                return Ok(Launch::Stopped(ExitCode::FAILURE));
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
    audit(store, &who, name, "trusted", reason)?;
    store.put_pin(&new_pin)?;
    if !args.json {
        emit(&format!(
            "Trusted \"{name}\": its launch is pinned in {}.\n",
            state_path(config)
        ));
    }
    Ok(Launch::Trusted)
}

/// The definitions review: the server listed now against its definition pins; what differs
/// is shown and, once confirmed, accepted into the pins.
fn accept_definitions(
    args: &TrustArgs,
    config: &Config,
    server: &ServerConfig,
    store: Arc<dyn Store>,
    doc: &mut Map<String, Value>,
) -> anyhow::Result<ExitCode> {
    let name = server.name.as_str();
    let is_stdio = matches!(server.upstream, Upstream::Stdio(_));
    let listed = match connect::list_now(config, name, store.clone()) {
        Ok(listed) => listed,
        Err(why) => {
            let why = clean(&why);
            doc.insert("definitions".into(), json!({ "error": why }));
            eprintln!(
                "portcullis: cannot review the definitions of \"{name}\": it could not be reached or listed: {why}"
            );
            // The launch of a stdio server is trusted by now; its definitions are pinned on
            // first sight under "tofu", or at the next `trust`.
            return Ok(if is_stdio {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
    };
    let identity = identity(server);
    let pins = store.definition_pins(&identity);
    let review = DefinitionsReview::new(identity, server.definitions, pins, &listed);
    if args.json {
        doc.insert("definitions".into(), definitions_show::json(&review));
    } else {
        emit(&definitions_show::text(name, &review));
    }
    if server.definitions == DefinitionMode::Off && !args.json {
        emit(
            "(definitions = \"off\": the gateway does not check them; accepting pins them for when it does)\n",
        );
    }
    if !review.differs() {
        if !args.json {
            emit("The definitions match their pins: nothing to accept.\n");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !args.yes {
        match confirm(&format!("Accept these definitions of \"{name}\"?")) {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("portcullis: definitions not accepted; nothing was stored");
                return Ok(ExitCode::FAILURE);
            }
            Err(_) => {
                eprintln!(
                    "portcullis: no terminal to confirm on: review the definitions above and run `portcullis trust {name} --yes` to accept them without asking"
                );
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    let who = local_principal().to_string();
    let (put, remove) = review.acceptance(&who, time::now_ms());
    // A definition too large to pin cannot be accepted (it stays withheld); left out here,
    // before anything is written, so that it cannot fail the write half-way.
    let (put, too_large): (Vec<_>, Vec<_>) = put.into_iter().partition(fits);
    for pin in &too_large {
        eprintln!(
            "portcullis: not accepted, its definition is larger than a pin may be: {}",
            clean(&pin.name)
        );
    }
    // Recorded first, as a launch pin is.
    audit(store.as_ref(), &who, name, "accepted", review.summary())?;
    if review.pins_error.is_some() {
        store.remove_definition_pins(&review.identity)?;
    }
    store.update_definition_pins(&review.identity, &put, &remove)?;
    if let Some(doc) = doc.get_mut("definitions") {
        doc["accepted"] = json!(true);
    }
    let duplicates = review.duplicates();
    if !duplicates.is_empty() {
        eprintln!(
            "portcullis: not accepted, listed twice with different definitions: {}",
            duplicates
                .iter()
                .map(|d| clean(d))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !args.json {
        emit(&format!(
            "Accepted the definitions of \"{name}\": pinned in {}.\n",
            state_path(config)
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// `--remove`: deletes the launch pin and the definition pins, each recorded in the audit
/// log first.
fn remove(config: &Config, store: &dyn Store, server: &ServerConfig) -> anyhow::Result<ExitCode> {
    let name = server.name.as_str();
    let who = local_principal().to_string();
    let mut removed = false;
    // A pin that cannot be read is removed like any other.
    if matches!(server.upstream, Upstream::Stdio(_)) {
        if let Ok(None) = store.get_pin(name) {
            emit(&format!("Server \"{name}\" has no launch pin.\n"));
        } else {
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
            removed = true;
        }
    }
    let identity = identity(server);
    let pinned = store.definition_pins(&identity).map_or(1, |p| p.len());
    if pinned > 0 {
        audit(
            store,
            &who,
            name,
            "untrusted",
            format!("definition pins of {} removed", shown_identity(&identity)),
        )?;
        let count = store.remove_definition_pins(&identity)?;
        emit(&format!(
            "Removed {count} definition pin(s) of \"{name}\" from {}.\n",
            state_path(config)
        ));
        removed = true;
    }
    if !removed && !matches!(server.upstream, Upstream::Stdio(_)) {
        emit(&format!("Server \"{name}\" has no definition pins.\n"));
    }
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

/// Asks `question` on the controlling terminal (never stdin, which may be a pipe feeding
/// `yes`).
fn confirm(question: &str) -> Result<bool, NoTerminal> {
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| NoTerminal)?;
    write!(tty, "{question} [y/N] ")
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
