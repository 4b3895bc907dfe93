//! The sandbox's tables and JSON: spawn-to-ready in process and through the gateway
//! (issue 5's targets: sandboxed ≤ 1.5 × and ≤ 30 ms over direct, p50), and per call.

use std::fmt::Write as _;

use portcullis_sandbox::LayerState;
use serde_json::{Value, json};

use crate::json::side_json;
use crate::report::{Check, info, row, separate};
use crate::report_three_way::{full_row, three_way_rows};
use crate::sandbox_gateway::{GatewayStart, SandboxCalls};
use crate::spawn::{SpawnToReady, WayFigures};
use crate::stats::Spread;

/// Sandboxed spawn-to-ready p50 over direct, at most.
pub const SPAWN_MAX_RATIO: f64 = 1.5;
/// Sandboxed spawn-to-ready p50 minus direct, in ms, at most.
pub const SPAWN_MAX_ADDED_MS: f64 = 30.0;

pub(crate) fn spawn_checks(s: &SpawnToReady) -> [Check; 2] {
    [
        Check {
            id: "sandbox_spawn_ratio",
            figure: s.ratio(),
            limit: SPAWN_MAX_RATIO,
            at_most: true,
        },
        Check {
            id: "sandbox_spawn_added_ms",
            figure: s.added_ms(),
            limit: SPAWN_MAX_ADDED_MS,
            at_most: true,
        },
    ]
}

fn ms(us: f64) -> String {
    format!("{:.2} ms", us / 1000.0)
}

fn signed_ms(ms: f64) -> String {
    format!("{ms:+.2} ms")
}

fn state(s: LayerState) -> &'static str {
    match s {
        LayerState::Enforced => "enforced",
        LayerState::Partial => "partial",
        LayerState::Missing => "MISSING",
        LayerState::Off => "off",
    }
}

fn head(out: &mut String, first: &str, third: &str) {
    let _ = writeln!(
        out,
        "{first:<24}{:>12}{:>12}{third:>18}   {:<12}result",
        "p50", "p95", "target"
    );
}

fn way(out: &mut String, label: &str, w: &WayFigures) {
    info(
        out,
        label,
        [
            &ms(w.ready.p50_us),
            &ms(w.ready.p95_us),
            &ms(w.spawned.p50_us),
        ],
    );
}

pub(crate) fn spawn_table(out: &mut String, s: &SpawnToReady, checks: &[Check]) {
    let find = |id: &str| checks.iter().find(|c| c.id == id);
    separate(out);
    let _ = writeln!(
        out,
        "spawn to ready: `portcullis fixture stdio` spawned until its `initialize` answer, in process ({} runs each, in turns)",
        s.runs
    );
    let layers: Vec<String> = s
        .layers
        .iter()
        .map(|l| format!("{} {}", l.name, state(l.state)))
        .collect();
    let _ = writeln!(out, "default profile on this kernel: {}", layers.join(", "));
    head(out, "", "spawn returned");
    way(out, "direct (sandbox off)", &s.direct);
    way(out, "sandboxed (default)", &s.sandboxed);
    row(
        out,
        "sandboxed − direct",
        ["", "", &signed_ms(s.added_ms())],
        find("sandbox_spawn_added_ms"),
        |l| format!("≤ +{l:.0} ms"),
    );
    row(
        out,
        "sandboxed ÷ direct",
        ["", "", &format!("{:.2} ×", s.ratio())],
        find("sandbox_spawn_ratio"),
        |l| format!("≤ {l:.1} ×"),
    );
    let _ = writeln!(out, "  where the time goes");
    way(out, "  direct through fork", &s.forked);
    way(out, "  sandbox, host network", &s.host_network);
    info(
        out,
        "  arm (sandboxed)",
        [&ms(s.sandboxed.arm.p50_us), &ms(s.sandboxed.arm.p95_us), ""],
    );
    if let Some(j) = &s.cgroup_join {
        info(
            out,
            "  joining pids cgroup",
            [&ms(j.p50_us), &ms(j.p95_us), ""],
        );
    }
    let _ = writeln!(
        out,
        "  {:<22}direct {}, sandboxed {} (stdin closed until exited and released)",
        "  teardown p50",
        ms(s.direct.teardown.p50_us),
        ms(s.sandboxed.teardown.p50_us)
    );
    let _ = writeln!(
        out,
        "  {:<22}kernel probe {} (per process), plan {} (per config load)",
        "  set up once",
        ms(s.probe.as_secs_f64() * 1e6),
        ms(s.plan.as_secs_f64() * 1e6)
    );
    let _ = writeln!(
        out,
        "  {:<22}{} (checked on every run)",
        "server's namespaces",
        isolation(&s.sandboxed.isolated)
    );
}

fn isolation(isolated: &[&str]) -> String {
    if isolated.is_empty() {
        "the benchmark's own".to_owned()
    } else {
        format!("its own {}", isolated.join(", "))
    }
}

pub(crate) fn gateway_start_table(out: &mut String, g: &GatewayStart) {
    separate(out);
    let _ = writeln!(
        out,
        "gateway start: `portcullis stdio demo` spawned until its first tools/list answer ({} runs each, in turns)",
        g.on.runs
    );
    head(out, "", "");
    let spread = |s: &Spread| [ms(s.p50_us), ms(s.p95_us)];
    let [p50, p95] = spread(&g.off);
    info(out, "sandbox = \"off\"", [&p50, &p95, ""]);
    let [p50, p95] = spread(&g.on);
    info(out, "sandboxed (default)", [&p50, &p95, ""]);
    info(out, "sandboxed − off", ["", "", &signed_ms(g.added_ms())]);
    info(
        out,
        "sandboxed ÷ off",
        ["", "", &format!("{:.2} ×", g.ratio())],
    );
    let _ = writeln!(
        out,
        "  {:<22}{} (checked on every run)",
        "server's namespaces",
        isolation(&g.isolated)
    );
}

pub(crate) fn calls_table(out: &mut String, c: &SandboxCalls) {
    separate(out);
    let _ = writeln!(
        out,
        "per call, sandbox off and on: `echo` over stdio, the gateway's server started with sandbox = \"off\" and sandboxed"
    );
    full_row(
        out,
        "",
        [
            "direct",
            "sandbox off",
            "sandbox on",
            "on − direct",
            "on − off",
        ],
    );
    three_way_rows(out, [&c.direct, &c.off, &c.on]);
    let servers = |s: &crate::scenarios::Side| s.cpu_concurrent.servers_us;
    full_row(
        out,
        &format!("c={} CPU/call servers", c.direct.throughput.concurrency),
        [
            &crate::report::us(servers(&c.direct)),
            &crate::report::us(servers(&c.off)),
            &crate::report::us(servers(&c.on)),
            "",
            &crate::report::signed_us(servers(&c.on) - servers(&c.off)),
        ],
    );
    let _ = writeln!(
        out,
        "  {:<22}{}",
        "server's namespaces",
        isolation(&c.isolated)
    );
}

fn spread_json(s: &Spread) -> Value {
    json!({
        "runs": s.runs, "p50_us": s.p50_us, "p95_us": s.p95_us,
        "min_us": s.min_us, "max_us": s.max_us,
    })
}

fn way_json(w: &WayFigures) -> Value {
    json!({
        "ready": spread_json(&w.ready),
        "spawn_returned": spread_json(&w.spawned),
        "arm": spread_json(&w.arm),
        "teardown": spread_json(&w.teardown),
        "namespaces_of_its_own": w.isolated,
    })
}

pub(crate) fn spawn_json(s: &SpawnToReady) -> Value {
    let layers: Vec<Value> = s
        .layers
        .iter()
        .map(|l| json!({ "name": l.name, "state": state(l.state), "detail": l.detail }))
        .collect();
    json!({
        "runs": s.runs,
        "probe_us": s.probe.as_secs_f64() * 1e6,
        "plan_us": s.plan.as_secs_f64() * 1e6,
        "layers": layers,
        "direct": way_json(&s.direct),
        "sandboxed": way_json(&s.sandboxed),
        "direct_through_fork": way_json(&s.forked),
        "sandboxed_host_network": way_json(&s.host_network),
        "pids_cgroup_join": s.cgroup_join.as_ref().map(spread_json),
        "ratio": s.ratio(),
        "added_ms": s.added_ms(),
    })
}

pub(crate) fn gateway_start_json(g: &GatewayStart) -> Value {
    json!({
        "sandbox_off": spread_json(&g.off),
        "sandboxed": spread_json(&g.on),
        "ratio": g.ratio(),
        "added_ms": g.added_ms(),
        "namespaces_of_its_own": g.isolated,
    })
}

pub(crate) fn calls_json(c: &SandboxCalls) -> Value {
    let share = |x: f64, of: f64| if of > 0.0 { x / of } else { 0.0 };
    json!({
        "direct": side_json(&c.direct),
        "sandbox_off": side_json(&c.off),
        "sandboxed": side_json(&c.on),
        "added_p50_us": c.on.latency.p50_us - c.off.latency.p50_us,
        "added_p99_us": c.on.latency.p99_us - c.off.latency.p99_us,
        "throughput_ratio": share(c.on.throughput.per_sec(), c.off.throughput.per_sec()),
        "namespaces_of_its_own": c.isolated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_are_printed_from_microseconds() {
        assert_eq!(ms(2_345.0), "2.35 ms");
        assert_eq!(signed_ms(0.5), "+0.50 ms");
        assert_eq!(signed_ms(-1.25), "-1.25 ms");
    }
}
