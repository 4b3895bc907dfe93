//! One remote server with `credential = { oauth = … }`: what discovery found for it, the
//! gateway's registration at its authorization server, and the per-user state (refreshes in
//! flight, step-ups).
//!
//! Discovery runs on the server's first `401` (its challenge names the metadata) and is kept
//! for the life of the process; a grant is looked up under the issuer discovery found, so a
//! server that moves to another authorization server never receives the old one's tokens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use portcullis_auth::client::OAuthClientError;
use portcullis_auth::client::{
    BearerChallenge, ClientAuth, ClientIdentity, DEFAULT_STEP_UP_LIMIT, Discovered, StepUp,
    discover,
};
use portcullis_auth::resource::{DiscoveryConfig, FetchError};
use portcullis_auth::secret::Secret;
use portcullis_auth::upstream::{PreRegisteredAuth, SecretSource, UserOAuthSpec};
use portcullis_egress::{EgressClient, EgressError};

/// A step-up is forgotten this long after its last attempt: what bounds a server that asks
/// for more scope after every authorization.
const STEP_UP_MEMORY: Duration = Duration::from_secs(600);

pub struct ServerAuthorization {
    pub name: String,
    pub url: String,
    pub spec: UserOAuthSpec,
    pub pre_registered: Option<ClientIdentity>,
    discovered: RwLock<Option<Arc<Discovered>>>,
    /// One discovery at a time; concurrent 401s wait for it.
    discovery: tokio::sync::Mutex<()>,
    /// One refresh per principal at a time (rotation makes a second one fail).
    refreshes: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// One registration at a time (dynamic registration creates a client per call).
    pub(super) registration: tokio::sync::Mutex<()>,
    step_ups: Mutex<HashMap<String, (StepUp, Instant)>>,
}

impl ServerAuthorization {
    /// Reads the pre-registered client's secret now: a missing one stops the start.
    pub fn new(name: &str, url: &str, spec: &UserOAuthSpec) -> Result<Self, String> {
        let pre_registered = match &spec.client_id {
            None => None,
            Some(id) => {
                let secret = spec.client_secret.as_ref().map(read_secret).transpose()?;
                let auth = match (spec.auth(), secret) {
                    (PreRegisteredAuth::None, _) | (_, None) => ClientAuth::None,
                    (PreRegisteredAuth::ClientSecretBasic, Some(s)) => {
                        ClientAuth::ClientSecretBasic(s)
                    }
                    (PreRegisteredAuth::ClientSecretPost, Some(s)) => {
                        ClientAuth::ClientSecretPost(s)
                    }
                };
                Some(ClientIdentity {
                    client_id: id.clone(),
                    auth,
                })
            }
        };
        Ok(ServerAuthorization {
            name: name.to_owned(),
            url: url.to_owned(),
            spec: spec.clone(),
            pre_registered,
            discovered: RwLock::new(None),
            discovery: tokio::sync::Mutex::new(()),
            refreshes: Mutex::new(HashMap::new()),
            registration: tokio::sync::Mutex::new(()),
            step_ups: Mutex::new(HashMap::new()),
        })
    }

    /// What discovery found, if it ran.
    pub fn discovered(&self) -> Option<Arc<Discovered>> {
        self.discovered
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Runs discovery after a `401` (once: later callers get the first result), with the
    /// challenge's `resource_metadata` when it named one.
    pub async fn discover(
        &self,
        egress: &EgressClient,
        challenge: Option<&BearerChallenge>,
    ) -> Result<Arc<Discovered>, String> {
        let _one = self.discovery.lock().await;
        if let Some(d) = self.discovered() {
            return Ok(d);
        }
        let found = discover(egress, &self.url, challenge, &DiscoveryConfig::default())
            .await
            .map_err(|e| format!("OAuth discovery for {:?} failed: {}", self.name, said(&e)))?;
        let found = Arc::new(found);
        *self.discovered.write().unwrap_or_else(|p| p.into_inner()) = Some(found.clone());
        Ok(found)
    }

    /// The lock that serializes `principal`'s refreshes.
    pub fn refresh_lock(&self, principal: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.refreshes.lock().unwrap_or_else(|p| p.into_inner());
        if locks.len() > 10_000 {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(principal.to_owned()).or_default().clone()
    }

    /// The scope to ask `principal` for after a `403 insufficient_scope`: what was granted
    /// (or asked) plus what the challenge needs; an error past the step-up limit, or when
    /// the challenge asks for nothing new (a server that would loop).
    pub fn step_up(
        &self,
        principal: &str,
        current: Option<&str>,
        challenge: &BearerChallenge,
    ) -> Result<String, String> {
        let mut steps = self.step_ups.lock().unwrap_or_else(|p| p.into_inner());
        steps.retain(|_, (_, at)| at.elapsed() < STEP_UP_MEMORY);
        let (step, at) = steps
            .entry(principal.to_owned())
            .or_insert_with(|| (StepUp::new(current, DEFAULT_STEP_UP_LIMIT), Instant::now()));
        *at = Instant::now();
        step.on_insufficient_scope(challenge).map_err(|e| {
            format!(
                "server {:?} still needs more scope after {} authorizations: {e}",
                self.name,
                step.attempts()
            )
        })
    }
}

/// A discovery failure as the caller may read it: an egress refusal names the URL and the
/// rule, not the address a name resolved to (that is for the log and the audit).
fn said(e: &OAuthClientError) -> String {
    if let OAuthClientError::Fetch { source, .. } = e
        && let FetchError::Egress(EgressError::Refused(refusal)) = &**source
    {
        return crate::upstream::http::refused(refusal);
    }
    e.to_string()
}

fn read_secret(source: &SecretSource) -> Result<Secret, String> {
    match source {
        SecretSource::Env(name) => Secret::from_env(name),
        SecretSource::File(path) => Secret::from_file(path),
    }
    .map_err(|e| format!("credential: {e}"))
}
