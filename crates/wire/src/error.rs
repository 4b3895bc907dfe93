//! The JSON-RPC error object and the error codes the gateway speaks.
//!
//! Codes come from three places:
//! - JSON-RPC 2.0 itself (`-32700`, `-32600` … `-32603`);
//! - the MCP specification (`-32002` and `-32042` up to 2025-11-25; `-32020` … `-32022` from
//!   2026-07-28, see `schema/2026-07-28/schema.ts` and `basic/index.mdx` "Error Codes");
//! - the gateway itself, for conditions that only a gateway has (an upstream that timed out
//!   or died, a policy refusal).
//!
//! JSON-RPC reserves `-32000 … -32099` for implementation-defined server errors. Since
//! 2026-07-28, MCP splits that range: `-32020 … -32099` belongs to the specification
//! (implementations MUST NOT emit codes there that the specification does not define), and
//! `-32000 … -32019` is "legacy" (existing implementation codes are grandfathered; new
//! implementations SHOULD NOT add more there, and receivers MUST NOT assume a meaning).
//! The gateway codes below live in `-32000 … -32019`, never in the MCP-reserved part: `-32001`
//! is the request-timeout code the MCP SDKs already use, and clients must treat all of them as
//! opaque anyway, which is exactly how they are meant: the message carries the explanation.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// JSON-RPC and MCP error codes.
pub mod codes {
    /// Invalid JSON was received (JSON-RPC 2.0).
    pub const PARSE_ERROR: i64 = -32700;
    /// The JSON is not a valid request object (JSON-RPC 2.0).
    pub const INVALID_REQUEST: i64 = -32600;
    /// The method does not exist or is not available (JSON-RPC 2.0).
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Invalid method parameters (JSON-RPC 2.0).
    pub const INVALID_PARAMS: i64 = -32602;
    /// Internal JSON-RPC error (JSON-RPC 2.0).
    pub const INTERNAL_ERROR: i64 = -32603;

    /// Resource not found (MCP up to 2025-11-25; 2026-07-28 uses [`INVALID_PARAMS`] instead
    /// and reserves this code so it is never reused).
    pub const RESOURCE_NOT_FOUND: i64 = -32002;
    /// URL-mode elicitation required (MCP 2025-11-25 only).
    pub const URL_ELICITATION_REQUIRED: i64 = -32042;
    /// HTTP headers (`Mcp-Method`, `Mcp-Name`, `MCP-Protocol-Version`, `Mcp-Param-*`) do not
    /// match the body, or a required one is missing or malformed (MCP 2026-07-28, HTTP 400).
    pub const HEADER_MISMATCH: i64 = -32020;
    /// The server needs a client capability the request did not declare (MCP 2026-07-28).
    pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
    /// The requested protocol version is not supported (MCP 2026-07-28, HTTP 400); `data`
    /// carries `{"supported": [...], "requested": "..."}`.
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

    /// Gateway: the upstream did not answer in time.
    pub const REQUEST_TIMEOUT: i64 = -32001;
    /// Gateway: the upstream died or could not be started or reached.
    pub const UPSTREAM_UNAVAILABLE: i64 = -32010;
    /// Gateway: policy refused the call. Use it only where the gateway must say "refused"
    /// rather than "unknown"; a tool the caller may never call is answered as if it did not
    /// exist, so that policy does not leak what exists.
    pub const POLICY_DENIED: i64 = -32011;
    /// Gateway: too many calls; `data.retryAfterMs` says when the next one may pass.
    pub const RATE_LIMITED: i64 = -32012;
    /// Gateway: the audit log could not record the decision, so the call was not made (the
    /// gateway fails closed rather than act unrecorded).
    pub const AUDIT_UNAVAILABLE: i64 = -32013;
    /// Gateway: a rule would allow the call, but the caller's token lacks scopes it needs;
    /// `data.missingScopes` lists them. Over HTTP, a request refused for it alone is
    /// answered `403` with an `insufficient_scope` challenge (step-up authorization).
    pub const INSUFFICIENT_SCOPE: i64 = -32014;
}

/// A JSON-RPC error object: `{"code": …, "message": …, "data": …}`.
///
/// `data` is kept as raw JSON so that an upstream's error detail is forwarded untouched.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ErrorObject {
    /// The error code (see [`codes`]).
    pub code: i64,
    /// A short, human-readable description.
    pub message: String,
    /// Optional detail, defined by the sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Box<RawValue>>,
}

impl ErrorObject {
    /// An error with a code and a message and no data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        ErrorObject {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Attaches `data` (serialized compactly, so it never contains a raw newline).
    #[must_use]
    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        // Serializing a `Value` cannot fail: its map keys are always strings.
        self.data = serde_json::value::to_raw_value(&data).ok();
        self
    }

    /// The error serialized as compact raw JSON.
    pub(crate) fn to_raw(&self) -> Box<RawValue> {
        let mut s = String::with_capacity(self.message.len() + 40);
        s.push_str("{\"code\":");
        s.push_str(&self.code.to_string());
        s.push_str(",\"message\":");
        crate::envelope::json::push_str_literal(&mut s, &self.message);
        if let Some(data) = &self.data {
            s.push_str(",\"data\":");
            s.push_str(data.get());
        }
        s.push('}');
        // Everything above is valid JSON by construction (the message is escaped and `data`
        // is a RawValue); the fallback is unreachable and only avoids a panic path.
        RawValue::from_string(s).unwrap_or_else(|_| RawValue::NULL.to_owned())
    }
}

impl std::fmt::Display for ErrorObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}
