//! NDJSON framing: splitting, limits, EOF, and writes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use portcullis_wire::{Line, LineReader, write_frame};
use tokio::io::{AsyncBufRead, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, ReadBuf};

/// Reads everything from `input`, delivered in pieces of `piece` bytes.
async fn lines(input: &[u8], piece: usize, max: usize) -> Vec<Line> {
    let reader = BufReader::with_capacity(
        piece,
        Trickle {
            data: input.to_vec(),
            pos: 0,
            piece,
        },
    );
    let mut r = LineReader::new(reader, max);
    let mut out = Vec::new();
    while let Some(line) = r.next_line().await.expect("in-memory reads do not fail") {
        out.push(line);
    }
    out
}

/// A reader that hands out at most `piece` bytes per read.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
    piece: usize,
}

impl AsyncRead for Trickle {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self
            .piece
            .min(buf.remaining())
            .min(self.data.len() - self.pos);
        let start = self.pos;
        buf.put_slice(&self.data[start..start + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

fn frame(s: &str) -> Line {
    Line::Frame(s.as_bytes().to_vec())
}

#[tokio::test]
async fn lines_split_on_newline_strip_cr_and_skip_blanks() {
    let input = b"{\"a\":1}\n\n{\"b\":2}\r\n  \r\n\t\n{\"c\":3}";
    for piece in [1, 2, 3, 5, 8, 64, 4096] {
        assert_eq!(
            lines(input, piece, 100).await,
            vec![frame("{\"a\":1}"), frame("{\"b\":2}"), frame("{\"c\":3}")],
            "piece {piece}"
        );
    }
}

#[tokio::test]
async fn over_long_line_is_skipped_and_reading_continues() {
    let long = "x".repeat(10_000);
    let input = format!("{{\"a\":1}}\n{long}\r\n{{\"b\":2}}\n");
    for piece in [1, 7, 100, 8192] {
        assert_eq!(
            lines(input.as_bytes(), piece, 16).await,
            vec![
                frame("{\"a\":1}"),
                Line::TooLong { len: 10_001 },
                frame("{\"b\":2}")
            ],
            "piece {piece}"
        );
    }
}

#[tokio::test]
async fn line_of_exactly_the_limit_is_accepted_with_or_without_cr() {
    let input = b"0123456789\n0123456789\r\n01234567890\n";
    assert_eq!(
        lines(input, 3, 10).await,
        vec![
            frame("0123456789"),
            frame("0123456789"),
            Line::TooLong { len: 11 }
        ]
    );
}

#[tokio::test]
async fn partial_last_line_is_returned_at_eof_if_within_limit() {
    assert_eq!(
        lines(b"{\"a\":1}\n{\"b\":2}", 4, 100).await,
        vec![frame("{\"a\":1}"), frame("{\"b\":2}")]
    );
    assert_eq!(
        lines(b"{\"a\":1}\nxxxxxxxxxx", 4, 5).await,
        vec![Line::TooLong { len: 7 }, Line::TooLong { len: 10 }]
    );
    assert_eq!(lines(b"", 4, 5).await, vec![]);
    assert_eq!(lines(b"\n\r\n  ", 4, 5).await, vec![]);
}

#[tokio::test]
async fn huge_line_costs_bounded_memory() {
    // A 64 MiB line through a 1 KiB limit: the reader never holds more than the limit.
    struct Endless {
        left: usize,
    }
    impl AsyncRead for Endless {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let n = buf.remaining().min(self.left);
            buf.put_slice(&vec![b'['; n]);
            self.left -= n;
            Poll::Ready(Ok(()))
        }
    }
    let reader = Endless { left: 64 << 20 }.chain(&b"\n{}\n"[..]);
    let mut r = LineReader::new(BufReader::with_capacity(64 * 1024, reader), 1024);
    assert_eq!(
        r.next_line().await.unwrap(),
        Some(Line::TooLong { len: 64 << 20 })
    );
    assert_eq!(r.next_line().await.unwrap(), Some(frame("{}")));
    assert_eq!(r.next_line().await.unwrap(), None);
}

#[tokio::test]
async fn duplex_stream_round_trips_frames() {
    let (mut a, b) = tokio::io::duplex(7);
    let writer = tokio::spawn(async move {
        for i in 0..50 {
            write_frame(&mut a, format!("{{\"i\":{i}}}").as_bytes())
                .await
                .unwrap();
        }
        a.shutdown().await.unwrap();
    });
    let mut r = LineReader::new(BufReader::new(b), 64);
    for i in 0..50 {
        assert_eq!(
            r.next_line().await.unwrap(),
            Some(frame(&format!("{{\"i\":{i}}}")))
        );
    }
    assert_eq!(r.next_line().await.unwrap(), None);
    writer.await.unwrap();
}

#[tokio::test]
async fn write_frame_appends_one_newline_and_refuses_embedded_newlines() {
    let mut out = Vec::new();
    write_frame(&mut out, b"{\"a\":1}").await.unwrap();
    assert_eq!(out, b"{\"a\":1}\n");
    let err = write_frame(&mut out, b"{}\n{\"injected\":1}")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(out, b"{\"a\":1}\n");
}

#[tokio::test]
async fn next_line_is_usable_with_a_slice_reader() {
    fn assert_bufread<R: AsyncBufRead + Unpin>(_: &R) {}
    let input: &[u8] = b"a\nb\n";
    assert_bufread(&input);
    let mut r = LineReader::new(input, 10);
    assert_eq!(r.next_line().await.unwrap(), Some(frame("a")));
    assert_eq!(r.next_line().await.unwrap(), Some(frame("b")));
    assert_eq!(r.next_line().await.unwrap(), None);
}
