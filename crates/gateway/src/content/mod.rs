//! What the gateway does to content before a client sees it, and to credentials before an
//! open-world tool sees them (`[content]`, docs/config.md).
//!
//! Every tool result, prompt (`prompts/get`), resource content (`resources/read`), upstream
//! error, log message (`notifications/message`) and progress message the gateway relays is
//! cleaned here: each string in it — text content, `structuredContent`, resource text, object
//! keys — is sanitized (ANSI escape sequences, C0/C1 controls, Unicode tags, bidi controls and
//! zero-width characters stripped, or escaped visibly: `portcullis_guard::sanitize`) and then
//! redacted (credentials replaced by `[REDACTED:<kind>]`: `portcullis_guard::secrets`).
//! Redaction never refuses a call. Not touched: base64 payloads (a `blob` or `data` string
//! that is base64), whose bytes are not text, and the protocol's own members the client must
//! get back unchanged (`_meta`, `progressToken`, `requestId`, `cursor`, `nextCursor`,
//! `requestState`). The work is done on the JSON text ([`json_text`]): what
//! nothing changed is relayed byte for byte.
//!
//! [`check_arguments`] is the other direction: the arguments of a tool that is open-world
//! (its annotations say `openWorldHint: true`, or `[[content.open_world]]` names it) are
//! searched with the same detector, and a credential in them refuses the call or holds it for
//! a person's consent (`content.secrets_in_arguments`).

mod arguments;
mod json_string;
mod json_text;

use std::fmt;

use portcullis_guard::Sanitized;
use portcullis_guard::secrets::Redactions;
use portcullis_wire::{ErrorObject, codes};
use serde_json::value::RawValue;

use crate::config::ContentConfig;
use crate::upstream::Reply;

pub(crate) use arguments::{ArgumentCheck, check_arguments};
pub use json_text::Malformed;

/// What cleaning one message found and changed (kinds and counts, never a value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub sanitized: Sanitized,
    pub redacted: Redactions,
}

impl Report {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.sanitized.total() == 0 && self.redacted.is_empty()
    }
}

/// `redacted github-token 2, jwt 1; sanitized ansi 3, tag 12` (what the audit record says).
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if !self.redacted.is_empty() {
            write!(f, "redacted {}", self.redacted)?;
            sep = "; ";
        }
        if self.sanitized.total() > 0 {
            f.write_str(sep)?;
            f.write_str("sanitized ")?;
            for (i, (what, n)) in self.sanitized.named().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{what} {n}")?;
            }
        }
        Ok(())
    }
}

/// Where a message comes from, for the allow lists: its server, and the tool whose result it
/// is (as the upstream names it; `None` for prompts, resources and notifications).
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub server: &'a str,
    pub tool: Option<&'a str>,
}

/// A result the gateway could not clean. Cannot happen for JSON the wire layer accepted;
/// the answer is then not relayed (fail closed).
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error(transparent)]
    Malformed(#[from] Malformed),
    #[error("the cleaned text is not JSON: {0}")]
    Rewritten(#[from] serde_json::Error),
}

/// The shortest base64 string a `blob` or `data` member must be to be skipped as binary: a
/// shorter one is searched like text (a credential is shorter than an image).
const MIN_BINARY: usize = 64;

/// Members whose values are the protocol's, not text: they must reach the client exactly as
/// the upstream sent them (a progress token the client matches its request by, a cursor or
/// request state it sends back).
const PROTOCOL_KEYS: &[&str] = &[
    "_meta",
    "progressToken",
    "requestId",
    "cursor",
    "nextCursor",
    "requestState",
];

/// MCP's strings that are not text: protocol members, and base64 `blob`/`data` payloads.
struct McpSkip;

impl json_text::Skip for McpSkip {
    fn skip_value_under(&self, key: &str) -> bool {
        PROTOCOL_KEYS.contains(&key)
    }

    fn skip_string_under(&self, key: &str, raw: &str) -> bool {
        matches!(key, "blob" | "data") && raw.len() >= MIN_BINARY && is_base64_text(raw)
    }
}

/// Base64 as it stands in JSON text: its alphabet, and `\/` (an escaped `/`) as the only
/// escape. Any other escape (`\u001b`, `\udb40`) is text in disguise, and is cleaned.
fn is_base64_text(raw: &str) -> bool {
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        let ok = b.is_ascii_alphanumeric()
            || matches!(b, b'+' | b'/' | b'=')
            || (b == b'\\' && bytes.next() == Some(b'/'));
        if !ok {
            return false;
        }
    }
    true
}

/// Arguments a tool gets are all text to search: no MCP result member is skipped there.
pub(super) struct NoSkip;

impl json_text::Skip for NoSkip {
    fn skip_value_under(&self, _key: &str) -> bool {
        false
    }

    fn skip_string_under(&self, _key: &str, _raw: &str) -> bool {
        false
    }
}

/// Cleans one JSON value the gateway relays: returns the new text when something changed
/// (`None`: relay it as it is) and what was found.
///
/// # Errors
/// The text is not JSON (see [`ContentError`]).
pub fn clean(
    config: &ContentConfig,
    source: Source<'_>,
    raw: &RawValue,
) -> Result<(Option<Box<RawValue>>, Report), ContentError> {
    if config.sanitize.is_none() && !config.redact {
        return Ok((None, Report::default()));
    }
    let allow = config
        .redact
        .then(|| config.allowlist(source.server, source.tool));
    let out = json_text::rewrite(
        raw.get(),
        &McpSkip,
        json_text::Work {
            sanitize: config.sanitize,
            redact: allow.as_ref(),
        },
    )?;
    let report = Report {
        sanitized: out.sanitized,
        redacted: out.redacted,
    };
    let text = match out.text {
        Some(text) => Some(RawValue::from_string(text)?),
        None => None,
    };
    Ok((text, report))
}

/// [`clean`] on an upstream's answer (a result or an error object). An answer that cannot be
/// cleaned becomes an error.
pub(crate) fn clean_reply(
    config: &ContentConfig,
    source: Source<'_>,
    reply: Reply,
) -> Result<(Reply, Report), ErrorObject> {
    let raw = match &reply {
        Reply::Result(r) | Reply::Error(r) => r,
    };
    match clean(config, source, raw) {
        Ok((None, report)) => Ok((reply, report)),
        Ok((Some(text), report)) => Ok((
            match reply {
                Reply::Result(_) => Reply::Result(text),
                Reply::Error(_) => Reply::Error(text),
            },
            report,
        )),
        Err(e) => {
            tracing::error!(server = source.server, error = %e, "an upstream answer could not be cleaned; not relayed");
            Err(ErrorObject::new(
                codes::INTERNAL_ERROR,
                format!(
                    "the gateway could not inspect the answer of server {:?} ({e}), so it did not relay it",
                    source.server
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests;
