//! A local MCP server as a child process speaking newline-delimited JSON-RPC.
//!
//! The child runs in its own process group, so that ending it ends everything it started.
//! Its stdout carries only MCP: a line that is not a valid JSON-RPC message is logged and
//! skipped (the connection survives a server that prints garbage). Its stderr is captured
//! line by line into the gateway's log. When it exits, every pending request fails at once
//! with a JSON-RPC error; the [`super::UpstreamSlot`] restarts it on the next call.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use portcullis_wire::{Limits, Line, LineReader, parse_message, write_frame};
use tokio::io::BufReader;
use tokio::process::{Child, ChildStdin, Command};

use super::UpstreamError;
use super::confine::Confinement;
use super::conn::{ConnParams, Transport, UpstreamConn};
use super::proxy::{self, ProxyTask, SandboxEgress};

/// Longest stderr line kept in the log; the rest of the line is dropped.
const MAX_STDERR_LINE: usize = 16 * 1024;

/// How a stdio server is launched.
#[derive(Debug, Clone)]
pub struct StdioLaunch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    /// The child's environment besides its secrets: nothing else is inherited.
    pub env: Vec<(String, String)>,
    /// `env.secrets`, read when the gateway started; never printed (`Secret`).
    pub secrets: Vec<(String, portcullis_auth::secret::Secret)>,
    /// The sandbox it runs in.
    pub confinement: Confinement,
    /// What its network proxy (with an allow list) decides with and reports to: the
    /// gateway's `[egress]` policy and audit log (set by the gateway).
    pub egress: SandboxEgress,
}

pub struct StdioIo {
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    child: Mutex<Option<Child>>,
    pgid: Option<Pid>,
    /// What the sandbox holds while the server runs (its pids cgroup).
    _sandbox: Option<portcullis_sandbox::Running>,
    /// The server's network proxy, stopped with it.
    _proxy: Option<ProxyTask>,
}

impl StdioIo {
    pub(crate) async fn send(
        &self,
        conn: &Arc<UpstreamConn>,
        frame: &[u8],
    ) -> Result<(), UpstreamError> {
        let mut guard = self.stdin.lock().await;
        let Some(stdin) = guard.as_mut() else {
            return Err(unavailable(conn, "the process has been stopped"));
        };
        if let Err(e) = write_frame(stdin, frame).await {
            drop(guard);
            conn.close(&format!("writing to the process failed: {e}"));
            return Err(unavailable(
                conn,
                &format!("writing to the process failed: {e}"),
            ));
        }
        Ok(())
    }

    /// Stops the child the way the MCP lifecycle asks: close its stdin, give it a moment,
    /// then SIGTERM, then SIGKILL — always to the whole process group.
    pub(crate) fn shutdown(&self) {
        let child = self.child.lock().unwrap_or_else(|p| p.into_inner()).take();
        let pgid = self.pgid;
        let stdin = self.stdin.try_lock().ok().and_then(|mut s| s.take());
        drop(stdin);
        let Some(mut child) = child else {
            kill_group(pgid, Signal::SIGKILL);
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if tokio::time::timeout(Duration::from_millis(500), child.wait())
                        .await
                        .is_err()
                    {
                        kill_group(pgid, Signal::SIGTERM);
                        if tokio::time::timeout(Duration::from_secs(2), child.wait())
                            .await
                            .is_err()
                        {
                            let _ = child.start_kill();
                        }
                    }
                    // Whatever the server started outlives nothing.
                    kill_group(pgid, Signal::SIGKILL);
                    let _ = child.wait().await;
                });
            }
            Err(_) => {
                kill_group(pgid, Signal::SIGKILL);
                let _ = child.start_kill();
            }
        }
    }
}

impl Drop for StdioIo {
    fn drop(&mut self) {
        if self.child.get_mut().map(|c| c.is_some()).unwrap_or(false) {
            kill_group(self.pgid, Signal::SIGKILL);
        }
    }
}

fn kill_group(pgid: Option<Pid>, signal: Signal) {
    if let Some(pgid) = pgid {
        let _ = killpg(pgid, signal);
    }
}

fn unavailable(conn: &UpstreamConn, reason: &str) -> UpstreamError {
    UpstreamError::Unavailable {
        server: conn.server().to_owned(),
        reason: reason.to_owned(),
    }
}

/// Starts the child and the tasks that read its stdout and stderr.
pub(crate) fn spawn(
    launch: &StdioLaunch,
    params: ConnParams,
) -> Result<Arc<UpstreamConn>, UpstreamError> {
    let server = params.server.to_string();
    let unavailable = |reason: String| UpstreamError::Unavailable {
        server: server.clone(),
        reason,
    };
    let program = match &launch.confinement {
        Confinement::Off => &launch.program,
        Confinement::Sandboxed { program, .. } => program,
        Confinement::Refused(reason) => return Err(unavailable(reason.clone())),
    };
    let mut cmd = std::process::Command::new(program);
    cmd.args(&launch.args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .envs(launch.secrets.iter().map(|(k, v)| (k, v.expose())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let armed = match &launch.confinement {
        Confinement::Sandboxed { sandbox, .. } => {
            cmd.envs(sandbox.env());
            Some(
                sandbox
                    .arm(&mut cmd)
                    .map_err(|e| unavailable(format!("its sandbox: {e}")))?,
            )
        }
        _ => {
            if let Some(cwd) = &launch.cwd {
                cmd.current_dir(cwd);
            }
            None
        }
    };
    let mut cmd = Command::from(cmd);
    cmd.kill_on_drop(true);
    let spawned = cmd.spawn();
    let mut running = match armed {
        Some(armed) => Some(
            armed
                .finish(spawned.as_ref().map(|_| ()))
                .map_err(|e| unavailable(format!("could not start {}: {e}", program.display())))?,
        ),
        None => None,
    };
    let proxy = match (
        &launch.confinement,
        running.as_mut().and_then(|r| r.proxy_listener.take()),
    ) {
        (Confinement::Sandboxed { sandbox, .. }, Some(listener)) => Some(
            proxy::start(
                &server,
                &sandbox.profile().network,
                &launch.egress,
                listener,
            )
            .map_err(|e| unavailable(format!("its sandbox's proxy: {e}")))?,
        ),
        _ => None,
    };
    let mut child =
        spawned.map_err(|e| unavailable(format!("could not start {}: {e}", program.display())))?;
    let pgid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(UpstreamError::Unavailable {
            server,
            reason: "child pipes missing".into(),
        });
    };
    tracing::info!(server, pid = ?pgid, program = %launch.program.display(), "started stdio upstream");

    let max = params.max_message_bytes;
    let io = StdioIo {
        stdin: tokio::sync::Mutex::new(Some(stdin)),
        child: Mutex::new(Some(child)),
        pgid,
        _sandbox: running,
        _proxy: proxy,
    };
    let conn = UpstreamConn::new(params, Transport::Stdio(io));

    let weak = Arc::downgrade(&conn);
    tokio::spawn(read_stdout(weak, stdout, max));
    tokio::spawn(read_stderr(server, stderr));
    Ok(conn)
}

async fn read_stdout(conn: Weak<UpstreamConn>, stdout: tokio::process::ChildStdout, max: usize) {
    let limits = Limits {
        max_frame_bytes: max,
        ..Limits::default()
    };
    let mut lines = LineReader::new(BufReader::with_capacity(64 * 1024, stdout), max);
    let reason = loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => break "the process closed its stdout".to_owned(),
            Err(e) => break format!("reading its stdout failed: {e}"),
        };
        let Some(conn) = conn.upgrade() else { return };
        match line {
            Line::Frame(bytes) => match parse_message(&bytes, &limits) {
                Ok(msg) => conn.dispatch(msg, None),
                Err(e) => tracing::warn!(
                    server = conn.server(),
                    error = %e,
                    line = %preview(&bytes),
                    "upstream wrote something that is not a JSON-RPC message to stdout; skipped"
                ),
            },
            Line::TooLong { len } => {
                tracing::warn!(
                    server = conn.server(),
                    len,
                    limit = max,
                    "upstream wrote a line over the message limit; skipped"
                );
                conn.fail_sole_pending(UpstreamError::Protocol {
                    server: conn.server().to_owned(),
                    reason: format!("its answer is {len} bytes, over the {max}-byte message limit"),
                });
            }
        }
    };
    let Some(conn) = conn.upgrade() else { return };
    let status = exit_status(&conn).await;
    let reason = match status {
        Some(status) => format!("{reason} ({status})"),
        None => reason,
    };
    tracing::warn!(server = conn.server(), reason, "stdio upstream ended");
    conn.close(&reason);
}

/// The child's exit status, if it exits promptly after closing stdout.
async fn exit_status(conn: &UpstreamConn) -> Option<String> {
    let super::conn::Transport::Stdio(io) = &conn.transport else {
        return None;
    };
    let mut child = io.child.lock().unwrap_or_else(|p| p.into_inner()).take()?;
    let status = match tokio::time::timeout(Duration::from_millis(200), child.wait()).await {
        Ok(Ok(status)) => Some(status.to_string()),
        _ => None,
    };
    // Put it back so shutdown() stops it (and its group) if it is still running.
    *io.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
    status
}

async fn read_stderr(server: String, stderr: tokio::process::ChildStderr) {
    let mut lines = LineReader::new(BufReader::new(stderr), MAX_STDERR_LINE);
    while let Ok(Some(line)) = lines.next_line().await {
        match line {
            Line::Frame(bytes) => {
                tracing::info!(target: "portcullis::upstream::stderr", server, "{}", String::from_utf8_lossy(&bytes))
            }
            Line::TooLong { len } => {
                tracing::info!(target: "portcullis::upstream::stderr", server, "<{len}-byte line dropped>")
            }
        }
    }
}

/// The start of a line, for a log message: at most 100 bytes, lossy UTF-8.
fn preview(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(100)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if bytes.len() > 100 {
        s.push('…');
    }
    s
}
