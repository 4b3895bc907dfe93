//! Whether a page is shown inside an `<iframe>` of another page, for the clickjacking
//! defence (`Content-Security-Policy: frame-ancestors`). The framing page's own script
//! cannot tell (see the module docs of `browser`), so this reads the frame's document over
//! CDP: in its own target when it runs in another process (a frame of another site), through
//! an isolated world of the tab otherwise.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::cdp::timeout;
use super::{Browser, BrowserError, check_loopback, js_str, str_field};

/// What an `<iframe>` of a page shows (see [`Browser::frame`]).
#[derive(Debug, Clone)]
pub struct FrameOutcome {
    /// The URL of the frame's document: the framed page's, or `chrome-error://chromewebdata/`
    /// when Chromium refused to show it.
    pub document_url: String,
    /// The text of the frame's document.
    pub text: String,
    /// The network error of the frame's navigation, when it failed
    /// (`net::ERR_BLOCKED_BY_RESPONSE` for `frame-ancestors` or `X-Frame-Options`).
    pub net_error: Option<String>,
    /// The `security` console messages logged meanwhile (e.g. "Framing '…' violates the
    /// following Content Security Policy directive: "frame-ancestors 'none'"…").
    pub security_messages: Vec<String>,
}

impl FrameOutcome {
    /// Whether Chromium refused to show the framed page.
    pub fn blocked(&self) -> bool {
        self.net_error.is_some() || self.document_url.starts_with("chrome-error:")
    }
}

impl Browser {
    /// Adds `<iframe src=url>` to the current page (whose origin is the framing one) and
    /// reports what the frame shows once it has loaded: the page, or Chromium's refusal.
    pub async fn frame(&mut self, url: &str) -> Result<FrameOutcome, BrowserError> {
        check_loopback(url)?;
        let deadline = self.deadline();
        let mark = self.cdp.mark();
        // `load` fires on the iframe element whether the frame was shown or refused.
        let js = format!(
            "new Promise(resolve => {{ const f = document.createElement('iframe'); \
             f.addEventListener('load', () => resolve(true), {{ once: true }}); \
             f.src = {}; (document.body || document.documentElement).appendChild(f); }})",
            js_str(url)
        );
        let session = self.session.clone();
        self.eval_in(&session, None, &js, deadline).await?;
        let main = json!(self.target);
        let attached = self
            .cdp
            .wait_event(mark, deadline, "the iframe to be attached", |e| {
                e.method == "Page.frameAttached" && e.params["parentFrameId"] == main
            })
            .await?;
        let frame_id = str_field(&attached.params, "frameId", "Page.frameAttached")?;
        let (document_url, text) = self.frame_document(mark, &frame_id, deadline).await?;
        let mut net_error = None;
        if document_url.starts_with("chrome-error:") {
            net_error = Some(self.frame_failure(mark, &frame_id, deadline).await?);
            // The console message comes from another process than the failure: let it land.
            self.cdp
                .drain_for(Duration::from_millis(200), deadline)
                .await;
        }
        let security_messages = self
            .cdp
            .since(mark)
            .filter(|e| e.method == "Log.entryAdded" && e.params["entry"]["source"] == "security")
            .filter_map(|e| e.params["entry"]["text"].as_str().map(str::to_owned))
            .collect();
        Ok(FrameOutcome {
            document_url,
            text,
            net_error,
            security_messages,
        })
    }

    /// The URL and text of the document in frame `frame_id`, once it is complete. A frame of
    /// another site runs in its own process, as its own target (auto-attached when the tab
    /// was opened); a same-site frame is reached through an isolated world in the tab.
    async fn frame_document(
        &mut self,
        mark: u64,
        frame_id: &str,
        deadline: Instant,
    ) -> Result<(String, String), BrowserError> {
        let js =
            "[location.href, document.readyState, document.body ? document.body.innerText : '']";
        let what = format!("the document of frame {frame_id} to be complete");
        loop {
            let own_target = self
                .cdp
                .since(mark)
                .filter(|e| e.method == "Target.attachedToTarget")
                .find(|e| e.params["targetInfo"]["targetId"] == frame_id)
                .and_then(|e| e.params["sessionId"].as_str().map(str::to_owned));
            let got = match own_target {
                Some(session) => self.eval_in(&session, None, js, deadline).await,
                None => {
                    let world = self
                        .page_call(
                            "Page.createIsolatedWorld",
                            json!({ "frameId": frame_id, "worldName": "portcullis-test" }),
                            deadline,
                        )
                        .await;
                    match world.map(|w| w["executionContextId"].as_i64()) {
                        Ok(Some(ctx)) => {
                            let session = self.session.clone();
                            self.eval_in(&session, Some(ctx), js, deadline).await
                        }
                        // Not in this process (yet): its target is being attached.
                        _ => Ok(Value::Null),
                    }
                }
            };
            if let Ok(v) = got
                && v[1] == "complete"
            {
                let url = v[0].as_str().unwrap_or_default().to_owned();
                return Ok((url, v[2].as_str().unwrap_or_default().to_owned()));
            }
            if Instant::now() >= deadline {
                return Err(timeout(&what));
            }
            self.cdp
                .drain_for(Duration::from_millis(50), deadline)
                .await;
        }
    }

    /// The network error of frame `frame_id`'s document request.
    async fn frame_failure(
        &mut self,
        mark: u64,
        frame_id: &str,
        deadline: Instant,
    ) -> Result<String, BrowserError> {
        let what = format!("the failed request of frame {frame_id}");
        let sent = self
            .cdp
            .wait_event(mark, deadline, &what, |e| {
                e.method == "Network.requestWillBeSent"
                    && e.params["frameId"] == frame_id
                    && e.params["type"] == "Document"
            })
            .await?;
        let request = sent.params["requestId"].clone();
        let failed = self
            .cdp
            .wait_event(mark, deadline, &what, |e| {
                e.method == "Network.loadingFailed" && e.params["requestId"] == request
            })
            .await?;
        str_field(&failed.params, "errorText", "Network.loadingFailed")
    }
}
