//! The tables of the three-way runs: direct, the plain gateway and a third gateway (with
//! everything on, or with `[auth]` on), measured in the same rounds.

use std::fmt::Write as _;

use crate::full::{AuditState, Full, FullTransport};
use crate::http_auth::HttpAuth;
use crate::http_client::Refusal;
use crate::report::{group, separate, signed_us, us};
use crate::scenarios::Side;

/// Direct, the plain gateway and the all-on gateway, measured together.
pub(crate) fn full_table(out: &mut String, f: &Full) {
    separate(out);
    let _ = writeln!(
        out,
        "everything on: {} rules (`echo` allowed by the last: CEL `when` over args and principal,\n\
         max_arg_bytes, rate limit), argument validation, audit log in SQLite",
        f.rules
    );
    full_row(
        out,
        "",
        [
            "direct",
            "gateway",
            "all on",
            "all on − direct",
            "all on − gateway",
        ],
    );
    for (title, t) in [
        ("stdio (NDJSON on one pipe)", &f.stdio),
        ("HTTP (one session)", &f.http),
    ] {
        let _ = writeln!(out, "{title}");
        full_transport_rows(out, t);
    }
}

/// Direct, the gateway with auth off and with auth on, measured together.
pub(crate) fn http_auth_table(out: &mut String, a: &HttpAuth) {
    separate(out);
    let _ = writeln!(
        out,
        "HTTP with [auth] on: the same gateway, and a Bearer token (RS256, {} B) validated on every request",
        a.checks.token_bytes
    );
    full_row(
        out,
        "",
        [
            "direct",
            "auth off",
            "auth on",
            "auth on − direct",
            "auth on − off",
        ],
    );
    three_way_rows(out, [&a.direct, &a.auth_off, &a.auth_on]);
    let refusal = |r: &Refusal| {
        let error = if r
            .challenge
            .as_deref()
            .is_some_and(|c| c.contains("invalid_token"))
        {
            " invalid_token"
        } else {
            ""
        };
        format!("{}{error}", r.status)
    };
    let _ = writeln!(
        out,
        "  {:<22}without a token {}, with another resource's token {} (checked before measuring)",
        "refused",
        refusal(&a.checks.unauthenticated),
        refusal(&a.checks.other_audience)
    );
    let _ = writeln!(
        out,
        "  {:<22}metadata {}, JWKS {}, for {} calls with a token",
        "issuer fetches",
        a.fetches.metadata,
        a.fetches.jwks,
        group(a.calls as f64)
    );
}

fn full_transport_rows(out: &mut String, t: &FullTransport) {
    three_way_rows(out, [&t.direct, &t.gateway, &t.all_on]);
    let audit = match &t.audit.state {
        AuditState::Intact {
            records,
            call_decisions,
        } => {
            let tally: Vec<String> = call_decisions
                .iter()
                .map(|(what, n)| format!("{what} {}", group(*n as f64)))
                .collect();
            format!(
                "{} records for {} calls, chain intact ({}); tools/call: {}",
                group(*records as f64),
                group(t.audit.calls as f64),
                t.audit.verified_by,
                tally.join(", ")
            )
        }
        AuditState::NotWritten { why } => format!("NOT CHECKED: {why}"),
    };
    let _ = writeln!(out, "  {:<22}{audit}", "audit log");
}

/// Latency, throughput and the gateways' CPU for direct (`d`), the plain gateway (`g`) and
/// the third side (`a`), with the third's differences from the first two.
pub(crate) fn three_way_rows(out: &mut String, [d, g, a]: [&Side; 3]) {
    for (label, pick) in [
        ("c=1 p50", (|s: &Side| s.latency.p50_us) as fn(&Side) -> f64),
        ("c=1 p99", |s: &Side| s.latency.p99_us),
    ] {
        full_row(
            out,
            label,
            [
                &us(pick(d)),
                &us(pick(g)),
                &us(pick(a)),
                &signed_us(pick(a) - pick(d)),
                &signed_us(pick(a) - pick(g)),
            ],
        );
    }
    let c = d.throughput.concurrency;
    let rate = |s: &Side| s.throughput.per_sec();
    let share = |x: f64, of: f64| {
        if of > 0.0 {
            format!("{:.1} %", x / of * 100.0)
        } else {
            "-".to_owned()
        }
    };
    full_row(
        out,
        &format!("c={c} calls/s"),
        [
            &group(rate(d)),
            &group(rate(g)),
            &group(rate(a)),
            &share(rate(a), rate(d)),
            &share(rate(a), rate(g)),
        ],
    );
    full_row(
        out,
        &format!("c={c} p50"),
        [
            &us(d.throughput.p50_us),
            &us(g.throughput.p50_us),
            &us(a.throughput.p50_us),
            "",
            "",
        ],
    );
    let (gs, as_) = (g.cpu_sequential.gateway_us, a.cpu_sequential.gateway_us);
    full_row(
        out,
        "c=1 CPU/call gateway",
        ["", &us(gs), &us(as_), "", &signed_us(as_ - gs)],
    );
    let (gc, ac) = (g.cpu_concurrent.gateway_us, a.cpu_concurrent.gateway_us);
    full_row(
        out,
        &format!("c={c} CPU/call gateway"),
        ["", &us(gc), &us(ac), "", &signed_us(ac - gc)],
    );
}

pub(crate) fn full_row(out: &mut String, label: &str, cells: [&str; 5]) {
    let line = format!(
        "  {label:<22}{:>12}{:>12}{:>12}{:>18}{:>18}",
        cells[0], cells[1], cells[2], cells[3], cells[4]
    );
    let _ = writeln!(out, "{}", line.trim_end());
}
