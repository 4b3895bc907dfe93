//! The optional JSON-lines mirror of the audit log.
//!
//! The writer thread hands each committed group to the mirror right after it has answered the
//! callers, so lines appear after their commit and in sequence order. Each line is the stored
//! record in canonical JSON, `{"hash":…,"prev_hash":…,"record":{…},"seq":…}`, so a mirror can
//! be verified on its own and compared with the database. The mirror is a copy: a failure to
//! write it is logged and never fails an append.
//!
//! With the gateway's stdio transport, stdout carries MCP messages: do not mirror to stdout
//! there.

use crate::writer::Link;
use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Where committed audit records are copied as JSON lines.
pub struct AuditMirror {
    out: BufWriter<Box<dyn Write + Send>>,
    target: String,
    failing: bool,
}

impl AuditMirror {
    /// Mirror to standard output.
    pub fn stdout() -> Self {
        Self::new(Box::new(io::stdout()), "stdout")
    }

    /// Mirror to standard error.
    pub fn stderr() -> Self {
        Self::new(Box::new(io::stderr()), "stderr")
    }

    /// Mirror to a file, appending (created with mode 0600 on Unix if missing).
    pub fn file(path: &Path) -> io::Result<Self> {
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path)?;
        Ok(Self::new(Box::new(file), &path.display().to_string()))
    }

    /// Mirror to any writer (a pipe, a socket, a test buffer).
    pub fn writer(out: Box<dyn Write + Send>, target: &str) -> Self {
        Self::new(out, target)
    }

    fn new(out: Box<dyn Write + Send>, target: &str) -> Self {
        AuditMirror {
            out: BufWriter::with_capacity(64 * 1024, out),
            target: target.to_owned(),
            failing: false,
        }
    }

    /// Writes one committed group and flushes it.
    pub(crate) fn write_batch(&mut self, links: &[Link], bodies: &[String]) {
        let result = links
            .iter()
            .zip(bodies)
            .try_for_each(|(link, body)| {
                writeln!(
                    self.out,
                    "{{\"hash\":\"{}\",\"prev_hash\":\"{}\",\"record\":{},\"seq\":{}}}",
                    link.hash, link.prev_hash, body, link.seq
                )
            })
            .and_then(|()| self.out.flush());
        match result {
            Ok(()) if self.failing => {
                self.failing = false;
                tracing::info!(target = %self.target, "audit mirror writes again");
            }
            Ok(()) => {}
            Err(error) if !self.failing => {
                self.failing = true;
                tracing::warn!(target = %self.target, %error, "audit mirror write failed; the database still has every record");
            }
            Err(_) => {}
        }
    }
}

impl fmt::Debug for AuditMirror {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditMirror")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}
