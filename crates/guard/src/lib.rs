//! Portcullis guards for what untrusted parties put in MCP messages. No I/O: every function
//! here is pure computation on values the gateway already holds.
//!
//! - [`SchemaCache`] / [`compile`]: `tools/call` arguments against the tool's `inputSchema`,
//!   with the `jsonschema` crate in safe settings (no retrieval, linear-time patterns, bounded
//!   schema cost). Invalid arguments become an [`Invalid`] naming each failing path; a schema
//!   that cannot be used becomes a [`SchemaError`] and the call is refused all the same.
//! - [`check_prompt_arguments`]: `prompts/get` arguments against the prompt's declaration.
//! - [`ResourceIndex`]: resource URIs against the listed resources and URI templates.
//! - [`digest`]: a key-order-independent SHA-256 of arguments, for the audit log.
//! - [`sanitize`]: ANSI escape sequences, C0/C1 controls, Unicode tags, bidi controls and
//!   zero-width characters out of text relayed to a client (or shown as escapes), with
//!   counts; [`is_clean`] and [`suspect_spans`] for callers that keep their own mapping.
//! - [`secrets`]: a detector of 80 credential kinds with a keyword prefilter (one
//!   Aho-Corasick pass), entropy and context checks, and redaction with typed placeholders
//!   (`[REDACTED:github-token]`).
//! - [`redact`]: secrets out of values that are logged (keys that name secrets, and the
//!   detector inside every string).
//! - [`scan`]: tool definitions and server instructions scanned for hidden or model-directed
//!   text (invisible characters, "ignore previous instructions", credential files) and, across
//!   a virtual server's members, for shadowing and confusable tool names.
//!
//! Refusing a call for a tool that was never listed needs no code here: the gateway holds no
//! schema for it, and so has nothing to validate against.

mod digest;
mod invalid;
mod prompts;
mod redact;
mod resources;
mod sanitize;
pub mod scan;
mod schema;
pub mod secrets;

pub use digest::digest;
pub use invalid::{Invalid, MAX_ECHO, MAX_PROBLEMS, Problem};
pub use prompts::check_prompt_arguments;
pub use redact::{REDACTED, is_secret_key, looks_like_secret, redact};
pub use resources::ResourceIndex;
pub use sanitize::{SanitizeMode, Sanitized, Suspect, is_clean, sanitize, suspect_spans};
pub use schema::{
    CompiledSchema, MAX_ARGUMENT_DEPTH, MAX_CALL_EVALUATIONS, MAX_EVALUATIONS, MAX_PATTERN_BYTES,
    MAX_PATTERNS, MAX_REFERENCES, MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH, Rejected, SchemaCache,
    SchemaError, compile,
};
