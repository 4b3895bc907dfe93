//! What the proxy reports about each destination it was asked for, for the gateway's audit.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::guard::Denial;

/// One decision about one request: the destination asked for, what its name resolved to,
/// and whether (and why) it was allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyEvent {
    /// `host:port` as normalised from the request.
    pub destination: String,
    /// How it was asked for.
    pub kind: RequestKind,
    /// The addresses the name resolved to (empty for IP literals and refusals before
    /// resolution).
    pub resolved: Vec<IpAddr>,
    /// Whether the allow list and the address rules let the request through.
    pub allowed: bool,
    pub reason: Reason,
}

/// The two ways a client asks a proxy for a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestKind {
    /// `CONNECT host:port`: a tunnel (HTTPS, or anything else over TCP).
    Connect,
    /// An absolute-form request (`GET http://host/path`), forwarded; the method is kept.
    Forward { method: String },
}

/// Why a destination was allowed or refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Allowed, and connected to this address.
    Connected(SocketAddr),
    /// Allowed, but no checked address accepted a connection.
    Unreachable(String),
    /// The host and port are not exactly an entry of the server's allow list.
    NotOnAllowList,
    /// On the list, but refused by the egress guard's rules with the gateway's `[egress]`
    /// policy: a blocked address no `egress.allow` entry opens (an IP literal, or one a name
    /// resolved to), a cloud metadata name, a name that does not resolve. The same
    /// [`Rule`](crate::guard::Rule) (and code) the gateway's own client would be refused with.
    Refused(Denial),
}

impl Reason {
    /// Whether the rules allowed the destination (even if it then could not be reached).
    pub fn is_allowed(&self) -> bool {
        matches!(self, Reason::Connected(_) | Reason::Unreachable(_))
    }

    /// A stable name for the audit record: the guard's
    /// [`Rule::code`](crate::guard::Rule::code) for a refusal by its
    /// rules, `not_on_allow_list` for a destination off the server's list, and `connected` or
    /// `unreachable` for an allowed one.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::Connected(_) => "connected",
            Reason::Unreachable(_) => "unreachable",
            Reason::NotOnAllowList => "not_on_allow_list",
            Reason::Refused(denial) => denial.rule.code(),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Connected(addr) => write!(f, "allowed, connected to {addr}"),
            Reason::Unreachable(why) => write!(f, "allowed, but unreachable: {why}"),
            Reason::NotOnAllowList => f.write_str("not on this server's network allow list"),
            Reason::Refused(denial) => write!(f, "{denial}"),
        }
    }
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestKind::Connect => f.write_str("CONNECT"),
            RequestKind::Forward { method } => f.write_str(method),
        }
    }
}
