//! Scripted sessions of the official Python SDK client (`mcp_client.py calls`): the steps a
//! test lists, and running them against a gateway.

use serde_json::{Value, json};

use super::{PeerSummary, PeerTarget};

/// Runs `calls` (a JSON list of steps) through the Python SDK client in one legacy session.
pub fn run_calls(target: &PeerTarget, calls: Value) -> PeerSummary {
    PeerSummary(super::run_python_client(
        "calls",
        "legacy",
        target,
        &["--calls", &calls.to_string()],
    ))
}

/// A step that lists the tools.
pub fn list_tools(step: &str) -> Value {
    json!({ "step": step, "list": "tools" })
}

/// A step that calls `tool` with `args`.
pub fn call_tool(step: &str, tool: &str, args: Value) -> Value {
    json!({ "step": step, "tool": tool, "args": args })
}

/// Runs a future to completion on a fresh single-threaded runtime (from a plain `#[test]`).
pub fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}
