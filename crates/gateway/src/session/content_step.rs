//! The content step of the relay: the answer to every call, and every log and progress
//! message an upstream sends, is cleaned ([`crate::content`]) before the client gets it.
//! What was found (kinds and counts) is logged at debug, and for a call it joins the call's
//! audit outcome record (see `admission::note_outcome`).

use portcullis_wire::Envelope;
use serde_json::value::RawValue;

use super::Session;
use super::relay::Outcome;
use crate::content::{self, Report, Source};
use crate::mcp;

impl Session {
    /// Cleans the answer to a call of `method` about `name` (the upstream's name) on `server`.
    /// An `input_required` result is cleaned too (its questions are the upstream's text); its
    /// `requestState` is a protocol member, relayed exactly as sent.
    pub(super) fn clean_outcome(
        &self,
        method: &str,
        server: &str,
        name: &str,
        outcome: Outcome,
    ) -> (Outcome, Report) {
        let Outcome::Reply(reply) = outcome else {
            return (outcome, Report::default());
        };
        let source = Source {
            server,
            tool: (method == mcp::TOOLS_CALL).then_some(name),
        };
        match content::clean_reply(&self.gateway.config.content, source, reply) {
            Ok((reply, report)) => {
                if !report.is_empty() {
                    tracing::debug!(session = %self.id, server, method, name, found = %report, "content cleaned");
                }
                (Outcome::Reply(reply), report)
            }
            Err(e) => (Outcome::Error(e), Report::default()),
        }
    }

    /// Cleans the answer to a retried 2026-07-28 call (the gateway's own `requestState`):
    /// the server and name come from the retry's params.
    pub(super) fn clean_resumed(
        &self,
        method: &str,
        params: Option<&RawValue>,
        outcome: Outcome,
    ) -> Outcome {
        let obj = params.and_then(|p| crate::json::RawObject::parse(p).ok());
        let named = obj
            .as_ref()
            .and_then(|o| o.get_str("name").or_else(|| o.get_str("uri")));
        let resolved = named.as_deref().and_then(|n| match method {
            mcp::RESOURCES_READ => self.route.resolve_uri(n),
            _ => self.route.resolve_name(n),
        });
        let (server, name) = resolved
            .map(|r| (r.server.to_owned(), r.name.to_owned()))
            .unwrap_or_default();
        self.clean_outcome(method, &server, &name, outcome).0
    }

    /// `notifications/message` and `notifications/progress` from `server`, their params
    /// cleaned. One that cannot be cleaned is dropped.
    pub(super) fn clean_notification(&self, server: &str, mut msg: Envelope) -> Option<Envelope> {
        let Some(params) = msg.params.as_deref() else {
            return Some(msg);
        };
        let source = Source { server, tool: None };
        match content::clean(&self.gateway.config.content, source, params) {
            Ok((cleaned, report)) => {
                if !report.is_empty() {
                    let method = msg.method().unwrap_or_default();
                    tracing::debug!(session = %self.id, server, method, found = %report, "content cleaned");
                }
                if let Some(cleaned) = cleaned {
                    msg.params = Some(cleaned);
                }
                Some(msg)
            }
            Err(e) => {
                tracing::warn!(session = %self.id, server, error = %e, "an upstream notification could not be cleaned; dropped");
                None
            }
        }
    }
}

/// Why a call's arguments stop it (see [`Session::secret_in_arguments`]).
pub(super) struct SecretInArguments {
    /// For the caller, the audit record and the person asked: the kinds, never a value.
    pub text: String,
    /// `content.secrets_in_arguments = "consent"`: hold the call rather than refuse it.
    pub needs_consent: bool,
}

impl Session {
    /// The admission hook of `[content]`: a `tools/call` to an open-world tool whose
    /// arguments hold a credential. `None`: nothing to act on.
    pub(super) fn secret_in_arguments(
        &self,
        call: &super::admission::Call<'_>,
        server: &str,
        tool: &str,
        annotations: Option<&serde_json::Value>,
    ) -> Option<SecretInArguments> {
        if call.method != mcp::TOOLS_CALL {
            return None;
        }
        let args = call.args?;
        let config = &self.gateway.config.content;
        let check = content::check_arguments(config, server, tool, annotations, args);
        let content::ArgumentCheck::Found { kinds, .. } = &check else {
            return None;
        };
        let what = if kinds.is_empty() {
            "arguments the gateway could not search".to_owned()
        } else {
            let names: Vec<&str> = kinds.iter().map(|(kind, _)| kind).collect();
            format!("what looks like a credential ({})", names.join(", "))
        };
        Some(SecretInArguments {
            text: format!(
                "the arguments of {:?} hold {what}, and it is an open-world tool (content.secrets_in_arguments)",
                call.name
            ),
            needs_consent: check.needs_consent(),
        })
    }
}
