//! The few MCP messages the benchmark sends, and the little it reads from an answer.
//!
//! Both clients (stdio and HTTP) and both targets (the fixture directly, the gateway) get
//! byte-for-byte the same requests, so the client's own cost is the same on both sides of
//! every comparison.

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The protocol revision the benchmark speaks (sessions, `initialize`).
pub const PROTOCOL_VERSION: &str = "2025-11-25";

/// The argument of every `echo` call: short, like most tool arguments.
const MESSAGE: &str = "hello from portcullis-bench";

pub fn initialize(id: u64) -> Vec<u8> {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": { "name": "portcullis-bench", "version": env!("CARGO_PKG_VERSION") }
        }
    })
    .to_string()
    .into_bytes()
}

pub fn initialized() -> Vec<u8> {
    br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_vec()
}

/// `tools/list`, as clients send it before calling (the gateway learns each tool's
/// `inputSchema` from it).
pub fn list_tools(id: u64) -> Vec<u8> {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list","params":{{}}}}"#).into_bytes()
}

pub fn echo_call(id: u64) -> Vec<u8> {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"{MESSAGE}"}}}}}}"#
    )
    .into_bytes()
}

/// The size of the result of [`document_call`].
pub const DOCUMENT_BYTES: usize = 4096;

/// A call of the fixture's `document` tool (with `--hostile-content`): a typical 4 KiB text
/// result (prose, code, JSON, log lines) for the content part.
pub fn document_call(id: u64) -> Vec<u8> {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"document","arguments":{{"bytes":{DOCUMENT_BYTES}}}}}}}"#
    )
    .into_bytes()
}

/// One message from the server, read only as far as the benchmark needs.
#[derive(Deserialize)]
pub struct Incoming {
    id: Option<serde_json::Value>,
    method: Option<String>,
    result: Option<Box<RawValue>>,
    error: Option<Box<RawValue>>,
}

impl Incoming {
    pub fn parse(bytes: &[u8]) -> anyhow::Result<Self> {
        serde_json::from_slice(bytes).with_context(|| {
            format!(
                "the server sent something that is not a JSON-RPC message: {}",
                preview(bytes)
            )
        })
    }

    /// The id of a response (None for notifications and server→client requests).
    pub fn response_id(&self) -> Option<u64> {
        if self.method.is_some() {
            return None;
        }
        self.id.as_ref().and_then(serde_json::Value::as_u64)
    }

    /// Fails unless this is a successful result (a tool error counts as a failure too: the
    /// benchmark must be measuring calls that really went through).
    pub fn check_success(&self) -> anyhow::Result<()> {
        if let Some(error) = &self.error {
            bail!("the call failed: {}", error.get());
        }
        let Some(result) = &self.result else {
            bail!("a response without result or error");
        };
        if result.get().contains(r#""isError":true"#) {
            bail!("the tool reported an error: {}", result.get());
        }
        Ok(())
    }
}

/// The start of a message, for error reports.
pub fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_valid_json() -> anyhow::Result<()> {
        for bytes in [
            initialize(1),
            initialized(),
            list_tools(2),
            echo_call(7),
            document_call(8),
        ] {
            serde_json::from_slice::<serde_json::Value>(&bytes)?;
        }
        Ok(())
    }

    #[test]
    fn responses_are_told_from_other_messages() -> anyhow::Result<()> {
        let ok = Incoming::parse(br#"{"jsonrpc":"2.0","id":3,"result":{"content":[]}}"#)?;
        assert_eq!(ok.response_id(), Some(3));
        assert!(ok.check_success().is_ok());
        let note = Incoming::parse(br#"{"jsonrpc":"2.0","method":"notifications/message"}"#)?;
        assert_eq!(note.response_id(), None);
        let tool_error = Incoming::parse(br#"{"jsonrpc":"2.0","id":4,"result":{"isError":true}}"#)?;
        assert!(tool_error.check_success().is_err());
        let error = Incoming::parse(br#"{"jsonrpc":"2.0","id":5,"error":{"code":-1}}"#)?;
        assert!(error.check_success().is_err());
        Ok(())
    }
}
