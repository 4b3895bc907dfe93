//! The `portcullis` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portcullis_gateway::config::Config;
use portcullis_gateway::gateway::Gateway;
use portcullis_gateway::{logging, transport};

// Every message costs a handful of short-lived allocations; mimalloc makes them cheap (it
// took a tenth of the gateway's time per call with the system allocator).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Portcullis: a security gateway for the Model Context Protocol.
#[derive(Parser, Debug)]
#[command(name = "portcullis", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP gateway: each server at /mcp/<server>, each virtual server at /mcp/<name>.
    /// Without --config it runs the embedded quickstart (the bundled fixture server).
    Serve {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Listen here instead of the config's gateway.listen.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Run the gateway as a stdio MCP server for one server or virtual server (for desktop
    /// hosts: put this in place of the server's own command).
    Stdio {
        /// The server or virtual server to serve.
        server: String,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Validate the config and print the effective policy.
    Check {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Run the bundled fixture MCP server (used by the quickstart, the tests and the benchmark).
    Fixture(portcullis_fixtures::FixtureArgs),
}

fn load(path: Option<&PathBuf>) -> Result<Config, String> {
    match path {
        Some(p) => Config::load(p).map_err(|e| e.to_string()),
        None => Ok(Config::quickstart()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("portcullis: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The async runtime of a command. The gateway's own work per message is small next to what
/// its upstreams do (and on one machine they share the cores): `serve` takes
/// `gateway.worker_threads` threads, by default half the cores; `stdio` serves one client and
/// runs on one thread, which gives it the lowest latency.
fn runtime(threads: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
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
            let cfg = match load(config.as_ref()) {
                Ok(c) => c,
                Err(e) => {
                    eprint!("{e}");
                    if !e.ends_with('\n') {
                        eprintln!();
                    }
                    return Ok(ExitCode::from(2));
                }
            };
            println!("{}: OK", cfg.source);
            for w in cfg.warnings() {
                println!("warning: {w}");
            }
            print!("{}", cfg.render_effective_policy());
            Ok(ExitCode::SUCCESS)
        }
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
            let cfg = load(config.as_ref()).map_err(anyhow::Error::msg)?;
            runtime(None)?.block_on(async move {
                let _log = logging::init(&cfg.log)?;
                let gateway = Gateway::new(cfg)?;
                let result = transport::stdio::serve(gateway.clone(), &server).await;
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
