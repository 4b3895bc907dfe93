//! Log setup. Logs never go to stdout: in `stdio` mode stdout is the MCP channel, and one
//! stray line there would corrupt the host's stream.
//!
//! Lines are collected in a buffer and written out when it fills, every 100 ms, and when the
//! gateway stops: a decision is logged on every call, and neither a write system call nor a
//! wake-up of a writer thread per line belongs on the request path. (A crash loses at most
//! the last 100 ms of log lines; the audit trail proper is a separate, durable store.)

use std::fs::OpenOptions;
use std::io::{BufWriter, IsTerminal, Write};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::{LogConfig, LogFormat};

const BUFFER: usize = 64 * 1024;
const FLUSH_EVERY: Duration = Duration::from_millis(100);

type Sink = Arc<Mutex<BufWriter<Box<dyn Write + Send>>>>;

/// The buffered destination of log lines.
#[derive(Clone)]
struct BufferedLog(Sink);

/// One line being written (the formatter writes each event in one piece).
struct Line<'a>(MutexGuard<'a, BufWriter<Box<dyn Write + Send>>>);

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl<'a> MakeWriter<'a> for BufferedLog {
    type Writer = Line<'a>;
    fn make_writer(&'a self) -> Self::Writer {
        Line(self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Flushes what is buffered when dropped; keep it alive as long as the gateway runs.
pub struct LogGuard(Sink);

impl Drop for LogGuard {
    fn drop(&mut self) {
        let _ = self.0.lock().unwrap_or_else(|p| p.into_inner()).flush();
    }
}

/// Installs the global subscriber. `PORTCULLIS_LOG` overrides the configured level.
pub fn init(cfg: &LogConfig) -> anyhow::Result<LogGuard> {
    let filter = match std::env::var("PORTCULLIS_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::try_new(v)?,
        _ => EnvFilter::try_new(&cfg.level)?,
    };
    // Colours only for a person at a terminal: escape codes in a host's log capture are noise.
    let (ansi, out): (bool, Box<dyn Write + Send>) = match &cfg.file {
        Some(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("cannot open log file {}: {e}", path.display()))?;
            (false, Box::new(file))
        }
        None => (std::io::stderr().is_terminal(), Box::new(std::io::stderr())),
    };
    let sink: Sink = Arc::new(Mutex::new(BufWriter::with_capacity(BUFFER, out)));
    spawn_flusher(Arc::downgrade(&sink));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_writer(BufferedLog(sink.clone()))
        // A closed stderr must not take requests down (the default reports write errors with
        // eprintln!, which panics once stderr is gone).
        .log_internal_errors(false);
    let result = match cfg.format {
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))?;
    Ok(LogGuard(sink))
}

/// Flushes the buffer every [`FLUSH_EVERY`] until the logger is gone.
fn spawn_flusher(sink: Weak<Mutex<BufWriter<Box<dyn Write + Send>>>>) {
    let _ = std::thread::Builder::new()
        .name("portcullis-log".into())
        .spawn(move || {
            loop {
                std::thread::sleep(FLUSH_EVERY);
                let Some(sink) = sink.upgrade() else { return };
                let _ = sink.lock().unwrap_or_else(|p| p.into_inner()).flush();
            }
        });
}
