//! Log setup. Logs never go to stdout: in `stdio` mode stdout is the MCP channel, and one
//! stray line there would corrupt the host's stream.

use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. `PORTCULLIS_LOG` overrides the configured level.
pub fn init(cfg: &LogConfig) -> anyhow::Result<()> {
    let filter = match std::env::var("PORTCULLIS_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::try_new(v)?,
        _ => EnvFilter::try_new(&cfg.level)?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let json = matches!(cfg.format, LogFormat::Json);
    let result = match &cfg.file {
        Some(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("cannot open log file {}: {e}", path.display()))?;
            let writer = Mutex::new(file);
            if json {
                builder
                    .json()
                    .with_writer(writer)
                    .with_ansi(false)
                    .try_init()
            } else {
                builder.with_writer(writer).with_ansi(false).try_init()
            }
        }
        None if json => builder.json().with_writer(std::io::stderr).try_init(),
        // Colours only for a person at a terminal: escape codes in a host's log capture are
        // noise, and formatting them costs time on every line (one per decision).
        None => builder
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}
