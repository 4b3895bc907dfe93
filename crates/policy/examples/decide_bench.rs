//! Decision time over 1,000 rules, p50 and p99 in nanoseconds per decision.
//!
//! ```text
//! cargo run --release -p portcullis-policy --example decide_bench
//! cargo run --release -p portcullis-policy --example decide_bench -- --json --iterations 200000
//! ```
//!
//! Scenarios (each: 1,000 rules, the deciding rule is the last one):
//! - `mixed`: rules over 10 servers, half with literal tool names, half with globs; the
//!   call's server has 100 of them.
//! - `same-server-globs`: all 1,000 rules on the call's server, each a glob that does not
//!   match, so every one must be tried (the index cannot skip any).
//! - `mixed+cel`: as `mixed`, the last rule with `when = 'args.path.startsWith("/srv/")'`.
//!
//! With `--json`, one JSON object per scenario is printed per line:
//! `{"scenario":"mixed","rules":1000,"iterations":100000,"p50_ns":…,"p99_ns":…}`; the
//! project benchmark (`crates/bench`) can run this example and read those lines.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use portcullis_policy::{
    Condition, Effect, Glob, Kind, LexicalResolver, Policy, Principal, Request, Rule, RuleOrigin,
};
use serde_json::json;

const RULES: usize = 1000;

fn origin(i: usize) -> RuleOrigin {
    RuleOrigin {
        index: i,
        file: Some(Arc::from("bench.toml")),
        line: Some(1 + 4 * i),
    }
}

fn rule(i: usize, server: &str, tool: &str, effect: Effect) -> Rule {
    let mut r = Rule::new(effect, origin(i));
    r.server = Some(server.to_owned());
    r.tools = Some(vec![Glob::new(tool).expect("valid glob")]);
    r
}

/// 999 rules that do not decide `files`/`read_file`, then one that allows it.
fn mixed(cel: bool) -> Policy {
    let mut rules = Vec::with_capacity(RULES);
    for i in 0..RULES - 1 {
        let server = format!("server{}", i % 10).replace("server0", "files");
        let tool = if i % 2 == 0 {
            format!("tool_{i}")
        } else {
            format!("tool_{i}_*")
        };
        let effect = if i % 3 == 0 {
            Effect::Deny
        } else {
            Effect::Allow
        };
        rules.push(rule(i, &server, &tool, effect));
    }
    let mut last = rule(RULES - 1, "files", "read_*", Effect::Allow);
    if cel {
        last.when =
            Some(Condition::compile("args.path.startsWith(\"/srv/\")").expect("valid condition"));
    }
    rules.push(last);
    Policy::new(rules)
}

/// 999 non-matching globs on the call's own server, then the allow.
fn same_server_globs() -> Policy {
    let mut rules: Vec<Rule> = (0..RULES - 1)
        .map(|i| rule(i, "files", &format!("read_{i}_*"), Effect::Deny))
        .collect();
    rules.push(rule(RULES - 1, "files", "read_*", Effect::Allow));
    Policy::new(rules)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let mut json_out = false;
    let mut iterations = 100_000usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => json_out = true,
            "--iterations" => {
                iterations = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--iterations N")
            }
            other => panic!("unknown argument {other}"),
        }
    }
    let principal = Principal::oauth("https://idp.example.com", "alice");
    let call_args = json!({"path": "/srv/data/report.txt", "encoding": "utf-8"});
    let scenarios = [
        ("mixed", mixed(false)),
        ("same-server-globs", same_server_globs()),
        ("mixed+cel", mixed(true)),
    ];
    for (name, policy) in &scenarios {
        let req = Request::new(&principal, "files", Kind::Tool, "read_file")
            .with_args(&call_args)
            .in_session("bench-session", "http");
        let check = policy.decide(&req, &LexicalResolver);
        assert!(check.is_allowed(), "{name}: {}", check.reason);
        assert_eq!(check.rule, Some(RULES - 1));
        for _ in 0..iterations / 10 {
            black_box(policy.decide(black_box(&req), &LexicalResolver));
        }
        let mut samples = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let start = Instant::now();
            let d = policy.decide(black_box(&req), &LexicalResolver);
            let elapsed = start.elapsed();
            black_box(d);
            samples.push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
        }
        samples.sort_unstable();
        let (p50, p99) = (percentile(&samples, 0.50), percentile(&samples, 0.99));
        if json_out {
            println!(
                "{}",
                json!({"scenario": name, "rules": RULES, "iterations": iterations, "p50_ns": p50, "p99_ns": p99})
            );
        } else {
            println!(
                "{name:<18} {RULES} rules, {iterations} decisions: p50 {p50} ns, p99 {p99} ns"
            );
        }
    }
}
