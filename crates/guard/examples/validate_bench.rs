//! Argument validation, digest and redaction timings (run in release):
//!
//! ```sh
//! cargo run --release -p portcullis-guard --example validate_bench
//! ```
//!
//! Each line is nanoseconds per call, p50 and p99 over individually timed calls, cache warm.
//! "cache" goes through `SchemaCache::validate` (hashes the schema to find its validator);
//! "held" calls a `CompiledSchema` kept by the caller.

use portcullis_guard::{SchemaCache, compile, digest, redact};
use serde_json::{Value, json};
use std::hint::black_box;
use std::time::Instant;

const ITERATIONS: usize = 50_000;

fn main() {
    let write_file = json!({
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "Path of the file to write"},
            "content": {"type": "string", "description": "Content to write"}
        },
        "required": ["path", "content"],
        "additionalProperties": false,
        "$schema": "http://json-schema.org/draft-07/schema#"
    });
    let write_args = json!({"path": "/home/me/src/notes.md", "content": "# Notes\n\nThe gateway validates every call.\n"});

    let nested = json!({
        "type": "object",
        "properties": {
            "project": {"type": "string", "pattern": "^[A-Z]{2,10}-[0-9]+$"},
            "priority": {"enum": ["low", "medium", "high", "urgent"]},
            "assignee": {"type": "object", "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 100},
                "email": {"type": "string", "format": "email"}
            }, "required": ["name"]},
            "labels": {"type": "array", "items": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"}, "maxItems": 20, "uniqueItems": true},
            "estimate": {"type": "number", "minimum": 0, "maximum": 1000},
            "subtasks": {"type": "array", "items": {"type": "object", "properties": {
                "title": {"type": "string"},
                "done": {"type": "boolean"}
            }, "required": ["title"], "additionalProperties": false}}
        },
        "required": ["project", "priority"],
        "additionalProperties": false
    });
    let nested_args = json!({
        "project": "ACME-1234",
        "priority": "high",
        "assignee": {"name": "Ada", "email": "ada@example.com"},
        "labels": ["security", "gateway", "mcp"],
        "estimate": 3.5,
        "subtasks": [{"title": "write tests", "done": true}, {"title": "benchmark"}]
    });

    let cache = SchemaCache::default();
    for (name, schema, args) in [
        ("write_file", &write_file, &write_args),
        ("nested", &nested, &nested_args),
    ] {
        assert_eq!(cache.validate(schema, args), Ok(()), "{name}");
        report(&format!("validate {name} (cache)"), || {
            cache.validate(schema, args).is_ok()
        });
        let held = compile(schema).expect("compiles");
        report(&format!("validate {name} (held)"), || {
            held.validate(args).is_ok()
        });
    }
    let mut bad = nested_args.clone();
    bad["labels"][1] = json!("Not A Label");
    bad["estimate"] = json!("lots");
    report("validate nested, 2 problems (cache)", || {
        cache.validate(&nested, &bad).is_err()
    });

    let kib = one_kib_args();
    let size = serde_json::to_string(&kib)
        .map(|s| s.len())
        .unwrap_or_default();
    report(&format!("digest {size} B arguments"), || digest(&kib).len());
    report(&format!("redact {size} B arguments"), || {
        redact(&kib).is_object()
    });
}

/// About 1 KiB of arguments, with a few secrets for `redact` to find.
fn one_kib_args() -> Value {
    json!({
        "repository": "acme/portcullis",
        "branch": "main",
        "title": "Validate tool arguments before forwarding",
        "body": "Every tools/call is checked against the inputSchema of the latest tools/list. \
                 Invalid arguments never reach the server; the caller gets isError: true.",
        "labels": ["security", "gateway", "mcp", "validation"],
        "reviewers": [{"login": "ada", "team": "core"}, {"login": "grace", "team": "runtime"}],
        "options": {"draft": false, "maintainer_can_modify": true, "base": "main", "max_tokens": 4096},
        "github_token": "ghp_0123456789abcdefghijABCDEFGHIJ012345",
        "headers": {"Authorization": "Bearer abcdefghijklmnopqrstuvwxyz012345", "Accept": "application/json"},
        "note": "deploy key follows: AKIAIOSFODNN7EXAMPLE and nothing else of interest here",
        "metadata": {"created": "2026-01-01T00:00:00Z", "source": "portcullis", "attempt": 1,
                     "trace": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
        "checklist": ["tests pass", "clippy clean", "docs updated", "benchmark run", "changelog entry",
                      "security review requested", "no new unsafe code"]
    })
}

fn report<T>(name: &str, mut call: impl FnMut() -> T) {
    for _ in 0..ITERATIONS / 10 {
        black_box(call());
    }
    let mut times = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        let start = Instant::now();
        black_box(call());
        times.push(start.elapsed().as_nanos());
    }
    times.sort_unstable();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!("{name:<42} p50 {:>7} ns   p99 {:>7} ns", at(0.50), at(0.99));
}
