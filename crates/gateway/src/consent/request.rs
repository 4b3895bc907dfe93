//! What a consent is about, and what a person can answer: the types every channel shares
//! (elicitation, `input_required`, the approvals page and CLI, the terminal prompt).

use std::time::{Duration, Instant, SystemTime};

/// One call held until a person decides.
#[derive(Debug, Clone)]
pub struct ConsentRequest {
    /// Random, unguessable (256 bits, base64url): names the request in links and the CLI.
    pub id: String,
    /// The principal's display form.
    pub principal: String,
    /// The downstream session (empty for a stateless request).
    pub session: String,
    pub server: String,
    /// The tool as the client named it.
    pub tool: String,
    /// The arguments, as sent (rendered by each channel safely: escaped, truncated).
    pub arguments: serde_json::Value,
    /// `sha256:<hex>` of the canonical arguments (crates/guard `digest`).
    pub arguments_digest: String,
    /// The deciding rule, for people: `rule 3 (portcullis.toml:20)`.
    pub rule: String,
    pub created: SystemTime,
    /// No answer by then: denied.
    pub deadline: Instant,
}

/// How far an approval reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remember {
    /// This call only.
    Once,
    /// Calls of this session, for the same arguments (or the tool, with `Scope::Tool`).
    Session,
    /// Stored, until it expires.
    Always { ttl: Duration },
}

/// What an approval covers when remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The exact argument digest.
    Arguments,
    /// Any arguments to this tool.
    Tool,
}

/// A person's decision, and through which channel it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentAnswer {
    Approve { remember: Remember, scope: Scope },
    Deny { reason: String },
}
