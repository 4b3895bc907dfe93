//! MCP names and small JSON helpers the relay uses everywhere.

use portcullis_wire::{Envelope, ErrorObject, Id};
use serde_json::value::RawValue;

pub const INITIALIZE: &str = "initialize";
pub const PING: &str = "ping";
pub const SERVER_DISCOVER: &str = "server/discover";
pub const TOOLS_LIST: &str = "tools/list";
pub const TOOLS_CALL: &str = "tools/call";
pub const PROMPTS_LIST: &str = "prompts/list";
pub const PROMPTS_GET: &str = "prompts/get";
pub const RESOURCES_LIST: &str = "resources/list";
pub const RESOURCES_TEMPLATES_LIST: &str = "resources/templates/list";
pub const RESOURCES_READ: &str = "resources/read";
pub const RESOURCES_SUBSCRIBE: &str = "resources/subscribe";
pub const RESOURCES_UNSUBSCRIBE: &str = "resources/unsubscribe";
pub const COMPLETION_COMPLETE: &str = "completion/complete";
pub const LOGGING_SET_LEVEL: &str = "logging/setLevel";

pub const SAMPLING_CREATE_MESSAGE: &str = "sampling/createMessage";
pub const ELICITATION_CREATE: &str = "elicitation/create";
pub const ROOTS_LIST: &str = "roots/list";

pub const NOTIFICATION_INITIALIZED: &str = "notifications/initialized";
pub const NOTIFICATION_CANCELLED: &str = "notifications/cancelled";
pub const NOTIFICATION_PROGRESS: &str = "notifications/progress";
pub const NOTIFICATION_MESSAGE: &str = "notifications/message";
pub const NOTIFICATION_ROOTS_LIST_CHANGED: &str = "notifications/roots/list_changed";
pub const NOTIFICATION_TOOLS_LIST_CHANGED: &str = "notifications/tools/list_changed";
pub const NOTIFICATION_PROMPTS_LIST_CHANGED: &str = "notifications/prompts/list_changed";
pub const NOTIFICATION_RESOURCES_LIST_CHANGED: &str = "notifications/resources/list_changed";
pub const NOTIFICATION_RESOURCES_UPDATED: &str = "notifications/resources/updated";
pub const NOTIFICATION_ELICITATION_COMPLETE: &str = "notifications/elicitation/complete";

/// The `_meta` keys of the 2026-07-28 protocol.
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
/// The per-request envelope of the 2026-07-28 protocol.
pub const ENVELOPE_META_KEYS: [&str; 4] = [
    META_PROTOCOL_VERSION,
    META_CLIENT_CAPABILITIES,
    META_CLIENT_INFO,
    META_LOG_LEVEL,
];

/// The gateway's own name and version, as it introduces itself to upstreams.
pub const GATEWAY_NAME: &str = "portcullis";
pub const GATEWAY_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Serializes a value that cannot fail to serialize (maps of strings and JSON values).
pub fn raw(value: &serde_json::Value) -> Box<RawValue> {
    // A serde_json::Value always serializes, and its output is always valid JSON.
    RawValue::from_string(value.to_string()).unwrap_or_else(|_| empty_object())
}

pub fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).unwrap_or_else(|_| unreachable!("static JSON"))
}

pub fn error_raw(err: &ErrorObject) -> Box<RawValue> {
    match serde_json::to_string(err) {
        Ok(s) => RawValue::from_string(s).unwrap_or_else(|_| empty_object()),
        Err(_) => empty_object(),
    }
}

/// A response carrying a raw error object.
pub fn error_envelope(id: Option<Id>, err: &ErrorObject) -> Envelope {
    Envelope::error_response(id, err)
}

/// A response carrying an already-serialized error object.
pub fn raw_error_envelope(id: Id, error: Box<RawValue>) -> Envelope {
    Envelope {
        id: Some(id),
        method: None,
        params: None,
        result: None,
        error: Some(error),
    }
}
