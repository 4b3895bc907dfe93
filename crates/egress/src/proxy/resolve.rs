//! Name resolution, injectable so tests can make a name resolve to any address without DNS.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

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

/// Resolves `name` once through `resolver`, bounded by `timeout`: at most [`MAX_ADDRESSES`]
/// addresses, duplicates removed, in the resolver's order. Shared by the sandbox proxy and the
/// egress guard, so both check exactly the list they will connect to. The error is the reason,
/// fit for an audit record.
pub(crate) async fn resolve_bounded(
    resolver: &dyn Resolve,
    name: &str,
    port: u16,
    timeout: Duration,
) -> Result<Vec<IpAddr>, String> {
    match tokio::time::timeout(timeout, resolver.resolve(name, port)).await {
        Ok(Ok(mut ips)) => {
            ips.truncate(MAX_ADDRESSES);
            let mut unique = Vec::with_capacity(ips.len());
            for ip in ips {
                if !unique.contains(&ip) {
                    unique.push(ip);
                }
            }
            Ok(unique)
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}
