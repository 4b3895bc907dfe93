//! Which protocol era a client message belongs to.
//!
//! Stateful clients (2024-11-05 … 2025-11-25) open with `initialize`. Clients of the
//! stateless 2026-07-28 protocol never do: they may open with `server/discover`, and every
//! request carries its protocol version in `params._meta`.

use portcullis_wire::{Envelope, ErrorObject, ProtocolVersion, codes};
use serde_json::{Map, Value, json};

use crate::mcp;

#[derive(Debug)]
pub enum ClientEra {
    /// An `initialize` request: a stateful session begins.
    Initialize,
    /// A 2026-07-28 message.
    Modern,
    /// Anything else: it belongs to a stateful session.
    Legacy,
    /// A 2026-07-28-style message naming a version the gateway does not speak.
    Invalid(ErrorObject),
}

/// The `_meta` of a message's params, if it has one.
fn meta(msg: &Envelope) -> Option<Map<String, Value>> {
    #[derive(serde::Deserialize)]
    struct View {
        #[serde(rename = "_meta")]
        meta: Option<Map<String, Value>>,
    }
    msg.params_as::<View>().ok().flatten()?.meta
}

/// The protocol version a message declares in `_meta`, as written.
pub fn declared_version(msg: &Envelope) -> Option<String> {
    meta(msg)?
        .get(mcp::META_PROTOCOL_VERSION)?
        .as_str()
        .map(str::to_owned)
}

pub fn unsupported_version(requested: &str) -> ErrorObject {
    let supported: Vec<&str> = ProtocolVersion::ALL.iter().map(|v| v.as_str()).collect();
    ErrorObject::new(
        codes::UNSUPPORTED_PROTOCOL_VERSION,
        format!("Unsupported protocol version: {requested}"),
    )
    .with_data(json!({ "supported": supported, "requested": requested }))
}

pub fn classify(msg: &Envelope) -> ClientEra {
    match msg.method() {
        Some(mcp::INITIALIZE) => return ClientEra::Initialize,
        Some(mcp::SERVER_DISCOVER) => return ClientEra::Modern,
        _ => {}
    }
    match declared_version(msg) {
        None => ClientEra::Legacy,
        Some(v) => match ProtocolVersion::parse(&v) {
            Some(p) if !p.has_initialize() => ClientEra::Modern,
            Some(_) => ClientEra::Legacy,
            None => ClientEra::Invalid(unsupported_version(&v)),
        },
    }
}
