//! Who opened a connect link: behind `[auth]`, the consent page and the approval require a
//! browser signed in (see [`super::signin`]) as the link's principal.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::UserAuthorization;
use super::pages::SharedPages;
use super::ticket::Ticket;
use super::web::{cookie, harden, message_page, set_cookie, sign, verify};

/// Names this browser's sign-in (a server-side record); `__Host-`, HttpOnly, Lax.
pub(super) const USER_COOKIE: &str = "__Host-portcullis-user";
/// Binds a sign-in's callback to the browser that started it.
const SIGN_IN_FLOW_COOKIE: &str = "__Host-portcullis-signin";

/// `Ok` when the link may be used in this browser: there is no sign-in to check (no
/// `[auth]`), or the browser signed in as the link's principal. Otherwise the answer: a
/// redirect to sign in (`may_start`), or a refusal.
pub(super) async fn person_is_principal(
    ua: &Arc<UserAuthorization>,
    headers: &HeaderMap,
    id: &str,
    ticket: &Ticket,
    may_start: bool,
) -> Result<(), Box<Response>> {
    let Some(sign_in) = &ua.sign_in else {
        return Ok(());
    };
    match cookie(headers, USER_COOKIE).and_then(|c| sign_in.who(c)) {
        Some(who) if who == ticket.principal => Ok(()),
        Some(who) => {
            ua.note(
                &ticket.principal,
                &ticket.server,
                "refused",
                None,
                format!("the link was opened by another user ({who})"),
            );
            Err(Box::new(message_page(
                StatusCode::FORBIDDEN,
                "Not your link",
                "This link was made for another user. Nothing was sent anywhere. If you did not \
                 ask for it, someone may be trying to connect your account to theirs.",
            )))
        }
        None if may_start => Err(Box::new(start(ua, id, ticket).await)),
        None => Err(Box::new(message_page(
            StatusCode::FORBIDDEN,
            "Sign in first",
            "Open the link again to sign in.",
        ))),
    }
}

/// Sends the browser to the issuer to sign in, to come back to the link `id`.
async fn start(ua: &Arc<UserAuthorization>, id: &str, ticket: &Ticket) -> Response {
    let (Some(sign_in), Some(base)) = (&ua.sign_in, ua.base()) else {
        return message_page(StatusCode::SERVICE_UNAVAILABLE, "Not ready", "No sign-in.");
    };
    let redirect_uri = format!("{base}/oauth/signin/callback");
    let resource = ua.resource_of(&ticket.server);
    match sign_in
        .start(&ua.egress, &redirect_uri, &resource, id)
        .await
    {
        Ok((url, state)) => {
            let mut resp = Response::builder()
                .status(StatusCode::SEE_OTHER)
                .header(header::LOCATION, url.as_str())
                .body(Body::empty())
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
            harden(&mut resp, None);
            set_cookie(
                &mut resp,
                SIGN_IN_FLOW_COOKIE,
                &sign(ua, &["signin", &state]),
                600,
            );
            resp
        }
        Err(e) => message_page(StatusCode::BAD_GATEWAY, "Could not sign in", &e),
    }
}

/// `GET /oauth/signin/callback`: back from the issuer; remember who signed in, return to
/// the link.
pub async fn signin_callback(
    State(st): State<SharedPages>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = super::pages::host_checked(&st, &headers) {
        return *r;
    }
    let ua = st.user_auth();
    let Some(sign_in) = &ua.sign_in else {
        return message_page(StatusCode::NOT_FOUND, "Not found", "Nothing here.");
    };
    let query = query.unwrap_or_default();
    let state = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let bound =
        cookie(&headers, SIGN_IN_FLOW_COOKIE).is_some_and(|c| verify(ua, &["signin", &state], c));
    if !bound {
        return message_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "This sign-in was not started in this browser.",
        );
    }
    match sign_in.finish(&ua.egress, &query).await {
        Ok((who, then)) => {
            let mut resp = Response::builder()
                .status(StatusCode::SEE_OTHER)
                .header(header::LOCATION, format!("/oauth/connect/{then}"))
                .body(Body::empty())
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
            harden(&mut resp, None);
            set_cookie(&mut resp, USER_COOKIE, &sign_in.remember(who), 600);
            set_cookie(&mut resp, SIGN_IN_FLOW_COOKIE, "", 0);
            resp
        }
        Err(e) => message_page(StatusCode::FORBIDDEN, "Sign-in failed", &e),
    }
}
