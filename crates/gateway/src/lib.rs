//! Portcullis: a security gateway for the Model Context Protocol.
//!
//! The gateway stands between MCP clients (hosts, agents) and MCP servers and enforces the
//! host's policy on every message. This crate holds the gateway itself; `docs/architecture.md`
//! at the repository root is the map.
//!
//! - [`config`]: the TOML configuration, validated with file:line:column errors.
//! - [`gateway`]: routes, upstream specs, shared connections.
//! - [`session`]: one client's session: the relay, list filtering, id remapping.
//! - [`upstream`]: the gateway as an MCP client of each server (stdio child or HTTP).
//! - [`transport`]: the gateway as an MCP server to its clients (stdio, Streamable HTTP).
//! - [`decision`]: the decision log (a line per decision).
//! - [`audit`]: the audit trail (a record per decision, hash-chained, in the state store).
//! - [`limits`]: rate limits.
//! - [`roots`]: the roots the gateway gives a server that has configured ones.
//! - [`consent`]: calls a consent rule holds until a person decides (elicitation,
//!   `input_required`, the approvals page, the terminal).
//! - [`content`]: what is relayed to clients sanitized and redacted; credentials in the
//!   arguments of open-world tools.

pub mod audit;
pub mod config;
pub mod consent;
pub mod content;
pub mod decision;
pub mod gateway;
pub mod ids;
pub mod json;
pub mod limits;
pub mod logging;
pub mod mcp;
pub mod oauth;
pub mod on_behalf;
pub mod roots;
pub mod route;
pub mod session;
pub mod standard_headers;
pub mod transport;
pub mod upstream;
