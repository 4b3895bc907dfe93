//! The results as JSON: the same figures as the table, and every target with its verdict.

use serde_json::{Value, json};

use crate::full::{AuditState, FullTransport};
use crate::http_auth::HttpAuth;
use crate::http_client::Refusal;
use crate::jwt::{AlgFigures, JwtValidation};
use crate::measure::CpuPerCall;
use crate::report::{Results, added_p50, cpu_bound_ratio, ratio};
use crate::report_sandbox::{calls_json, gateway_start_json, spawn_json};
use crate::scenarios::{Comparison, Side};
use crate::stats::{Latency, Throughput};

impl Results {
    pub fn json(&self) -> Value {
        let s = &self.settings;
        let checks: Vec<Value> = self
            .checks()
            .iter()
            .map(|c| {
                json!({
                    "id": c.id, "figure": c.figure, "limit": c.limit,
                    "comparison": if c.at_most { "at_most" } else { "at_least" },
                    "pass": c.pass(),
                })
            })
            .collect();
        json!({
            "machine": { "cpus": self.cpus, "cpu_model": self.cpu_model },
            "settings": {
                "latency_calls": s.latency_calls,
                "throughput_calls": s.throughput_calls,
                "concurrency": s.concurrency,
                "warmup_calls": s.warmup,
                "sessions": s.sessions,
                "decisions": s.decisions,
                "validations": s.validations,
                "audit_records": s.audit_records,
                "audit_single": s.audit_single,
                "jwt_validations": s.jwt_validations,
                "spawn_runs": s.spawn_runs,
                "timeout_ms": s.timeout.as_millis() as u64,
            },
            "stdio": self.stdio.as_ref().map(comparison_json),
            "http": self.http.as_ref().map(comparison_json),
            "http_auth": self.http_auth.as_ref().map(http_auth_json),
            "idle_sessions": self.memory.as_ref().map(|m| json!({
                "sessions": m.sessions,
                "rss_before_kib": m.before_kib,
                "rss_after_kib": m.after_kib,
                "kib_per_session": m.kib_per_session(),
                "open_seconds": m.open_elapsed.as_secs_f64(),
            })),
            "policy": self.decisions.as_ref().map(|d| json!({
                "rules": d.rules,
                "rules_tried": d.tried,
                "first_match": latency_json(&d.plain),
                "first_match_cel": latency_json(&d.cel),
                "every_rule_tried": latency_json(&d.worst),
                "every_rule_tried_rules": d.worst_tried,
            })),
            "validation": self.validation.as_ref().map(|v| json!({
                "schema_bytes": v.schema_bytes,
                "args_bytes": v.args_bytes,
                "latency": latency_json(&v.latency),
            })),
            "jwt": self.jwt.as_ref().map(jwt_json),
            "audit": self.audit.as_ref().map(|a| json!({
                "records": a.records,
                "tasks": a.tasks,
                "seconds": a.elapsed.as_secs_f64(),
                "records_per_sec": a.per_sec(),
                "single_append": latency_json(&a.single),
                "verified_records": a.verified_records,
                "verify_seconds": a.verify_elapsed.as_secs_f64(),
            })),
            "full": self.full.as_ref().map(|f| json!({
                "rules": f.rules,
                "stdio": full_json(&f.stdio),
                "http": full_json(&f.http),
            })),
            "spawn": self.spawn.as_ref().map(spawn_json),
            "gateway_start": self.gateway_start.as_ref().map(gateway_start_json),
            "sandbox_calls": self.sandbox_calls.as_ref().map(calls_json),
            "content": self.content.as_ref().map(crate::report_content::content_json),
            "targets": checks,
            "all_pass": self.all_pass(),
        })
    }
}

pub(crate) fn side_json(side: &Side) -> Value {
    json!({
        "answers": side.answers,
        "cpu_per_call_us": {
            "sequential": cpu_json(&side.cpu_sequential),
            "concurrent": cpu_json(&side.cpu_concurrent),
        },
        "latency": latency_json(&side.latency),
        "throughput": throughput_json(&side.throughput),
    })
}

fn cpu_json(c: &CpuPerCall) -> Value {
    json!({ "servers": c.servers_us, "gateway": c.gateway_us, "client": c.client_us })
}

fn latency_json(l: &Latency) -> Value {
    json!({ "calls": l.calls, "p50_us": l.p50_us, "p99_us": l.p99_us, "mean_us": l.mean_us })
}

fn throughput_json(t: &Throughput) -> Value {
    json!({
        "calls": t.calls, "concurrency": t.concurrency,
        "seconds": t.elapsed.as_secs_f64(), "calls_per_sec": t.per_sec(), "p50_us": t.p50_us,
    })
}

fn comparison_json(c: &Comparison) -> Value {
    json!({
        "direct": side_json(&c.direct),
        "gateway": side_json(&c.gateway),
        "added_p50_us": added_p50(c),
        "added_p99_us": c.gateway.latency.p99_us - c.direct.latency.p99_us,
        "throughput_ratio": ratio(c),
        "cpu_bound_throughput_ratio": cpu_bound_ratio(c),
    })
}

fn jwt_json(j: &JwtValidation) -> Value {
    let alg = |f: &AlgFigures| json!({ "token_bytes": f.token_bytes, "latency": latency_json(&f.latency) });
    json!({
        "validations": j.validations,
        "rs256": alg(&j.rs256),
        "es256": alg(&j.es256),
        "metadata_fetches": j.fetches.metadata,
        "jwks_fetches": j.fetches.jwks,
        "other_requests": j.fetches.other,
    })
}

fn http_auth_json(a: &HttpAuth) -> Value {
    let (d, off, on) = (&a.direct, &a.auth_off, &a.auth_on);
    let share = |x: f64, of: f64| if of > 0.0 { x / of } else { 0.0 };
    let refusal = |r: &Refusal| json!({ "status": r.status, "www_authenticate": r.challenge });
    json!({
        "direct": side_json(d),
        "auth_off": side_json(off),
        "auth_on": side_json(on),
        "added_p50_us": on.latency.p50_us - off.latency.p50_us,
        "added_p99_us": on.latency.p99_us - off.latency.p99_us,
        "throughput_ratio": share(on.throughput.per_sec(), off.throughput.per_sec()),
        "added_p50_us_over_direct": on.latency.p50_us - d.latency.p50_us,
        "throughput_ratio_to_direct": share(on.throughput.per_sec(), d.throughput.per_sec()),
        "token_bytes": a.checks.token_bytes,
        "unauthenticated": refusal(&a.checks.unauthenticated),
        "other_audience": refusal(&a.checks.other_audience),
        "metadata_fetches": a.fetches.metadata,
        "jwks_fetches": a.fetches.jwks,
        "calls_with_token": a.calls,
    })
}

fn full_json(t: &FullTransport) -> Value {
    let (d, g, a) = (&t.direct, &t.gateway, &t.all_on);
    let share = |x: f64, of: f64| if of > 0.0 { x / of } else { 0.0 };
    let audit = match &t.audit.state {
        AuditState::Intact {
            records,
            call_decisions,
        } => json!({
            "written": t.audit.written(), "calls": t.audit.calls, "intact": true,
            "records": records, "call_decisions": call_decisions,
            "verified_by": t.audit.verified_by,
        }),
        AuditState::NotWritten { why } => json!({
            "written": t.audit.written(), "calls": t.audit.calls, "records": 0, "note": why,
        }),
    };
    json!({
        "direct": side_json(d),
        "gateway": side_json(g),
        "all_on": side_json(a),
        "added_p50_us": a.latency.p50_us - d.latency.p50_us,
        "added_p99_us": a.latency.p99_us - d.latency.p99_us,
        "added_p50_us_over_gateway": a.latency.p50_us - g.latency.p50_us,
        "throughput_ratio": share(a.throughput.per_sec(), d.throughput.per_sec()),
        "throughput_ratio_to_gateway": share(a.throughput.per_sec(), g.throughput.per_sec()),
        "gateway_added_p50_us": g.latency.p50_us - d.latency.p50_us,
        "gateway_throughput_ratio": share(g.throughput.per_sec(), d.throughput.per_sec()),
        "audit": audit,
    })
}
