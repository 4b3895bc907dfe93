//! The content part's table, target and JSON: sanitizing and redaction on a 1 MiB result in
//! process (target ≥ 200 MiB/s), and what they add to a 4 KiB call through the gateway.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::content::{ContentBench, MIN_MIB_PER_SEC, RESULT_BYTES, mib_per_sec};
use crate::json::side_json;
use crate::protocol::DOCUMENT_BYTES;
use crate::report::{Check, group, row, separate};
use crate::report_three_way::{full_row, three_way_rows};
use crate::stats::Spread;

pub(crate) fn content_check(c: &ContentBench) -> Check {
    Check {
        id: "content_mib_per_sec",
        figure: mib_per_sec(&c.in_process.typical),
        limit: MIN_MIB_PER_SEC,
        at_most: false,
    }
}

fn rate(s: &Spread) -> String {
    format!("{:.0} MiB/s", mib_per_sec(s))
}

fn ms(s: &Spread) -> String {
    format!("{:.2} ms", s.p50_us / 1000.0)
}

pub(crate) fn content_table(out: &mut String, c: &ContentBench, checks: &[Check]) {
    separate(out);
    let p = &c.in_process;
    let _ = writeln!(
        out,
        "content, in process: one {} MiB tools/call result, {} runs (p50)",
        RESULT_BYTES >> 20,
        p.typical.runs
    );
    let _ = writeln!(
        out,
        "(typical: prose, code, JSON and log lines, nothing to change; hostile: escapes,\n\
         invisible characters and credentials on every line)"
    );
    let _ = writeln!(
        out,
        "{:<24}{:>12}{:>12}{:>18}   {:<12}result",
        "", "time", "rate", "", "target"
    );
    let check = checks.iter().find(|k| k.id == "content_mib_per_sec");
    row(
        out,
        "typical: clean",
        [&ms(&p.typical), &rate(&p.typical), ""],
        check,
        |l| format!("≥ {l:.0} MiB/s"),
    );
    row(
        out,
        "  sanitize alone",
        [&ms(&p.sanitize), &rate(&p.sanitize), ""],
        None,
        |_| String::new(),
    );
    row(
        out,
        "  detector alone",
        [&ms(&p.detect), &rate(&p.detect), ""],
        None,
        |_| String::new(),
    );
    row(
        out,
        "hostile: clean",
        [&ms(&p.hostile), &rate(&p.hostile), ""],
        None,
        |_| String::new(),
    );
    let _ = writeln!(
        out,
        "  {:<22}{} credentials of {} kinds redacted, {} sequences and characters sanitized",
        "hostile: found",
        group(p.hostile_redacted as f64),
        p.hostile_kinds,
        group(p.hostile_sanitized as f64)
    );
    separate(out);
    let _ = writeln!(
        out,
        "content, per call: the fixture's `document` tool returning {} KiB over stdio",
        DOCUMENT_BYTES >> 10
    );
    full_row(
        out,
        "",
        [
            "direct",
            "content off",
            "content on",
            "on − direct",
            "on − off",
        ],
    );
    let k = &c.calls;
    three_way_rows(out, [&k.direct, &k.off, &k.on]);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let _ = writeln!(
        out,
        "  {:<22}{:.2} × direct at c=1 p50; throughput {:.0} % of direct",
        "gateway, content on",
        ratio(k.on.latency.p50_us, k.direct.latency.p50_us),
        100.0 * ratio(k.on.throughput.per_sec(), k.direct.throughput.per_sec()),
    );
}

fn spread_json(s: &Spread) -> Value {
    json!({ "runs": s.runs, "p50_us": s.p50_us, "p95_us": s.p95_us, "mib_per_sec": mib_per_sec(s) })
}

pub(crate) fn content_json(c: &ContentBench) -> Value {
    let p = &c.in_process;
    json!({
        "result_bytes": RESULT_BYTES,
        "typical": spread_json(&p.typical),
        "sanitize_alone": spread_json(&p.sanitize),
        "detector_alone": spread_json(&p.detect),
        "hostile": spread_json(&p.hostile),
        "hostile_redacted": p.hostile_redacted,
        "hostile_kinds": p.hostile_kinds,
        "hostile_sanitized": p.hostile_sanitized,
        "call_bytes": DOCUMENT_BYTES,
        "calls": {
            "direct": side_json(&c.calls.direct),
            "content_off": side_json(&c.calls.off),
            "content_on": side_json(&c.calls.on),
        },
    })
}
