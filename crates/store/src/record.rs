//! What an audit record is, what a stored one looks like, and how to ask for them.

use serde::{Deserialize, Serialize};

/// Largest accepted record, measured as its canonical JSON (see [`portcullis_wire::canonical`]).
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// Largest `limit` of one [`AuditQuery`].
pub const MAX_QUERY_LIMIT: usize = 10_000;

/// One decision or event of the gateway: allow, deny, consent asked/granted/refused,
/// validation failure, rate limit, upstream error, completion of a call.
///
/// Optional fields are left out of the serialized form when absent, so that a field added in
/// a later version (always optional) does not change the canonical JSON, and hence the hash,
/// of records written before it existed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Wall-clock time of the event, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// What happened: "decision", "completed", "consent", ...
    pub event: String,
    /// Who asked (`<iss,sub>` or the local user).
    pub principal: String,
    /// The client's session (empty for stateless requests).
    pub session: String,
    /// "stdio" or "http".
    pub transport: String,
    /// The upstream server (route member) the call is for.
    pub server: String,
    /// The MCP method (`tools/call`, `resources/read`, ...).
    pub method: String,
    /// The tool, prompt or resource the method names (empty when it names none).
    pub name: String,
    /// A digest of the arguments: the gateway records `portcullis_guard::digest`, the
    /// `sha256:<hex>` of their canonical JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_digest: Option<String>,
    /// The arguments themselves: only with `audit.include_args = true`, and then already
    /// redacted by the caller. The store writes what it is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<serde_json::Value>,
    /// "allow", "deny", "consent", "error", ...
    pub decision: String,
    /// The rule that decided, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why, in words.
    pub reason: String,
    /// Time spent, when the event ends something (a call, a consent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    /// A trace or request id that ties this record to logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// A record as the store holds it: its place in the chain and the hashes that link it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRecord {
    /// 1, 2, 3, ... assigned by the writer, without gaps.
    pub seq: u64,
    /// `hash` of record `seq - 1` (64 zeros for record 1).
    pub prev_hash: String,
    /// `hex(SHA-256(prev_hash || "\n" || canonical JSON of {"record": …, "seq": …}))`.
    pub hash: String,
    pub record: AuditRecord,
}

/// A filter over the audit log. Every `Some` must match; times are `[since_ms, until_ms)`.
/// Results are always in ascending `seq` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub principal: Option<String>,
    pub server: Option<String>,
    pub decision: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// At most this many records (at most [`MAX_QUERY_LIMIT`]; 0 returns nothing).
    pub limit: usize,
    /// Only records with a larger `seq` (paging, and following the log).
    pub after_seq: Option<u64>,
    /// Take the `limit` newest matching records instead of the oldest (`audit tail`).
    pub latest: bool,
}

impl Default for AuditQuery {
    fn default() -> Self {
        AuditQuery {
            principal: None,
            server: None,
            decision: None,
            since_ms: None,
            until_ms: None,
            limit: 100,
            after_seq: None,
            latest: false,
        }
    }
}
