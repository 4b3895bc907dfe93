//! What the proxy reports about each destination it was asked for, for the gateway's audit.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::address::BlockReason;

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
    /// The host and port are not exactly an entry of the allow list.
    NotOnAllowList,
    /// The host is a cloud metadata service's name.
    MetadataHost,
    /// The name resolved to an address the egress rules block (the allow list names a host,
    /// not the private network behind it; an operator who means an internal address writes
    /// it as an IP literal).
    BlockedAddress { address: IpAddr, why: BlockReason },
    /// The name could not be resolved.
    ResolveFailed(String),
    /// The name resolved to no address.
    NoAddresses,
}

impl Reason {
    /// Whether the rules allowed the destination (even if it then could not be reached).
    pub fn is_allowed(&self) -> bool {
        matches!(self, Reason::Connected(_) | Reason::Unreachable(_))
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Connected(addr) => write!(f, "allowed, connected to {addr}"),
            Reason::Unreachable(why) => write!(f, "allowed, but unreachable: {why}"),
            Reason::NotOnAllowList => f.write_str("not on this server's network allow list"),
            Reason::MetadataHost => f.write_str("a cloud metadata host"),
            Reason::BlockedAddress { address, why } => {
                write!(f, "resolves to {address}, which is {why}")
            }
            Reason::ResolveFailed(why) => write!(f, "could not be resolved: {why}"),
            Reason::NoAddresses => f.write_str("resolves to no address"),
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
