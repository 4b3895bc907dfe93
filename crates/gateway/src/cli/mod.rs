//! The `portcullis` command line: the clap definitions, and one function per command.
//!
//! - `serve`, `stdio`: the gateway itself (each builds the runtime it needs);
//! - `check`: validate a config and print the effective policy and the sandbox report;
//! - `explain` ([`explain`]): what the policy decides for one call, and why;
//! - `audit tail|query|verify` ([`audit`]): read the audit log in `gateway.state`;
//! - `trust <server>` ([`trust`]): review a local server's launch and pin it, then any
//!   server's tool definitions and instructions, and accept them into their pins;
//! - `scan <server>` ([`scan`]): the description scan of a server's (or virtual server's)
//!   tools and instructions, as text or JSON, the exit code per `--fail-on`;
//! - `connections list|forget` ([`connections`]): the users' OAuth grants at remote servers;
//! - `approvals list|approve|deny` ([`approvals`]): the calls waiting for a person's decision
//!   in a running gateway;
//! - `fixture`: the bundled MCP server.
//!
//! `PORTCULLIS_STATE=sqlite:<path>` replaces the config's `gateway.state` for every command
//! ([`state`]). Exit codes: 0 success, 1 a refusal or a failed check (`explain`, `audit
//! verify`) or a failure at run time (`serve`, `stdio`), 2 a usage or config error.

mod approvals;
mod audit;
mod connections;
mod explain;
mod record;
mod remembered;
mod scan;
mod state;
mod text;
mod time;
mod trust;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portcullis_gateway::config::Config;
use portcullis_gateway::gateway::Gateway;
use portcullis_gateway::{logging, transport};

/// Printed under every command's `--help`.
const ENVIRONMENT_HELP: &str = "\
Environment:
  PORTCULLIS_STATE=sqlite:<path>  Use this state database (the audit log) instead of the
                                  config's gateway.state, for every command. A relative
                                  path is relative to the working directory.
  PORTCULLIS_VAULT_KEY=<base64>   The key (32 bytes) users' OAuth grants are sealed with,
                                  instead of the file vault.key beside the database.";

/// Portcullis: a security gateway for the Model Context Protocol.
#[derive(Parser, Debug)]
#[command(name = "portcullis", version, about, long_about = None, after_help = ENVIRONMENT_HELP)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP gateway: each server at /mcp/<server>, each virtual server at /mcp/<name>.
    /// Without --config it runs the embedded quickstart (the bundled fixture server).
    #[command(after_help = ENVIRONMENT_HELP)]
    Serve {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Listen here instead of the config's gateway.listen.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Run the gateway as a stdio MCP server for one server or virtual server (for desktop
    /// hosts: put this in place of the server's own command).
    #[command(after_help = ENVIRONMENT_HELP)]
    Stdio {
        /// The server or virtual server to serve.
        server: String,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Validate the config and print the effective policy and the sandbox of each local
    /// server.
    ///
    /// Prints the warnings (settings that loosen a secure default), the effective policy
    /// server by server, then what this kernel lets the sandbox do and, for each stdio
    /// server, the layers it gets, what is bound into it and whether it would start. A
    /// kernel without sandbox support is reported, not an error. Starts no server.
    Check {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Show what the policy decides for one call, and why.
    ///
    /// Prints the decision, the rule that made it (file and line), why each earlier rule did
    /// not decide, and whether the call's arguments pass the gateway's checks (against
    /// --schema, or the upstream's own lists). Exit code: 0 the call would go through, 1 the
    /// policy or a check refuses it, 2 usage or config error.
    Explain(Box<explain::ExplainArgs>),
    /// Read the audit log (the state database of gateway.state, opened read-only).
    #[command(subcommand, after_help = ENVIRONMENT_HELP)]
    Audit(audit::AuditCommand),
    /// Review exactly what a server runs and says, and pin it: a local server's launch, then
    /// any server's tool definitions.
    ///
    /// For a local (stdio) server, prints the argv, the resolved executable and its SHA-256,
    /// the script or package it runs and whether that is pinned, the environment it gets,
    /// its sandbox, dangerous patterns, and how it differs from its pin; then asks on the
    /// terminal. The pin goes to the state store (gateway.state): a server with `pinning =
    /// "required"` (the default under `serve`) starts only when its launch matches it. Then,
    /// for every server, lists its tools and shows each definition that is new, changed,
    /// renamed or removed since it was pinned (`definitions`), asks again, and accepts them
    /// into the pins: a withheld tool is back at the gateway's next list. Exit code: 0
    /// trusted (or already matching), 1 not trusted (refused, or no terminal without
    /// --yes), 2 usage or config error.
    #[command(after_help = ENVIRONMENT_HELP)]
    Trust(Box<trust::TrustArgs>),
    /// See and forget the users' OAuth grants at remote servers (`credential = { oauth }`),
    /// kept encrypted in the state database (gateway.state). Never prints a token.
    #[command(subcommand, after_help = ENVIRONMENT_HELP)]
    Connections(connections::ConnectionsCommand),
    /// The calls waiting for a person's approval in the running gateway (rules with
    /// `effect = "consent"` and the approvals channel): list them, approve or deny one.
    /// Speaks to the gateway's admin API with the admin token of [approvals].
    #[command(subcommand)]
    Approvals(approvals::ApprovalsCommand),
    /// Scan a server's tool definitions and instructions for hidden or model-directed text.
    ///
    /// Starts (or connects to) the server as the gateway would — a stdio server in its
    /// sandbox, after its launch check — lists its tools, and reports invisible and control
    /// characters, instructions aimed at the model, references to secrets, and (for a virtual
    /// server) tool names that shadow or are confusable with another member's. Exit code: 0
    /// no finding at --fail-on or worse, 1 such findings (or the server could not be
    /// reached), 2 usage or config error.
    #[command(after_help = ENVIRONMENT_HELP)]
    Scan(Box<scan::ScanArgs>),
    /// Run the bundled fixture MCP server (used by the quickstart, the tests and the benchmark).
    Fixture(portcullis_fixtures::FixtureArgs),
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("portcullis: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Exit code 2: the command line or the config is wrong.
pub(crate) const USAGE: u8 = 2;

/// Prints `portcullis: <message>` to stderr and returns exit code 2.
pub(crate) fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("portcullis: {message}");
    ExitCode::from(USAGE)
}

/// The config named on the command line (the embedded quickstart without one), with
/// `PORTCULLIS_STATE` applied.
fn load(path: Option<&PathBuf>) -> Result<Config, String> {
    let mut config = match path {
        Some(p) => Config::load(p).map_err(|e| e.to_string())?,
        None => Config::quickstart(),
    };
    state::apply_override(&mut config)?;
    Ok(config)
}

/// [`load`] for commands whose config errors exit 2: the diagnostics (each naming
/// file:line:col) go to stderr as they are.
pub(crate) fn load_or_exit(path: Option<&PathBuf>) -> Result<Config, ExitCode> {
    load(path).map_err(|e| {
        eprint!("{e}");
        if !e.ends_with('\n') {
            eprintln!();
        }
        ExitCode::from(USAGE)
    })
}

/// The async runtime of a command. The gateway's own work per message is small next to what
/// its upstreams do (and on one machine they share the cores): `serve` takes
/// `gateway.worker_threads` threads, by default half the cores; `stdio` serves one client and
/// runs on one thread, which gives it the lowest latency; `explain` and `audit` are one-shot
/// tools and run on one thread too.
pub(crate) fn runtime(threads: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    // One thread is a current-thread runtime: no hand-offs between threads at all.
    let built = match threads {
        None | Some(0 | 1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    };
    built.map_err(|e| anyhow::anyhow!("cannot start the runtime: {e}"))
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check { config } => {
            let cfg = match load_or_exit(config.as_ref()) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let mut out = format!("{}: OK\n", cfg.source);
            for line in cfg.gateway.front_door_summary() {
                out.push_str(&format!("{line}\n"));
            }
            match &cfg.auth {
                Some(a) => out.push_str(&format!("{}\n", a.summary())),
                None => out.push_str(&format!(
                    "{}\n",
                    portcullis_gateway::config::no_auth_summary(cfg.gateway.insecure_no_auth)
                )),
            }
            for w in cfg.warnings() {
                out.push_str(&format!("warning: {w}\n"));
            }
            out.push_str(&cfg.render_effective_policy());
            out.push_str(&cfg.render_sandbox());
            text::emit(&out);
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain(args) => explain::run(*args),
        Command::Audit(command) => audit::run(command),
        Command::Trust(args) => trust::run(*args),
        Command::Scan(args) => scan::run(*args),
        Command::Connections(command) => connections::run(command),
        Command::Approvals(command) => approvals::run(command),
        Command::Serve { config, listen } => {
            let mut cfg = load(config.as_ref()).map_err(anyhow::Error::msg)?;
            if let Some(listen) = listen {
                cfg.gateway.listen = listen;
            }
            let threads = cfg.gateway.worker_threads;
            runtime(Some(threads))?.block_on(async move {
                let _log = logging::init(&cfg.log)?;
                for w in cfg.warnings() {
                    tracing::warn!("{w}");
                }
                let gateway = Gateway::new(cfg)?;
                transport::http::serve(gateway).await?;
                Ok(ExitCode::SUCCESS)
            })
        }
        Command::Stdio { server, config } => {
            let mut cfg = load(config.as_ref()).map_err(anyhow::Error::msg)?;
            cfg.run_mode = portcullis_gateway::config::RunMode::Stdio;
            if cfg.audit.mirror == Some(portcullis_gateway::config::AuditMirror::Stdout) {
                anyhow::bail!(
                    "audit.mirror = \"stdout\" cannot be used with `portcullis stdio`: its standard output is the MCP connection; use \"stderr\" or \"file:<path>\""
                );
            }
            runtime(None)?.block_on(async move {
                let _log = logging::init(&cfg.log)?;
                let gateway = Gateway::new(cfg)?;
                let pages = tokio::spawn(portcullis_gateway::transport::pages::serve_alone(
                    gateway.clone(),
                ));
                let result = transport::stdio::serve(gateway.clone(), &server).await;
                pages.abort();
                gateway.shutdown().await;
                result?;
                Ok(ExitCode::SUCCESS)
            })
        }
        Command::Fixture(args) => {
            // The fixture stands in for an independent server: tokio's default runtime, as a
            // server built on the SDK would have, whatever the gateway's own settings.
            let cores = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            runtime(Some(cores))?.block_on(async move {
                portcullis_fixtures::run(args).await?;
                Ok(ExitCode::SUCCESS)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_names_the_state_override() {
        let help = Cli::command().render_help().to_string();
        assert!(help.contains("PORTCULLIS_STATE=sqlite:<path>"), "{help}");
    }
}
