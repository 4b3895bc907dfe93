//! The gateway as an OAuth client of remote MCP servers, per user (`credential = { oauth }`).
//!
//! A remote server that wants each user's own authorization answers the gateway's request
//! with `401`. The gateway then discovers the server's authorization server, and asks the
//! user — through the MCP client — to open the gateway's own page `/oauth/connect/<id>`
//! (a URL-mode elicitation, MCP 2025-11-25, error `-32042`). That page names the MCP client,
//! the server, the authorization server, the scopes and the redirect URI, and sends the
//! browser to the authorization server only after the person approves (the confused-deputy
//! rule of MCP authorization: a proxy with its own client id must obtain each user's consent
//! for each client first). The callback redeems the code; the tokens are stored encrypted,
//! per principal, server and issuer, and never leave the gateway except towards that server.
//!
//! - [`ticket`]: the pending connect links, an explicit state machine.
//! - [`server`]: one server's discovery, registration and per-user refresh/step-up state.
//! - [`pages`]: the consent page, the callback and the client metadata document; [`web`]:
//!   their HTML, headers, cookies and tags.
//! - [`vault`]: the grants, encrypted at rest in the state store; [`grants`]: the copy in
//!   memory the request path reads.

pub mod completion;
pub mod grants;
pub mod identity;
pub mod pages;
pub mod server;
pub mod signin;
pub mod ticket;
pub mod vault;
pub mod web;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use portcullis_auth::client::{
    BearerChallenge, ClientIdentity, DEFAULT_MAX_PENDING, DEFAULT_STATE_LIFETIME, Discovered,
    PendingAuthorizations, StoredGrant, initial_scope, refresh,
};
use portcullis_auth::resource::SystemClock;
use portcullis_auth::upstream::CredentialSpec;
use portcullis_egress::{EgressClient, HeaderValue};

use self::grants::Grants;
use self::server::ServerAuthorization;
use self::ticket::{Ticket, Tickets};
use self::vault::GrantVault;
use crate::audit::Audit;
use crate::config::{Config, Upstream};

/// A token this close to its expiry is refreshed before use.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// Who a request to an upstream is for.
#[derive(Debug, Clone)]
pub struct User {
    /// The principal's display form: the key of its grants.
    pub principal: String,
    /// The MCP client's OAuth client id, when the caller authenticated with a token.
    pub client: Option<String>,
}

/// Why a request cannot be sent with the user's authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizationNeeded {
    /// The user must open `url` (the consent page) to connect the server.
    Connect {
        server: String,
        url: String,
        elicitation_id: String,
        message: String,
    },
    /// Nothing the user can do here (discovery failed, step-up limit, no page to offer).
    Failed { server: String, reason: String },
}

impl AuthorizationNeeded {
    pub fn server(&self) -> &str {
        match self {
            AuthorizationNeeded::Connect { server, .. }
            | AuthorizationNeeded::Failed { server, .. } => server,
        }
    }
}

/// Every server with per-user OAuth, and the state their flows share.
pub struct UserAuthorization {
    servers: HashMap<String, Arc<ServerAuthorization>>,
    pub(crate) tickets: Tickets,
    pub(crate) pending: PendingAuthorizations,
    /// The sessions waiting to hear that a URL elicitation completed.
    pub completions: completion::CompletionWatchers,
    pub(crate) grants: Grants,
    pub(crate) egress: EgressClient,
    /// Where the gateway's pages are, e.g. `https://gw.example.com` (set once the listener
    /// is bound: `gateway.public_url`, else the bound address).
    base: OnceLock<String>,
    /// Each route's name and servers (for the `resource` of a sign-in).
    routes: Vec<(String, Vec<String>)>,
    /// `gateway.client_metadata_url`, when the operator publishes the document elsewhere.
    client_metadata_url: Option<String>,
    /// Signs the pages' cookies and CSRF tokens; new at each start (links live 10 minutes).
    pub(crate) cookie_key: [u8; 32],
    pub(crate) audit: Audit,
    /// Browser sign-in at the `[auth]` issuer (`auth.sign_in`): who opened a link.
    pub(crate) sign_in: Option<signin::SignIn>,
}

impl UserAuthorization {
    /// `None` when no server uses `credential = { oauth }`.
    pub fn from_config(
        config: &Config,
        egress: EgressClient,
        audit: Audit,
    ) -> Result<Option<Self>, (String, String)> {
        let mut servers = HashMap::new();
        for (name, server) in &config.servers {
            if let Upstream::Http(h) = &server.upstream
                && let Some(CredentialSpec::Oauth(spec)) = &h.credential
            {
                let s =
                    ServerAuthorization::new(name, &h.url, spec).map_err(|e| (name.clone(), e))?;
                servers.insert(name.clone(), Arc::new(s));
            }
        }
        if servers.is_empty() {
            return Ok(None);
        }
        let sign_in = signin::SignIn::from_config(config, egress.clone())
            .map_err(|e| ("auth".to_owned(), e))?;
        let vault = GrantVault::open_for(config, audit.store().clone())
            .map_err(|e| ("oauth".to_owned(), format!("the grant vault: {e}")))?;
        let base = OnceLock::new();
        if let Some(url) = &config.gateway.public_url {
            let _ = base.set(url.clone());
        }
        let mut cookie_key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut cookie_key);
        Ok(Some(UserAuthorization {
            servers,
            tickets: Tickets::default(),
            completions: completion::CompletionWatchers::default(),
            pending: PendingAuthorizations::new(
                DEFAULT_STATE_LIFETIME,
                DEFAULT_MAX_PENDING,
                Arc::new(SystemClock::default()),
            ),
            grants: Grants::new(vault),
            egress,
            base,
            client_metadata_url: config.gateway.client_metadata_url.clone(),
            routes: crate::route::routes(config)
                .iter()
                .map(|r| {
                    (
                        r.name.to_string(),
                        r.members.iter().map(|m| m.to_string()).collect(),
                    )
                })
                .collect(),
            cookie_key,
            audit,
            sign_in,
        }))
    }

    pub fn handles(&self, server: &str) -> bool {
        self.servers.contains_key(server)
    }

    pub(crate) fn server(&self, name: &str) -> Option<&Arc<ServerAuthorization>> {
        self.servers.get(name)
    }

    /// Where the pages are served: `gateway.public_url`, else the address `serve` bound
    /// (called by `serve` once it listens; the first value stays).
    pub fn set_base(&self, base: String) {
        let _ = self.base.set(base.trim_end_matches('/').to_owned());
    }

    pub fn base(&self) -> Option<&str> {
        self.base.get().map(String::as_str)
    }

    /// The `resource` a sign-in names: the URL of a route serving `server` (a resource the
    /// `[auth]` issuer knows, since clients get tokens for it), unless `auth.audience` says.
    pub(crate) fn resource_of(&self, server: &str) -> String {
        let route = self
            .routes
            .iter()
            .find(|(_, members)| members.iter().any(|m| m == server))
            .map_or(server, |(name, _)| name.as_str());
        format!("{}/mcp/{route}", self.base().unwrap_or_default())
    }

    /// The exact redirect URI registered and sent.
    pub fn redirect_uri(&self) -> Option<String> {
        self.base().map(|b| format!("{b}/oauth/callback"))
    }

    /// The URL of the gateway's Client ID Metadata Document, its `client_id`:
    /// `gateway.client_metadata_url`, else the gateway's own copy when it is reached over
    /// `https` (the draft requires it; an authorization server fetches it).
    pub fn metadata_document_url(&self) -> Option<String> {
        if let Some(url) = &self.client_metadata_url {
            return Some(url.clone());
        }
        self.base()
            .filter(|b| b.starts_with("https://"))
            .map(|b| format!("{b}/oauth/client-metadata.json"))
    }

    /// The `Authorization` header for `user` at `server`: its stored access token,
    /// refreshed first when it is about to expire. `None` when the user has not connected
    /// (or discovery has not run yet: the server's `401` will start it).
    pub async fn authorization(&self, server: &str, user: &User) -> Option<HeaderValue> {
        let s = self.servers.get(server)?;
        let found = s.discovered()?;
        let grant = self.load_grant(s, &found, user, false)?;
        let grant = if expiring(&grant) && grant.tokens.refresh_token.is_some() {
            // A failed refresh leaves the token it meant to replace, while that is valid.
            match self.refresh_grant(s, &found, user, false).await {
                Ok(fresh) => fresh,
                Err(_) => grant,
            }
        } else {
            grant
        };
        if expired(&grant) {
            return None;
        }
        grant.tokens.access_token.bearer_header_value().ok()
    }

    /// The server answered `401`. `Ok(())` means "send again": a grant exists now (found
    /// after discovery, or refreshed because the one sent was refused); otherwise the user
    /// has to connect.
    pub async fn unauthorized(
        &self,
        server: &str,
        user: &User,
        challenge: Option<&BearerChallenge>,
        sent_token: bool,
    ) -> Result<(), AuthorizationNeeded> {
        let failed = |reason: String| AuthorizationNeeded::Failed {
            server: server.to_owned(),
            reason,
        };
        let Some(s) = self.servers.get(server) else {
            return Err(failed("no per-user OAuth for this server".into()));
        };
        let found = s.discover(&self.egress, challenge).await.map_err(failed)?;
        let stored = self.load_grant(s, &found, user, false);
        if !sent_token && stored.as_ref().is_some_and(|g| !expired(g)) {
            // Discovery had not run when the request went out: now it carries the grant.
            return Ok(());
        }
        if sent_token || stored.is_some() {
            // The token was refused, or has expired without a refresh: a refresh may still
            // work; otherwise forget the grant, so the user is offered a link.
            if self.refresh_grant(s, &found, user, true).await.is_ok() {
                return Ok(());
            }
            if let Err(e) = self.grants.forget(server, Some(&user.principal)) {
                tracing::warn!(server, error = %e, "could not remove a refused grant");
            }
        }
        let scope = s
            .spec
            .scope
            .clone()
            .or_else(|| initial_scope(challenge, &found.resource));
        Err(self.offer(server, user, scope))
    }

    /// The server answered `403 insufficient_scope`: the user must authorize again, for
    /// the union of what was granted and what is needed, within the step-up limit.
    pub fn insufficient_scope(
        &self,
        server: &str,
        user: &User,
        challenge: &BearerChallenge,
    ) -> AuthorizationNeeded {
        let failed = |reason: String| AuthorizationNeeded::Failed {
            server: server.to_owned(),
            reason,
        };
        let Some(s) = self.servers.get(server) else {
            return failed("no per-user OAuth for this server".into());
        };
        let current = s
            .discovered()
            .and_then(|found| self.load_grant(s, &found, user, false))
            .and_then(|g| g.tokens.scope.clone());
        match s.step_up(&user.principal, current.as_deref(), challenge) {
            Ok(scope) => self.offer(server, user, Some(scope)),
            Err(reason) => failed(reason),
        }
    }

    /// A connect link for `user`, or why there cannot be one.
    fn offer(&self, server: &str, user: &User, scope: Option<String>) -> AuthorizationNeeded {
        let Some(base) = self.base() else {
            return AuthorizationNeeded::Failed {
                server: server.to_owned(),
                reason: "it needs your authorization, which is given on the gateway's web page: \
                         run the gateway with `portcullis serve` (or set gateway.public_url)"
                    .into(),
            };
        };
        let ticket = Ticket {
            server: server.to_owned(),
            principal: user.principal.clone(),
            client: user.client.clone(),
            scope,
            elicitation_id: String::new(),
            step: ticket::Step::Offered,
        };
        match self.tickets.offer(ticket) {
            Ok(id) => {
                let elicitation_id = self
                    .tickets
                    .get(&id)
                    .map(|t| t.elicitation_id)
                    .unwrap_or_default();
                let url = format!("{base}/oauth/connect/{id}");
                self.note(&user.principal, server, "offered", None, String::new());
                AuthorizationNeeded::Connect {
                    server: server.to_owned(),
                    message: format!(
                        "Server {server:?} needs your authorization. Open {url} to connect it \
                         (the link works for 10 minutes), then try again."
                    ),
                    url,
                    elicitation_id,
                }
            }
            Err(e) => AuthorizationNeeded::Failed {
                server: server.to_owned(),
                reason: e.to_string(),
            },
        }
    }

    /// `user`'s grant at the issuer discovery found; a grant that does not open (another
    /// key, a damaged row) counts as none, and is logged.
    fn load_grant(
        &self,
        s: &ServerAuthorization,
        found: &Discovered,
        user: &User,
        fresh: bool,
    ) -> Option<StoredGrant> {
        match self
            .grants
            .get(&user.principal, &s.name, found.server.issuer(), fresh)
        {
            Ok(grant) => grant.filter(|g| g.resource == found.resource.resource),
            Err(e) => {
                tracing::warn!(server = %s.name, error = %e, "a stored grant could not be read; the user must connect again");
                None
            }
        }
    }

    /// Refreshes `user`'s grant (one refresh at a time per user: rotation makes a second
    /// concurrent one fail). `force`: even if another caller refreshed meanwhile (the
    /// server refused the token).
    async fn refresh_grant(
        &self,
        s: &ServerAuthorization,
        found: &Discovered,
        user: &User,
        force: bool,
    ) -> Result<StoredGrant, String> {
        let lock = s.refresh_lock(&user.principal);
        let _one = lock.lock().await;
        // From the vault itself: another gateway on this store may have rotated it.
        let grant = self
            .load_grant(s, found, user, true)
            .ok_or_else(|| "not connected".to_owned())?;
        if !force && !expiring(&grant) {
            return Ok(grant); // someone else refreshed it while we waited
        }
        let client = self
            .client_for(s, found)
            .ok_or_else(|| "no client registration for the refresh".to_owned())?;
        let tokens = refresh(
            &self.egress,
            &found.server.token_endpoint,
            &client,
            grant.tokens.clone(),
            &found.resource.resource,
            None,
        )
        .await
        .map_err(|e| {
            tracing::info!(server = %s.name, error = %e, "refresh failed; the user must connect again");
            e.to_string()
        })?;
        let next = StoredGrant {
            tokens,
            obtained_at: SystemTime::now(),
            issuer: grant.issuer.clone(),
            resource: grant.resource.clone(),
        };
        self.grants
            .put(&user.principal, &s.name, &next)
            .map_err(|e| e.to_string())?;
        Ok(next)
    }

    /// The gateway's client at the server's authorization server: pre-registered, or the
    /// metadata document, or the one dynamic registration stored for that issuer.
    pub(crate) fn client_for(
        &self,
        s: &ServerAuthorization,
        found: &Discovered,
    ) -> Option<ClientIdentity> {
        if let Some(c) = &s.pre_registered {
            return Some(c.clone());
        }
        if found.server.client_id_metadata_document_supported
            && let Some(url) = self.metadata_document_url()
        {
            return Some(ClientIdentity::public(url));
        }
        self.grants
            .client(&s.name, found.server.issuer())
            .ok()
            .flatten()
    }

    /// An audit record of the per-user authorization (never a token).
    pub(crate) fn note(
        &self,
        principal: &str,
        server: &str,
        decision: &'static str,
        rule: Option<String>,
        reason: String,
    ) {
        let ctx = crate::audit::Context {
            principal: principal.to_owned(),
            session: String::new(),
            transport: "http",
        };
        self.audit.note(
            &ctx,
            crate::audit::Entry {
                event: "oauth",
                server,
                method: "oauth/connect",
                name: server,
                decision,
                rule,
                reason,
                ..crate::audit::Entry::default()
            },
        );
    }
}

impl std::fmt::Debug for UserAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserAuthorization")
            .field("servers", &self.servers.keys().collect::<Vec<_>>())
            .field("base", &self.base())
            .finish_non_exhaustive()
    }
}

fn expires_at(grant: &StoredGrant) -> Option<SystemTime> {
    grant.expires_at()
}

fn expiring(grant: &StoredGrant) -> bool {
    expires_at(grant).is_some_and(|at| {
        at.duration_since(SystemTime::now())
            .map_or(true, |left| left < REFRESH_MARGIN)
    })
}

fn expired(grant: &StoredGrant) -> bool {
    expires_at(grant).is_some_and(|at| at <= SystemTime::now())
}
