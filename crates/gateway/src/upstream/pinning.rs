//! Launch pinning: before a stdio server starts, its launch is reviewed again
//! ([`portcullis_sandbox::review`]) and compared with the pin `portcullis trust` stored.
//!
//! Under `pinning = "required"` a launch without a pin, or one whose argv, executable,
//! script or package differs from it, does not happen: the caller gets an error naming each
//! change, and the refusal is in the audit log. Under `"warn"` the server starts, and the
//! warning is logged and audited. The mode defaults to `required` under `serve`; under
//! `stdio` to `warn` until the server has a pin, `required` after.
//!
//! The gateway's own executable (`command = ["portcullis", …]`, the bundled fixture) is
//! trusted without a pin: it *is* the gateway.
//!
//! The same functions build what `portcullis trust` shows and stores, so what a person
//! approved is exactly what the launch is checked against.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use portcullis_auth::upstream::SecretSource;
use portcullis_sandbox::review::{self, EnvValue, Fingerprint, LaunchInput, Review, ReviewError};
use portcullis_sandbox::{Change, PinMode};
use portcullis_store::{LaunchPin, Store};

use super::UpstreamError;
use crate::audit::{Audit, Context, Entry};
use crate::config::{RunMode, StdioUpstream};

/// The `pinning` mode in effect: the config's, else `required` under `serve`, and under
/// `stdio` `warn` until the server's first `trust` (`required` once it has a pin).
pub fn effective_mode(configured: Option<PinMode>, run_mode: RunMode, pinned: bool) -> PinMode {
    match (configured, run_mode) {
        (Some(mode), _) => mode,
        (None, RunMode::Serve) => PinMode::Required,
        (None, RunMode::Stdio) if pinned => PinMode::Required,
        (None, RunMode::Stdio) => PinMode::Warn,
    }
}

/// The child's environment as a review sees it: plain values for `env.pass` (from this
/// process's environment) and `env.set`, and only the names of `env.secrets`.
pub fn launch_env(stdio: &StdioUpstream) -> Vec<(String, EnvValue)> {
    let mut env: Vec<(String, EnvValue)> = stdio
        .env
        .pass
        .iter()
        .filter_map(|name| {
            std::env::var(name)
                .ok()
                .map(|v| (name.clone(), EnvValue::Value(v)))
        })
        .collect();
    for (name, value) in &stdio.env.set {
        env.retain(|(n, _)| n != name);
        env.push((name.clone(), EnvValue::Value(value.clone())));
    }
    for name in stdio.env.secrets.keys() {
        env.retain(|(n, _)| n != name);
        env.push((name.clone(), EnvValue::Secret));
    }
    env
}

/// Where a secret comes from, for display: `from env MY_TOKEN`, `from file /run/secret`.
pub fn secret_source(source: &SecretSource) -> String {
    match source {
        SecretSource::Env(var) => format!("from env {var}"),
        SecretSource::File(path) => format!("from file {}", path.display()),
    }
}

/// What `argv[0]` of `stdio` executes: the gateway's own executable for `portcullis`, else
/// the name as written (looked up on the child's `PATH`).
pub fn program_of(stdio: &StdioUpstream) -> Result<PathBuf, String> {
    let first = stdio.command.first().ok_or("command is empty")?;
    super::slot::resolve_program(first)
}

/// Reviews the launch of `stdio`, whose `argv[0]` executes `program` ([`program_of`]).
pub fn review_launch(stdio: &StdioUpstream, program: &Path) -> Result<Review, ReviewError> {
    let env = launch_env(stdio);
    let home = std::env::var_os("HOME").map(PathBuf::from);
    review::review(&LaunchInput {
        argv: &stdio.command,
        program,
        cwd: stdio.cwd.as_deref(),
        env: &env,
        home: home.as_deref(),
        sandbox: stdio.sandbox.as_ref(),
    })
}

/// Whether `executable` (resolved) is the running gateway's own binary.
pub fn is_gateway_itself(executable: &Path) -> bool {
    let Ok(own) = std::env::current_exe() else {
        return false;
    };
    // Once an upgrade has replaced the running binary, Linux names it "<path> (deleted)":
    // the file now at that path is the gateway's installation all the same.
    let own = match own.to_str().and_then(|s| s.strip_suffix(" (deleted)")) {
        Some(path) => PathBuf::from(path),
        None => own,
    };
    std::fs::canonicalize(own).is_ok_and(|own| own == executable)
}

/// The pin that records `fingerprint` as trusted.
pub fn to_pin(server: &str, fingerprint: &Fingerprint, trusted_by: &str, at_ms: i64) -> LaunchPin {
    LaunchPin {
        server: server.to_owned(),
        argv: fingerprint.argv.clone(),
        executable: fingerprint.executable.clone(),
        executable_sha256: fingerprint.executable_sha256.clone(),
        script: fingerprint.script.clone(),
        script_sha256: fingerprint.script_sha256.clone(),
        package: fingerprint.package.clone(),
        trusted_at_ms: at_ms,
        trusted_by: trusted_by.to_owned(),
    }
}

/// What a stored pin trusted.
pub fn fingerprint_of(pin: &LaunchPin) -> Fingerprint {
    Fingerprint {
        argv: pin.argv.clone(),
        executable: pin.executable.clone(),
        executable_sha256: pin.executable_sha256.clone(),
        script: pin.script.clone(),
        script_sha256: pin.script_sha256.clone(),
        package: pin.package.clone(),
    }
}

/// The changes, joined for one message.
pub fn describe(changes: &[Change]) -> String {
    changes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The check one stdio server's launches go through (absent when `pinning = "off"`).
pub struct LaunchGuard {
    server: Arc<str>,
    stdio: StdioUpstream,
    /// What `argv[0]` executes.
    program: PathBuf,
    configured: Option<PinMode>,
    run_mode: RunMode,
    store: Arc<dyn Store>,
    audit: Audit,
}

impl std::fmt::Debug for LaunchGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchGuard")
            .field("server", &self.server)
            .field("program", &self.program)
            .field("configured", &self.configured)
            .field("run_mode", &self.run_mode)
            .finish_non_exhaustive()
    }
}

/// What the check found.
#[derive(Debug)]
enum Verdict {
    /// The launch matches its pin, or is the gateway itself.
    Trusted,
    /// It differs from its pin, or has none, or its pin cannot be read.
    Untrusted { mode: PinMode, reason: String },
    /// Nothing that could run was found: no launch is possible.
    Unusable(String),
}

impl LaunchGuard {
    /// The guard of server `server`, or `None` when its config turns pinning off.
    pub fn new(
        server: &str,
        stdio: &StdioUpstream,
        program: PathBuf,
        run_mode: RunMode,
        store: Arc<dyn Store>,
        audit: Audit,
    ) -> Option<Arc<LaunchGuard>> {
        if stdio.pinning == Some(PinMode::Off) {
            return None;
        }
        Some(Arc::new(LaunchGuard {
            server: Arc::from(server),
            stdio: stdio.clone(),
            program,
            configured: stdio.pinning,
            run_mode,
            store,
            audit,
        }))
    }

    /// Checks one launch. `Err` means it must not happen; a warning has been logged and
    /// audited when it may.
    pub async fn check(self: &Arc<Self>) -> Result<(), UpstreamError> {
        let this = self.clone();
        let verdict = tokio::task::spawn_blocking(move || this.verdict())
            .await
            .unwrap_or_else(|e| Verdict::Unusable(format!("the launch check failed: {e}")));
        let server = self.server.to_string();
        match verdict {
            Verdict::Trusted => Ok(()),
            Verdict::Unusable(reason) => Err(UpstreamError::Unavailable { server, reason }),
            Verdict::Untrusted {
                mode: PinMode::Required,
                reason,
            } => {
                tracing::warn!(server, reason, "launch refused: it does not match its pin");
                // Refused either way; a record that cannot be written is logged by commit.
                let _ = self.record("refused", &reason).await;
                Err(UpstreamError::LaunchRefused { server, reason })
            }
            Verdict::Untrusted { reason, .. } => {
                tracing::warn!(
                    server,
                    reason,
                    "starting a server whose launch does not match its pin (pinning = \"warn\")"
                );
                let _ = self.record("warned", &reason).await;
                Ok(())
            }
        }
    }

    /// The review and the comparison, with blocking file and store I/O.
    fn verdict(&self) -> Verdict {
        let server = &self.server;
        let path = launch_env(&self.stdio)
            .into_iter()
            .find_map(|(n, v)| match v {
                EnvValue::Value(v) if n == "PATH" => Some(v),
                _ => None,
            });
        let could_not_start = |e: ReviewError| {
            Verdict::Unusable(format!("could not start {}: {e}", self.program.display()))
        };
        match review::resolve_executable(&self.program, self.stdio.cwd.as_deref(), path.as_deref())
        {
            Ok(found) if is_gateway_itself(&found.executable) => return Verdict::Trusted,
            Ok(_) => {}
            Err(e) => return could_not_start(e),
        }
        let now = match review_launch(&self.stdio, &self.program) {
            Ok(r) => r.fingerprint,
            Err(e) => return could_not_start(e),
        };
        let pin = self.store.get_pin(server);
        let mode = effective_mode(self.configured, self.run_mode, !matches!(pin, Ok(None)));
        let reason = match pin {
            Ok(Some(pin)) => {
                let changes = review::diff(&fingerprint_of(&pin), &now);
                if changes.is_empty() {
                    return Verdict::Trusted;
                }
                format!(
                    "its launch differs from what was trusted: {}; run `portcullis trust {server}` to review",
                    describe(&changes)
                )
            }
            Ok(None) => format!(
                "its launch has not been reviewed (pinning = \"{}\"): run `portcullis trust {server}` to review and pin it",
                mode.as_str()
            ),
            Err(e) => format!(
                "its launch pin cannot be read ({e}); run `portcullis trust {server}` to pin it again"
            ),
        };
        Verdict::Untrusted { mode, reason }
    }

    /// An audit record of a launch refused or started with a warning.
    async fn record(
        &self,
        decision: &str,
        reason: &str,
    ) -> Result<u64, portcullis_wire::ErrorObject> {
        let ctx = Context {
            principal: "gateway".to_owned(),
            session: String::new(),
            transport: match self.run_mode {
                RunMode::Serve => "http",
                RunMode::Stdio => "stdio",
            },
        };
        self.audit
            .commit(
                &ctx,
                Entry {
                    event: "launch",
                    server: &self.server,
                    decision,
                    reason: reason.to_owned(),
                    ..Entry::default()
                },
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_defaults_to_required_in_serve_and_to_warn_in_stdio_until_trusted() {
        use PinMode::*;
        assert_eq!(effective_mode(None, RunMode::Serve, false), Required);
        assert_eq!(effective_mode(None, RunMode::Stdio, false), Warn);
        assert_eq!(effective_mode(None, RunMode::Stdio, true), Required);
        assert_eq!(effective_mode(Some(Warn), RunMode::Serve, true), Warn);
        assert_eq!(effective_mode(Some(Off), RunMode::Serve, false), Off);
    }

    #[test]
    fn a_pin_round_trips_through_its_fingerprint() {
        let fp = Fingerprint {
            argv: vec!["npx".into(), "pkg@1.0.0".into()],
            executable: "/usr/bin/npx".into(),
            executable_sha256: "ab".repeat(32),
            script: None,
            script_sha256: None,
            package: Some("pkg@1.0.0".into()),
        };
        let pin = to_pin("files", &fp, "local:alice", 1);
        assert_eq!(pin.server, "files");
        assert_eq!(fingerprint_of(&pin), fp);
    }

    #[test]
    fn secrets_are_names_only_in_the_reviewed_environment() {
        let text = r#"
[servers.srv]
command = ["srv"]
env = { pass = ["PATH"], set = { MODE = "prod" }, secrets = { TOKEN = { env = "PORTCULLIS_TEST_TOKEN" } } }
"#;
        let config =
            crate::config::Config::parse(text, crate::config::ConfigSource::Embedded("test"))
                .expect("config");
        let crate::config::Upstream::Stdio(stdio) = &config.servers["srv"].upstream else {
            panic!("not stdio");
        };
        let env = launch_env(stdio);
        assert!(env.contains(&("MODE".into(), EnvValue::Value("prod".into()))));
        assert!(env.contains(&("TOKEN".into(), EnvValue::Secret)));
        assert_eq!(
            secret_source(&SecretSource::Env("MY_TOKEN".into())),
            "from env MY_TOKEN"
        );
    }
}
