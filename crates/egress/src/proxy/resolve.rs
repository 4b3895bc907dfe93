//! Name resolution, injectable so tests can make a name resolve to any address without DNS.

use std::io;
use std::net::IpAddr;

use futures::future::BoxFuture;

/// At most this many addresses of one name are kept (and each is checked).
pub const MAX_ADDRESSES: usize = 16;

/// Resolves a host name to addresses. The proxy checks every address returned and then
/// connects only to those, so a resolver is asked once per request.
pub trait Resolve: Send + Sync {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> BoxFuture<'a, io::Result<Vec<IpAddr>>>;
}

/// The system resolver (`getaddrinfo` on a blocking thread, through tokio), as the gateway's
/// own process sees the network.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            let found = tokio::net::lookup_host((host, port)).await?;
            Ok(found.map(|a| a.ip()).take(MAX_ADDRESSES).collect())
        })
    }
}
