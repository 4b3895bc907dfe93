//! Decision time over 1,000 rules, in process: the policy as the gateway's config loader
//! builds it from a generated TOML file, asked about one tool call again and again.
//!
//! The measured policy is spread the way a large one is: 1,000 rules over ten servers, in
//! the forms rules take — other tools by name, other tools by glob, rules for every server,
//! and the call's very tool for other principals (which the index cannot rule out: each is
//! tried up to its `principals`). The last rule allows the call; with CEL it also has a
//! `when` over the arguments and the principal, which the decision evaluates.
//!
//! A third policy is the worst case, for information: 999 rules for the call's server and
//! tool glob, each for another principal, so that every rule is tried.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use portcullis_gateway::config::{Config, ConfigSource, SystemPaths};
use portcullis_policy::{Kind, Policy, Principal, Request};
use serde_json::json;

use crate::stats::Latency;

/// Rules in the measured policy.
pub const RULES: usize = 1000;

/// The call every decision is about.
const SERVER: &str = "files";
const TOOL: &str = "read_file";
const ISSUER: &str = "https://idp.example.com";
const SUBJECT: &str = "alice@example.com";

/// The deciding rule's condition in the CEL scenario.
pub const CONDITION: &str = r#"principal.sub.endsWith("@example.com") && args.path.startsWith("/srv/") && size(args.path) <= 4096"#;

/// The measured scenarios.
#[derive(Debug, Clone)]
pub struct Decisions {
    pub rules: usize,
    /// Rules the decision tried up to their principals, condition or constraints (its trace,
    /// the deciding rule included); the index and the name globs rule out the rest.
    pub tried: usize,
    pub plain: Latency,
    pub cel: Latency,
    /// Every rule tried (no CEL).
    pub worst: Latency,
    pub worst_tried: usize,
}

/// `iterations` timed decisions per scenario (a tenth as many first, untimed).
pub fn run(iterations: usize) -> anyhow::Result<Decisions> {
    let plain = policy(&config_text(false))?;
    let cel = policy(&config_text(true))?;
    let worst = policy(&worst_case_text())?;
    let principal = Principal::oauth(ISSUER, SUBJECT);
    let args = json!({"path": "/srv/data/report.txt", "encoding": "utf-8"});
    let req = Request::new(&principal, SERVER, Kind::Tool, TOOL)
        .with_args(&args)
        .in_session("3f1c2a9e-1b4d-4c8e-9a57-6d2f0e8b7c41", "http");
    let (plain_latency, tried) = measure(&plain, &req, iterations)?;
    let (cel_latency, _) = measure(&cel, &req, iterations)?;
    let (worst_latency, worst_tried) = measure(&worst, &req, iterations)?;
    Ok(Decisions {
        rules: plain.rules().len(),
        tried,
        plain: plain_latency,
        cel: cel_latency,
        worst: worst_latency,
        worst_tried,
    })
}

/// The generated config, loaded as the gateway loads one.
fn policy(text: &str) -> anyhow::Result<Policy> {
    let config = Config::parse(text, ConfigSource::File(PathBuf::from("bench-policy.toml")))
        .map_err(|e| anyhow::anyhow!("the generated policy does not load:\n{e}"))?;
    if config.policy.rules().len() != RULES {
        bail!(
            "the generated policy has {} rules, not {RULES}",
            config.policy.rules().len()
        );
    }
    Ok(config.policy)
}

fn servers() -> String {
    let mut out = String::new();
    for name in std::iter::once(SERVER.to_owned()).chain((1..10).map(|s| format!("srv-{s}"))) {
        out.push_str(&format!(
            "[servers.{name}]\ncommand = [\"portcullis\", \"fixture\", \"stdio\"]\n"
        ));
    }
    out
}

/// The deciding rule: the call's tool glob, for the call's principal.
fn deciding_rule(cel: bool) -> String {
    let when = if cel {
        format!("when = '{CONDITION}'\n")
    } else {
        String::new()
    };
    format!(
        "\n[[rules]]\nserver = \"{SERVER}\"\ntools = [\"read_*\"]\nprincipals = [\"sub:*@example.com\"]\n{when}effect = \"allow\"\n"
    )
}

/// Ten servers, 999 rules that do not decide the call, and the one that does.
pub fn config_text(cel: bool) -> String {
    let mut out =
        String::from("# Written by portcullis-bench: 1,000 rules, the deciding one last.\n");
    out.push_str(&servers());
    for i in 0..RULES - 1 {
        out.push_str(&filler_rule(i));
    }
    out.push_str(&deciding_rule(cel));
    out
}

/// Rule `i` of the 999 before the deciding one: a tenth of them about the call's server;
/// none decides `files`/`read_file` for alice, none has a condition.
fn filler_rule(i: usize) -> String {
    let server = match i % 10 {
        0 => SERVER.to_owned(),
        n => format!("srv-{n}"),
    };
    let head = format!("\n[[rules]]\nserver = \"{server}\"\n");
    match (i / 10) % 5 {
        // Tools by name.
        0 => format!("{head}tools = [\"tool_{i}\", \"list_{i}\"]\neffect = \"allow\"\n"),
        1 => format!("{head}tools = [\"write_{i}\"]\neffect = \"deny\"\n"),
        // Tools by globs the call's name does not match.
        2 => format!("{head}tools = [\"read_{i}_*\", \"search_*_{i}\"]\neffect = \"allow\"\n"),
        // Every server: admin tools.
        3 => format!("\n[[rules]]\ntools = [\"admin_{i}_*\"]\neffect = \"deny\"\n"),
        // The same tools as the deciding rule, for somebody else.
        _ => format!(
            "{head}tools = [\"read_*\"]\nprincipals = [\"sub:user-{i}@example.org\", \"group:team-{i}\"]\neffect = \"allow\"\n"
        ),
    }
}

/// 999 rules for the call's server and tool glob, each for another principal, then the
/// deciding rule: the index can rule none out.
fn worst_case_text() -> String {
    let mut out = String::from("# Written by portcullis-bench: every rule a candidate.\n");
    out.push_str(&servers());
    for i in 0..RULES - 1 {
        out.push_str(&format!(
            "\n[[rules]]\nserver = \"{SERVER}\"\ntools = [\"read_*\"]\nprincipals = [\"sub:user-{i}@example.org\"]\neffect = \"allow\"\n"
        ));
    }
    out.push_str(&deciding_rule(false));
    out
}

/// The decision's timings, and how many rules it tried.
fn measure(
    policy: &Policy,
    req: &Request<'_>,
    iterations: usize,
) -> anyhow::Result<(Latency, usize)> {
    let check = policy.decide(req, &SystemPaths);
    if !check.is_allowed() || check.rule != Some(RULES - 1) {
        bail!(
            "the generated policy decided {:?} by rule {:?}, not allow by the last rule: {}",
            check.verdict,
            check.rule,
            check.reason
        );
    }
    for _ in 0..iterations / 10 {
        black_box(policy.decide(black_box(req), &SystemPaths));
    }
    let mut samples: Vec<Duration> = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let decision = policy.decide(black_box(req), &SystemPaths);
        let took = start.elapsed();
        black_box(decision);
        samples.push(took);
    }
    Ok((Latency::from_samples(samples), check.trace.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_rule_decides_in_both_scenarios() -> anyhow::Result<()> {
        let d = run(50)?;
        assert_eq!(d.rules, RULES);
        assert!(
            d.tried > 10 && d.tried < RULES / 10,
            "{} rules tried",
            d.tried
        );
        assert_eq!(d.worst_tried, RULES);
        assert!(d.plain.p50_us > 0.0 && d.cel.p50_us > 0.0 && d.worst.p50_us > 0.0);
        Ok(())
    }
}
