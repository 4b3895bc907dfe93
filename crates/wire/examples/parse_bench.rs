//! A criterion-free micro benchmark of the ingress path.
//!
//! `cargo run --release -p portcullis-wire --example parse_bench`
//!
//! Prints ns/message for parsing (all ingress checks) and for re-serializing a typical
//! ~300-byte `tools/call` request and a 4 KiB `tools/call` result.

use std::hint::black_box;
use std::time::{Duration, Instant};

use portcullis_wire::{Limits, parse_message};

fn request() -> String {
    r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"search_issues","arguments":{"query":"label:bug state:open sort:updated","repository":"acme/widgets","limit":25,"include_closed":false,"fields":["title","url","labels"]},"_meta":{"progressToken":"tok-7f3a9c"}}}"#
        .to_owned()
}

fn response_4k() -> String {
    let mut text = String::new();
    let mut i = 0;
    while text.len() < 3_960 {
        text.push_str(&format!(
            "#{i} Widget fails to render when the \\\"compact\\\" flag is set (updated 2026-01-0{})\\n",
            i % 9 + 1
        ));
        i += 1;
    }
    format!(
        r#"{{"jsonrpc":"2.0","id":42,"result":{{"content":[{{"type":"text","text":"{text}"}}],"isError":false}}}}"#
    )
}

fn bench(label: &str, input: &str) {
    let limits = Limits::default();
    let bytes = input.as_bytes();
    let env = parse_message(bytes, &limits).expect("benchmark input must parse");
    // Warm up, then run for about a second.
    for _ in 0..1_000 {
        black_box(parse_message(black_box(bytes), &limits).ok());
    }
    let (mut n, start) = (0u64, Instant::now());
    while start.elapsed() < Duration::from_secs(1) {
        for _ in 0..1_000 {
            black_box(parse_message(black_box(bytes), &limits).ok());
        }
        n += 1_000;
    }
    let parse_ns = start.elapsed().as_nanos() as f64 / n as f64;

    let mut buf = Vec::with_capacity(bytes.len() + 64);
    let (mut m, start) = (0u64, Instant::now());
    while start.elapsed() < Duration::from_millis(500) {
        for _ in 0..1_000 {
            buf.clear();
            black_box(&env).write_to(&mut buf);
            black_box(&buf);
        }
        m += 1_000;
    }
    let write_ns = start.elapsed().as_nanos() as f64 / m as f64;
    println!(
        "{label:<28} {:>6} bytes  parse {parse_ns:>8.0} ns/message ({:>6.0} MB/s)  write {write_ns:>6.0} ns/message",
        bytes.len(),
        bytes.len() as f64 / parse_ns * 1e3,
    );
}

fn main() {
    bench("tools/call request", &request());
    bench("tools/call result (4 KiB)", &response_4k());
}
