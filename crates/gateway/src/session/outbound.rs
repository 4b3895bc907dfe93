//! Where a session's server→client messages go.
//!
//! Over stdio there is one place: the gateway's stdout. Over Streamable HTTP a message goes
//! to the response stream of the client request it relates to while that request is open,
//! and otherwise to the session's standalone GET stream (see `transport::http::streams`).

use portcullis_wire::{Envelope, Id};
use tokio::sync::mpsc;

/// Delivers server→client messages (notifications and requests) to one client.
pub trait Outbound: Send + Sync {
    /// `related`: the client's request this message belongs to, if any.
    fn send(&self, msg: Envelope, related: Option<&Id>);
    /// The session ended: release any stream.
    fn close(&self) {}
}

/// An outbound that feeds serialized frames to a channel; the stdio transport's writer
/// drains it, so every line on stdout is written by one task and lines never interleave.
pub struct ChannelOutbound {
    tx: mpsc::UnboundedSender<Vec<u8>>,
}

impl ChannelOutbound {
    pub fn new(tx: mpsc::UnboundedSender<Vec<u8>>) -> Self {
        ChannelOutbound { tx }
    }
}

impl Outbound for ChannelOutbound {
    fn send(&self, msg: Envelope, _related: Option<&Id>) {
        let _ = self.tx.send(msg.to_bytes());
    }
}

/// An outbound for clients that cannot receive anything unsolicited.
pub struct NoOutbound;

impl Outbound for NoOutbound {
    fn send(&self, msg: Envelope, _related: Option<&Id>) {
        tracing::debug!(method = ?msg.method(), "no stream to deliver a server message on; dropped");
    }
}
