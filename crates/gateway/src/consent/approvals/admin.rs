//! Who may decide: whoever holds the admin token (`approvals.admin_token`).
//!
//! - `portcullis approvals` (and any script) sends it as a bearer token to the admin API;
//! - a browser signs in once with it on the page's login form, and gets a session: a random
//!   id in a `__Host-` cookie (`Secure`, `HttpOnly`, `SameSite=Lax`, path `/`), known to this
//!   gateway process only, for [`SESSION_LIFETIME`]; its forms carry a CSRF token that is an
//!   HMAC of that session id, so a form only works in the browser whose cookie it was made
//!   for.
//!
//! The token is compared in constant time (as SHA-256 digests, so not even its length shows
//! in the timing) and must be long enough to make guessing hopeless; it is never logged.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::{constant_time, digest, hmac};
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_auth::secret::{Secret, SecretError};

use crate::config::{AdminTokenSource, ApprovalsConfig};
use crate::oauth::web::cookie;

/// The session cookie of a signed-in browser.
pub const SESSION_COOKIE: &str = "__Host-portcullis-admin";
/// How long a browser stays signed in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Shortest admin token accepted: 32 characters (`openssl rand -base64 32` gives 44).
pub const MIN_TOKEN_CHARS: usize = 32;
/// Most signed-in browsers at once; signing in past it signs the oldest out.
const MAX_SESSIONS: usize = 32;

/// Why the admin token cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AdminAuthError {
    #[error("approvals.admin_token: {0}")]
    Read(#[from] SecretError),
    #[error(
        "approvals.admin_token ({0}) is shorter than {MIN_TOKEN_CHARS} characters: use a random token, e.g. the output of `openssl rand -base64 32`"
    )]
    TooShort(String),
}

/// Reads the admin token where the config says it is (the gateway at start, the CLI).
pub fn read_admin_token(source: &AdminTokenSource) -> Result<Secret, AdminAuthError> {
    let secret = match source {
        AdminTokenSource::Env(name) => Secret::from_env(name)?,
        AdminTokenSource::File(path) => Secret::from_file(path)?,
    };
    if secret.expose().chars().count() < MIN_TOKEN_CHARS {
        return Err(AdminAuthError::TooShort(source.to_string()));
    }
    Ok(secret)
}

/// The admin token's check, and the signed-in browsers.
pub struct AdminAuth {
    token: digest::Digest,
    /// Signs CSRF tokens and session labels; new at each start, like the sessions.
    key: hmac::Key,
    /// Session id → when it ends.
    sessions: Mutex<HashMap<String, Instant>>,
}

impl AdminAuth {
    /// From `[approvals]`: reads the token now, so a missing one stops the start.
    pub fn from_config(config: &ApprovalsConfig) -> Result<Self, AdminAuthError> {
        Ok(Self::new(&read_admin_token(&config.admin_token)?))
    }

    pub fn new(token: &Secret) -> Self {
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
        AdminAuth {
            token: digest::digest(&digest::SHA256, token.expose().as_bytes()),
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `presented` is the admin token (constant time).
    pub fn token_matches(&self, presented: &str) -> bool {
        let presented = digest::digest(&digest::SHA256, presented.as_bytes());
        constant_time::verify_slices_are_equal(presented.as_ref(), self.token.as_ref()).is_ok()
    }

    /// Whether the request carries `Authorization: Bearer <admin token>`.
    pub fn bearer_ok(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .is_some_and(|t| self.token_matches(t))
    }

    /// Signs a browser in: the new session's id, for the cookie.
    pub fn open_session(&self) -> String {
        let mut id = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut id);
        let id = URL_SAFE_NO_PAD.encode(id);
        let now = Instant::now();
        let mut sessions = self.lock();
        sessions.retain(|_, ends| *ends > now);
        while sessions.len() >= MAX_SESSIONS {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, ends)| **ends)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(old) => sessions.remove(&old),
                None => break,
            };
        }
        sessions.insert(id.clone(), now + SESSION_LIFETIME);
        id
    }

    /// The request's session, when its cookie names a live one.
    pub fn session(&self, headers: &HeaderMap) -> Option<String> {
        let id = cookie(headers, SESSION_COOKIE)?;
        let now = Instant::now();
        let live = self.lock().get(id).is_some_and(|ends| *ends > now);
        live.then(|| id.to_owned())
    }

    /// Signs a browser out.
    pub fn close_session(&self, id: &str) {
        self.lock().remove(id);
    }

    /// The CSRF token of the forms shown to `session`.
    pub fn csrf_token(&self, session: &str) -> String {
        self.tag(&["csrf", session])
    }

    /// Whether `presented` is the CSRF token of `session` (constant time).
    pub fn csrf_ok(&self, session: &str, presented: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(presented) else {
            return false;
        };
        hmac::verify(&self.key, ["csrf", session].join("\0").as_bytes(), &tag).is_ok()
    }

    /// A short name for a session in the audit log and the log, which does not give away
    /// its cookie.
    pub fn session_label(&self, session: &str) -> String {
        let tag = self.tag(&["label", session]);
        tag[..8].to_owned()
    }

    fn tag(&self, parts: &[&str]) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.key, parts.join("\0").as_bytes()).as_ref())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const TOKEN: &str = "k5QH1y0m2cRZ8d2JZb3Vt6Yp8xq0n1w4a7s9e2r5t8u";

    fn auth() -> AdminAuth {
        AdminAuth::new(&Secret::new(TOKEN.into()))
    }

    #[test]
    fn only_the_exact_token_matches() {
        let a = auth();
        assert!(a.token_matches(TOKEN));
        assert!(!a.token_matches(&TOKEN[..TOKEN.len() - 1]));
        assert!(!a.token_matches(&format!("{TOKEN}x")));
        assert!(!a.token_matches(""));
    }

    #[test]
    fn the_bearer_header_carries_the_token() {
        let a = auth();
        let mut h = HeaderMap::new();
        assert!(!a.bearer_ok(&h));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap(),
        );
        assert!(a.bearer_ok(&h));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {TOKEN}")).unwrap(),
        );
        assert!(!a.bearer_ok(&h));
    }

    #[test]
    fn a_short_token_is_refused_at_start() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "letmein\n").unwrap();
        let err = read_admin_token(&AdminTokenSource::File(file.path().into())).unwrap_err();
        assert!(matches!(err, AdminAuthError::TooShort(_)), "{err}");
        assert!(
            !err.to_string().contains("letmein"),
            "the token is never shown"
        );
    }

    #[test]
    fn a_csrf_token_works_only_with_its_session() {
        let a = auth();
        let s1 = a.open_session();
        let s2 = a.open_session();
        let token = a.csrf_token(&s1);
        assert!(a.csrf_ok(&s1, &token));
        assert!(!a.csrf_ok(&s2, &token));
        assert!(!a.csrf_ok(&s1, ""));
        assert!(!a.csrf_ok(&s1, "not base64!"));
        let other_process = auth();
        assert!(
            !other_process.csrf_ok(&s1, &token),
            "tokens are signed with this process's key"
        );
    }

    #[test]
    fn a_session_is_found_by_its_cookie_and_ends_when_closed() {
        let a = auth();
        let id = a.open_session();
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{SESSION_COOKIE}={id}")).unwrap(),
        );
        assert_eq!(a.session(&h).as_deref(), Some(id.as_str()));
        a.close_session(&id);
        assert_eq!(a.session(&h), None);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("__Host-portcullis-admin=made-up"),
        );
        assert_eq!(a.session(&h), None, "a made-up session id is nobody");
    }

    #[test]
    fn signing_in_past_the_bound_signs_the_oldest_out() {
        let a = auth();
        let first = a.open_session();
        for _ in 0..MAX_SESSIONS {
            a.open_session();
        }
        assert_eq!(a.lock().len(), MAX_SESSIONS);
        assert!(!a.lock().contains_key(&first));
    }
}
