//! A place for one upstream connection: started on first need, restarted after a crash.
//!
//! Restarts back off: the first restart after a crash is immediate (a server that died once
//! should not cost the next caller anything), later ones wait 250 ms, 500 ms, … up to the
//! server's `restart.max_backoff`. A server that stayed up for a minute starts the count
//! again. While a slot waits, calls fail at once with a clear error rather than queueing.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use portcullis_auth::secret::Secret;
use portcullis_auth::upstream::{SecretSource, UpstreamCredential};
use portcullis_egress::{EgressClient, Uri};

use super::confine::Confinement;
use super::conn::{ConnParams, UpstreamListener};
use super::handshake::{ClientCapsForUpstream, Era, handshake};
use super::pinning::LaunchGuard;
use super::stdio::StdioLaunch;
use super::{UpstreamConn, UpstreamError, http, stdio};
use crate::config::{RunMode, ServerConfig, Upstream, UpstreamProtocol};

/// A server that ran this long is considered healthy again after a crash.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// Everything needed to connect to one configured server, resolved once from the config.
#[derive(Debug, Clone)]
pub struct UpstreamSpec {
    pub server: Arc<str>,
    pub target: Target,
    pub timeout: Duration,
    pub protocol: UpstreamProtocol,
    pub max_backoff: Duration,
    pub max_message_bytes: usize,
    /// The launch check of a stdio server (set by the gateway, which holds the store);
    /// `None` for HTTP servers and with `pinning = "off"`.
    pub launch_guard: Option<Arc<LaunchGuard>>,
    /// The definition pins of its tools and instructions (set by the gateway); `None` with
    /// `definitions = "off"`.
    pub definitions: Option<Arc<super::definitions::DefinitionGuard>>,
}

#[derive(Debug, Clone)]
pub enum Target {
    Stdio(StdioLaunch),
    Http(HttpTarget),
}

/// A remote server: its endpoint, and how the gateway authenticates there.
#[derive(Debug, Clone)]
pub struct HttpTarget {
    pub url: Uri,
    /// The gateway's own credential (set by the gateway once its outbound client exists:
    /// token grants need it).
    pub credential: Option<Arc<UpstreamCredential>>,
    /// Per-user OAuth (`credential = { oauth }`): each connection presents its user's grant.
    pub user_auth: Option<Arc<crate::oauth::UserAuthorization>>,
}

impl UpstreamSpec {
    pub fn from_config(
        server: &ServerConfig,
        max_message_bytes: usize,
        mode: RunMode,
    ) -> Result<Self, String> {
        let (target, max_backoff) = match &server.upstream {
            Upstream::Stdio(s) => {
                let (program, args) = s.command.split_first().ok_or("command is empty")?;
                let program = resolve_program(program)?;
                let env = child_env(&s.env.pass, &s.env.set);
                let confinement = Confinement::plan(server, s, &program, &env, mode);
                let launch = StdioLaunch {
                    program,
                    args: args.to_vec(),
                    cwd: s.cwd.clone(),
                    env,
                    secrets: child_secrets(&s.env.secrets)?,
                    confinement,
                    egress: Default::default(),
                };
                (Target::Stdio(launch), s.max_backoff)
            }
            Upstream::Http(h) => {
                let url = EgressClient::parse_url(&h.url).map_err(|e| e.to_string())?;
                let target = HttpTarget {
                    url,
                    credential: None,
                    user_auth: None,
                };
                (Target::Http(target), Duration::from_secs(30))
            }
        };
        Ok(UpstreamSpec {
            server: Arc::from(server.name.as_str()),
            target,
            timeout: server.timeout,
            protocol: server.protocol,
            max_backoff,
            max_message_bytes,
            launch_guard: None,
            definitions: None,
        })
    }

    pub fn is_stdio(&self) -> bool {
        matches!(self.target, Target::Stdio(_))
    }
}

/// `portcullis` as a command means this very binary, so the quickstart's bundled fixture
/// server runs without anything installed; any other name is looked up on the PATH by the
/// operating system when the child starts.
pub(crate) fn resolve_program(program: &str) -> Result<PathBuf, String> {
    if program == crate::mcp::GATEWAY_NAME {
        return std::env::current_exe()
            .map_err(|e| format!("cannot locate the portcullis executable: {e}"));
    }
    Ok(PathBuf::from(program))
}

/// The child's whole environment: the named variables taken from the gateway's, then the
/// fixed ones. Nothing else is inherited.
pub(crate) fn child_env(
    pass: &[String],
    set: &std::collections::BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = pass
        .iter()
        .filter_map(|name| std::env::var(name).ok().map(|v| (name.clone(), v)))
        .collect();
    for (k, v) in set {
        env.retain(|(name, _)| name != k);
        env.push((k.clone(), v.clone()));
    }
    env
}

/// `env.secrets`, read now: a missing variable or file stops the gateway at startup, with
/// an error that names it (never the value).
fn child_secrets(
    secrets: &std::collections::BTreeMap<String, SecretSource>,
) -> Result<Vec<(String, Secret)>, String> {
    secrets
        .iter()
        .map(|(name, source)| {
            let value = match source {
                SecretSource::Env(var) => Secret::from_env(var),
                SecretSource::File(path) => Secret::from_file(path),
            };
            value
                .map(|v| (name.clone(), v))
                .map_err(|e| format!("env.secrets.{name}: {e}"))
        })
        .collect()
}

enum SlotState {
    Idle,
    Ready(Arc<UpstreamConn>),
    Failed {
        at: Instant,
        failures: u32,
        reason: String,
    },
}

pub struct UpstreamSlot {
    spec: Arc<UpstreamSpec>,
    egress: EgressClient,
    /// The session that owns this slot's connection; None for a connection shared by all.
    owner: Option<Weak<dyn UpstreamListener>>,
    caps: ClientCapsForUpstream,
    /// The era to try first with `protocol = "auto"`: the era of the clients it serves.
    prefer: Era,
    state: tokio::sync::Mutex<SlotState>,
    failures: std::sync::atomic::AtomicU32,
    /// Whom the connection acts for (per-user OAuth); `None` for one shared by all.
    user: Option<crate::oauth::User>,
}

impl UpstreamSlot {
    pub fn new(
        spec: Arc<UpstreamSpec>,
        egress: EgressClient,
        owner: Option<Weak<dyn UpstreamListener>>,
        caps: ClientCapsForUpstream,
        prefer: Era,
    ) -> Self {
        UpstreamSlot {
            spec,
            egress,
            owner,
            caps,
            prefer,
            state: tokio::sync::Mutex::new(SlotState::Idle),
            failures: std::sync::atomic::AtomicU32::new(0),
            user: None,
        }
    }

    /// The slot of a connection that acts for `user`.
    pub fn for_user(mut self, user: crate::oauth::User) -> Self {
        self.user = Some(user);
        self
    }

    pub fn server(&self) -> &str {
        &self.spec.server
    }

    pub fn spec(&self) -> &UpstreamSpec {
        &self.spec
    }

    /// The live connection, starting (or restarting) it if needed.
    pub async fn get(&self) -> Result<Arc<UpstreamConn>, UpstreamError> {
        use std::sync::atomic::Ordering::Relaxed;
        let mut state = self.state.lock().await;
        if let SlotState::Ready(conn) = &*state {
            if !conn.is_closed() {
                return Ok(conn.clone());
            }
            let failures = if conn.started_at().elapsed() > HEALTHY_AFTER {
                1
            } else {
                self.failures.load(Relaxed) + 1
            };
            self.failures.store(failures, Relaxed);
            let reason = conn.closed_reason().unwrap_or_else(|| "closed".into());
            *state = SlotState::Failed {
                at: Instant::now(),
                failures,
                reason,
            };
        }
        if let SlotState::Failed {
            at,
            failures,
            reason,
        } = &*state
        {
            let wait = backoff(*failures, self.spec.max_backoff);
            let waited = at.elapsed();
            if waited < wait {
                return Err(UpstreamError::Unavailable {
                    server: self.spec.server.to_string(),
                    reason: format!("{reason}; next start in {}ms", (wait - waited).as_millis()),
                });
            }
        }
        match self.start().await {
            Ok(conn) => {
                *state = SlotState::Ready(conn.clone());
                Ok(conn)
            }
            // A refused launch is no crash: it is checked again at the next call, without
            // backoff, so that a `portcullis trust` takes effect at once. Likewise a server
            // waiting for its user's authorization: the next call after it is given works.
            Err(
                e @ (UpstreamError::LaunchRefused { .. } | UpstreamError::AuthorizationRequired(_)),
            ) => {
                *state = SlotState::Idle;
                Err(e)
            }
            Err(e) => {
                let failures = self.failures.load(Relaxed) + 1;
                self.failures.store(failures, Relaxed);
                *state = SlotState::Failed {
                    at: Instant::now(),
                    failures,
                    reason: e.to_string(),
                };
                Err(e)
            }
        }
    }

    /// The connection if it is up, without starting anything.
    pub fn current(&self) -> Option<Arc<UpstreamConn>> {
        match &*self.state.try_lock().ok()? {
            SlotState::Ready(conn) if !conn.is_closed() => Some(conn.clone()),
            _ => None,
        }
    }

    async fn start(&self) -> Result<Arc<UpstreamConn>, UpstreamError> {
        let params = ConnParams {
            server: self.spec.server.clone(),
            shared: self.owner.is_none(),
            owner: self.owner.clone(),
            timeout: self.spec.timeout,
            max_message_bytes: self.spec.max_message_bytes,
        };
        let conn = match &self.spec.target {
            Target::Stdio(launch) => {
                if let Some(guard) = &self.spec.launch_guard {
                    guard.check().await?;
                }
                stdio::spawn(launch, params)?
            }
            Target::Http(target) => {
                http::connect(self.egress.clone(), target, self.user.clone(), params)
            }
        };
        if let Err(e) = handshake(&conn, self.spec.protocol, &self.caps, self.prefer).await {
            conn.close(&format!("handshake failed: {e}"));
            return Err(e);
        }
        Ok(conn)
    }

    /// Ends the connection (the session that owned it is over).
    pub async fn shutdown(&self) {
        let mut state = self.state.lock().await;
        if let SlotState::Ready(conn) = &*state {
            conn.close("the session ended");
        }
        *state = SlotState::Idle;
    }
}

fn backoff(failures: u32, max: Duration) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    let exp = (failures - 2).min(16);
    (Duration::from_millis(250) * 2u32.pow(exp)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_restart_is_immediate_then_backoff_grows_to_the_ceiling() {
        let max = Duration::from_secs(30);
        assert_eq!(backoff(1, max), Duration::ZERO);
        assert_eq!(backoff(2, max), Duration::from_millis(250));
        assert_eq!(backoff(3, max), Duration::from_millis(500));
        assert_eq!(backoff(40, max), max);
    }

    #[test]
    fn child_environment_holds_only_what_is_named() {
        let mut set = std::collections::BTreeMap::new();
        set.insert("FIXED".to_owned(), "1".to_owned());
        let env = child_env(
            &["PATH".to_owned(), "PORTCULLIS_SURELY_UNSET".to_owned()],
            &set,
        );
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert!(names.contains(&"FIXED"));
        assert!(!names.contains(&"PORTCULLIS_SURELY_UNSET"));
        assert!(names.iter().all(|n| *n == "PATH" || *n == "FIXED"));
    }
}
