//! A stdio server's sandbox, planned once from its config: the profile, the program found
//! the way `execvp` finds it, its roots, and whether every layer must hold.

use std::path::PathBuf;
use std::sync::Arc;

use portcullis_sandbox::review::resolve_executable;
use portcullis_sandbox::{Sandbox, SandboxTarget};

use crate::config::{RunMode, ServerConfig, StdioUpstream};

/// What the launcher does about the sandbox.
#[derive(Debug, Clone)]
pub enum Confinement {
    /// `sandbox = "off"`.
    Off,
    /// Planned: the program (absolute, as found on the child's `PATH`) and the plan.
    Sandboxed {
        program: PathBuf,
        sandbox: Arc<Sandbox>,
    },
    /// The sandbox cannot be built (the program is not found, a configured path is
    /// missing, a required layer is not supported): the server does not start, and every
    /// call says why.
    Refused(String),
}

impl Confinement {
    /// Plans the sandbox of `stdio`, a server of `server`; `env` is the child's environment
    /// (its `PATH` is searched for the program).
    pub fn plan(
        server: &ServerConfig,
        stdio: &StdioUpstream,
        program: &std::path::Path,
        env: &[(String, String)],
        mode: RunMode,
    ) -> Confinement {
        let Some(profile) = &stdio.sandbox else {
            return Confinement::Off;
        };
        let path = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_str());
        let found = match resolve_executable(program, stdio.cwd.as_deref(), path) {
            Ok(r) => r.found,
            Err(e) => return Confinement::Refused(e.to_string()),
        };
        let required = profile.required.unwrap_or(mode == RunMode::Serve);
        let args = stdio.command.get(1..).unwrap_or_default();
        let target = SandboxTarget {
            program: &found,
            args,
            cwd: stdio.cwd.as_deref(),
            roots: &server.roots,
        };
        match Sandbox::new(profile, &target, required) {
            Ok(sandbox) => {
                for layer in sandbox.layers() {
                    if layer.state == portcullis_sandbox::LayerState::Missing {
                        tracing::warn!(server = %server.name, layer = layer.name, "sandbox layer not enforced on this kernel (sandbox.required = false): {}", layer.detail);
                    } else {
                        tracing::debug!(server = %server.name, layer = layer.name, state = ?layer.state, "{}", layer.detail);
                    }
                }
                Confinement::Sandboxed {
                    program: found,
                    sandbox: Arc::new(sandbox),
                }
            }
            Err(e) => Confinement::Refused(format!("its sandbox: {e}")),
        }
    }
}
