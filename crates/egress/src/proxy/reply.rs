//! The proxy's own answers: short plain-text responses, after which the connection closes.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The statuses the proxy answers with itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    BadRequest,
    Forbidden,
    MethodNotAllowed,
    RequestTimeout,
    BadGateway,
    ServiceUnavailable,
}

impl Status {
    fn line(self) -> &'static str {
        match self {
            Status::BadRequest => "400 Bad Request",
            Status::Forbidden => "403 Forbidden",
            Status::MethodNotAllowed => "405 Method Not Allowed",
            Status::RequestTimeout => "408 Request Timeout",
            Status::BadGateway => "502 Bad Gateway",
            Status::ServiceUnavailable => "503 Service Unavailable",
        }
    }
}

/// The tunnel's `200`, with no body: what follows is the destination's bytes.
pub(crate) const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";

/// The whole response for `status` with `text` as its body.
pub(crate) fn response(status: Status, text: &str) -> Vec<u8> {
    let body = format!("portcullis proxy: {text}\n");
    let mut out = format!(
        "HTTP/1.1 {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
        status.line(),
        body.len()
    );
    if status == Status::MethodNotAllowed {
        out.push_str("Allow: CONNECT, GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&body);
    out.into_bytes()
}

/// Most unread bytes drained before closing after an answer.
const DRAIN_LIMIT: usize = 64 * 1024;

/// Answers and closes. The write is bounded by `wait`; then the connection is half-closed and
/// what the client already sent is drained (bounded), so the close does not turn into a reset
/// that would destroy the answer before the client reads it.
pub(crate) async fn send(mut stream: TcpStream, status: Status, text: &str, wait: Duration) {
    let bytes = response(status, text);
    let wrote = tokio::time::timeout(wait, async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await
    })
    .await;
    if !matches!(wrote, Ok(Ok(()))) {
        return;
    }
    let _ = tokio::time::timeout(wait, async {
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < DRAIN_LIMIT {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}
