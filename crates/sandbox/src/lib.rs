//! Containment of local (stdio) MCP servers.
//!
//! A stdio server runs with every right of the user who started the gateway unless
//! something takes them away. This crate takes them away, on a stock Linux kernel and
//! without a container runtime:
//!
//! - [`profile`]: what a server may touch, as the operator wrote it;
//! - [`PinMode`]: whether a launch must match what `portcullis trust` approved;
//! - [`review`]: what a launch runs (executable, script, package, their SHA-256), what is
//!   dangerous about it, its [`Fingerprint`] and how it differs from a pin;
//! - [`linux`]: the sandbox itself — user, mount, PID, IPC, UTS and network namespaces, a
//!   minimal read-only root, Landlock, seccomp, rlimits and a pids cgroup, no_new_privs and
//!   a parent-death signal — and the probe that says which of them this kernel supports.
//!
//! Everything that needs `unsafe` (the code that runs between `fork` and `exec`) lives in
//! one module and says why at each use.

#[cfg(target_os = "linux")]
pub mod linux;
pub mod profile;
pub mod review;

#[cfg(target_os = "linux")]
pub use linux::plan::{Bind, PROXY_PORT, SandboxTarget};
#[cfg(target_os = "linux")]
pub use linux::{
    Armed, Layer, LayerState, Running, Sandbox, SandboxError, Support, layers, support,
};
pub use profile::{HostPort, Network, Profile, ResourceLimits};
pub use review::{
    Change, EnvValue, Finding, Fingerprint, LaunchInput, Review, ReviewError, Severity,
};

/// `servers.<name>.pinning`: what happens when a launch differs from its pin (or has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinMode {
    /// The server does not start without a matching pin.
    Required,
    /// The server starts; the difference is logged and audited.
    Warn,
    /// No check.
    Off,
}

impl PinMode {
    /// The config word.
    pub fn as_str(self) -> &'static str {
        match self {
            PinMode::Required => "required",
            PinMode::Warn => "warn",
            PinMode::Off => "off",
        }
    }
}
