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
/// The front gateway's OpenID Connect client for browser sign-in (`auth.sign_in`).
const SIGN_IN_CLIENT: &str = "portcullis-browser";
const SIGN_IN_SECRET: &str = "browser-secret-2b7d";

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
        // The front gateway's port is chosen first: its sign-in redirect URI is registered
        // at the authorization server before either starts.
        let front_port = free_port();
        let front = Gateway::start_on(
            &format!(
                r#"[auth]
issuer = "{issuer}"
scopes_supported = ["mcp:tools"]
sign_in = {{ client_id = "{SIGN_IN_CLIENT}", secret_env = "SIGN_IN_SECRET" }}

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
            front_port,
            &[
                ("PORTCULLIS_STATE", db.as_ref()),
                ("SIGN_IN_SECRET", SIGN_IN_SECRET.as_ref()),
            ],
        );
        let sign_in = OAuthClient::authorization_code(
            SIGN_IN_CLIENT,
            SIGN_IN_SECRET,
            "openid",
            &format!("{}/oauth/signin/callback", front.base),
        );
        let mut config = AuthServerConfig::new()
            .client(OAuthClient::client_credentials(
                ALICE.0,
                ALICE.1,
                "mcp:tools",
            ))
            .client(OAuthClient::client_credentials(BOB.0, BOB.1, "mcp:tools"))
            .client(sign_in)
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

/// What the browser shows now: the gateway's consent page, a login or consent page of the
/// authorization server, or the gateway's final message.
async fn page_kind(browser: &mut Browser) -> &'static str {
    let probe = "document.querySelector('#message') ? 'message' \
        : document.querySelector('#approve') ? 'approve' \
        : document.querySelector('input[name=login]') ? 'login' \
        : document.querySelector('button[type=submit]') ? 'submit' : ''";
    for _ in 0..150 {
        let kind = browser.eval(probe).await.unwrap_or_default();
        match kind.as_str() {
            Some("message") => return "message",
            Some("approve") => return "approve",
            Some("login") => return "login",
            Some("submit") => return "submit",
            _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    let at = browser.url().await.unwrap_or_default();
    panic!(
        "no known page at {at}: {}",
        browser.text().await.unwrap_or_default()
    );
}

/// The person `login` opens `url` and goes through every page until the gateway's final
/// message (sign-in at the `[auth]` issuer, the consent page, login and consent at the
/// server's authorization server, the callback). Returns that message.
async fn connect_in_browser(browser: &mut Browser, url: &str, login: &str) -> String {
    browser.goto(url).await.expect("the link opens");
    for _ in 0..12 {
        match page_kind(browser).await {
            "message" => return browser.text().await.expect("text"),
            "approve" => browser
                .click_and_wait_for_load("#approve")
                .await
                .expect("approve"),
            "login" => submit_login(browser, login).await,
            _ => browser
                .click_and_wait_for_load("button[type=submit]")
                .await
                .expect("consent at the authorization server"),
        }
    }
    panic!("no end after 12 pages");
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
    // The link first asks the person to sign in at the gateway's issuer (as Alice), then
    // shows the consent page: it names the client, the user, the server and where the
    // browser comes back.
    browser.goto(&url).await.expect("the link opens");
    assert_eq!(
        page_kind(&mut browser).await,
        "login",
        "sign-in comes first"
    );
    sign_in_as(&mut browser, ALICE.0).await;
    assert_eq!(page_kind(&mut browser).await, "approve");
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
    // The session listens on its standalone stream: once the person is done in the browser,
    // it hears `notifications/elicitation/complete` for the id it was given, and nothing else
    // about the flow.
    let elicitation_id = first["error"]["data"]["elicitations"][0]["elicitationId"]
        .as_str()
        .expect("an id")
        .to_owned();
    let mut stream = alice.get_stream(&[]).await;
    assert_eq!(stream.status, 200);
    let done = connect_in_browser(&mut browser, &url, ALICE.0).await;
    assert!(done.contains("Connected"), "callback page: {done}");
    let event = stream
        .next_within(std::time::Duration::from_secs(10))
        .await
        .expect("a notification in time")
        .expect("the stream stays open");
    let note: Value = serde_json::from_str(&event.data).expect("JSON");
    assert_eq!(
        note["method"], "notifications/elicitation/complete",
        "{note}"
    );
    assert_eq!(note["params"], json!({ "elicitationId": elicitation_id }));
    drop(stream);

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

    // Signed in, the consent page shows; framed by another origin of the same site (another
    // port: the sign-in cookie is sent, so the frame would show the page), it is refused.
    let mut browser = Browser::launch().await.expect("chromium");
    browser.goto(&url).await.expect("the link opens");
    sign_in_as(&mut browser, ALICE.0).await;
    assert_eq!(page_kind(&mut browser).await, "approve");
    browser
        .goto(&format!("{}/healthz", w.protected.base))
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
    let done = connect_in_browser(&mut browser, &url, ALICE.0).await;
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
    let done = connect_in_browser(&mut browser, &url, ALICE.0).await;
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

/// Fills the authorization server's login form as `login` and submits it.
async fn submit_login(browser: &mut Browser, login: &str) {
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
}

/// Signs in on the authorization server's login page (and its consent page, if any) until
/// the gateway's page is back.
async fn sign_in_as(browser: &mut Browser, login: &str) {
    submit_login(browser, login).await;
    for _ in 0..3 {
        match page_kind(browser).await {
            "submit" => browser
                .click_and_wait_for_load("button[type=submit]")
                .await
                .expect("consent to the sign-in"),
            _ => return,
        }
    }
}

/// The phishing the MCP spec warns about: Bob triggers a link under his principal and
/// sends it to Alice. Alice's browser, signed in as Alice, is refused: nothing reaches the
/// authorization server, and Bob's principal never gets Alice's account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_made_for_another_user_is_refused_after_sign_in() {
    let w = World::start();
    let caps = json!({ "elicitation": { "url": {} } });
    let (bob, _) = w.session(BOB, caps).await;
    let bobs_link = connect_url(&bob.request(1, "tools/list", json!({})).await);
    let mut alices_browser = Browser::launch().await.expect("chromium");
    alices_browser
        .goto(&bobs_link)
        .await
        .expect("the link opens");
    assert_eq!(page_kind(&mut alices_browser).await, "login");
    sign_in_as(&mut alices_browser, ALICE.0).await;
    assert_eq!(page_kind(&mut alices_browser).await, "message");
    let text = alices_browser.text().await.expect("text");
    assert!(text.contains("another user"), "{text}");
    // Bob is still not connected.
    let again = bob.request(2, "tools/list", json!({})).await;
    assert_eq!(again["error"]["code"], -32042, "{again}");
}
