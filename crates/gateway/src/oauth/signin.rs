//! Browser sign-in at the `[auth]` issuer (`auth.sign_in`), so that the consent page knows
//! who opened a connect link.
//!
//! MCP (2025-11-25, URL elicitation) requires a server to verify that the person opening an
//! elicitation's URL is the user it was made for: otherwise Mallory triggers a link under his
//! own principal, sends it to Alice, and Alice's account at the upstream ends up behind
//! Mallory's principal. Behind `[auth]` every principal is `issuer|sub` of a token from the
//! `[auth]` issuer; so the page asks the person to sign in there (OpenID Connect,
//! authorization code with PKCE, scope `openid`), validates the `id_token` (signature by the
//! issuer's keys, `iss`, `aud` = this client, `exp`), and compares `issuer|sub` with the
//! link's principal. A sign-in lasts 10 minutes in this browser (a `__Host-` cookie naming a
//! server-side record), and is never a credential for anything else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_auth::client::{
    AuthorizationServer, ClientAuth, ClientIdentity, DEFAULT_MAX_PENDING, PendingAuthorizations,
    discover_authorization_server, exchange_code_for_identity, finish_authorization,
    start_authorization,
};
use portcullis_auth::resource::{
    DiscoveryConfig, IssuerConfig, ResourceServerConfig, SystemClock, TokenValidator,
};
use portcullis_auth::secret::Secret;
use portcullis_egress::EgressClient;
use portcullis_policy::Principal;

use super::ticket::random_id;
use crate::config::Config;

/// How long a sign-in counts in a browser.
const SIGNED_IN_FOR: Duration = Duration::from_secs(600);
/// How long a sign-in may take at the issuer.
const SIGN_IN_LIFETIME: Duration = Duration::from_secs(600);
/// The most sign-ins kept (expired ones go first).
const MAX_SIGNED_IN: usize = 10_000;

pub struct SignIn {
    issuer: String,
    client: ClientIdentity,
    validator: TokenValidator,
    /// `auth.audience`, when set: the `resource` of the sign-in (else a route's URL).
    audience: Option<String>,
    server: tokio::sync::OnceCell<AuthorizationServer>,
    pending: PendingAuthorizations,
    signed_in: Mutex<HashMap<String, (String, Instant)>>,
}

impl SignIn {
    /// `None` without `[auth]` or without `auth.sign_in`. Reads the client secret now.
    pub fn from_config(config: &Config, egress: EgressClient) -> Result<Option<Self>, String> {
        let Some(auth) = &config.auth else {
            return Ok(None);
        };
        let Some(sign_in) = &auth.sign_in else {
            return Ok(None);
        };
        let Some(issuer) = auth.issuers.first() else {
            return Ok(None);
        };
        let secret = match &sign_in.secret_env {
            Some(name) => {
                Some(Secret::from_env(name).map_err(|e| format!("auth.sign_in.secret_env: {e}"))?)
            }
            None => None,
        };
        let client = ClientIdentity {
            client_id: sign_in.client_id.clone(),
            auth: secret.map_or(ClientAuth::None, ClientAuth::ClientSecretBasic),
        };
        let mut rs = ResourceServerConfig::new(vec![IssuerConfig {
            issuer: issuer.clone(),
            jwks_uri: auth.jwks_uri.clone(),
        }]);
        rs.algorithms = auth.algorithms.clone();
        rs.leeway = auth.leeway;
        let validator =
            TokenValidator::new(rs, egress).map_err(|e| format!("auth.sign_in: {e}"))?;
        Ok(Some(SignIn {
            issuer: issuer.clone(),
            client,
            validator,
            audience: auth.audience.clone(),
            server: tokio::sync::OnceCell::new(),
            pending: PendingAuthorizations::new(
                SIGN_IN_LIFETIME,
                DEFAULT_MAX_PENDING,
                Arc::new(SystemClock::default()),
            ),
            signed_in: Mutex::new(HashMap::new()),
        }))
    }

    async fn server(&self, egress: &EgressClient) -> Result<&AuthorizationServer, String> {
        self.server
            .get_or_try_init(|| async {
                discover_authorization_server(egress, &self.issuer, &DiscoveryConfig::default())
                    .await
                    .map_err(|e| format!("the sign-in issuer: {e}"))
            })
            .await
    }

    /// The authorization request that signs the person in, coming back to `redirect_uri`
    /// with `then` (a connect link's id) remembered; and its `state`.
    pub async fn start(
        &self,
        egress: &EgressClient,
        redirect_uri: &str,
        resource: &str,
        then: &str,
    ) -> Result<(String, String), String> {
        let server = self.server(egress).await?;
        let resource = self.audience.as_deref().unwrap_or(resource);
        let started = start_authorization(
            &self.pending,
            server,
            &self.client.client_id,
            redirect_uri,
            resource,
            Some("openid"),
            then,
        )
        .map_err(|e| e.to_string())?;
        Ok((started.url, started.state))
    }

    /// The callback: redeems the code, validates the `id_token`, and returns who signed in
    /// (a principal's display form) and the link id remembered at the start.
    pub async fn finish(
        &self,
        egress: &EgressClient,
        query: &str,
    ) -> Result<(String, String), String> {
        let grant = finish_authorization(&self.pending, query).map_err(|e| e.to_string())?;
        let then = grant.pending.principal.clone();
        let (_, id_token) = exchange_code_for_identity(egress, &self.client, grant)
            .await
            .map_err(|e| e.to_string())?;
        let id_token = id_token.ok_or("the issuer sent no id_token (is `openid` allowed?)")?;
        let verified = self
            .validator
            .validate(id_token.expose(), &self.client.client_id)
            .await
            .map_err(|e| format!("the id_token was refused: {e}"))?;
        let who = Principal::oauth(verified.issuer, verified.subject).to_string();
        Ok((who, then))
    }

    /// Remembers that this browser signed in as `principal`; the cookie value naming it.
    pub fn remember(&self, principal: String) -> String {
        let mut signed_in = self.signed_in.lock().unwrap_or_else(|p| p.into_inner());
        if signed_in.len() >= MAX_SIGNED_IN {
            signed_in.retain(|_, (_, at)| at.elapsed() < SIGNED_IN_FOR);
            if signed_in.len() >= MAX_SIGNED_IN {
                signed_in.clear();
            }
        }
        let id = random_id();
        signed_in.insert(id.clone(), (principal, Instant::now()));
        id
    }

    /// Who signed in with this cookie value, while it lasts.
    pub fn who(&self, cookie: &str) -> Option<String> {
        let signed_in = self.signed_in.lock().unwrap_or_else(|p| p.into_inner());
        signed_in
            .get(cookie)
            .filter(|(_, at)| at.elapsed() < SIGNED_IN_FOR)
            .map(|(p, _)| p.clone())
    }
}
