//! Which protocol era a client message belongs to, and the checks of the stateless era.
//!
//! Stateful clients (2024-11-05 … 2025-11-25) open with `initialize`. Clients of the
//! stateless 2026-07-28 protocol never do: every request carries its protocol version and
//! capabilities in `params._meta`, and over HTTP also in headers that must agree with the
//! body. The checks run in the order the specification's reference implementation uses, so
//! a client sees the same error code whichever server it talks to: the `_meta` envelope
//! (-32602), then the headers (-32020), then the version (-32022).

use portcullis_wire::{Envelope, ErrorObject, Kind, ProtocolVersion, codes};
use serde_json::{Map, Value, json};

use crate::mcp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientEra {
    /// An `initialize` request: a stateful session begins.
    Initialize,
    /// A 2026-07-28 message.
    Modern,
    /// Anything else: it belongs to a stateful session.
    Legacy,
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
    if !msg
        .params
        .as_deref()
        .is_some_and(|p| crate::json::may_mention(p.get(), mcp::META_PROTOCOL_VERSION))
    {
        return None;
    }
    meta(msg)?
        .get(mcp::META_PROTOCOL_VERSION)?
        .as_str()
        .map(str::to_owned)
}

/// Whether a version string names the stateful era (or nothing the gateway knows).
fn is_handshake_version(v: &str) -> bool {
    ProtocolVersion::parse(v).is_some_and(|p| p.has_initialize())
}

/// Classifies a message. `header_version` is the `MCP-Protocol-Version` header, when the
/// message came over HTTP: a version there that is not a handshake version marks the
/// stateless era even if the body's envelope is broken (so the client gets the stateless
/// error for it, not "missing session").
pub fn classify(msg: &Envelope, header_version: Option<&str>) -> ClientEra {
    match msg.method() {
        Some(mcp::INITIALIZE)
            if header_version.is_none_or(is_handshake_version)
                && declared_version(msg).is_none() =>
        {
            return ClientEra::Initialize;
        }
        Some(mcp::SERVER_DISCOVER) => return ClientEra::Modern,
        _ => {}
    }
    if header_version.is_some_and(|h| !is_handshake_version(h)) {
        return ClientEra::Modern;
    }
    match declared_version(msg) {
        Some(v) if !is_handshake_version(&v) => ClientEra::Modern,
        _ if msg.method() == Some(mcp::INITIALIZE) => ClientEra::Initialize,
        _ => ClientEra::Legacy,
    }
}

/// The error for a version the gateway does not serve here; `supported` lists those it does
/// (for a stateless request: the stateless versions; for a session: the handshake ones).
pub fn unsupported_version(requested: &str, stateless: bool) -> ErrorObject {
    let supported: Vec<&str> = ProtocolVersion::ALL
        .iter()
        .filter(|v| v.has_initialize() != stateless)
        .map(|v| v.as_str())
        .collect();
    ErrorObject::new(
        codes::UNSUPPORTED_PROTOCOL_VERSION,
        "Unsupported protocol version",
    )
    .with_data(json!({ "supported": supported, "requested": requested }))
}

/// Step 1: a 2026-07-28 request must carry its protocol version and client capabilities
/// in `_meta`. Returns the declared version. Notifications carry neither.
pub fn check_envelope(msg: &Envelope) -> Result<Option<String>, ErrorObject> {
    if msg.kind() != Kind::Request {
        return Ok(None);
    }
    let missing = |what: &str| {
        ErrorObject::new(
            codes::INVALID_PARAMS,
            format!(
                "params._meta must carry {what} (protocol 2026-07-28 sends it with every request)"
            ),
        )
    };
    let Some(meta) = meta(msg) else {
        return Err(missing(&format!(
            "{} and {}",
            mcp::META_PROTOCOL_VERSION,
            mcp::META_CLIENT_CAPABILITIES
        )));
    };
    let version = match meta.get(mcp::META_PROTOCOL_VERSION) {
        Some(Value::String(v)) => v.clone(),
        Some(_) => {
            return Err(ErrorObject::new(
                codes::INVALID_PARAMS,
                format!("{} must be a string", mcp::META_PROTOCOL_VERSION),
            ));
        }
        None => return Err(missing(mcp::META_PROTOCOL_VERSION)),
    };
    if !meta
        .get(mcp::META_CLIENT_CAPABILITIES)
        .is_some_and(Value::is_object)
    {
        return Err(missing(mcp::META_CLIENT_CAPABILITIES));
    }
    Ok(Some(version))
}

/// Step 3: the declared version must be one the gateway serves statelessly.
pub fn check_version(declared: Option<&str>) -> Result<(), ErrorObject> {
    match declared {
        None => Ok(()),
        Some(v) if ProtocolVersion::parse(v).is_some_and(|p| !p.has_initialize()) => Ok(()),
        Some(v) => Err(unsupported_version(v, true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(json: &str) -> Envelope {
        portcullis_wire::parse_message(json.as_bytes(), &Default::default()).unwrap()
    }

    #[test]
    fn eras_are_told_apart_by_method_meta_and_header() {
        let init = msg(
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}"#,
        );
        assert_eq!(classify(&init, None), ClientEra::Initialize);
        assert_eq!(classify(&init, Some("2025-11-25")), ClientEra::Initialize);
        assert_eq!(classify(&init, Some("2026-07-28")), ClientEra::Modern);
        let list = msg(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
        assert_eq!(classify(&list, None), ClientEra::Legacy);
        assert_eq!(classify(&list, Some("2026-07-28")), ClientEra::Modern);
        let modern = msg(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
        );
        assert_eq!(classify(&modern, None), ClientEra::Modern);
    }

    #[test]
    fn the_envelope_must_carry_version_and_capabilities() {
        let no_caps = msg(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
        );
        assert_eq!(
            check_envelope(&no_caps).unwrap_err().code,
            codes::INVALID_PARAMS
        );
        let ok = msg(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2099-01-01","io.modelcontextprotocol/clientCapabilities":{}}}}"#,
        );
        let v = check_envelope(&ok).unwrap();
        assert_eq!(
            check_version(v.as_deref()).unwrap_err().code,
            codes::UNSUPPORTED_PROTOCOL_VERSION
        );
    }
}
