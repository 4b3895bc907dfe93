//! `CONNECT host:port`: a tunnel to an allowed destination.

use std::sync::Arc;

use tokio::io::AsyncWriteExt;

use super::destination::Destination;
use super::event::RequestKind;
use super::head::RequestHead;
use super::reply::{self, ESTABLISHED, Status};
use super::{Inner, splice};

pub(super) async fn handle(inner: &Arc<Inner>, client: tokio::net::TcpStream, head: RequestHead) {
    let dest = match Destination::parse(&head.target) {
        Ok(dest) => dest,
        Err(e) => {
            let text = format!("CONNECT needs host:port: {e}");
            return reply::send(client, Status::BadRequest, &text, inner.reply_wait()).await;
        }
    };
    let Some((mut client, mut upstream)) = inner.open(client, &dest, RequestKind::Connect).await
    else {
        return;
    };
    let idle = inner.config.idle_timeout;
    let started = tokio::time::timeout(idle, async {
        client.write_all(ESTABLISHED).await?;
        // Bytes the client sent right behind its request (an eager TLS hello) belong to the
        // destination.
        if !head.rest.is_empty() {
            upstream.write_all(&head.rest).await?;
        }
        std::io::Result::Ok(())
    })
    .await;
    if matches!(started, Ok(Ok(()))) {
        splice::tunnel(client, upstream, idle).await;
    }
}
