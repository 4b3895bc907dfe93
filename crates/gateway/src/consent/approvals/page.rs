//! The approvals page: `GET /approvals` (the sign-in form, or the calls waiting),
//! `POST /approvals/login`, `POST /approvals/logout` and `POST /approvals/decide/<id>`.
//!
//! Each waiting call is shown with its caller (principal and session), server, tool, the
//! rule that holds it, how long it has left, and its arguments as sent — escaped, cut with a
//! visible marker, invisible characters as code points ([`crate::consent::render`]). A person
//! approves once, for the session or always, for these arguments or for the tool; or denies,
//! with a reason. Every POST needs the gateway's own `Origin`, and the decisions and sign-out
//! also the session's CSRF token; a page of another site can neither frame these pages nor
//! post their forms.

use std::fmt::Write as _;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};

use super::admin::{SESSION_COOKIE, SESSION_LIFETIME};
use super::queue::time_left;
use super::{ALWAYS_FOR, Desk, MAX_BODY_BYTES, MAX_REASON_CHARS, SharedDesk, clean_text};
use crate::consent::render;
use crate::consent::request::{ConsentAnswer, ConsentRequest, Remember, Scope};
use crate::oauth::web::{escape, form_field as field, harden, message_page, page, set_cookie};
use crate::transport::http::forwarded::ClientOrigin;

/// Longest name (principal, server, tool, rule) shown.
const MAX_SHOWN_NAME: usize = 200;

/// A name as shown on the page: rendered safely, then escaped.
fn name(text: &str) -> String {
    escape(&render::line(text, MAX_SHOWN_NAME))
}

/// The page's own styles (the CSP allows inline styles, nothing else).
const STYLE: &str = "<style>body{max-width:60em}pre{background:#f4f4f4;padding:.5em;white-space:pre-wrap;word-break:break-all}\
section{border-top:1px solid #ccc;margin-top:1.5em}\
fieldset{display:inline-block;margin:.5em 1em .5em 0}</style>";

/// `GET /approvals`.
pub async fn list(State(desk): State<SharedDesk>, headers: HeaderMap) -> Response {
    if let Err(r) = desk.host_checked(&headers) {
        return *r;
    }
    match desk.admin.session(&headers) {
        Some(session) => pending_page(&desk, &session),
        None => login_page(StatusCode::OK, None),
    }
}

fn login_page(status: StatusCode, problem: Option<&str>) -> Response {
    let problem = problem
        .map(|p| format!("<p id=problem><b>{}</b></p>", escape(p)))
        .unwrap_or_default();
    let body = format!(
        r#"<h1>Approvals</h1>
<p>Calls that need a person's approval wait here. Sign in with the gateway's admin token (<code>approvals.admin_token</code>).</p>
{problem}
<form method="post" action="/approvals/login">
<label>Admin token <input type="password" name="token" id="token" autocomplete="current-password" required></label>
<button type="submit" id="login">Sign in</button>
</form>"#
    );
    page(status, "Sign in", &body, None)
}

fn pending_page(desk: &Desk, session: &str) -> Response {
    let csrf = desk.admin.csrf_token(session);
    let waiting = desk.queue.pending();
    let mut body = format!(
        r#"{STYLE}<h1>Calls waiting for approval</h1>
<form method="post" action="/approvals/logout"><input type="hidden" name="csrf" value="{csrf}"><a href="/approvals" id="refresh">Refresh</a> <button type="submit" id="logout">Sign out</button></form>
"#
    );
    if waiting.is_empty() {
        body.push_str("<p id=empty>No call is waiting.</p>");
    }
    for req in &waiting {
        body.push_str(&request_section(req, &csrf));
    }
    page(StatusCode::OK, "Approvals", &body, None)
}

/// One waiting call and its decision form.
fn request_section(req: &ConsentRequest, csrf: &str) -> String {
    let created = DateTime::<Utc>::from(req.created).to_rfc3339_opts(SecondsFormat::Secs, true);
    let session = if req.session.is_empty() {
        "none (a stateless request)".to_owned()
    } else {
        name(&req.session)
    };
    let left = time_left(req).as_secs();
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<section class="request" id="{id}">
<h2><code>{tool}</code> at {server}</h2>
<table>
<tr><th>Caller</th><td class="principal">{principal}</td></tr>
<tr><th>Session</th><td>{session}</td></tr>
<tr><th>Server</th><td class="server">{server}</td></tr>
<tr><th>Tool</th><td class="tool"><code>{tool}</code></td></tr>
<tr><th>Held by</th><td>{rule}</td></tr>
<tr><th>Asked at</th><td>{created}</td></tr>
<tr><th>Time left</th><td class="left">{min} min {sec} s</td></tr>
<tr><th>Arguments digest</th><td><code>{digest}</code></td></tr>
</table>
<pre class="arguments">{arguments}</pre>
<form method="post" action="/approvals/decide/{id}">
<input type="hidden" name="csrf" value="{csrf}">
<fieldset><legend>Remember</legend>
<label><input type="radio" name="remember" value="once" checked> this call only</label>
<label><input type="radio" name="remember" value="session"> for this session</label>
<label><input type="radio" name="remember" value="always"> always (as long as the rule allows)</label></fieldset>
<fieldset><legend>For</legend>
<label><input type="radio" name="for" value="arguments" checked> these arguments</label>
<label><input type="radio" name="for" value="tool"> any arguments to this tool</label></fieldset>
<br><button type="submit" name="decision" value="approve" class="approve">Approve</button>
<label>Reason <input type="text" name="reason" maxlength="200"></label>
<button type="submit" name="decision" value="deny" class="deny">Deny</button>
</form>
</section>
"#,
        id = escape(&req.id),
        tool = name(&req.tool),
        server = name(&req.server),
        principal = name(&req.principal),
        rule = name(&req.rule),
        min = left / 60,
        sec = left % 60,
        digest = name(&req.arguments_digest),
        arguments = escape(&render::arguments(&req.arguments, render::MAX_TOTAL_CHARS)),
    );
    out
}

/// `POST /approvals/login`: the admin token in, a session cookie out.
pub async fn login(
    State(desk): State<SharedDesk>,
    origin: Option<axum::Extension<ClientOrigin>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(r) = desk.host_checked(&headers) {
        return *r;
    }
    if !desk.same_origin(&headers, origin.as_deref()) {
        return other_site();
    }
    let form = match read_form(body).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let token = field(&form, "token").unwrap_or_default();
    if !desk.admin.token_matches(token) {
        tracing::warn!("approvals page: sign-in with a wrong admin token");
        return login_page(StatusCode::FORBIDDEN, Some("That is not the admin token."));
    }
    let session = desk.admin.open_session();
    tracing::info!(
        session = %desk.admin.session_label(&session),
        "approvals page: an administrator signed in"
    );
    let mut resp = see_other("/approvals");
    set_cookie(
        &mut resp,
        SESSION_COOKIE,
        &session,
        SESSION_LIFETIME.as_secs(),
    );
    resp
}

/// `POST /approvals/logout`.
pub async fn logout(
    State(desk): State<SharedDesk>,
    origin: Option<axum::Extension<ClientOrigin>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (session, _) = match checked_post(&desk, origin.as_deref(), &headers, body).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    desk.admin.close_session(&session);
    let mut resp = see_other("/approvals");
    set_cookie(&mut resp, SESSION_COOKIE, "", 0);
    resp
}

/// `POST /approvals/decide/{id}`: approve or deny one waiting call.
pub async fn decide(
    State(desk): State<SharedDesk>,
    Path(id): Path<String>,
    origin: Option<axum::Extension<ClientOrigin>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (session, form) = match checked_post(&desk, origin.as_deref(), &headers, body).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let answer = match answer_from_form(&form) {
        Ok(a) => a,
        Err(problem) => return message_page(StatusCode::BAD_REQUEST, "Refused", problem),
    };
    let by = format!(
        "approvals page (admin session {})",
        desk.admin.session_label(&session)
    );
    match desk.queue.decide(&id, answer.clone(), &by) {
        Ok(req) => {
            let verb = match answer {
                ConsentAnswer::Approve { .. } => "Approved",
                ConsentAnswer::Deny { .. } => "Denied",
            };
            tracing::info!(server = %req.server, tool = %req.tool, principal = %req.principal, %by, "{verb} on the approvals page");
            let body = format!(
                r#"<h1 id="outcome">{verb}</h1><p>{verb}: <code>{tool}</code> at {server} for {principal}.</p><p><a href="/approvals" id="back">Back to the waiting calls</a></p>"#,
                tool = name(&req.tool),
                server = name(&req.server),
                principal = name(&req.principal),
            );
            page(StatusCode::OK, verb, &body, None)
        }
        Err(e) => message_page(StatusCode::NOT_FOUND, "Not waiting", &e.to_string()),
    }
}

/// The person's answer from the decision form.
fn answer_from_form(form: &[(String, String)]) -> Result<ConsentAnswer, &'static str> {
    match field(form, "decision") {
        Some("approve") => {
            let remember = match field(form, "remember").unwrap_or("once") {
                "once" => Remember::Once,
                "session" => Remember::Session,
                "always" => Remember::Always { ttl: ALWAYS_FOR },
                _ => return Err("Remember must be once, session or always."),
            };
            let scope = match field(form, "for").unwrap_or("arguments") {
                "arguments" => Scope::Arguments,
                "tool" => Scope::Tool,
                _ => return Err("An approval is for these arguments or for the tool."),
            };
            Ok(ConsentAnswer::Approve { remember, scope })
        }
        Some("deny") => Ok(ConsentAnswer::Deny {
            reason: clean_text(field(form, "reason").unwrap_or_default(), MAX_REASON_CHARS),
        }),
        _ => Err("No decision in the form."),
    }
}

/// The checks of every signed-in POST: host, origin, session, CSRF token. Gives the session
/// and the form.
async fn checked_post(
    desk: &Desk,
    origin: Option<&ClientOrigin>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(String, Vec<(String, String)>), Response> {
    desk.host_checked(headers).map_err(|r| *r)?;
    if !desk.same_origin(headers, origin) {
        return Err(other_site());
    }
    let Some(session) = desk.admin.session(headers) else {
        return Err(message_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "You are not signed in (or your session ended). Open /approvals and sign in again.",
        ));
    };
    let form = read_form(body).await?;
    let csrf_ok = field(&form, "csrf").is_some_and(|t| desk.admin.csrf_ok(&session, t));
    if !csrf_ok {
        tracing::warn!("approvals page: a form without this session's CSRF token was refused");
        return Err(message_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "The form's security token is missing or wrong. Open /approvals again.",
        ));
    }
    Ok((session, form))
}

fn other_site() -> Response {
    tracing::warn!("approvals page: a form posted without the gateway's own Origin was refused");
    message_page(
        StatusCode::FORBIDDEN,
        "Refused",
        "This form was not posted from the gateway's own page.",
    )
}

async fn read_form(body: Body) -> Result<Vec<(String, String)>, Response> {
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return Err(message_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Refused",
            "Form too large.",
        ));
    };
    Ok(form_urlencoded::parse(&bytes).into_owned().collect())
}

fn see_other(location: &'static str) -> Response {
    let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    harden(&mut resp, None);
    resp
}
