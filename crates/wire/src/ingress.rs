//! Ingress: turning untrusted bytes into envelopes, or into a precise JSON-RPC error.
//!
//! Every message that enters the gateway, from a client or from an upstream, goes through
//! [`parse_frame`] or [`parse_message`]. The checks run cheapest first and each one bounds
//! the work of the next:
//!
//! 1. **Size** ([`Limits::max_frame_bytes`], 4 MiB by default), before looking at the bytes.
//! 2. **UTF-8**: JSON-RPC messages in MCP MUST be UTF-8.
//! 3. **One validation pass** over the JSON text:
//!    - syntax, with line and column;
//!    - **duplicate object keys at any depth**, compared after unescaping. JSON parsers
//!      disagree on duplicates (first wins, last wins, error): a guard that authorizes
//!      `{"path": "/tmp/ok", "path": "/etc/shadow"}` by the first value while the server acts
//!      on the last is a policy bypass. Refusing duplicates makes every reader see one value.
//!    - **nesting depth** ([`Limits::max_depth`], 64 by default; the top-level object is
//!      depth 1). Real MCP messages nest a dozen levels at most (tool schemas included);
//!      deep nesting only serves to exhaust stacks in recursive parsers further down the
//!      line, including the upstream server's. The walk stops at `max_depth + 1` levels.
//! 4. **The envelope**: JSON-RPC shape rules (see [`crate::Envelope`]); `params`, `result`
//!    and `error` are kept raw.
//!
//! Every failure is an [`IngressError`] that maps to a JSON-RPC error object
//! ([`IngressError::to_error_object`]) and to the id to answer with
//! ([`IngressError::response_id`]). Messages never echo more than about 100 bytes of input.

mod validate;

use serde_json::value::RawValue;

use crate::envelope::Id;
use crate::envelope::shape::{Parts, ShapeError};
use crate::error::{ErrorObject, codes};
use crate::{Envelope, ProtocolVersion};

/// Bounds applied to every incoming frame.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest frame accepted, in bytes. Default 4 MiB.
    pub max_frame_bytes: usize,
    /// The deepest nesting accepted (top-level object = 1). Default 64. Values above 127 act
    /// as 127, the deepest nesting serde_json itself parses.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 4 * 1024 * 1024,
            max_depth: 64,
        }
    }
}

/// One transport frame: a message, or a JSON-RPC batch (a top-level array).
#[derive(Clone, Debug)]
pub enum Frame {
    /// A single message.
    Single(Envelope),
    /// A batch of one or more messages. Only 2024-11-05 and 2025-03-26 allow batches
    /// ([`ProtocolVersion::allows_batch`]); the caller decides.
    Batch(Vec<Envelope>),
}

/// Why a frame was rejected.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum IngressError {
    /// Over [`Limits::max_frame_bytes`].
    #[error("message is {actual} bytes, over the {limit}-byte limit")]
    TooLarge { limit: usize, actual: usize },
    /// Not UTF-8; `offset` is the first invalid byte.
    #[error("message is not valid UTF-8 (invalid byte at offset {offset})")]
    InvalidUtf8 { offset: usize },
    /// Not JSON.
    #[error("invalid JSON at line {line} column {column}: {reason}")]
    InvalidJson {
        line: usize,
        column: usize,
        reason: String,
    },
    /// The same key twice in one object. `path` locates the object (`params.arguments`,
    /// `[1].params` in a batch; empty for the top level); both are truncated for display.
    #[error("duplicate key {key:?} at {}", if path.is_empty() { "the top level" } else { path })]
    DuplicateKey { key: String, path: String },
    /// Nested deeper than [`Limits::max_depth`].
    #[error("JSON nesting deeper than {limit} levels")]
    TooDeep { limit: usize },
    /// A batch where the protocol version forbids them.
    #[error("batches are not allowed in protocol 2025-06-18 and later")]
    BatchNotAllowed,
    /// `[]`.
    #[error("empty batch: a batch must contain at least one message")]
    EmptyBatch,
    /// `id` present but neither a string nor an integer within i64.
    #[error("\"id\" must be a string or an integer within the signed 64-bit range")]
    InvalidId,
    /// Valid JSON, but not a valid JSON-RPC message.
    #[error("invalid request: {reason}")]
    InvalidRequest { reason: String, id: Option<Id> },
}

impl IngressError {
    /// The JSON-RPC error to answer with: `-32700` for bytes that are not JSON, `-32600` for
    /// everything else.
    pub fn to_error_object(&self) -> ErrorObject {
        let code = match self {
            IngressError::InvalidUtf8 { .. } | IngressError::InvalidJson { .. } => {
                codes::PARSE_ERROR
            }
            _ => codes::INVALID_REQUEST,
        };
        ErrorObject::new(code, self.to_string())
    }

    /// The id to answer with, when it could be read.
    pub fn response_id(&self) -> Option<Id> {
        match self {
            IngressError::InvalidRequest { id, .. } => id.clone(),
            _ => None,
        }
    }

    /// The complete error response: [`to_error_object`](Self::to_error_object) addressed to
    /// [`response_id`](Self::response_id).
    pub fn to_error_response(&self) -> Envelope {
        Envelope::error_response(self.response_id(), &self.to_error_object())
    }
}

impl From<ShapeError> for IngressError {
    fn from(e: ShapeError) -> Self {
        if e.invalid_id {
            IngressError::InvalidId
        } else {
            IngressError::InvalidRequest {
                reason: e.reason.into_owned(),
                id: e.id,
            }
        }
    }
}

/// Parses one frame: a message or a batch. See the module documentation for the checks.
pub fn parse_frame(bytes: &[u8], limits: &Limits) -> Result<Frame, IngressError> {
    let text = precheck(bytes, limits)?;
    match first_byte(text) {
        b'[' => parse_batch(text).map(Frame::Batch),
        _ => parse_single(text).map(Frame::Single),
    }
}

/// Parses one message; a batch is refused with [`IngressError::BatchNotAllowed`] (the rule
/// from 2025-06-18 on; use [`parse_frame`] where older versions must be served).
pub fn parse_message(bytes: &[u8], limits: &Limits) -> Result<Envelope, IngressError> {
    let text = precheck(bytes, limits)?;
    match first_byte(text) {
        b'[' => Err(IngressError::BatchNotAllowed),
        _ => parse_single(text),
    }
}

/// Parses a frame and applies the batching rule of `version`.
pub fn parse_frame_for(
    bytes: &[u8],
    limits: &Limits,
    version: ProtocolVersion,
) -> Result<Frame, IngressError> {
    if version.allows_batch() {
        parse_frame(bytes, limits)
    } else {
        parse_message(bytes, limits).map(Frame::Single)
    }
}

/// Size, UTF-8 and the validation walk; returns the text.
fn precheck<'a>(bytes: &'a [u8], limits: &Limits) -> Result<&'a str, IngressError> {
    if bytes.len() > limits.max_frame_bytes {
        return Err(IngressError::TooLarge {
            limit: limits.max_frame_bytes,
            actual: bytes.len(),
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| IngressError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    validate::validate(text, limits.max_depth)?;
    Ok(text)
}

/// The first byte of a validated (hence non-blank) JSON text.
fn first_byte(text: &str) -> u8 {
    text.bytes()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .unwrap_or(b' ')
}

fn not_an_object(first: u8) -> &'static str {
    match first {
        b'"' => "a string",
        b't' | b'f' => "a boolean",
        b'n' => "null",
        b'[' => "an array",
        _ => "a number",
    }
}

fn parse_single(text: &str) -> Result<Envelope, IngressError> {
    let first = first_byte(text);
    if first != b'{' {
        return Err(IngressError::InvalidRequest {
            reason: format!(
                "a JSON-RPC message must be an object, not {}",
                not_an_object(first)
            ),
            id: None,
        });
    }
    let parts: Parts<&RawValue> =
        serde_json::from_str(text).map_err(|e| validate::invalid_json(&e))?;
    Ok(parts.into_envelope()?)
}

fn parse_batch(text: &str) -> Result<Vec<Envelope>, IngressError> {
    let elements: Vec<&RawValue> =
        serde_json::from_str(text).map_err(|e| validate::invalid_json(&e))?;
    if elements.is_empty() {
        return Err(IngressError::EmptyBatch);
    }
    elements
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            parse_single(raw.get()).map_err(|e| {
                let reason = match e {
                    IngressError::InvalidRequest { reason, .. } => reason,
                    other => other.to_string(),
                };
                let reason = reason.strip_prefix("invalid request: ").unwrap_or(&reason);
                IngressError::InvalidRequest {
                    reason: format!("batch element {i}: {reason}"),
                    id: None,
                }
            })
        })
        .collect()
}
