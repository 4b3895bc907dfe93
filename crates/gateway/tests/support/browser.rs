//! Headless Chromium for the end-to-end tests of the gateway's browser pages (the OAuth
//! consent page, the OAuth callback): a real browser fetches them, submits their forms,
//! keeps their cookies and enforces their `Content-Security-Policy`, driven over the Chrome
//! DevTools Protocol (CDP) on a loopback websocket ([`cdp`]).
//!
//! The browser is Debian's `chromium` (`scripts/install-peers` installs it when we are root;
//! `PORTCULLIS_CHROMIUM` names another binary). Each [`Browser`] has its own profile in a
//! temporary directory, so tests share no cookies, and is killed with every process it
//! started when dropped ([`launch`]). Every wait is bounded ([`WAIT`] by default, see
//! [`Launch`]) and its error says what was awaited. Only loopback URLs are visited, and
//! nothing but localhost and loopback addresses resolves inside the browser, so nothing it
//! does leaves the machine.
//!
//! ```ignore
//! let mut browser = Browser::launch().await?;
//! browser.open(&format!("{}/oauth/connect/{id}", gateway.base)).await?; // fresh tab, loaded
//! let csrf = browser.value("input[name=csrf]").await?;
//! browser.click_and_wait_for_load("button[value=approve]").await?; // the browser POSTs
//! assert!(browser.url().await?.starts_with(&callback));             // after redirects
//! let cookies = browser.cookies().await?;                           // name, flags, path…
//! // Clickjacking: any page of another origin (a 404 will do) frames the consent page.
//! browser.open(&format!("http://localhost:{port}/")).await?;
//! assert!(browser.frame(&consent_url_on_127_0_0_1).await?.blocked());
//! ```
//!
//! The API is async and owns no task, so it runs on a `#[tokio::test]` runtime (either
//! flavour, with a test server in the same process too: every call awaits), or on
//! [`block_on`] from a plain `#[test]`.
//!
//! # Cookies without TLS
//!
//! Chromium (checked with 156, Debian bookworm-security) takes `http://127.0.0.1:PORT` and
//! `http://localhost:PORT` as potentially trustworthy origins: a `Set-Cookie: __Host-x=1;
//! Secure; HttpOnly; SameSite=Lax; Path=/` they send is stored (`secure`, `httpOnly`,
//! `sameSite: "Lax"`, host-only, path `/`) and sent back on the next request, exactly as over
//! https. So the browser tests can run the gateway over plain http on loopback
//! (`browser_driver.rs` pins this down). For https, launch with
//! [`Launch::ignore_certificate_errors`] to accept a test certificate.
//!
//! For `SameSite`, ports do not count: 127.0.0.1 on any port is one site (the gateway, the
//! authorization server, the callback), `localhost` another, so a `Lax` cookie of 127.0.0.1
//! goes along on a top-level GET from a localhost page but not on its cross-site POST.
//!
//! # Telling a refused frame from a loaded one
//!
//! A page's JavaScript cannot: a frame refused by `frame-ancestors` still fires `load`, and a
//! cross-origin frame is opaque either way. CDP can. [`Browser::frame`] adds an `<iframe>` to
//! the current page and reads the frame's own document: a refused frame shows Chromium's
//! error page (`chrome-error://chromewebdata/`), its navigation request failed with
//! `net::ERR_BLOCKED_BY_RESPONSE` (CDP's `blockedReason` there is `"other"`, not `"csp"`),
//! and the console has a `security` message naming the directive.

mod cdp;
mod frame;
mod launch;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use cdp::{Cdp, timeout};
use launch::{Chromium, STARTUP};
// Not every test binary names all of these (each includes `support`).
#[allow(unused_imports)]
pub use {
    frame::FrameOutcome,
    launch::{Launch, processes_mentioning},
};

/// How long one driver operation (a navigation, a wait, a click) may take by default.
pub const WAIT: Duration = Duration::from_secs(15);

/// What can go wrong driving the browser; every wait that runs out is [`BrowserError::Timeout`].
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error(
        "chromium is not installed ({0}): run scripts/install-peers as root (it installs \
         Debian's `chromium` package), or `apt-get install chromium`, or set PORTCULLIS_CHROMIUM"
    )]
    NotInstalled(String),
    #[error("could not start chromium: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("chromium exited ({status}) before DevTools was ready; its stderr ends:\n{stderr}")]
    Exited { status: String, stderr: String },
    #[error("timed out waiting for {what}")]
    Timeout { what: String },
    #[error("the DevTools connection failed: {0}")]
    Connection(String),
    #[error("CDP {method} failed: {message}")]
    Command { method: String, message: String },
    #[error("the page's JavaScript threw: {0}")]
    Script(String),
    #[error("navigating to {url} failed: {error}")]
    Navigation { url: String, error: String },
    #[error(
        "{0} is not a loopback http(s) URL: the test browser visits only 127.0.0.0/8, localhost and [::1]"
    )]
    NotLoopback(String),
    #[error("no element matches {0:?}")]
    NoElement(String),
    #[error("cannot click {selector:?}: {why}")]
    NotClickable { selector: String, why: String },
    #[error("CDP {method} answered without {field}")]
    Protocol { method: String, field: String },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A cookie as the browser stores it (CDP `Storage.getCookies`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cookie {
    pub name: String,
    pub value: String,
    /// The host it was set by (host-only cookies, like every `__Host-` one, have no dot).
    pub domain: String,
    pub path: String,
    pub secure: bool,
    pub http_only: bool,
    /// `"Strict"`, `"Lax"` or `"None"`; absent when the cookie did not say.
    pub same_site: Option<String>,
    /// A session cookie (no `Expires`/`Max-Age`).
    pub session: bool,
}

/// A headless Chromium with one tab, killed (with every process it started) on drop.
pub struct Browser {
    cdp: Cdp,
    /// The current tab: its target id (which is also its main frame's id) and CDP session.
    target: String,
    session: String,
    timeout: Duration,
    chromium: Chromium,
}

impl Browser {
    /// Starts headless Chromium with a fresh profile and opens a blank tab.
    pub async fn launch() -> Result<Browser, BrowserError> {
        Browser::launch_with(Launch::default()).await
    }

    pub async fn launch_with(launch: Launch) -> Result<Browser, BrowserError> {
        let deadline = Instant::now() + STARTUP;
        let (chromium, port, path) = Chromium::start(&launch, deadline).await?;
        let mut cdp = Cdp::connect(port, &path, deadline).await?;
        let (target, session) = new_tab(&mut cdp, deadline).await?;
        Ok(Browser {
            cdp,
            target,
            session,
            timeout: launch.timeout,
            chromium,
        })
    }

    /// The browser's product string, e.g. `Chrome/156.0.8078.108`.
    pub async fn version(&mut self) -> Result<String, BrowserError> {
        let deadline = self.deadline();
        let v = self
            .cdp
            .call(None, "Browser.getVersion", json!({}), deadline)
            .await?;
        str_field(&v, "product", "Browser.getVersion")
    }

    /// The browser process's id (it leads its own process group).
    pub fn pid(&self) -> u32 {
        self.chromium.pid()
    }

    /// The browser's scratch directory (profile, crash database, stderr log): every process
    /// of this browser outside its process group has it in its command line.
    pub fn scratch_dir(&self) -> &Path {
        self.chromium.scratch()
    }

    /// Chromium's stderr so far, for failure messages.
    pub fn stderr(&self) -> String {
        self.chromium.stderr()
    }

    /// Opens `url` in a fresh tab (closing the previous one) and waits until it has loaded.
    pub async fn open(&mut self, url: &str) -> Result<(), BrowserError> {
        check_loopback(url)?;
        let deadline = self.deadline();
        let (target, session) = new_tab(&mut self.cdp, deadline).await?;
        let old = std::mem::replace(&mut self.target, target);
        self.session = session;
        self.cdp
            .call(
                None,
                "Target.closeTarget",
                json!({ "targetId": old }),
                deadline,
            )
            .await?;
        self.goto(url).await
    }

    /// Navigates the current tab to `url` and waits until the page (after any redirects) has
    /// loaded. A navigation that fails (refused connection, bad certificate) is an error.
    pub async fn goto(&mut self, url: &str) -> Result<(), BrowserError> {
        check_loopback(url)?;
        let deadline = self.deadline();
        let mark = self.cdp.mark();
        let nav = self
            .page_call("Page.navigate", json!({ "url": url }), deadline)
            .await?;
        if let Some(error) = nav["errorText"].as_str().filter(|e| !e.is_empty()) {
            return Err(BrowserError::Navigation {
                url: url.to_owned(),
                error: error.to_owned(),
            });
        }
        self.wait_for_load(mark, &format!("{url} to load"), deadline)
            .await
    }

    /// The URL the tab is at (after redirects); for an error page, the URL that failed.
    pub async fn url(&mut self) -> Result<String, BrowserError> {
        let deadline = self.deadline();
        let info = self
            .cdp
            .call(
                None,
                "Target.getTargetInfo",
                json!({ "targetId": self.target }),
                deadline,
            )
            .await?;
        str_field(&info["targetInfo"], "url", "Target.getTargetInfo")
    }

    /// The text of the page as rendered (`document.body.innerText`).
    pub async fn text(&mut self) -> Result<String, BrowserError> {
        let v = self
            .eval("document.body ? document.body.innerText : ''")
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Waits until an element matches the CSS `selector`.
    pub async fn wait_for(&mut self, selector: &str) -> Result<(), BrowserError> {
        let deadline = self.deadline();
        self.wait_for_until(selector, deadline).await
    }

    /// The `value` of the element matching `selector` (an input, e.g. a hidden CSRF field).
    pub async fn value(&mut self, selector: &str) -> Result<String, BrowserError> {
        let js = format!(
            "(() => {{ const el = document.querySelector({}); return el ? String(el.value) : null; }})()",
            js_str(selector)
        );
        match self.eval(&js).await? {
            Value::String(s) => Ok(s),
            _ => Err(BrowserError::NoElement(selector.to_owned())),
        }
    }

    /// The attribute `name` of the element matching `selector` (`None` when it has none).
    pub async fn attribute(
        &mut self,
        selector: &str,
        name: &str,
    ) -> Result<Option<String>, BrowserError> {
        let js = format!(
            "(() => {{ const el = document.querySelector({}); \
             return el ? {{ found: true, value: el.getAttribute({}) }} : {{ found: false }}; }})()",
            js_str(selector),
            js_str(name)
        );
        let v = self.eval(&js).await?;
        if v["found"] != json!(true) {
            return Err(BrowserError::NoElement(selector.to_owned()));
        }
        Ok(v["value"].as_str().map(str::to_owned))
    }

    /// Evaluates a JavaScript expression in the page (a promise is awaited) and returns its
    /// value as JSON (`null` for `undefined`).
    pub async fn eval(&mut self, expression: &str) -> Result<Value, BrowserError> {
        let deadline = self.deadline();
        let session = self.session.clone();
        self.eval_in(&session, None, expression, deadline).await
    }

    /// Clicks the element matching `selector` with the mouse, as a person would: it waits
    /// for the element, scrolls it into view and presses at its centre. An element that is
    /// hidden or covered by another is an error, not a silent miss. Does not wait for what
    /// the click starts; see [`Browser::click_and_wait_for_load`].
    pub async fn click(&mut self, selector: &str) -> Result<(), BrowserError> {
        let deadline = self.deadline();
        self.click_until(selector, deadline).await
    }

    /// Clicks like [`Browser::click`] (a form's submit button: the browser builds and sends
    /// the request itself) and waits until the page it leads to, after any redirects, has
    /// loaded.
    pub async fn click_and_wait_for_load(&mut self, selector: &str) -> Result<(), BrowserError> {
        let deadline = self.deadline();
        self.wait_for_until(selector, deadline).await?;
        let mark = self.cdp.mark();
        self.click_until(selector, deadline).await?;
        let what = format!("a page to load after clicking {selector:?}");
        self.wait_for_load(mark, &what, deadline).await
    }

    /// Every cookie the browser holds, for every site.
    pub async fn cookies(&mut self) -> Result<Vec<Cookie>, BrowserError> {
        let deadline = self.deadline();
        let mut answer = self
            .cdp
            .call(None, "Storage.getCookies", json!({}), deadline)
            .await?;
        serde_json::from_value(answer["cookies"].take()).map_err(|_| BrowserError::Protocol {
            method: "Storage.getCookies".into(),
            field: "cookies".into(),
        })
    }

    /// Saves a PNG of the tab, to look at what a test saw.
    pub async fn screenshot(&mut self, path: &Path) -> Result<(), BrowserError> {
        use base64::Engine as _;
        let deadline = self.deadline();
        let shot = self
            .page_call(
                "Page.captureScreenshot",
                json!({ "format": "png" }),
                deadline,
            )
            .await?;
        let data = str_field(&shot, "data", "Page.captureScreenshot")?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|_| BrowserError::Protocol {
                method: "Page.captureScreenshot".into(),
                field: "base64 data".into(),
            })?;
        std::fs::write(path, png).map_err(|source| BrowserError::Write {
            path: path.to_owned(),
            source,
        })
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    /// A command to the current tab.
    async fn page_call(
        &mut self,
        method: &str,
        params: Value,
        deadline: Instant,
    ) -> Result<Value, BrowserError> {
        let session = self.session.clone();
        self.cdp
            .call(Some(&session), method, params, deadline)
            .await
    }

    /// Waits for the tab's main frame to commit a new document after `mark`, then for that
    /// document's load event.
    async fn wait_for_load(
        &mut self,
        mark: u64,
        what: &str,
        deadline: Instant,
    ) -> Result<(), BrowserError> {
        let session = Some(self.session.clone());
        let committed = self
            .cdp
            .wait_event(mark, deadline, what, |e| {
                e.session == session
                    && e.method == "Page.frameNavigated"
                    && e.params["frame"].get("parentId").is_none()
            })
            .await?;
        self.cdp
            .wait_event(committed.seq + 1, deadline, what, |e| {
                e.session == session && e.method == "Page.loadEventFired"
            })
            .await?;
        Ok(())
    }

    async fn wait_for_until(
        &mut self,
        selector: &str,
        deadline: Instant,
    ) -> Result<(), BrowserError> {
        let js = format!("document.querySelector({}) !== null", js_str(selector));
        let session = self.session.clone();
        loop {
            // Errors are expected while a navigation replaces the document: try again.
            if let Ok(Value::Bool(true)) = self.eval_in(&session, None, &js, deadline).await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let at = self.url().await.unwrap_or_default();
                return Err(timeout(&format!("{selector:?} to appear on {at}")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn click_until(&mut self, selector: &str, deadline: Instant) -> Result<(), BrowserError> {
        self.wait_for_until(selector, deadline).await?;
        let js = format!(
            "(() => {{ const el = document.querySelector({}); if (!el) return null; \
             el.scrollIntoView({{ block: 'center', inline: 'center' }}); \
             const r = el.getBoundingClientRect(); \
             const x = r.left + r.width / 2, y = r.top + r.height / 2; \
             const hit = document.elementFromPoint(x, y); \
             return {{ x, y, w: r.width, h: r.height, hit: !!hit && (hit === el || el.contains(hit)), \
                       top: hit ? hit.outerHTML.slice(0, 120) : '' }}; }})()",
            js_str(selector)
        );
        let session = self.session.clone();
        let at = self.eval_in(&session, None, &js, deadline).await?;
        if at.is_null() {
            return Err(BrowserError::NoElement(selector.to_owned()));
        }
        let not_clickable = |why: String| BrowserError::NotClickable {
            selector: selector.to_owned(),
            why,
        };
        if at["w"].as_f64().unwrap_or(0.0) <= 0.0 || at["h"].as_f64().unwrap_or(0.0) <= 0.0 {
            return Err(not_clickable("it has no size (hidden?)".into()));
        }
        if at["hit"] != json!(true) {
            let top = at["top"].as_str().unwrap_or_default();
            return Err(not_clickable(format!("another element is on top: {top}")));
        }
        let (x, y) = (at["x"].clone(), at["y"].clone());
        for (kind, buttons) in [("mouseMoved", 0), ("mousePressed", 1), ("mouseReleased", 0)] {
            let mut event = json!({ "type": kind, "x": x, "y": y, "buttons": buttons });
            if kind != "mouseMoved" {
                event["button"] = json!("left");
                event["clickCount"] = json!(1);
            }
            self.page_call("Input.dispatchMouseEvent", event, deadline)
                .await?;
        }
        Ok(())
    }

    /// Evaluates `expression` in `session`, in the given execution context or the main world.
    async fn eval_in(
        &mut self,
        session: &str,
        context: Option<i64>,
        expression: &str,
        deadline: Instant,
    ) -> Result<Value, BrowserError> {
        let mut params =
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true });
        if let Some(id) = context {
            params["contextId"] = json!(id);
        }
        let mut answer = self
            .cdp
            .call(Some(session), "Runtime.evaluate", params, deadline)
            .await?;
        if let Some(details) = answer.get("exceptionDetails") {
            let message = details["exception"]["description"]
                .as_str()
                .or(details["text"].as_str())
                .unwrap_or("an exception");
            return Err(BrowserError::Script(message.to_owned()));
        }
        Ok(answer["result"]["value"].take())
    }
}

/// Runs `f` on a fresh current-thread runtime: the driver from a plain `#[test]`.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(f)
}

/// Opens a blank tab and attaches to it; returns its target id and session. Frames of other
/// sites (their own processes) are attached too, so [`Browser::frame`] can read them.
async fn new_tab(cdp: &mut Cdp, deadline: Instant) -> Result<(String, String), BrowserError> {
    let created = cdp
        .call(
            None,
            "Target.createTarget",
            json!({ "url": "about:blank" }),
            deadline,
        )
        .await?;
    let target = str_field(&created, "targetId", "Target.createTarget")?;
    let attached = cdp
        .call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target, "flatten": true }),
            deadline,
        )
        .await?;
    let session = str_field(&attached, "sessionId", "Target.attachToTarget")?;
    for method in ["Page.enable", "Network.enable", "Log.enable"] {
        cdp.call(Some(&session), method, json!({}), deadline)
            .await?;
    }
    let auto = json!({ "autoAttach": true, "waitForDebuggerOnStart": false, "flatten": true });
    cdp.call(Some(&session), "Target.setAutoAttach", auto, deadline)
        .await?;
    Ok((target, session))
}

/// Refuses anything but http(s) to loopback: the tests never browse anywhere else.
fn check_loopback(url: &str) -> Result<(), BrowserError> {
    let refuse = || BrowserError::NotLoopback(url.to_owned());
    let parsed = reqwest::Url::parse(url).map_err(|_| refuse())?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(refuse());
    }
    let host = parsed.host_str().unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback { Ok(()) } else { Err(refuse()) }
}

/// `s` as a JavaScript string literal (a JSON string is one).
fn js_str(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

fn str_field(v: &Value, field: &str, method: &str) -> Result<String, BrowserError> {
    v[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| BrowserError::Protocol {
            method: method.to_owned(),
            field: field.to_owned(),
        })
}
