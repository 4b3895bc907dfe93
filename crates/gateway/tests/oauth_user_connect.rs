//! Per-user OAuth at a remote server (`credential = { oauth = {} }`), end to end, with real
//! parts only: `oidc-provider` as the authorization server (its own login and consent pages,
//! dynamic client registration, refresh tokens), a second Portcullis with `[auth]` as the
//! protected MCP server (it answers 401 with a challenge, serves RFC 9728 metadata and checks
//! the token's audience), the gateway under test in front of it with `[auth]` of its own (so
//! that Alice and Bob are different principals), and headless Chromium as the person.
//!
//! ```text
//! test (alice/bob tokens) → front gateway ──(alice's grant)──→ protected gateway → fixture
//!                                │   ↑                               │
//!          Chromium: consent page → oidc-provider login/consent → callback
//! ```

mod support;

use serde_json::{Value, json};
use support::browser::Browser;
use support::oauth::gateway::free_port;
use support::oauth::{AuthServer, AuthServerConfig, OAuthClient, ResourceServer};
use support::{FixtureHttp, Gateway, RawHttp};

const ALICE: (&str, &str) = ("alice-agent", "alice-secret-0c5b");
const BOB: (&str, &str) = ("bob-agent", "bob-secret-91aa");

struct World {
    auth: AuthServer,
    front: Gateway,
    protected: Gateway,
    _fixture: FixtureHttp,
    state: tempfile::TempDir,
}

impl World {
    fn start() -> World {
        Self::with_token_ttl(std::time::Duration::from_secs(300))
    }

    /// `ttl`: how long the protected server's tokens live.
    fn with_token_ttl(ttl: std::time::Duration) -> World {
        let as_port = free_port();
        let issuer = format!("http://127.0.0.1:{as_port}");
        let fixture = FixtureHttp::start(&[]);
        // The MCP server that wants each user's own token, for its own audience.
        let protected = Gateway::start(&format!(
            r#"[auth]
issuer = "{issuer}"
scopes_supported = ["mcp:tools"]

[servers.fx]
url = "{fixture}"

[[rules]]
server = "fx"
tools = ["*"]
scopes = ["mcp:tools"]
effect = "allow"
"#,
            fixture = fixture.url
        ));
        let state = tempfile::tempdir().expect("tempdir");
        let db = format!("sqlite:{}", state.path().join("state.db").display());
        let front = Gateway::start_with_env(
            &format!(
                r#"[auth]
issuer = "{issuer}"
scopes_supported = ["mcp:tools"]

[servers.remote]
url = "{upstream}"
credential = {{ oauth = {{}} }}

[[rules]]
server = "remote"
tools = ["*"]
scopes = ["mcp:tools"]
effect = "allow"
"#,
                upstream = protected.url("fx")
            ),
            &[("PORTCULLIS_STATE", db.as_ref())],
        );
        let mut config = AuthServerConfig::new()
            .client(OAuthClient::client_credentials(
                ALICE.0,
                ALICE.1,
                "mcp:tools",
            ))
            .client(OAuthClient::client_credentials(BOB.0, BOB.1, "mcp:tools"))
            .resource(ResourceServer::jwt(&front.url("remote"), "mcp:tools"))
            .resource(ResourceServer::jwt(&protected.url("fx"), "mcp:tools").ttl(ttl));
        config.port = as_port;
        config.dev_interactions = true;
        config.registration = true;
        config.refresh_tokens = true;
        let auth = AuthServer::start(config);
        World {
            auth,
            front,
            protected,
            _fixture: fixture,
            state,
        }
    }

    /// An MCP session at the front gateway as `who`, declaring `capabilities`.
    async fn session(&self, who: (&str, &str), capabilities: Value) -> (RawHttp, String) {
        let token = self
            .auth
            .client_credentials(
                who.0,
                who.1,
                Some("mcp:tools"),
                Some(&self.front.url("remote")),
            )
            .await;
        let mut http = RawHttp::new(&self.front.url("remote"));
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
        http.client = reqwest::Client::builder()
            .no_proxy()
            .default_headers(headers)
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("client");
        http.initialize(capabilities).await;
        (http, token)
    }
}

/// The URL-mode elicitation of a `-32042` answer.
fn connect_url(response: &Value) -> String {
    let error = &response["error"];
    assert_eq!(
        error["code"], -32042,
        "expected URLElicitationRequired: {response}"
    );
    let elicitation = &error["data"]["elicitations"][0];
    assert_eq!(elicitation["mode"], "url");
    assert!(
        elicitation["elicitationId"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    let url = elicitation["url"].as_str().expect("url").to_owned();
    assert!(
        error["message"].as_str().unwrap_or("").contains(&url),
        "the message carries the link too: {error}"
    );
    url
}

/// The person: approves on the gateway's page, signs in and consents at oidc-provider, and
/// lands on the gateway's callback. Returns the final page's text.
async fn connect_in_browser(browser: &mut Browser, url: &str, login: &str) -> String {
    browser.goto(url).await.expect("the consent page opens");
    browser
        .wait_for("#approve")
        .await
        .expect("an approve button");
    browser
        .click_and_wait_for_load("#approve")
        .await
        .expect("approve");
    if let Err(e) = browser.wait_for("input[name=login]").await {
        let at = browser.url().await.unwrap_or_default();
        let text = browser.text().await.unwrap_or_default();
        panic!("no login page of the authorization server ({e}); at {at}: {text}");
    }
    browser
        .eval(&format!(
            "document.querySelector('input[name=login]').value = {login:?}; \
             document.querySelector('input[name=password]').value = 'any'; true"
        ))
        .await
        .expect("fill the login form");
    browser
        .click_and_wait_for_load("button[type=submit]")
        .await
        .expect("sign in");
    // The consent prompt of oidc-provider's development pages.
    browser
        .wait_for("button[type=submit]")
        .await
        .expect("the authorization server's consent page");
    browser
        .click_and_wait_for_load("button[type=submit]")
        .await
        .expect("consent");
    browser
        .wait_for("#message")
        .await
        .expect("the gateway's callback page");
    browser.text().await.expect("text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_connects_through_the_consent_page_and_the_call_carries_their_own_token() {
    let w = World::start();
    let caps = json!({ "elicitation": { "url": {} } });
    let (alice, alice_token) = w.session(ALICE, caps.clone()).await;

    // Not connected: the list asks for a URL elicitation pointing at the gateway's page.
    let first = alice.request(1, "tools/list", json!({})).await;
    let url = connect_url(&first);
    assert!(
        url.starts_with(&format!("{}/oauth/connect/", w.front.base)),
        "{url}"
    );

    let mut browser = Browser::launch().await.expect("chromium");
    // The page names the client, the user, the server and where the browser comes back.
    browser.goto(&url).await.expect("consent page");
    browser.wait_for("#approve").await.expect("approve button");
    let page = browser.text().await.expect("text");
    assert!(
        page.contains(ALICE.0),
        "names the MCP client and the user: {page}"
    );
    assert!(page.contains("remote"), "names the server: {page}");
    assert!(
        page.contains(&format!("{}/oauth/callback", w.front.base)),
        "redirect URI: {page}"
    );
    assert!(
        page.contains(w.auth.issuer()),
        "names the authorization server: {page}"
    );
    let done = connect_in_browser(&mut browser, &url, "alice@example.com").await;
    assert!(done.contains("Connected"), "callback page: {done}");

    // The cookies the pages set are __Host-, Secure, HttpOnly, SameSite=Lax.
    let cookies = browser.cookies().await.expect("cookies");
    let ours: Vec<_> = cookies
        .iter()
        .filter(|c| c.name.starts_with("__Host-portcullis"))
        .collect();
    assert!(!ours.is_empty(), "{cookies:?}");
    for c in ours {
        assert!(c.secure && c.http_only && c.path == "/", "{c:?}");
        assert_eq!(c.same_site.as_deref(), Some("Lax"), "{c:?}");
    }

    // Now the same session lists and calls through the protected server, which accepted
    // Alice's token for its own audience.
    let tools = alice.request(2, "tools/list", json!({})).await;
    assert!(
        tools["result"]["tools"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "{tools}"
    );
    let call = alice
        .request(
            3,
            "tools/call",
            json!({ "name": "echo", "arguments": { "message": "hi" } }),
        )
        .await;
    assert_ne!(call["result"]["isError"], true, "{call}");
    assert_eq!(call["result"]["content"][0]["text"], "hi", "{call}");

    // Bob is another principal: Alice's grant is not his.
    let (bob, bob_token) = w.session(BOB, caps).await;
    let bobs = bob.request(1, "tools/list", json!({})).await;
    let bob_url = connect_url(&bobs);
    assert_ne!(bob_url, url);

    // No token the gateway holds ever reaches a response, its log, the audit log, or the
    // state database in the clear: any JWT there other than the callers' own would be one.
    let mut seen = String::new();
    for v in [&first, &tools, &call, &bobs] {
        seen.push_str(&v.to_string());
    }
    seen.push_str(&w.front.proc.stderr());
    let audit = std::process::Command::new(support::portcullis_bin())
        .args(["audit", "query", "--json"])
        .env(
            "PORTCULLIS_STATE",
            format!("sqlite:{}", w.state.path().join("state.db").display()),
        )
        .output()
        .expect("portcullis audit");
    let audit_text = String::from_utf8_lossy(&audit.stdout).into_owned();
    assert!(
        audit_text.contains("oauth"),
        "the connection is audited: {audit_text}"
    );
    assert!(audit_text.contains("connected"), "{audit_text}");
    seen.push_str(&audit_text);
    let db = std::fs::read(w.state.path().join("state.db")).unwrap_or_default();
    seen.push_str(&String::from_utf8_lossy(&db));
    let seen = seen.replace(&alice_token, "").replace(&bob_token, "");
    assert!(
        !seen.contains("eyJ"),
        "a token in the clear: {}",
        &seen[seen.find("eyJ").unwrap_or(0)..][..80.min(seen.len())]
    );
    drop(w.protected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_url_elicitation_gets_the_link_in_a_tool_error() {
    let w = World::start();
    let (alice, _) = w.session(ALICE, json!({})).await;
    let call = alice
        .request(
            1,
            "tools/call",
            json!({ "name": "echo", "arguments": { "message": "hi" } }),
        )
        .await;
    assert_eq!(call["result"]["isError"], true, "{call}");
    let text = call["result"]["content"][0]["text"].as_str().unwrap_or("");
    assert!(
        text.contains(&format!("{}/oauth/connect/", w.front.base)),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consent_page_cannot_be_framed_and_a_forged_approval_is_refused() {
    let w = World::start();
    let (alice, _) = w
        .session(ALICE, json!({ "elicitation": { "url": {} } }))
        .await;
    let url = connect_url(&alice.request(1, "tools/list", json!({})).await);

    // Framed by another origin (localhost vs 127.0.0.1): refused by frame-ancestors.
    let mut browser = Browser::launch().await.expect("chromium");
    let other_origin = w.front.base.replace("127.0.0.1", "localhost");
    browser
        .goto(&format!("{other_origin}/healthz"))
        .await
        .expect("another origin");
    let framed = browser.frame(&url).await.expect("frame attempt");
    assert!(
        framed.blocked(),
        "the consent page loaded inside a frame: {framed:?}"
    );

    // A cross-site POST without the page's CSRF cookie and token: refused, nothing started.
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let forged = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "http://evil.example")
        .body("decision=approve&csrf=forged")
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), 403);
    let forged = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", "__Host-portcullis-csrf=abc")
        .body("decision=approve&csrf=abc")
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), 403, "a token not bound to the cookie");

    // A callback in a browser that did not approve: refused before the state is used.
    let callback = http
        .get(format!(
            "{}/oauth/callback?code=stolen&state=whatever",
            w.front.base
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(callback.status(), 403);

    // The link still works for the real person afterwards.
    let done = connect_in_browser(&mut browser, &url, "alice@example.com").await;
    assert!(done.contains("Connected"), "{done}");
    let tools = alice.request(2, "tools/list", json!({})).await;
    assert!(tools["result"]["tools"].is_array(), "{tools}");
}

/// `portcullis stdio` (a desktop host's gateway) has no HTTP front door: it serves the
/// consent page alone on `gateway.listen` (loopback), and the flow is the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desktop_stdio_gateway_serves_the_consent_page_on_loopback() {
    let as_port = free_port();
    let issuer = format!("http://127.0.0.1:{as_port}");
    let fixture = FixtureHttp::start(&[]);
    let protected = Gateway::start(&format!(
        "[auth]\nissuer = \"{issuer}\"\nscopes_supported = [\"mcp:tools\"]\n\n\
         [servers.fx]\nurl = \"{}\"\n\n[[rules]]\nserver = \"fx\"\ntools = [\"*\"]\n\
         scopes = [\"mcp:tools\"]\neffect = \"allow\"\n",
        fixture.url
    ));
    let mut config =
        AuthServerConfig::new().resource(ResourceServer::jwt(&protected.url("fx"), "mcp:tools"));
    config.port = as_port;
    config.dev_interactions = true;
    config.registration = true;
    let _auth = AuthServer::start(config);
    let pages_port = free_port();
    let mut desktop = support::StdioGateway::start(
        &format!(
            "[gateway]\nlisten = \"127.0.0.1:{pages_port}\"\n\n[servers.remote]\nurl = \"{}\"\n\
             credential = {{ oauth = {{}} }}\n\n[[rules]]\nserver = \"remote\"\ntools = [\"*\"]\n\
             effect = \"allow\"\n",
            protected.url("fx")
        ),
        "remote",
    );
    desktop.initialize("2025-11-25", json!({ "elicitation": { "url": {} } }));
    let url =
        tokio::task::block_in_place(|| connect_url(&desktop.request(1, "tools/list", json!({}))));
    assert!(
        url.starts_with(&format!("http://127.0.0.1:{pages_port}/oauth/connect/")),
        "{url}"
    );
    let mut browser = Browser::launch().await.expect("chromium");
    let done = connect_in_browser(&mut browser, &url, "dana@example.com").await;
    assert!(done.contains("Connected"), "{done}");
    let call = tokio::task::block_in_place(|| {
        desktop.request(
            2,
            "tools/call",
            json!({ "name": "echo", "arguments": { "message": "from the desk" } }),
        )
    });
    assert_eq!(
        call["result"]["content"][0]["text"], "from the desk",
        "{call}"
    );
}

/// The grants `portcullis connections list --json` shows for the front gateway.
fn connections(w: &World) -> Value {
    let out = std::process::Command::new(support::portcullis_bin())
        .args(["connections", "list", "--json"])
        .env(
            "PORTCULLIS_STATE",
            format!("sqlite:{}", w.state.path().join("state.db").display()),
        )
        .output()
        .expect("portcullis connections list");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// A token about to expire is refreshed before use (the rotated grant replaces the old one
/// in the vault), and the calls go on without the user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_token_is_refreshed_and_the_calls_go_on() {
    // Tokens of 20 s are always within the refresh margin: every call refreshes first.
    let w = World::with_token_ttl(std::time::Duration::from_secs(20));
    let (alice, _) = w
        .session(ALICE, json!({ "elicitation": { "url": {} } }))
        .await;
    let url = connect_url(&alice.request(1, "tools/list", json!({})).await);
    let mut browser = Browser::launch().await.expect("chromium");
    let done = connect_in_browser(&mut browser, &url, "alice@example.com").await;
    assert!(done.contains("Connected"), "{done}");
    let before = connections(&w).to_string();
    for id in 2..5 {
        let call = alice
            .request(
                id,
                "tools/call",
                json!({ "name": "echo", "arguments": { "message": "again" } }),
            )
            .await;
        assert_eq!(call["result"]["content"][0]["text"], "again", "{call}");
    }
    let after = connections(&w).to_string();
    assert_ne!(before, after, "the grant was not refreshed: {after}");
}
