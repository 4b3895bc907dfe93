//! The `portcullis` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portcullis_gateway::config::Config;
use portcullis_gateway::gateway::Gateway;
use portcullis_gateway::{logging, transport};

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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("portcullis: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("portcullis: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
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
            logging::init(&cfg.log)?;
            for w in cfg.warnings() {
                tracing::warn!("{w}");
            }
            let gateway = Gateway::new(cfg)?;
            transport::http::serve(gateway).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Stdio { server, config } => {
            let cfg = load(config.as_ref()).map_err(anyhow::Error::msg)?;
            logging::init(&cfg.log)?;
            let gateway = Gateway::new(cfg)?;
            let result = transport::stdio::serve(gateway.clone(), &server).await;
            gateway.shutdown().await;
            result?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Fixture(args) => {
            portcullis_fixtures::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
