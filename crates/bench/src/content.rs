//! `--only content` (not part of the default run): what output sanitizing and secret
//! redaction cost.
//!
//! - **In process**, `portcullis_gateway::content::clean` — the gateway's own pass over a
//!   result's JSON text — on a 1 MiB `tools/call` result: the fixture's `document` text (prose,
//!   code, JSON and log lines; words like "token" and "key" that wake the detector's context
//!   rules, nothing to change: the common case), and 1 MiB of its hostile text (escape
//!   sequences, invisible characters and credentials on every line: everything to change).
//!   MiB/s at the median run. The guard's two halves alone on the typical text, for where the
//!   time goes.
//! - **Per call**, the fixture's `document` tool returning 4 KiB over stdio: directly, through
//!   a gateway with `[content]` switched off, and through one with the defaults (strip,
//!   redact), measured in the same alternating rounds; the gateway's figures beside the direct
//!   ones.

use std::time::{Duration, Instant};

use anyhow::Context;
use portcullis_fixtures::hostile::{document_text, hostile_text};
use portcullis_gateway::config::ContentConfig;
use portcullis_gateway::content::{self, Source};
use portcullis_guard::{SanitizeMode, sanitize, secrets};
use serde_json::value::RawValue;

use crate::protocol;
use crate::scenarios::{self, Env, Settings, Side, state_line};
use crate::stats::Spread;

/// Sanitize and redact a 1 MiB result at this rate at least (the typical text).
pub const MIN_MIB_PER_SEC: f64 = 200.0;
/// The size of the in-process result.
pub const RESULT_BYTES: usize = 1 << 20;

/// In process, per 1 MiB result.
#[derive(Debug, Clone)]
pub struct InProcess {
    /// `content::clean` on the typical result.
    pub typical: Spread,
    /// `content::clean` on the hostile result.
    pub hostile: Spread,
    /// `sanitize` alone on the typical text.
    pub sanitize: Spread,
    /// The secret detector alone on the typical text.
    pub detect: Spread,
    /// What cleaning the hostile result found (that it did the work): credentials
    /// redacted, their kinds, characters and sequences sanitized.
    pub hostile_redacted: usize,
    pub hostile_kinds: usize,
    pub hostile_sanitized: usize,
}

/// MiB/s of one run at `p50_us`.
pub fn mib_per_sec(spread: &Spread) -> f64 {
    if spread.p50_us > 0.0 {
        (RESULT_BYTES as f64 / (1 << 20) as f64) / (spread.p50_us / 1e6)
    } else {
        0.0
    }
}

/// Per 4 KiB call over stdio: direct, `[content]` off, the defaults.
#[derive(Debug, Clone)]
pub struct Calls {
    pub direct: Side,
    pub off: Side,
    pub on: Side,
}

#[derive(Debug, Clone)]
pub struct ContentBench {
    pub in_process: InProcess,
    pub calls: Calls,
}

/// A `tools/call` result with `text` as its one text block, as JSON text.
fn result_of(text: &str) -> anyhow::Result<Box<RawValue>> {
    let value =
        serde_json::json!({ "content": [{ "type": "text", "text": text }], "isError": false });
    Ok(serde_json::value::to_raw_value(&value)?)
}

/// `text` repeated (and cut) to `len` bytes, at a character boundary.
fn sized(text: &str, len: usize) -> String {
    let mut out = String::with_capacity(len + text.len());
    while out.len() < len {
        out.push_str(text);
    }
    let mut end = len.min(out.len());
    while !out.is_char_boundary(end) {
        end -= 1;
    }
    out.truncate(end);
    out
}

fn timed(runs: usize, mut f: impl FnMut()) -> Spread {
    f();
    let samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    Spread::from_samples(samples)
}

/// The in-process measurements (CPU-bound: run off the runtime's thread).
pub fn in_process(runs: usize) -> anyhow::Result<InProcess> {
    let config = ContentConfig::default();
    let source = Source {
        server: "bench",
        tool: Some("document"),
    };
    let typical_text = document_text(RESULT_BYTES);
    let typical = result_of(&typical_text)?;
    let hostile = result_of(&sized(&hostile_text(), RESULT_BYTES))?;
    let (changed, report) = content::clean(&config, source, &hostile)?;
    anyhow::ensure!(changed.is_some(), "the hostile result came back unchanged");
    let (unchanged, _) = content::clean(&config, source, &typical)?;
    anyhow::ensure!(
        unchanged.is_none(),
        "the typical result was changed: a false positive in the benchmark text"
    );
    let clean = |raw: &RawValue| {
        let _ = std::hint::black_box(content::clean(&config, source, raw));
    };
    Ok(InProcess {
        typical: timed(runs, || clean(&typical)),
        hostile: timed(runs, || clean(&hostile)),
        sanitize: timed(runs, || {
            std::hint::black_box(sanitize(&typical_text, SanitizeMode::Strip));
        }),
        detect: timed(runs, || {
            std::hint::black_box(secrets::detector().find(&typical_text));
        }),
        hostile_redacted: report.redacted.total(),
        hostile_kinds: report.redacted.iter().count(),
        hostile_sanitized: report.sanitized.total(),
    })
}

/// The stdio config of a gateway in front of the fixture's `document` tool, with `content`
/// as its `[content]` section.
fn config(env: &Env, tag: &str, content: &str) -> String {
    format!(
        "# Written by portcullis-bench: the fixture's `document` tool over stdio behind the gateway.\n\
         [gateway]\n{}\n\n{content}\n\
         [servers.demo]\ncommand = [\"portcullis\", \"fixture\", \"stdio\", \"--hostile-content\"]\n\n\
         [[rules]]\nserver = \"demo\"\ntools = [\"document\"]\neffect = \"allow\"\n",
        state_line(&env.dir, tag)
    )
}

/// The 4 KiB calls: direct, `[content]` off, the defaults, in the same rounds.
pub async fn calls(env: &Env, s: &Settings) -> anyhow::Result<Calls> {
    let off = "[content]\nsanitize = \"off\"\nredact = false\n";
    let sides = scenarios::stdio_sides_calling(
        env,
        s,
        &[
            ("content-off", Some(config(env, "content-off", off))),
            ("content-on", Some(config(env, "content-on", ""))),
        ],
        &["--hostile-content"],
        protocol::document_call,
    )
    .await?;
    let [direct, off, on]: [Side; 3] = sides
        .try_into()
        .map_err(|_| anyhow::anyhow!("three targets measured, not three results"))?;
    Ok(Calls { direct, off, on })
}

/// Both parts.
pub async fn run(env: &Env, s: &Settings) -> anyhow::Result<ContentBench> {
    let runs = (s.latency_calls / 50).clamp(5, 50);
    let in_process = tokio::task::spawn_blocking(move || in_process(runs))
        .await
        .context("the measurement panicked")??;
    let calls = calls(env, s).await.context("4 KiB calls")?;
    Ok(ContentBench { in_process, calls })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sized_texts_have_the_size() {
        assert_eq!(sized("abc", 10), "abcabcabca");
        assert_eq!(sized("é", 3).len(), 2);
    }

    #[test]
    fn the_benchmark_results_are_what_they_claim() -> anyhow::Result<()> {
        let out = in_process(1)?;
        assert!(out.hostile_redacted > 0 && out.hostile_kinds == 8);
        assert!(mib_per_sec(&out.typical) > 0.0);
        Ok(())
    }
}
