//! The MCP wire format for Portcullis.
//!
//! - [`envelope`]: the JSON-RPC [`Envelope`], parsed once, with `params`/`result`/`error` kept
//!   raw so that what no guard touched is forwarded byte-for-byte.
//! - [`ingress`]: [`parse_frame`] / [`parse_message`], which turn untrusted bytes into
//!   envelopes or a typed [`IngressError`] (size, UTF-8, syntax, duplicate keys, depth,
//!   shape).
//! - [`error`]: the JSON-RPC [`ErrorObject`] and the error [`codes`].
//! - [`version`]: [`ProtocolVersion`] and what each version implies.
//! - [`method`]: the catalog of MCP methods ([`method::lookup`]).
//! - [`ndjson`]: bounded line framing for stdio.
//! - [`sse`]: Server-Sent Events encoding and bounded decoding.
//! - [`canonical`]: canonical JSON, the bytes behind every hash Portcullis computes over a
//!   value (argument digests, schema keys, the audit chain).
//!
//! Everything here treats its input as hostile: no panics, bounded work and memory, and
//! errors that say what was wrong without echoing more than a few dozen bytes of input.

pub mod canonical;
pub mod envelope;
pub mod error;
pub mod ingress;
pub mod method;
pub mod ndjson;
pub mod sse;
pub mod version;

pub use envelope::{Envelope, Id, Kind};
pub use error::{ErrorObject, codes};
pub use ingress::{Frame, IngressError, Limits, parse_frame, parse_frame_for, parse_message};
pub use method::{Direction, ListKind, MessageKind, MethodSpec, Target};
pub use ndjson::{Line, LineReader, write_frame};
pub use sse::{SseDecoder, SseError, SseEvent};
pub use version::ProtocolVersion;

/// Re-exported so that callers can build raw parts without naming serde_json's path.
pub use serde_json::value::RawValue;
