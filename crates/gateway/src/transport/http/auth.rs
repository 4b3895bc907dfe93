//! Bearer tokens at the HTTP front door (`[auth]`): who is calling.
//!
//! Every request is authenticated on its own, before its body is read: a session id is
//! never a credential. The order of refusals:
//! - a token in the query string: 400 (`bearer_methods_supported` is `["header"]` only);
//! - a malformed `Authorization` header: 400 `invalid_request`;
//! - no token: 401 with `resource_metadata` and `scope`, and no error code (RFC 6750 §3.1);
//! - an invalid, expired or foreign token: 401 `invalid_token`, with a fixed description
//!   per reason (never the token's content);
//! - the issuer's keys unreachable with none cached: 503 (the token may be good: a 401
//!   would send the client to fetch a new one for nothing). Nothing is forwarded either way.
//!
//! A rule's `scopes` that the token lacks come back later, from the policy, as
//! `INSUFFICIENT_SCOPE`; [`StepUp`] turns that into the spec's 403 challenge.
//!
//! Audience: `auth.audience`, else the route's canonical URL: `public_url` (or the origin
//! the request addressed, its `Host` — which the Host check already limited to names this
//! gateway answers to — or a trusted proxy's forwarded host and scheme) + `/mcp/<route>`.

use std::sync::Arc;

use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use portcullis_auth::resource::{
    IntrospectionConfig, IssuerConfig, ProtectedResourceMetadata, ResourceServerConfig,
    TokenValidator, VerifiedToken, challenge, metadata_url, parse_bearer, token_in_query,
};
use portcullis_auth::secret::Secret;
use portcullis_auth::upstream::CredentialSpec;
use portcullis_egress::EgressClient;
use portcullis_policy::Principal;
use serde_json::Value;

use super::forwarded::{ClientOrigin, external_base_url};
use super::{SharedState, plain};
use crate::config::{AuthConfig, GatewayConfig, Upstream};
use crate::gateway::Gateway;

/// The front door's token check, built once from `[auth]`.
pub struct TokenGate {
    config: AuthConfig,
    validator: TokenValidator,
    gateway: GatewayConfig,
    /// Some upstream exchanges the caller's token (RFC 8693): only then is a request's
    /// token kept past its check.
    keeps_tokens: bool,
}

/// A request's authenticated caller, and what a step-up challenge needs to know.
pub struct Caller {
    pub principal: Arc<Principal>,
    /// The access token itself, for an upstream credential that exchanges it.
    pub token: Option<Arc<Secret>>,
    pub step_up: Option<StepUp>,
}

/// What the 403 `insufficient_scope` challenge of a request says besides the missing
/// scopes: where the metadata is, and the scopes the token already has (the spec's step-up
/// guidance: ask for what is needed *and* what still applies, so the new token does not
/// lose what the old one could do).
pub struct StepUp {
    resource_metadata: String,
    token_scopes: Vec<String>,
}

impl StepUp {
    /// The 403 for a refused request whose answer (`body`, a JSON-RPC error) names the
    /// `missing` scopes.
    pub fn forbidden(&self, missing: &[String], body: Response) -> Response {
        let mut scopes = self.token_scopes.clone();
        for s in missing {
            if !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
        let mut resp = body;
        *resp.status_mut() = StatusCode::FORBIDDEN;
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            challenge::insufficient_scope(&self.resource_metadata, &scopes.join(" ")),
        );
        resp
    }
}

impl TokenGate {
    pub fn new(
        config: AuthConfig,
        validator: TokenValidator,
        gateway: GatewayConfig,
        keeps_tokens: bool,
    ) -> Self {
        TokenGate {
            config,
            validator,
            gateway,
            keeps_tokens,
        }
    }

    /// `scheme://host[:port]` the client addressed: `public_url`, else what the request's
    /// origin says (its `Host`, or a trusted proxy's forwarded host and scheme).
    fn base_url(&self, origin: Option<&ClientOrigin>) -> String {
        origin
            .and_then(|o| external_base_url(&self.gateway, o))
            .or_else(|| self.gateway.public_url.clone())
            .unwrap_or_else(|| format!("http://{}", self.gateway.listen))
    }

    /// The audience tokens for `route` must carry, for a request from `origin`.
    pub fn audience(&self, origin: Option<&ClientOrigin>, route: &str) -> String {
        match &self.config.audience {
            Some(a) => a.clone(),
            None => format!("{}/mcp/{route}", self.base_url(origin)),
        }
    }

    /// The URL of `route`'s protected resource metadata.
    pub fn metadata_url(&self, origin: Option<&ClientOrigin>, route: &str) -> String {
        // With one configured audience for every route, each route's metadata is still at
        // the route's own URL, and names that audience.
        metadata_url(&format!("{}/mcp/{route}", self.base_url(origin)))
    }

    /// The RFC 9728 document of `route`.
    pub fn metadata(
        &self,
        origin: Option<&ClientOrigin>,
        route: &str,
    ) -> ProtectedResourceMetadata {
        ProtectedResourceMetadata::new(self.audience(origin, route), self.config.issuers.clone())
            .with_scopes(self.config.scopes_supported.clone())
    }

    /// Authenticates a request to `route`, or the response refusing it.
    pub async fn authenticate(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        origin: Option<&ClientOrigin>,
        route: &str,
    ) -> Result<Caller, Box<Response>> {
        let resource_metadata = self.metadata_url(origin, route);
        if token_in_query(uri) {
            return Err(Box::new(refusal(
                StatusCode::BAD_REQUEST,
                challenge::invalid_request(
                    &resource_metadata,
                    "Access tokens are accepted only in the Authorization header",
                ),
                "access tokens are accepted only in the Authorization header, never in the URL",
            )));
        }
        let token = match parse_bearer(headers) {
            Ok(Some(token)) => token,
            Ok(None) => {
                let scope = self.scope_hint();
                return Err(Box::new(refusal(
                    StatusCode::UNAUTHORIZED,
                    challenge::unauthorized(&resource_metadata, scope.as_deref(), None),
                    "authentication required: send an OAuth access token for this MCP endpoint",
                )));
            }
            Err(bad) if bad.is_invalid_token() => {
                return Err(Box::new(refusal(
                    StatusCode::UNAUTHORIZED,
                    challenge::unauthorized(
                        &resource_metadata,
                        self.scope_hint().as_deref(),
                        Some(("invalid_token", "The access token is too large")),
                    ),
                    &bad.to_string(),
                )));
            }
            Err(bad) => {
                return Err(Box::new(refusal(
                    StatusCode::BAD_REQUEST,
                    challenge::invalid_request(
                        &resource_metadata,
                        "Malformed Authorization header",
                    ),
                    &bad.to_string(),
                )));
            }
        };
        let audience = self.audience(origin, route);
        match self.validator.validate(token.expose(), &audience).await {
            Ok(verified) => {
                let step_up = StepUp {
                    resource_metadata,
                    token_scopes: verified.scopes.clone(),
                };
                Ok(Caller {
                    principal: Arc::new(self.principal(verified)),
                    token: self
                        .keeps_tokens
                        .then(|| Arc::new(Secret::new(token.expose().to_owned()))),
                    step_up: Some(step_up),
                })
            }
            Err(e) if e.is_temporary() => {
                tracing::warn!(route, reason = %e, "token not checked; request refused");
                let mut resp = plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the gateway cannot check access tokens right now; try again shortly",
                );
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                Err(Box::new(resp))
            }
            Err(e) => {
                tracing::info!(route, reason = %e, "token refused");
                Err(Box::new(refusal(
                    StatusCode::UNAUTHORIZED,
                    challenge::unauthorized(
                        &resource_metadata,
                        self.scope_hint().as_deref(),
                        Some((e.error_code(), e.error_description())),
                    ),
                    e.error_description(),
                )))
            }
        }
    }

    /// The `scope` of a 401: what a client should ask for to begin with.
    fn scope_hint(&self) -> Option<String> {
        (!self.config.scopes_supported.is_empty()).then(|| self.config.scopes_supported.join(" "))
    }

    fn principal(&self, t: VerifiedToken) -> Principal {
        let groups: Vec<String> = match t.claims.get(&self.config.groups_claim) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        let mut p = Principal::oauth(t.issuer, t.subject)
            .with_scopes(t.scopes)
            .with_groups(groups)
            .with_claims(t.claims);
        if let Some(client) = t.client_id {
            p = p.with_client(client);
        }
        p
    }
}

fn refusal(status: StatusCode, challenge: HeaderValue, message: &str) -> Response {
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge);
    resp
}

/// `GET /.well-known/oauth-protected-resource/mcp/<route>`: the route's RFC 9728 metadata.
/// Public, as the spec requires: it is how a client without a token learns where to get
/// one. 404 without `[auth]`, or for a route that does not exist.
pub async fn metadata_document(
    State(st): State<SharedState>,
    Path(route): Path<String>,
    origin: Option<Extension<ClientOrigin>>,
    headers: HeaderMap,
) -> Response {
    document(&st, &route, origin.as_deref(), &headers)
}

/// `GET /.well-known/oauth-protected-resource`: the same, for a gateway with one route
/// (clients that look for metadata at the root first find it there).
pub async fn root_metadata_document(
    State(st): State<SharedState>,
    origin: Option<Extension<ClientOrigin>>,
    headers: HeaderMap,
) -> Response {
    let mut names = st.gateway.route_names();
    match (names.next(), names.next()) {
        (Some(only), None) => {
            let only = only.to_owned();
            document(&st, &only, origin.as_deref(), &headers)
        }
        _ => plain(StatusCode::NOT_FOUND, "no protected resource at this path"),
    }
}

fn document(
    st: &SharedState,
    route: &str,
    origin: Option<&ClientOrigin>,
    headers: &HeaderMap,
) -> Response {
    if let Err((status, why)) = st.hosts.check(headers) {
        return plain(status, why);
    }
    let Some(gate) = &st.auth else {
        return plain(StatusCode::NOT_FOUND, "this gateway does not use OAuth");
    };
    if st.gateway.route(route).is_none() {
        return plain(StatusCode::NOT_FOUND, "no such MCP endpoint");
    }
    let body = serde_json::to_vec(&gate.metadata(origin, route)).unwrap_or_default();
    let mut resp = Response::new(axum::body::Body::from(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    resp
}

/// The token gate of `[auth]`, or `None` without it. Fails when the section cannot be
/// used (a secret variable missing): a gateway must not start half-authenticated.
pub async fn gate(gateway: &Gateway) -> anyhow::Result<Option<TokenGate>> {
    let Some(cfg) = &gateway.config.auth else {
        return Ok(None);
    };
    let validator = validator_for(cfg, gateway.egress.clone())?;
    let keeps_tokens = gateway.config.servers.values().any(|s| {
        matches!(
            &s.upstream,
            Upstream::Http(h) if matches!(h.credential, Some(CredentialSpec::TokenExchange(_)))
        )
    });
    Ok(Some(TokenGate::new(
        cfg.clone(),
        validator,
        gateway.config.gateway.clone(),
        keeps_tokens,
    )))
}

/// The validator of `[auth]`: its issuers, algorithms and bounds. Issuer metadata and keys
/// are fetched when first needed (and refreshed), not here: a gateway whose authorization
/// server is briefly down still starts, and refuses tokens until it is back.
fn validator_for(cfg: &AuthConfig, egress: EgressClient) -> anyhow::Result<TokenValidator> {
    let issuers = cfg
        .issuers
        .iter()
        .map(|issuer| IssuerConfig {
            issuer: issuer.clone(),
            jwks_uri: cfg.jwks_uri.clone(),
        })
        .collect();
    let mut rs = ResourceServerConfig::new(issuers);
    rs.algorithms = cfg.algorithms.clone();
    rs.leeway = cfg.leeway;
    rs.required_claims = cfg.required_claims.clone();
    if let Some(i) = &cfg.introspection {
        let secret = Secret::from_env(&i.secret_env)
            .map_err(|e| anyhow::anyhow!("auth.introspection.secret_env: {e}"))?;
        let mut ic = IntrospectionConfig::new(i.client_id.clone(), secret);
        ic.endpoint = i.endpoint.clone();
        rs.introspection = Some(ic);
    }
    TokenValidator::new(rs, egress).map_err(|e| anyhow::anyhow!("[auth]: {e}"))
}
