//! The admin API that `portcullis approvals` speaks: JSON, the admin token as a bearer
//! token, no cookies (so no CSRF: a browser never adds the token on its own).
//!
//! - `GET /approvals/api/pending` → `{"pending": [Pending…]}`, the call whose time runs out
//!   first first;
//! - `POST /approvals/api/<id>` with `{"decision": "approve", "remember": "once"|"session"|
//!   "always", "for": "arguments"|"tool"}` or `{"decision": "deny", "reason": "…"}` (and an
//!   optional `"operator"`: who is typing, as they say, for the audit record) → 200
//!   `{"id", "decision", "server", "tool", "principal"}`, 404 when nothing waits under that
//!   id, 400 for a body that is not one of these, 401 without the token.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::queue::time_left;
use super::{ALWAYS_FOR, MAX_BODY_BYTES, MAX_REASON_CHARS, SharedDesk, clean_text};
use crate::consent::request::{ConsentAnswer, ConsentRequest, Remember, Scope};

/// Longest operator name kept.
const MAX_OPERATOR_CHARS: usize = 64;

/// A waiting call, as the API lists it: the arguments as sent (the CLI shows them safely).
#[derive(Debug, Serialize, Deserialize)]
pub struct Pending {
    pub id: String,
    pub principal: String,
    pub session: String,
    pub server: String,
    pub tool: String,
    pub arguments: serde_json::Value,
    pub arguments_digest: String,
    pub rule: String,
    /// RFC 3339, UTC.
    pub created: String,
    pub seconds_left: u64,
}

impl Pending {
    fn of(req: &ConsentRequest) -> Self {
        Pending {
            id: req.id.clone(),
            principal: req.principal.clone(),
            session: req.session.clone(),
            server: req.server.clone(),
            tool: req.tool.clone(),
            arguments: req.arguments.clone(),
            arguments_digest: req.arguments_digest.clone(),
            rule: req.rule.clone(),
            created: chrono::DateTime::<chrono::Utc>::from(req.created)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            seconds_left: time_left(req).as_secs(),
        }
    }
}

/// `GET /approvals/api/pending`'s answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct PendingList {
    pub pending: Vec<Pending>,
}

/// The body of `POST /approvals/api/<id>`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// `approve` or `deny`.
    pub decision: String,
    /// `once` (default), `session`, `always`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remember: Option<String>,
    /// `arguments` (default) or `tool`.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who is deciding, as they say (not verified: the token is the authentication).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
}

/// `POST /approvals/api/<id>`'s answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct Decided {
    pub id: String,
    pub decision: String,
    pub server: String,
    pub tool: String,
    pub principal: String,
}

/// `GET /approvals/api/pending`.
pub async fn pending(State(desk): State<SharedDesk>, headers: HeaderMap) -> Response {
    if let Err(r) = authorized(&desk, &headers) {
        return *r;
    }
    let pending = desk.queue.pending().iter().map(Pending::of).collect();
    no_store(Json(PendingList { pending }).into_response())
}

/// `POST /approvals/api/<id>`.
pub async fn decide(
    State(desk): State<SharedDesk>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(r) = authorized(&desk, &headers) {
        return *r;
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "the body is too large");
    };
    let body: DecisionBody = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("the body: {e}")),
    };
    let answer = match answer_of(&body) {
        Ok(a) => a,
        Err(problem) => return error(StatusCode::BAD_REQUEST, problem),
    };
    let operator = clean_text(
        body.operator.as_deref().unwrap_or_default(),
        MAX_OPERATOR_CHARS,
    );
    let by = if operator.is_empty() {
        "portcullis approvals (admin token)".to_owned()
    } else {
        format!("portcullis approvals (admin token; operator says {operator:?})")
    };
    match desk.queue.decide(&id, answer, &by) {
        Ok(req) => {
            tracing::info!(server = %req.server, tool = %req.tool, principal = %req.principal, %by, decision = %body.decision, "decided through the admin API");
            no_store(
                Json(Decided {
                    id,
                    decision: body.decision,
                    server: req.server,
                    tool: req.tool,
                    principal: req.principal,
                })
                .into_response(),
            )
        }
        Err(e) => error(StatusCode::NOT_FOUND, &e.to_string()),
    }
}

fn answer_of(body: &DecisionBody) -> Result<ConsentAnswer, &'static str> {
    match body.decision.as_str() {
        "approve" => {
            if body.reason.is_some() {
                return Err("a reason goes with a deny");
            }
            let remember = match body.remember.as_deref().unwrap_or("once") {
                "once" => Remember::Once,
                "session" => Remember::Session,
                "always" => Remember::Always { ttl: ALWAYS_FOR },
                _ => return Err("remember is once, session or always"),
            };
            let scope = match body.scope.as_deref().unwrap_or("arguments") {
                "arguments" => Scope::Arguments,
                "tool" => Scope::Tool,
                _ => return Err("for is arguments or tool"),
            };
            Ok(ConsentAnswer::Approve { remember, scope })
        }
        "deny" => {
            if body.remember.is_some() || body.scope.is_some() {
                return Err("remember and for go with an approve");
            }
            Ok(ConsentAnswer::Deny {
                reason: clean_text(body.reason.as_deref().unwrap_or_default(), MAX_REASON_CHARS),
            })
        }
        _ => Err("decision is approve or deny"),
    }
}

/// The host check and the admin token.
fn authorized(desk: &super::Desk, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let host_ok = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| desk.hosts.host_allowed(h));
    if !host_ok {
        return Err(Box::new(error(StatusCode::FORBIDDEN, "Host not allowed")));
    }
    if !desk.admin.bearer_ok(headers) {
        tracing::warn!("approvals API: a request without the admin token was refused");
        let mut resp = error(
            StatusCode::UNAUTHORIZED,
            "the admin token (approvals.admin_token) is missing or wrong",
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"portcullis approvals\""),
        );
        return Err(Box::new(resp));
    }
    Ok(())
}

fn error(status: StatusCode, message: &str) -> Response {
    no_store((status, Json(serde_json::json!({ "error": message }))).into_response())
}

fn no_store(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}
