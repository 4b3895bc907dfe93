//! Relaying bytes between the client and the destination, ended by an idle timeout shared by
//! both directions (a long download with a silent client is not idle).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const BUF: usize = 16 * 1024;

/// When bytes last moved, in either direction.
#[derive(Debug, Clone)]
pub(crate) struct Activity {
    start: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    pub fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Completes once no bytes have moved for `idle`.
    pub async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// Copies from `from` to `to` until end of stream or `limit` bytes, marking activity.
pub(crate) async fn copy<R, W>(
    from: &mut R,
    to: &mut W,
    limit: Option<u64>,
    activity: &Activity,
) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut buf = vec![0u8; BUF];
    let mut total = 0u64;
    loop {
        let want = match limit {
            Some(l) => usize::try_from(l.saturating_sub(total))
                .unwrap_or(BUF)
                .min(BUF),
            None => BUF,
        };
        if want == 0 {
            return Ok(total);
        }
        let n = from.read(&mut buf[..want]).await?;
        if n == 0 {
            return Ok(total);
        }
        activity.touch();
        to.write_all(&buf[..n]).await?;
        to.flush().await?;
        total += n as u64;
    }
}

/// A CONNECT tunnel: both directions until each side has finished (an end of stream is passed
/// on as a half-close), or until nothing moved for `idle`.
pub(crate) async fn tunnel(mut client: TcpStream, mut upstream: TcpStream, idle: Duration) {
    let activity = Activity::new();
    let (mut client_r, mut client_w) = client.split();
    let (mut up_r, mut up_w) = upstream.split();
    let outbound = async {
        let _ = copy(&mut client_r, &mut up_w, None, &activity).await;
        let _ = up_w.shutdown().await;
    };
    let inbound = async {
        let _ = copy(&mut up_r, &mut client_w, None, &activity).await;
        let _ = client_w.shutdown().await;
    };
    tokio::select! {
        _ = async { tokio::join!(outbound, inbound) } => {}
        _ = activity.idle_for(idle) => {}
    }
}
