//! The gateway's configuration: one TOML file, checked strictly and all at once.
//!
//! Loading runs in three steps: `raw` deserializes each section into structs that mirror
//! the file (unknown keys are errors), `validate` and `rules` turn those into the types
//! below while checking names, references, durations, sizes, URLs and globs, and every
//! problem found on the way becomes a [`Diagnostic`] naming file, line and column. Nothing
//! half-valid is ever returned: a config either loads completely or not at all, because a
//! gateway running on a partly understood policy is worse than one that refuses to start.
//!
//! Later sections (`[auth]`, sandbox, credentials) are new fields on these structs and new
//! `raw` sections; nothing here assumes the set is closed.

mod approvals;
mod auth;
mod consent;
mod content;
mod diagnostic;
mod egress;
mod fs;
mod net;
mod raw;
mod render;
mod roots;
mod rule_parts;
mod rules;
mod sandbox;
mod sandbox_report;
mod scan;
mod sections;
mod servers;
mod tls;
mod units;
mod validate;
mod warnings;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use approvals::{AdminTokenSource, ApprovalsConfig};
pub use auth::{AuthConfig, IntrospectionConfig, no_auth_summary};
pub use consent::{
    Channel as ConsentChannel, ConsentConfig, ConsentOverrides, ConsentSettings, RememberChoice,
};
pub use content::{ContentConfig, ContentSelector, SecretsInArguments};
pub use diagnostic::{ConfigError, Diagnostic};
pub use fs::SystemPaths;
pub use portcullis_policy::RateSpec;
pub use portcullis_wire::ProtocolVersion;
pub use scan::{ScanAction, ScanPolicy};
pub use tls::{BehindProxy, IpRange, TlsFiles, canonical_ip, host_value};

/// The quickstart config, built into the binary so `portcullis serve` works with no file.
pub const QUICKSTART: &str = include_str!("../../../../examples/quickstart.toml");

/// Default `gateway.listen`: loopback only.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8440);
/// Default `gateway.max_message_bytes`: 4 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 << 20;
/// Smallest accepted `gateway.max_message_bytes`: below this even `initialize` may not fit.
pub const MIN_MESSAGE_BYTES: usize = 1 << 10;
/// Largest accepted `gateway.max_message_bytes`: every message is held in memory.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;
/// Default `gateway.request_timeout`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Default `gateway.session_idle_timeout`.
pub const DEFAULT_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Default `gateway.session_lifetime`: a session ends a day after it began, however busy.
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Default `gateway.worker_threads`: half the cores (at least one). The gateway's own work
/// per message is small next to its upstreams', which usually run on the same machine.
pub fn default_worker_threads() -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    (cores / 2).max(1)
}

/// Largest accepted `gateway.worker_threads`.
pub const MAX_WORKER_THREADS: i64 = 1024;

/// Default `gateway.max_sessions`.
pub const DEFAULT_MAX_SESSIONS: usize = 10_000;
/// Largest accepted `gateway.max_sessions`.
pub const MAX_SESSIONS_LIMIT: usize = 1_000_000;
/// Default `servers.<name>.restart.max_backoff`.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest accepted duration for any timeout or backoff: every wait is bounded.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// A loaded, fully validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it was read from (for messages and rule origins).
    pub source: ConfigSource,
    /// `[gateway]`: the front door.
    pub gateway: GatewayConfig,
    /// `[auth]`: OAuth bearer tokens on the HTTP front door (`None`: no authentication,
    /// which only a loopback listener, or `gateway.insecure_no_auth`, allows).
    pub auth: Option<AuthConfig>,
    /// `[log]`.
    pub log: LogConfig,
    /// `[audit]`.
    pub audit: AuditConfig,
    /// `[limits]`.
    pub limits: LimitsConfig,
    /// `[egress]`: what the outbound client's SSRF guard lets through besides public
    /// addresses over https (nothing by default).
    pub egress: portcullis_egress::guard::EgressPolicy,
    /// `[content]`: sanitizing and redaction of what is relayed to clients, and credentials
    /// in the arguments of open-world tools.
    pub content: ContentConfig,
    /// `[approvals]`: the approvals page and its admin token (`None`: no page).
    pub approvals: Option<ApprovalsConfig>,
    /// `[servers.<name>]`, by name.
    pub servers: BTreeMap<String, ServerConfig>,
    /// `[virtual.<name>]`, by name.
    pub virtuals: BTreeMap<String, VirtualConfig>,
    /// `[[rules]]`, in order.
    pub policy: portcullis_policy::Policy,
    /// The `consent` tables of servers and consent rules: how a held call is put to a person.
    pub consent: ConsentConfig,
    /// How the gateway runs: not in the file, set by the command (`serve` or `stdio`); it
    /// picks the defaults that differ between a shared gateway and a desktop host's.
    pub run_mode: RunMode,
}

/// `portcullis serve` or `portcullis stdio`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunMode {
    /// A gateway for many clients: the strict defaults (`pinning = "required"`,
    /// `sandbox.required = true`). Also what every other command assumes.
    #[default]
    Serve,
    /// One desktop host's server: launches are pinned with a warning until the first
    /// `portcullis trust`, and the sandbox runs with what the kernel supports.
    Stdio,
}

/// Where a config came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A file on disk, as named on the command line.
    File(PathBuf),
    /// A config compiled into the binary; the string is its short name (`"quickstart"`),
    /// not its text.
    Embedded(&'static str),
}

/// The path, or `<embedded quickstart>`.
impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::File(path) => write!(f, "{}", path.display()),
            ConfigSource::Embedded(name) => write!(f, "<embedded {name}>"),
        }
    }
}

/// `[gateway]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Where the Streamable HTTP front door listens.
    pub listen: SocketAddr,
    /// The canonical external URL, normalized, without a trailing slash.
    pub public_url: Option<String>,
    /// Where the gateway's OAuth Client ID Metadata Document is published (its `client_id`);
    /// default `{public_url}/oauth/client-metadata.json` when `public_url` is https.
    pub client_metadata_url: Option<String>,
    /// Extra `Origin` values accepted besides loopback ones, normalized as browsers send them.
    pub allowed_origins: Vec<String>,
    /// Extra `Host` values accepted besides loopback names and `public_url`'s host, lowercase.
    pub allowed_hosts: Vec<String>,
    /// Largest JSON-RPC message accepted in either direction, in bytes.
    pub max_message_bytes: usize,
    /// Default time a request may take end to end.
    pub request_timeout: Duration,
    /// Idle time after which a downstream session is dropped.
    pub session_idle_timeout: Duration,
    /// Most concurrent downstream sessions.
    pub max_sessions: usize,
    /// Threads of the HTTP gateway's runtime.
    pub worker_threads: usize,
    /// Where the gateway keeps its state (audit log, approvals, pins).
    pub state: StateLocation,
    /// Listen beyond loopback without `[auth]` (an explicit, named risk).
    pub insecure_no_auth: bool,
    /// Longest a downstream session may live, however active.
    pub session_lifetime: Duration,
    /// `gateway.tls`: terminate TLS with these files (`None`: plain HTTP).
    pub tls: Option<TlsFiles>,
    /// `gateway.behind_proxy`: believe forwarding headers from these proxies only.
    pub behind_proxy: Option<BehindProxy>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: DEFAULT_LISTEN,
            public_url: None,
            client_metadata_url: None,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            session_idle_timeout: DEFAULT_SESSION_IDLE_TIMEOUT,
            max_sessions: DEFAULT_MAX_SESSIONS,
            worker_threads: default_worker_threads(),
            state: StateLocation::Sqlite(default_state_path()),
            insecure_no_auth: false,
            session_lifetime: DEFAULT_SESSION_LIFETIME,
            tls: None,
            behind_proxy: None,
        }
    }
}

impl GatewayConfig {
    /// `host[:port]` of `public_url`, as it appears in a `Host` header, to accept besides
    /// loopback names and `allowed_hosts`.
    pub fn public_host(&self) -> Option<String> {
        self.public_url.as_deref().and_then(net::url_host)
    }

    /// Is the listener reachable only from this machine?
    pub fn listens_on_loopback(&self) -> bool {
        net::is_loopback(&self.listen)
    }
}

/// `gateway.state`: where the gateway keeps what must outlive a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    /// An embedded SQLite database file (`sqlite:<path>`), absolute or relative to the
    /// working directory (a relative path in the file was made relative to the config
    /// file's directory already).
    Sqlite(PathBuf),
}

/// The default `gateway.state` database: `$XDG_STATE_HOME/portcullis/portcullis.db` when
/// `XDG_STATE_HOME` is an absolute path, else `$HOME/.local/state/portcullis/portcullis.db`,
/// else `portcullis.db` in the working directory.
pub fn default_state_path() -> PathBuf {
    let var = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let tail = Path::new("portcullis").join("portcullis.db");
    if let Some(state) = var("XDG_STATE_HOME") {
        state.join(tail)
    } else if let Some(home) = var("HOME") {
        home.join(".local").join("state").join(tail)
    } else {
        PathBuf::from("portcullis.db")
    }
}

/// `[audit]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditConfig {
    /// Keep each call's arguments in its audit record (default: no; they may hold secrets).
    pub include_args: bool,
    /// Also write each audit record as a JSON line here.
    pub mirror: Option<AuditMirror>,
}

/// `audit.mirror`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditMirror {
    /// The gateway's standard output (not with `portcullis stdio`, whose stdout is MCP).
    Stdout,
    /// The gateway's standard error.
    Stderr,
    /// A file, appended to (relative paths were made relative to the config's directory).
    File(PathBuf),
}

/// `[limits]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LimitsConfig {
    /// The default rate limit per principal × server × tool, for calls whose deciding rule
    /// has none; `None` is unlimited.
    pub rate: Option<RateSpec>,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// A `tracing` filter directive (`info`, `portcullis=debug,info`), already checked.
    pub level: String,
    /// Line format.
    pub format: LogFormat,
    /// Log file; `None` is stderr. Relative paths are relative to the working directory.
    pub file: Option<PathBuf>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
            format: LogFormat::Text,
            file: None,
        }
    }
}

/// `log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[servers.<name>]`: an upstream MCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The name: `[a-z0-9-]+`, at most 64 characters; also its route, `/mcp/<name>`.
    pub name: String,
    /// How to reach it.
    pub upstream: Upstream,
    /// Per-request upstream timeout.
    pub timeout: Duration,
    /// Protocol version to speak upstream.
    pub protocol: UpstreamProtocol,
    /// `roots`: the directories the server works in (absolute, canonical when they exist).
    /// The gateway answers the server's `roots/list` with them and checks rule `paths`
    /// against them; a sandbox's `write` list defaults to them.
    pub roots: Vec<PathBuf>,
    /// `definitions`: how its tool definitions and instructions are pinned against rug
    /// pulls (see `upstream::definitions`).
    pub definitions: crate::upstream::definitions::DefinitionMode,
    /// `scan`: which description-scan findings are audited and which withhold their tool.
    pub scan: ScanPolicy,
}

/// How an upstream is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// A local process speaking MCP over stdio.
    Stdio(StdioUpstream),
    /// A remote (or local) Streamable HTTP endpoint.
    Http(HttpUpstream),
}

/// A stdio upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StdioUpstream {
    /// argv; never empty. A bare `portcullis` as `command[0]` means the gateway's own
    /// executable (the bundled fixture server), resolved by the launcher, not here.
    pub command: Vec<String>,
    /// Working directory; `None` inherits the gateway's.
    pub cwd: Option<PathBuf>,
    /// Environment: nothing is inherited unless named in `pass`.
    pub env: EnvConfig,
    /// One child per downstream session, or one shared.
    pub instances: Instances,
    /// Ceiling of the restart backoff.
    pub max_backoff: Duration,
    /// `pinning`; `None`: the mode's default (required in `serve`, warn in `stdio`).
    pub pinning: Option<portcullis_sandbox::PinMode>,
    /// The sandbox profile; `None` when the config says `sandbox = "off"`.
    pub sandbox: Option<portcullis_sandbox::Profile>,
}

/// `env = { pass = [...], set = {...} }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvConfig {
    /// Variables copied from the gateway's own environment.
    pub pass: Vec<String>,
    /// Variables set to fixed values.
    pub set: BTreeMap<String, String>,
    /// Variables set to secrets read from the gateway's environment or a file when the
    /// gateway starts (the source, never the value, is in the config).
    pub secrets: BTreeMap<String, portcullis_auth::upstream::SecretSource>,
}

/// What a child gets when its config names no `env.pass`: the same short list the official
/// MCP SDKs (and so desktop hosts) hand their servers, so a server behaves as it did before
/// the gateway. Secrets and tokens in the gateway's environment are not on it.
pub const DEFAULT_ENV_PASS: [&str; 6] = ["HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER"];

impl Default for EnvConfig {
    fn default() -> Self {
        EnvConfig {
            pass: DEFAULT_ENV_PASS.iter().map(|s| s.to_string()).collect(),
            set: BTreeMap::new(),
            secrets: BTreeMap::new(),
        }
    }
}

/// A Streamable HTTP upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUpstream {
    /// The endpoint, normalized.
    pub url: String,
    /// The gateway's own credential for it (never the client's).
    pub credential: Option<portcullis_auth::upstream::CredentialSpec>,
}

/// `servers.<name>.instances`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Instances {
    /// One child process per downstream session: sessions cannot see each other's state.
    #[default]
    PerSession,
    /// One child process for every session.
    Shared,
}

/// `servers.<name>.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpstreamProtocol {
    /// Negotiate the newest version both sides support.
    #[default]
    Auto,
    /// Speak exactly this version.
    Fixed(ProtocolVersion),
}

/// `[virtual.<name>]`: one route joining several servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualConfig {
    /// The name, and route `/mcp/<name>`; never the name of a server.
    pub name: String,
    /// The member servers, in order; at least one, no duplicates.
    pub servers: Vec<String>,
    /// What to do when a member fails.
    pub on_upstream_failure: FailureMode,
}

/// `virtual.<name>.on_upstream_failure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureMode {
    /// Leave the failed member's tools out and answer with the rest.
    #[default]
    Omit,
    /// Fail the whole request.
    Fail,
}

impl Config {
    /// Reads and parses a config file. A file that cannot be read or is not UTF-8 is a
    /// diagnostic too (line 0), so callers handle one error type.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path)
            .map_err(|e| diagnostic::file_error(&file, format!("cannot read config: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            diagnostic::file_error(&file, format!("config is not valid UTF-8: {e}"))
        })?;
        // Some Windows editors start UTF-8 files with a byte-order mark; it is not content.
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        Config::parse(text, ConfigSource::File(path.to_path_buf()))
    }

    /// Parses config text; `source` names it in diagnostics and rule origins.
    pub fn parse(text: &str, source: ConfigSource) -> Result<Config, ConfigError> {
        let file = source.to_string();
        let mut issues = diagnostic::Issues::default();
        let config = raw::parse_document(text, &mut issues)
            .map(|raw| validate::build(raw, source, &file, text, &mut issues));
        match config {
            Some(config) if issues.is_empty() => Ok(config),
            _ => Err(issues.into_error(&file, text)),
        }
    }

    /// The built-in quickstart config. It is compiled in and covered by a unit test, so it
    /// cannot fail at run time.
    pub fn quickstart() -> Config {
        match Config::parse(QUICKSTART, ConfigSource::Embedded("quickstart")) {
            Ok(config) => config,
            // Unreachable: `tests::quickstart_parses` proves the embedded text is valid.
            Err(e) => panic!("the embedded quickstart config is invalid:\n{e}"),
        }
    }

    /// Settings that loosen a secure default or look like mistakes, for `portcullis check`
    /// and the startup log. Warnings never stop the gateway.
    pub fn warnings(&self) -> Vec<String> {
        warnings::collect(self)
    }

    /// The effective policy, server by server and kind by kind, for `portcullis check`.
    pub fn render_effective_policy(&self) -> String {
        render::effective_policy(self)
    }

    /// What this kernel lets the sandbox do, and for each local server the layers it gets,
    /// what is bound into it and whether it would start, for `portcullis check`.
    pub fn render_sandbox(&self) -> String {
        sandbox_report::section(self)
    }
}
