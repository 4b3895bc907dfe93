//! MCP protocol versions and what each one implies for the wire.
//!
//! Two eras are live at once: the stateful protocol (2024-11-05 … 2025-11-25: `initialize`,
//! sessions, server→client requests) and the stateless one (2026-07-28: no `initialize`, no
//! sessions, `server/discover`, per-request `_meta` version and capabilities, standard HTTP
//! headers that must match the body).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A protocol version, ordered by date.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolVersion {
    /// 2024-11-05: the first public version (HTTP+SSE transport).
    V2024_11_05,
    /// 2025-03-26: Streamable HTTP, `Mcp-Session-Id`, batches, OAuth.
    V2025_03_26,
    /// 2025-06-18: batches removed, `MCP-Protocol-Version` header, elicitation.
    V2025_06_18,
    /// 2025-11-25: tasks (experimental), URL elicitation, SSE polling.
    V2025_11_25,
    /// 2026-07-28: stateless; `server/discover`, `subscriptions/listen`, multi round-trip.
    V2026_07_28,
}

impl ProtocolVersion {
    /// Every version, oldest first.
    pub const ALL: [Self; 5] = [
        Self::V2024_11_05,
        Self::V2025_03_26,
        Self::V2025_06_18,
        Self::V2025_11_25,
        Self::V2026_07_28,
    ];
    /// The newest version.
    pub const LATEST: Self = Self::V2026_07_28;
    /// The newest version that still negotiates with `initialize`.
    pub const LATEST_WITH_INITIALIZE: Self = Self::V2025_11_25;

    /// Parses the date string (`"2025-06-18"`); `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The date string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2024_11_05 => "2024-11-05",
            Self::V2025_03_26 => "2025-03-26",
            Self::V2025_06_18 => "2025-06-18",
            Self::V2025_11_25 => "2025-11-25",
            Self::V2026_07_28 => "2026-07-28",
        }
    }

    /// The version is negotiated with `initialize` / `notifications/initialized`
    /// (false for 2026-07-28, where every request carries its version in `_meta`).
    pub fn has_initialize(self) -> bool {
        self <= Self::V2025_11_25
    }

    /// JSON-RPC batches (a top-level array) are allowed. 2025-03-26 says receivers MUST
    /// support them; 2024-11-05 does not mention them, and JSON-RPC 2.0 allows them, so they
    /// are accepted there too. Removed in 2025-06-18.
    pub fn allows_batch(self) -> bool {
        self <= Self::V2025_03_26
    }

    /// The connection is a stateful session started by `initialize` (over Streamable HTTP
    /// identified by `Mcp-Session-Id`, from 2025-03-26; in 2024-11-05's HTTP+SSE transport by
    /// the session's POST endpoint URL). False for 2026-07-28.
    pub fn has_sessions(self) -> bool {
        self <= Self::V2025_11_25
    }

    /// HTTP requests carry `Mcp-Method` (and `Mcp-Name` for `tools/call`, `prompts/get`,
    /// `resources/read`) headers that MUST match the body (2026-07-28; mismatch:
    /// `HEADER_MISMATCH`, HTTP 400).
    pub fn requires_standard_headers(self) -> bool {
        self >= Self::V2026_07_28
    }

    /// HTTP requests after initialization carry `MCP-Protocol-Version` (2025-06-18 on).
    pub fn requires_protocol_version_header(self) -> bool {
        self >= Self::V2025_06_18
    }

    /// SSE event ids and `Last-Event-ID` resumption exist (removed in 2026-07-28).
    pub fn has_resumption(self) -> bool {
        self <= Self::V2025_11_25
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of [`ProtocolVersion::from_str`].
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("unknown MCP protocol version")]
pub struct UnknownVersion;

impl FromStr for ProtocolVersion {
    type Err = UnknownVersion;
    fn from_str(s: &str) -> Result<Self, UnknownVersion> {
        Self::parse(s).ok_or(UnknownVersion)
    }
}

impl Serialize for ProtocolVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ProtocolVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format_args!(
                "unknown MCP protocol version {:?}",
                s.chars().take(32).collect::<String>()
            ))
        })
    }
}
