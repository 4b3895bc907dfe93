//! Argument validation, in process: a typical tool's arguments against its `inputSchema`
//! through the guard's `SchemaCache`, warm (the validator compiled by an earlier call), as
//! the gateway checks every `tools/call`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::bail;
use portcullis_guard::SchemaCache;
use serde_json::{Value, json};

use crate::stats::Latency;

#[derive(Debug, Clone)]
pub struct Validation {
    /// Bytes of the schema and of the arguments, as compact JSON.
    pub schema_bytes: usize,
    pub args_bytes: usize,
    pub latency: Latency,
}

/// A typical tool, as servers list them: a search with a required query, an enum, bounded
/// integers, a pattern, a list of strings and an optional nested object; no extra members.
pub fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "query": {"type": "string", "minLength": 1, "maxLength": 1000,
                      "description": "Search text"},
            "repository": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$",
                           "description": "owner/name"},
            "state": {"type": "string", "enum": ["open", "closed", "all"], "default": "open"},
            "labels": {"type": "array", "items": {"type": "string"}, "maxItems": 20},
            "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 30},
            "sort": {
                "type": "object",
                "properties": {
                    "by": {"type": "string", "enum": ["created", "updated", "comments"]},
                    "descending": {"type": "boolean"}
                },
                "additionalProperties": false
            }
        },
        "required": ["query", "repository"],
        "additionalProperties": false,
        "$schema": "http://json-schema.org/draft-07/schema#"
    })
}

/// Arguments a client would send it (valid).
pub fn args() -> Value {
    json!({
        "query": "audit log rotation",
        "repository": "acme/portcullis",
        "state": "open",
        "labels": ["security", "gateway"],
        "limit": 20,
        "sort": {"by": "updated", "descending": true}
    })
}

/// `iterations` timed validations (a tenth as many first, untimed).
pub fn run(iterations: usize) -> anyhow::Result<Validation> {
    let (schema, args) = (schema(), args());
    let cache = SchemaCache::default();
    if let Err(e) = cache.validate(&schema, &args) {
        bail!("the benchmark's arguments do not validate: {e}");
    }
    let mut wrong = args.clone();
    wrong["limit"] = json!(1000);
    if cache.validate(&schema, &wrong).is_ok() {
        bail!("the benchmark's schema accepts what it should refuse");
    }
    for _ in 0..iterations / 10 {
        black_box(cache.validate(black_box(&schema), black_box(&args)).is_ok());
    }
    let mut samples: Vec<Duration> = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let ok = cache.validate(black_box(&schema), black_box(&args)).is_ok();
        let took = start.elapsed();
        black_box(ok);
        samples.push(took);
    }
    Ok(Validation {
        schema_bytes: schema.to_string().len(),
        args_bytes: args.to_string().len(),
        latency: Latency::from_samples(samples),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_typical_arguments_validate() -> anyhow::Result<()> {
        let v = super::run(20)?;
        assert!(v.latency.p50_us > 0.0);
        assert!(v.schema_bytes > v.args_bytes);
        Ok(())
    }
}
