//! Reading one HTTP/1.x request head from a client, bounded in size and time.
//!
//! The head is parsed by `httparse` only once its end (an empty line) has arrived, so a
//! client that trickles bytes costs one scan of each new byte, not a re-parse per read.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// At most this many header lines.
const MAX_HEADERS: usize = 64;

/// Why no request head could be read.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("the client closed the connection before a request")]
    Closed,
    #[error("no complete request head within {0:?}")]
    Timeout(Duration),
    #[error("the request head is over {0} bytes")]
    TooLarge(usize),
    #[error("malformed request head: {0}")]
    Malformed(String),
    #[error("reading the request failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A parsed request head, and whatever the client sent after it.
#[derive(Debug)]
pub(crate) struct RequestHead {
    pub method: String,
    pub target: String,
    /// Header names as sent; values as raw bytes.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Bytes read past the head: the start of a body, or of a tunnelled stream (a client may
    /// send its TLS hello without waiting for the `200`).
    pub rest: Vec<u8>,
}

impl RequestHead {
    /// The values of every header named `name` (case-insensitive).
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

pub(crate) async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    limit: usize,
    timeout: Duration,
) -> Result<RequestHead, HeadError> {
    match tokio::time::timeout(timeout, read_until_parsed(stream, limit)).await {
        Ok(result) => result,
        Err(_) => Err(HeadError::Timeout(timeout)),
    }
}

async fn read_until_parsed<S: AsyncRead + Unpin>(
    stream: &mut S,
    limit: usize,
) -> Result<RequestHead, HeadError> {
    let mut buf: Vec<u8> = Vec::with_capacity(limit.min(4096));
    let mut chunk = [0u8; 4096];
    loop {
        let room = limit.saturating_sub(buf.len());
        if room == 0 {
            return Err(HeadError::TooLarge(limit));
        }
        let want = room.min(chunk.len());
        let n = stream.read(&mut chunk[..want]).await?;
        if n == 0 {
            return if buf.is_empty() {
                Err(HeadError::Closed)
            } else {
                Err(HeadError::Malformed(
                    "the connection ended inside the head".into(),
                ))
            };
        }
        let scan_from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if !has_blank_line(&buf[scan_from..]) {
            continue;
        }
        if let Some(head) = parse(&buf)? {
            return Ok(head);
        }
    }
}

/// Whether `bytes` contain the end of a head: `\n\n` or `\n\r\n`.
fn has_blank_line(bytes: &[u8]) -> bool {
    bytes
        .windows(2)
        .enumerate()
        .any(|(i, w)| w[0] == b'\n' && (w[1] == b'\n' || bytes.get(i + 1..i + 3) == Some(b"\r\n")))
}

fn parse(buf: &[u8]) -> Result<Option<RequestHead>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(HeadError::Malformed(e.to_string())),
    };
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return Err(HeadError::Malformed("no request line".into()));
    };
    Ok(Some(RequestHead {
        method: method.to_owned(),
        target: target.to_owned(),
        headers: req
            .headers
            .iter()
            .map(|h| (h.name.to_owned(), h.value.to_vec()))
            .collect(),
        rest: buf.get(len..).unwrap_or_default().to_vec(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_of_a_head_is_found_with_either_line_ending() {
        assert!(has_blank_line(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(has_blank_line(b"GET / HTTP/1.1\nHost: a\n\n"));
        assert!(!has_blank_line(b"GET / HTTP/1.1\r\nHost: a\r\n"));
    }

    #[tokio::test]
    async fn bytes_after_the_head_are_kept() {
        let mut input: &[u8] = b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n\x16\x03\x01";
        let head = read_head(&mut input, 1024, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(head.method, "CONNECT");
        assert_eq!(head.target, "a:443");
        assert_eq!(head.rest, b"\x16\x03\x01");
    }

    #[tokio::test]
    async fn a_head_over_the_limit_is_refused_without_reading_further() {
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(2000));
        let mut input = big.as_bytes();
        let err = read_head(&mut input, 1024, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(matches!(err, HeadError::TooLarge(1024)), "{err}");
    }

    #[tokio::test]
    async fn garbage_is_malformed_and_an_empty_connection_is_closed() {
        let mut input: &[u8] = b"\x00\x01\x02 nonsense\r\n\r\n";
        let err = read_head(&mut input, 1024, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(matches!(err, HeadError::Malformed(_)), "{err}");
        let mut empty: &[u8] = b"";
        let err = read_head(&mut empty, 1024, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(matches!(err, HeadError::Closed), "{err}");
    }
}
