//! The gateway's own browser pages for per-user OAuth: the consent page
//! (`/oauth/connect/<id>`), the redirect URI (`/oauth/callback`) and the Client ID Metadata
//! Document (`/oauth/client-metadata.json`).
//!
//! What keeps a person from being made to authorize something they did not ask for:
//! - nothing goes to the authorization server before a click on the consent page, which
//!   names the MCP client, the principal, the server, the authorization server, the scopes
//!   and the redirect URI; the `state` is created only then;
//! - the approval is a POST carrying a CSRF token bound (HMAC) to the link and to a
//!   `__Host-` cookie set with the page, and, when the browser sends one, an `Origin` that is
//!   the gateway's own; a page of another site can neither frame the page
//!   (`frame-ancestors 'none'`) nor post the form;
//! - the callback is accepted only from the browser that approved: it must carry the
//!   `__Host-` flow cookie bound to the `state` (so a code obtained elsewhere cannot be
//!   injected into a victim's browser), then the library checks `state` and `iss`;
//! - a remembered consent (the `__Host-` consent cookie, bound to the MCP client id and the
//!   server) is shown, never used to skip the click: a link someone else triggered must not
//!   take a person to their authorization server — which may redirect back at once — without
//!   a decision.
//!
//! Every answer is `no-store`, `nosniff`, and sends no referrer to another origin (the
//! callback URL carries a code).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_auth::client::{
    ClientIdMetadataDocument, ClientIdentity, DynamicRegistrationRequest, StoredGrant,
    exchange_code, finish_authorization, register_dynamic, start_authorization,
};

use super::UserAuthorization;
use super::identity::person_is_principal;
use super::ticket::{Step, Ticket, random_id};
use super::web::{
    consent_tag, cookie, escape, form_field, harden, message_page, not_found, origin_of, page,
    set_cookie, sign, verify,
};
use crate::on_behalf::{OnBehalf, on_behalf};
use crate::transport::http::checks::HostPolicy;

const CSRF_COOKIE: &str = "__Host-portcullis-csrf";
const FLOW_COOKIE: &str = "__Host-portcullis-flow";
const CONSENT_COOKIE: &str = "__Host-portcullis-consent";
/// Remembered consents kept in the cookie (the oldest go first).
const MAX_REMEMBERED: usize = 16;
/// The approval form is a few hundred bytes; anything larger is not ours.
const MAX_FORM_BYTES: usize = 4096;

/// What the pages need: the flows, and the `Host` names the gateway answers to.
pub struct Pages {
    user_auth: Arc<UserAuthorization>,
    hosts: HostPolicy,
}

pub(super) type SharedPages = Arc<Pages>;

impl Pages {
    pub(super) fn user_auth(&self) -> &Arc<UserAuthorization> {
        &self.user_auth
    }
}

/// The pages' routes, when some server uses per-user OAuth: merged into `serve`'s router,
/// or served alone on loopback by `portcullis stdio` (see
/// [`crate::transport::pages::serve_alone`]).
pub fn router(gateway: &crate::gateway::Gateway) -> Option<axum::Router> {
    let pages = Arc::new(Pages {
        user_auth: gateway.user_auth.clone()?,
        hosts: HostPolicy::from_config(&gateway.config.gateway),
    });
    Some(
        axum::Router::new()
            .route(
                "/oauth/connect/{id}",
                axum::routing::get(connect_page).post(connect_decision),
            )
            .route("/oauth/callback", axum::routing::get(callback))
            .route(
                "/oauth/signin/callback",
                axum::routing::get(super::identity::signin_callback),
            )
            .route(
                "/oauth/client-metadata.json",
                axum::routing::get(metadata_document),
            )
            .with_state(pages),
    )
}

/// `GET /oauth/connect/{id}`: the consent page.
pub async fn connect_page(
    State(st): State<SharedPages>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = host_checked(&st, &headers) {
        return *r;
    }
    let ua = &st.user_auth;
    let ticket = match ua.tickets.get(&id) {
        Ok(t) => t,
        Err(e) => return message_page(StatusCode::NOT_FOUND, "Link not usable", &e.to_string()),
    };
    if ticket.step != Step::Offered {
        return message_page(
            StatusCode::CONFLICT,
            "Already approved",
            "This link was already approved; finish the authorization in the window it opened.",
        );
    }
    if let Err(r) = person_is_principal(ua, &headers, &id, &ticket, true).await {
        return *r;
    }
    let Some(server) = ua.server(&ticket.server) else {
        return not_found();
    };
    let Some(found) = server.discovered() else {
        return message_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Not ready",
            "The server's authorization server is not known yet; ask your MCP client again.",
        );
    };
    let csrf_cookie = random_id();
    let csrf = sign(ua, &["csrf", &id, &csrf_cookie]);
    let client = ticket.client.as_deref();
    let remembered = cookie(&headers, CONSENT_COOKIE).is_some_and(|c| {
        c.split('.')
            .any(|tag| tag == consent_tag(ua, client, &ticket.server))
    });
    let redirect_uri = ua.redirect_uri().unwrap_or_default();
    let issuer = found.server.issuer();
    let scope = ticket.scope.as_deref().unwrap_or("(none asked)");
    let client_text = match client {
        Some(c) => format!("The MCP client <b>{}</b>", escape(c)),
        None => "An MCP client (unauthenticated: the gateway has no [auth], so it cannot name it)"
            .to_owned(),
    };
    let remembered_text = if remembered {
        "<p class=note>You approved this client for this server before, in this browser.</p>"
    } else {
        ""
    };
    let body = format!(
        r#"<h1>Connect {server} for {principal}?</h1>
<p>{client_text} asks Portcullis to act for <b>{principal}</b> at the MCP server <b>{server}</b> (<code>{url}</code>).</p>
<table>
<tr><th>Sign-in at</th><td><code>{issuer}</code></td></tr>
<tr><th>Scopes</th><td><code>{scope}</code></td></tr>
<tr><th>Comes back to</th><td><code>{redirect_uri}</code></td></tr>
</table>
<p>Portcullis keeps the tokens; the MCP client never sees them. Approve only if you just asked this client to use this server: if someone sent you this link, deny.</p>
{remembered_text}
<form method="post" action="/oauth/connect/{id}">
<input type="hidden" name="csrf" value="{csrf}">
<button type="submit" name="decision" value="approve" id="approve">Approve and sign in</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form>"#,
        server = escape(&ticket.server),
        principal = escape(&ticket.principal),
        url = escape(&server.url),
        issuer = escape(issuer),
        scope = escape(scope),
        redirect_uri = escape(&redirect_uri),
        id = escape(&id),
    );
    let form_action = origin_of(&found.server.authorization_endpoint.to_string());
    let mut resp = page(
        StatusCode::OK,
        "Connect a server",
        &body,
        form_action.as_deref(),
    );
    set_cookie(&mut resp, CSRF_COOKIE, &csrf_cookie, 600);
    resp
}

/// `POST /oauth/connect/{id}`: the person's decision.
pub async fn connect_decision(
    State(st): State<SharedPages>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(r) = host_checked(&st, &headers) {
        return *r;
    }
    let ua = st.user_auth.clone();
    if let Some(origin) = headers.get(header::ORIGIN) {
        let own = ua.base().and_then(origin_of);
        if origin.to_str().ok() != own.as_deref() {
            tracing::warn!(origin = ?origin, own = ?own, "consent form posted from another origin");
            return message_page(
                StatusCode::FORBIDDEN,
                "Refused",
                "This form was posted from another site.",
            );
        }
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return message_page(StatusCode::PAYLOAD_TOO_LARGE, "Refused", "Form too large.");
    };
    let form: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
    let field = |name: &str| form_field(&form, name);
    let csrf_ok = match (field("csrf"), cookie(&headers, CSRF_COOKIE)) {
        (Some(token), Some(c)) => verify(&ua, &["csrf", &id, c], token),
        _ => false,
    };
    if !csrf_ok {
        return message_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "The form's security token is missing or wrong. Open the link again.",
        );
    }
    let ticket = match ua.tickets.get(&id) {
        Ok(t) => t,
        Err(e) => return message_page(StatusCode::NOT_FOUND, "Link not usable", &e.to_string()),
    };
    if let Err(r) = person_is_principal(&ua, &headers, &id, &ticket, false).await {
        return *r;
    }
    match field("decision") {
        Some("deny") => {
            ua.tickets.remove(&id);
            ua.note(
                &ticket.principal,
                &ticket.server,
                "denied",
                None,
                "the person denied the connection".into(),
            );
            message_page(
                StatusCode::OK,
                "Denied",
                "Nothing was sent to the authorization server. You can close this page.",
            )
        }
        Some("approve") => approve(&ua, &id, &headers).await,
        _ => message_page(
            StatusCode::BAD_REQUEST,
            "Refused",
            "No decision in the form.",
        ),
    }
}

/// Approval: reserve the link (one approval per link), register if needed, create the
/// authorization request (and so the `state`), bind the browser to it, redirect.
async fn approve(ua: &Arc<UserAuthorization>, id: &str, headers: &HeaderMap) -> Response {
    let ticket = match ua.tickets.reserve(id) {
        Ok(t) => t,
        Err(e) => return message_page(StatusCode::CONFLICT, "Link not usable", &e.to_string()),
    };
    let fail = |reason: String| {
        ua.tickets.remove(id);
        ua.note(
            &ticket.principal,
            &ticket.server,
            "failed",
            None,
            reason.clone(),
        );
        message_page(
            StatusCode::BAD_GATEWAY,
            "Could not start the authorization",
            &reason,
        )
    };
    let (Some(server), Some(redirect_uri)) = (ua.server(&ticket.server), ua.redirect_uri()) else {
        return fail("the server or the gateway's address is not configured".into());
    };
    let Some(found) = server.discovered() else {
        return fail("the server's authorization server is not known".into());
    };
    let client = match on_behalf(
        ticket_context(&ticket),
        registered_client(ua, server, &found, &redirect_uri),
    )
    .await
    {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    // The pending authorization carries the link id as its "principal": the callback
    // finds the ticket (and so the real principal) from it.
    let started = match start_authorization(
        &ua.pending,
        &found.server,
        &client.client_id,
        &redirect_uri,
        &found.resource.resource,
        ticket.scope.as_deref(),
        id,
    ) {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    ua.tickets.set_state(id, started.state.clone());
    ua.note(
        &ticket.principal,
        &ticket.server,
        "approved",
        None,
        format!("client {}", ticket.client.as_deref().unwrap_or("-")),
    );
    let mut resp = Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, started.url.as_str())
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    harden(&mut resp, None);
    let flow = sign(ua, &["flow", &started.state]);
    set_cookie(&mut resp, FLOW_COOKIE, &flow, 600);
    let tag = consent_tag(ua, ticket.client.as_deref(), &ticket.server);
    let mut tags: Vec<String> = cookie(headers, CONSENT_COOKIE)
        .map(|c| {
            c.split('.')
                .filter(|t| !t.is_empty() && *t != tag)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    tags.push(tag);
    let keep = tags.len().saturating_sub(MAX_REMEMBERED);
    set_cookie(
        &mut resp,
        CONSENT_COOKIE,
        &tags[keep..].join("."),
        30 * 24 * 3600,
    );
    resp
}

/// Egress refusals during a flow are audited for its server and principal.
fn ticket_context(ticket: &Ticket) -> OnBehalf {
    OnBehalf {
        server: Arc::from(ticket.server.as_str()),
        principal: Arc::from(ticket.principal.as_str()),
    }
}

/// The gateway's client at the authorization server: pre-registered, the metadata
/// document, a stored dynamic registration, or a new one (stored, encrypted).
async fn registered_client(
    ua: &UserAuthorization,
    server: &super::server::ServerAuthorization,
    found: &portcullis_auth::client::Discovered,
    redirect_uri: &str,
) -> Result<ClientIdentity, String> {
    let _one = server.registration.lock().await;
    if let Some(c) = ua.client_for(server, found) {
        return Ok(c);
    }
    let Some(endpoint) = &found.server.registration_endpoint else {
        return Err(format!(
            "{} supports neither client ID metadata documents (over https) nor dynamic registration: \
             register a client there and set `client_id` in the server's `oauth` credential",
            found.server.issuer()
        ));
    };
    let request = DynamicRegistrationRequest::new("Portcullis", vec![redirect_uri.to_owned()])
        .for_server(&found.server);
    let client = register_dynamic(&ua.egress, endpoint, &request)
        .await
        .map_err(|e| e.to_string())?;
    ua.grants
        .put_client(&server.name, found.server.issuer(), &client)
        .map_err(|e| format!("could not store the registration: {e}"))?;
    Ok(client)
}

/// `GET /oauth/callback`: the authorization server sends the browser back here.
pub async fn callback(
    State(st): State<SharedPages>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = host_checked(&st, &headers) {
        return *r;
    }
    let ua = st.user_auth.clone();
    let query = query.unwrap_or_default();
    let state = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    // The browser that approved, and only it, may finish: checked before the library
    // consumes the state, so a forged callback cannot burn a real user's flow.
    let bound = cookie(&headers, FLOW_COOKIE).is_some_and(|c| verify(&ua, &["flow", &state], c));
    if !bound {
        return message_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "This authorization was not started in this browser. Open the link from your MCP client again.",
        );
    }
    let grant = match finish_authorization(&ua.pending, &query) {
        Ok(g) => g,
        Err(e) => {
            return message_page(
                StatusCode::BAD_REQUEST,
                "Authorization failed",
                &e.to_string(),
            );
        }
    };
    let id = grant.pending.principal.clone();
    let Some(ticket) = ua.tickets.remove(&id) else {
        return message_page(
            StatusCode::NOT_FOUND,
            "Link not usable",
            "The link has expired.",
        );
    };
    if ticket.step
        != (Step::Consented {
            state: state.clone(),
        })
    {
        return message_page(
            StatusCode::BAD_REQUEST,
            "Authorization failed",
            "The state does not match the approval.",
        );
    }
    match on_behalf(ticket_context(&ticket), redeem(&ua, &ticket, grant)).await {
        Ok(()) => {
            ua.note(
                &ticket.principal,
                &ticket.server,
                "connected",
                None,
                String::new(),
            );
            ua.completions.complete(&ticket.elicitation_id);
            let mut resp = message_page(
                StatusCode::OK,
                "Connected",
                &format!(
                    "{} is connected for {}. You can close this page and return to your MCP client.",
                    ticket.server, ticket.principal
                ),
            );
            set_cookie(&mut resp, FLOW_COOKIE, "", 0);
            resp
        }
        Err(reason) => {
            ua.note(
                &ticket.principal,
                &ticket.server,
                "failed",
                None,
                reason.clone(),
            );
            message_page(StatusCode::BAD_GATEWAY, "Authorization failed", &reason)
        }
    }
}

async fn redeem(
    ua: &UserAuthorization,
    ticket: &Ticket,
    grant: portcullis_auth::client::AuthorizationGrant,
) -> Result<(), String> {
    let server = ua.server(&ticket.server).ok_or("unknown server")?;
    let found = server.discovered().ok_or("the server was not discovered")?;
    let client = ua
        .client_for(server, &found)
        .filter(|c| c.client_id == grant.pending.client_id)
        .ok_or("the client registration changed during the authorization")?;
    let issuer = grant.pending.issuer.clone();
    let resource = grant.pending.resource.clone();
    let tokens = exchange_code(&ua.egress, &client, grant)
        .await
        .map_err(|e| e.to_string())?;
    let stored = StoredGrant {
        tokens,
        obtained_at: std::time::SystemTime::now(),
        issuer,
        resource,
    };
    ua.grants
        .put(&ticket.principal, &ticket.server, &stored)
        .map_err(|e| format!("could not store the tokens: {e}"))
}

/// `GET /oauth/client-metadata.json`: the gateway's Client ID Metadata Document.
pub async fn metadata_document(State(st): State<SharedPages>) -> Response {
    let ua = &st.user_auth;
    let (Some(url), Some(redirect)) = (ua.metadata_document_url(), ua.redirect_uri()) else {
        return not_found();
    };
    match ClientIdMetadataDocument::new(&url, "Portcullis", vec![redirect]) {
        Ok(doc) => {
            let mut resp = axum::Json(doc).into_response();
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            );
            resp
        }
        Err(_) => not_found(),
    }
}

/// The `Host` check of the MCP endpoints (DNS rebinding). `Origin` is checked by the form
/// POST itself, against the gateway's own origin: these pages are meant for browsers.
pub(super) fn host_checked(st: &Pages, headers: &HeaderMap) -> Result<(), Box<Response>> {
    super::web::host_checked(&st.hosts, headers)
}
