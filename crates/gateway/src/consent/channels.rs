//! How the engine waits on each channel that is not a single question and answer: the
//! client's elicitation (withdrawn when time runs out), the approvals queue and the terminal
//! (while which the caller hears where its call waits, and that it still waits).

use std::future::Future;
use std::time::Instant;

use serde_json::{Value, json};

use super::request::ConsentAnswer;
use super::{ApprovalsChannel, Consent, Held, PROGRESS_EVERY, elicit, render, tty};
use crate::upstream::Reply;

/// What the elicitation channel got.
pub(super) enum Asked {
    Answer(ConsentAnswer),
    TimedOut,
    Failed(String),
}

impl Consent {
    pub(super) async fn elicit(&self, held: &Held<'_>, with_mode: bool) -> Asked {
        let form = elicit::form(&held.request, &held.form_context(with_mode));
        held.audit("asked", format!("elicitation: request {}", held.request.id));
        let (id, rx) = held.client.elicit(form);
        let deadline = tokio::time::Instant::from_std(held.request.deadline);
        match tokio::time::timeout_at(deadline, rx).await {
            Err(_) => {
                held.client
                    .withdraw(id, "no decision in time: the call was refused");
                Asked::TimedOut
            }
            Ok(Err(_)) => Asked::Failed("the session ended before an answer".into()),
            Ok(Ok(Reply::Error(e))) => Asked::Failed(format!(
                "the client answered with an error: {}",
                render::line(e.get(), 200)
            )),
            Ok(Ok(Reply::Result(r))) => {
                let result: Value = serde_json::from_str(r.get()).unwrap_or(Value::Null);
                Asked::Answer(elicit::answer(&result, &held.form_context(with_mode)))
            }
        }
    }

    pub(super) async fn wait_approvals(
        &self,
        held: &Held<'_>,
        queue: &dyn ApprovalsChannel,
    ) -> Option<ConsentAnswer> {
        let place = queue.location(&held.request.id);
        held.audit(
            "asked",
            format!("approvals: request {} pending at {place}", held.request.id),
        );
        let note = format!(
            "{} on {} waits for a person's approval at {place} (request {}; or `portcullis approvals approve {}`)",
            render::line(&held.request.tool, 200),
            render::line(&held.request.server, 100),
            held.request.id,
            held.request.id
        );
        let (answer, by) = self
            .while_waiting(held, note, queue.wait(&held.request))
            .await
            .flatten()?;
        held.audit(
            "decided",
            format!("approvals: request {} decided by {by}", held.request.id),
        );
        Some(answer)
    }

    pub(super) async fn ask_terminal(
        &self,
        held: &Held<'_>,
    ) -> Result<ConsentAnswer, tty::TtyError> {
        held.audit("asked", format!("tty: request {}", held.request.id));
        let note = format!(
            "{} on {} waits for a person's approval on the gateway's terminal (request {})",
            render::line(&held.request.tool, 200),
            render::line(&held.request.server, 100),
            held.request.id
        );
        let text = elicit::describe(&held.request, held.method, held.settings.timeout);
        let asked = self
            .terminal
            .ask(&text, &held.settings, held.request.deadline);
        self.while_waiting(held, note, asked)
            .await
            .unwrap_or(Err(tty::TtyError::TimedOut))
    }

    /// Runs `work` until the request's deadline, telling the caller where its call waits
    /// (a log message) and that it still waits (progress, when it asked for progress).
    /// `None` when the deadline passed first.
    pub(super) async fn while_waiting<T>(
        &self,
        held: &Held<'_>,
        note: String,
        work: impl Future<Output = T>,
    ) -> Option<T> {
        held.client.notify(
            crate::mcp::NOTIFICATION_MESSAGE,
            json!({ "level": "notice", "logger": "portcullis", "data": note }),
        );
        let deadline = tokio::time::Instant::from_std(held.request.deadline);
        let ticker = async {
            let mut n: u64 = 0;
            let Some(token) = &held.progress_token else {
                return std::future::pending::<()>().await;
            };
            loop {
                n += 1;
                let left = held
                    .request
                    .deadline
                    .saturating_duration_since(Instant::now());
                held.client.notify(
                    crate::mcp::NOTIFICATION_PROGRESS,
                    json!({
                        "progressToken": token,
                        "progress": n,
                        "message": format!("waiting for a person's approval ({} left)", elicit::say(left)),
                    }),
                );
                tokio::time::sleep(PROGRESS_EVERY).await;
            }
        };
        tokio::select! {
            out = tokio::time::timeout_at(deadline, work) => out.ok(),
            () = ticker => None,
        }
    }
}
