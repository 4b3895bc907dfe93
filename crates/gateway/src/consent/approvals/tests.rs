//! The approvals page and API over real HTTP on loopback, in process: a gateway built from a
//! config with `[approvals]`, its page router served as `portcullis stdio` serves it, a call
//! waiting in its queue, and requests as a browser and as the CLI make them. (The binary,
//! headless Chromium and a real MCP client are in `tests/approvals.rs`.)

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{
    CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, HOST, LOCATION, ORIGIN, SET_COOKIE,
};
use serde_json::{Value, json};

use crate::config::{Config, ConfigSource};
use crate::consent::request::{ConsentAnswer, ConsentRequest, Remember, Scope};
use crate::gateway::Gateway;

/// `application/x-www-form-urlencoded`, as a browser posts a form.
trait FormBody {
    fn form_body<I, K, V>(self, pairs: I) -> Self
    where
        I: IntoIterator,
        I::Item: std::borrow::Borrow<(K, V)>,
        K: AsRef<str>,
        V: AsRef<str>;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_body<I, K, V>(self, pairs: I) -> Self
    where
        I: IntoIterator,
        I::Item: std::borrow::Borrow<(K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
    }
}

const TOKEN: &str = "test-admin-token-5b0c6f8e2d4a9c1b7e3f";

struct Desk {
    gateway: Arc<Gateway>,
    base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn desk() -> Desk {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin.token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let text = format!(
        "[gateway]\nstate = \"sqlite:{}\"\n\n[approvals]\nadmin_token = {{ file = \"{}\" }}\nmax_pending = 4\n",
        dir.path().join("state.db").display(),
        token.display()
    );
    let config = Config::parse(&text, ConfigSource::Embedded("test")).unwrap();
    let gateway = Gateway::new(config).unwrap();
    let app = crate::transport::pages::router(&gateway).expect("the approvals routes");
    let app = crate::transport::http::forwarded::layer(app, &gateway.config.gateway)
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    gateway.approvals.set_base(&base);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Desk {
        gateway,
        base,
        http,
        _dir: dir,
    }
}

fn request(id: &str, arguments: Value) -> ConsentRequest {
    ConsentRequest {
        id: id.to_owned(),
        principal: "sub:alice".into(),
        session: "session-1".into(),
        server: "files".into(),
        tool: "write_file".into(),
        arguments,
        arguments_digest: "sha256:ab".into(),
        rule: "rule 2 (portcullis.toml:14)".into(),
        created: SystemTime::now(),
        deadline: Instant::now() + Duration::from_secs(30),
    }
}

impl Desk {
    /// A call waiting in the queue, on its own task.
    async fn hold(
        &self,
        id: &str,
        arguments: Value,
    ) -> tokio::task::JoinHandle<Option<crate::consent::approvals::Decision>> {
        let gateway = self.gateway.clone();
        let req = request(id, arguments);
        let waiter = tokio::spawn(async move { gateway.approvals.wait_for_decision(&req).await });
        for _ in 0..500 {
            if self.gateway.approvals.get(id).is_some() {
                return waiter;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("{id} never waited");
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Signs in as a browser would; the session cookie.
    async fn sign_in(&self) -> String {
        let resp = self
            .http
            .post(self.url("/approvals/login"))
            .header(ORIGIN, &self.base)
            .form_body(&[("token", TOKEN)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let cookie = resp.headers()[SET_COOKIE].to_str().unwrap().to_owned();
        assert!(cookie.starts_with("__Host-portcullis-admin="), "{cookie}");
        for flag in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(cookie.contains(flag), "{cookie} lacks {flag}");
        }
        cookie.split(';').next().unwrap().to_owned()
    }

    async fn page(&self, cookie: &str) -> String {
        let resp = self
            .http
            .get(self.url("/approvals"))
            .header(COOKIE, cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.text().await.unwrap()
    }
}

/// The CSRF token in a page's forms.
fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_api_lists_and_decides_with_the_admin_token_only() {
    let d = desk().await;
    let waiter = d.hold("req-1", json!({"path": "/srv/a"})).await;
    let anonymous = d
        .http
        .get(d.url("/approvals/api/pending"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let wrong = d
        .http
        .post(d.url("/approvals/api/req-1"))
        .bearer_auth("not-the-token-000000000000000000000000")
        .json(&json!({"decision": "approve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(d.gateway.approvals.get("req-1").is_some(), "still waiting");

    let list: Value = d
        .http
        .get(d.url("/approvals/api/pending"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["pending"][0]["id"], "req-1");
    assert_eq!(list["pending"][0]["arguments"], json!({"path": "/srv/a"}));
    assert!(list["pending"][0]["seconds_left"].as_u64().unwrap() > 20);

    let decided = d
        .http
        .post(d.url("/approvals/api/req-1"))
        .bearer_auth(TOKEN)
        .json(&json!({"decision": "approve", "remember": "session", "for": "tool", "operator": "ops\u{1b}[2Jbob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status(), StatusCode::OK);
    let decision = waiter.await.unwrap().expect("decided");
    assert_eq!(
        decision.answer,
        ConsentAnswer::Approve {
            remember: Remember::Session,
            scope: Scope::Tool
        }
    );
    assert!(decision.by.contains("admin token"), "{}", decision.by);
    assert!(
        !decision.by.contains('\u{1b}'),
        "no control character reaches the audit record: {}",
        decision.by
    );
    let again = d
        .http
        .post(d.url("/approvals/api/req-1"))
        .bearer_auth(TOKEN)
        .json(&json!({"decision": "deny"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND, "decided once");
}

#[tokio::test]
async fn an_api_body_that_mixes_approve_and_deny_is_refused() {
    let d = desk().await;
    let waiter = d.hold("req-2", json!({})).await;
    for body in [
        json!({"decision": "approve", "reason": "x"}),
        json!({"decision": "deny", "remember": "always"}),
        json!({"decision": "maybe"}),
        json!({"decision": "approve", "remember": "forever"}),
        json!({"decision": "approve", "extra": 1}),
    ] {
        let resp = d
            .http
            .post(d.url("/approvals/api/req-2"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    assert!(d.gateway.approvals.get("req-2").is_some(), "still waiting");
    waiter.abort();
}

#[tokio::test]
async fn the_page_shows_arguments_escaped_with_hidden_characters_as_code_points() {
    let d = desk().await;
    let _waiter = d
        .hold(
            "req-3",
            json!({"path": "<script>alert(1)</script>", "name": "report\u{202e}fdp.exe", "tag": "a\u{e0041}b"}),
        )
        .await;
    let cookie = d.sign_in().await;
    let page = d.page(&cookie).await;
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<script>"), "{page}");
    assert!(page.contains("report\\u{202E}fdp.exe"), "{page}");
    assert!(page.contains("a\\u{E0041}b"), "{page}");
    assert!(!page.contains('\u{202e}') && !page.contains('\u{e0041}'));
    for shown in [
        "sub:alice",
        "files",
        "write_file",
        "rule 2 (portcullis.toml:14)",
    ] {
        assert!(page.contains(shown), "the page names {shown}");
    }
}

#[tokio::test]
async fn the_page_is_not_framed_nor_cached_and_checks_the_host() {
    let d = desk().await;
    let resp = d.http.get(d.url("/approvals")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let csp = resp.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert!(
        resp.text().await.unwrap().contains("name=\"token\""),
        "the sign-in form"
    );
    let rebound = d
        .http
        .get(d.url("/approvals"))
        .header(HOST, "attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), StatusCode::FORBIDDEN, "DNS rebinding");
}

#[tokio::test]
async fn signing_in_needs_the_token_and_the_gateways_own_origin() {
    let d = desk().await;
    let no_origin = d
        .http
        .post(d.url("/approvals/login"))
        .form_body(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(no_origin.status(), StatusCode::FORBIDDEN);
    let other_site = d
        .http
        .post(d.url("/approvals/login"))
        .header(ORIGIN, "http://localhost:9")
        .form_body(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(other_site.status(), StatusCode::FORBIDDEN);
    let wrong = d
        .http
        .post(d.url("/approvals/login"))
        .header(ORIGIN, &d.base)
        .form_body(&[("token", "guess-guess-guess-guess-guess-guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert!(wrong.headers().get(SET_COOKIE).is_none());
    d.sign_in().await;
}

#[tokio::test]
async fn a_decision_needs_the_sessions_csrf_token_and_origin() {
    let d = desk().await;
    let waiter = d.hold("req-4", json!({"n": 1})).await;
    let cookie = d.sign_in().await;
    let csrf = csrf_of(&d.page(&cookie).await);
    let post = |cookie: Option<&str>, origin: &str, form: Vec<(&'static str, String)>| {
        let mut req = d
            .http
            .post(d.url("/approvals/decide/req-4"))
            .header(ORIGIN, origin)
            .form_body(&form);
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        req.send()
    };
    let approve = |csrf: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("decision", "approve".to_owned()),
            ("remember", "once".to_owned()),
            ("for", "arguments".to_owned()),
        ]
    };
    // A forged form: no token, another session's token, another origin, no session.
    let other = d.sign_in().await;
    let others_csrf = csrf_of(&d.page(&other).await);
    for (cookie, origin, form) in [
        (Some(cookie.as_str()), d.base.as_str(), approve("")),
        (
            Some(cookie.as_str()),
            d.base.as_str(),
            approve(&others_csrf),
        ),
        (Some(cookie.as_str()), "http://localhost:9", approve(&csrf)),
        (None, d.base.as_str(), approve(&csrf)),
    ] {
        let resp = post(cookie, origin, form).await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert!(d.gateway.approvals.get("req-4").is_some(), "still waiting");
    }
    let resp = post(Some(&cookie), &d.base, approve(&csrf)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("Approved"));
    let decision = waiter.await.unwrap().expect("decided");
    assert_eq!(
        decision.answer,
        ConsentAnswer::Approve {
            remember: Remember::Once,
            scope: Scope::Arguments
        }
    );
    assert!(decision.by.starts_with("approvals page"), "{}", decision.by);
    assert!(!decision.by.contains(cookie.split('=').nth(1).unwrap()));
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let d = desk().await;
    let cookie = d.sign_in().await;
    let csrf = csrf_of(&d.page(&cookie).await);
    let resp = d
        .http
        .post(d.url("/approvals/logout"))
        .header(ORIGIN, &d.base)
        .header(COOKIE, &cookie)
        .form_body(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[LOCATION], "/approvals");
    let page = d.page(&cookie).await;
    assert!(page.contains("name=\"token\""), "back to the sign-in form");
}

#[tokio::test]
async fn a_deny_carries_its_reason_without_control_characters() {
    let d = desk().await;
    let waiter = d.hold("req-5", json!({})).await;
    let cookie = d.sign_in().await;
    let csrf = csrf_of(&d.page(&cookie).await);
    let resp = d
        .http
        .post(d.url("/approvals/decide/req-5"))
        .header(ORIGIN, &d.base)
        .header(COOKIE, &cookie)
        .form_body(&[
            ("csrf", csrf.as_str()),
            ("decision", "deny"),
            ("reason", "not now\u{1b}[31m\u{202e}"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let decision = waiter.await.unwrap().expect("decided");
    assert_eq!(
        decision.answer,
        ConsentAnswer::Deny {
            reason: "not now[31m".into()
        }
    );
}
