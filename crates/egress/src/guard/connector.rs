//! The TCP connector of the guarded client: connects only to checked addresses.
//!
//! hyper (and rustls above it, for the server name) hands the connector the request's URI.
//! The connector asks the guard for the checked addresses of exactly that URI, so nothing
//! reaches a socket without passing [`EgressGuard::approve`], whichever code path built the
//! request. hyper-util's own connector is not used: it would parse `0x7f.1` as a name and
//! resolve it, and it resolves without knowing the port an `egress.allow` entry names.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::EgressGuard;
use super::refusal::{Refusal, Rule};
use crate::proxy::connect_first;

/// Why the guarded connector opened no connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnectFailure {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("could not connect: {0}")]
    Unreachable(String),
}

/// A `tower_service::Service<Uri>` for hyper-util's pooled client (wrapped by rustls for
/// `https`). Cheap to clone.
#[derive(Debug, Clone)]
pub struct GuardedConnector {
    guard: EgressGuard,
    connect_timeout: Duration,
}

impl GuardedConnector {
    pub fn new(guard: EgressGuard, connect_timeout: Duration) -> Self {
        GuardedConnector {
            guard,
            connect_timeout,
        }
    }

    /// Checks `uri`, connects to the first checked address that answers, and checks the
    /// peer the socket is connected to is that address.
    pub async fn connect(&self, uri: &Uri) -> Result<TcpStream, ConnectFailure> {
        let addrs = self.guard.approve(uri).await?;
        let (stream, checked) = connect_first(&addrs, self.connect_timeout)
            .await
            .map_err(ConnectFailure::Unreachable)?;
        let connected = stream
            .peer_addr()
            .map_err(|e| ConnectFailure::Unreachable(e.to_string()))?;
        if !same_endpoint(connected, checked) {
            return Err(Refusal::new(uri, Rule::PeerMismatch { checked, connected })
                .at(connected.ip())
                .into());
        }
        Ok(stream)
    }
}

/// Equal address and port; a v6 socket's scope and flow label do not matter here.
fn same_endpoint(a: SocketAddr, b: SocketAddr) -> bool {
    a.ip() == b.ip() && a.port() == b.port()
}

type Connecting = Pin<Box<dyn Future<Output = Result<TokioIo<TcpStream>, ConnectFailure>> + Send>>;

impl tower_service::Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectFailure;
    type Future = Connecting;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.connect(&uri).await.map(TokioIo::new) })
    }
}
