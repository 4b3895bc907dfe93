//! The gateway with its stdio server sandboxed (the default: no `sandbox` key) beside the
//! same config with `sandbox = "off"`:
//! - **start**: `portcullis stdio demo` spawned, until its first `tools/list` answer (the
//!   gateway's own start, its config and state, the upstream's spawn and handshake: what a
//!   host waits for when it starts a session), the two configs taking turns run by run;
//! - **calls**: the stdio call measurement ([`scenarios::stdio_sides`]) with both gateways
//!   and the fixture directly in the same alternating rounds: the sandbox should cost
//!   nothing per call, since it only changes how the server was started.
//!
//! Each sandboxed gateway is checked to run its server in namespaces of its own, and the
//! other in the benchmark's, before its figures are taken.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::procs::Proc;
use crate::scenarios::{self, Env, Settings, Side, path_str, state_line};
use crate::spawn;
use crate::stats::Spread;

/// Untimed gateway starts of each config before the timed ones.
const WARMUP_RUNS: usize = 2;
/// The `[servers.demo]` line that switches its sandbox off.
const OFF: &str = "sandbox = \"off\"\n";

/// Gateway start to the first `tools/list` answer, sandbox off and on.
#[derive(Debug, Clone)]
pub struct GatewayStart {
    pub off: Spread,
    pub on: Spread,
    /// The sandboxed server's namespaces that are not the benchmark's.
    pub isolated: Vec<&'static str>,
}

impl GatewayStart {
    pub fn added_ms(&self) -> f64 {
        (self.on.p50_us - self.off.p50_us) / 1000.0
    }

    pub fn ratio(&self) -> f64 {
        if self.off.p50_us > 0.0 {
            self.on.p50_us / self.off.p50_us
        } else {
            0.0
        }
    }
}

/// Per call: the fixture directly, the gateway with `sandbox = "off"`, and sandboxed.
#[derive(Debug, Clone)]
pub struct SandboxCalls {
    pub direct: Side,
    pub off: Side,
    pub on: Side,
    pub isolated: Vec<&'static str>,
}

fn config(env: &Env, tag: &str, server_keys: &str) -> String {
    scenarios::stdio_config_with(&state_line(&env.dir, tag), server_keys)
}

/// `sandbox = "off"` and the default, started in turns.
pub async fn start(env: &Env, s: &Settings) -> anyhow::Result<GatewayStart> {
    let off = env.write("start-sandbox-off.toml", &config(env, "start-off", OFF))?;
    let on = env.write("start-sandbox-on.toml", &config(env, "start-on", ""))?;
    let mut off_times = Vec::with_capacity(s.spawn_runs);
    let mut on_times = Vec::with_capacity(s.spawn_runs);
    let mut isolated = Vec::new();
    for round in 0..WARMUP_RUNS + s.spawn_runs {
        let (t_off, iso_off) = once(env, &off, "sandbox off", s).await?;
        expect_isolation("sandbox off", false, &iso_off)?;
        let (t_on, iso_on) = once(env, &on, "sandboxed", s).await?;
        expect_isolation("sandboxed", true, &iso_on)?;
        isolated = iso_on;
        if round >= WARMUP_RUNS {
            off_times.push(t_off);
            on_times.push(t_on);
        }
    }
    Ok(GatewayStart {
        off: Spread::from_samples(off_times),
        on: Spread::from_samples(on_times),
        isolated,
    })
}

/// The stdio calls, direct and through both gateways.
pub async fn calls(env: &Env, s: &Settings) -> anyhow::Result<SandboxCalls> {
    let on_text = config(env, "sandbox-on", "");
    // The sandboxed gateway's config is first checked to sandbox its server.
    let check = env.write("sandbox-on-check.toml", &on_text)?;
    let (_, isolated) = once(env, &check, "sandboxed", s).await?;
    expect_isolation("sandboxed", true, &isolated)?;
    let sides = scenarios::stdio_sides(
        env,
        s,
        &[
            ("sandbox-off", Some(config(env, "sandbox-off", OFF))),
            ("sandbox-on", Some(on_text)),
        ],
    )
    .await?;
    let [direct, off, on]: [Side; 3] = sides
        .try_into()
        .map_err(|_| anyhow::anyhow!("three targets measured, not three results"))?;
    Ok(SandboxCalls {
        direct,
        off,
        on,
        isolated,
    })
}

/// One gateway start: the time to the `tools/list` answer, and its server's namespaces.
async fn once(
    env: &Env,
    config: &Path,
    what: &str,
    s: &Settings,
) -> anyhow::Result<(Duration, Vec<&'static str>)> {
    let name = format!("gateway ({what})");
    let log = env.file(&format!(
        "gateway-{}.log",
        config
            .file_stem()
            .and_then(|n| n.to_str())
            .unwrap_or("start")
    ));
    let start = Instant::now();
    let mut proc = Proc::spawn(
        &name,
        &env.bin,
        &["stdio", "demo", "--config", path_str(config)?],
        Some(&log),
    )?;
    let client = scenarios::stdio_client(&mut proc, s)
        .await
        .with_context(|| format!("{name}; its log: {}", log.display()))?;
    let ready = start.elapsed();
    let isolated = spawn::server_isolation(proc.pid())?;
    client.close().await?;
    proc.wait_exit().await?;
    Ok((ready, isolated))
}

/// A sandboxed gateway's server must be in namespaces of its own (where this kernel has
/// them), the other's in the benchmark's.
fn expect_isolation(what: &str, sandboxed: bool, isolated: &[&str]) -> anyhow::Result<()> {
    if !sandboxed {
        if !isolated.is_empty() {
            bail!(
                "the gateway with {what} runs its server in namespaces of its own ({})",
                isolated.join(", ")
            );
        }
        return Ok(());
    }
    if portcullis_sandbox::support().namespaces.is_err() {
        return Ok(());
    }
    let shared: Vec<&str> = ["user", "mnt", "pid", "net"]
        .into_iter()
        .filter(|ns| !isolated.contains(ns))
        .collect();
    if !shared.is_empty() {
        bail!(
            "the {what} gateway's server shares the benchmark's {} namespace(s): it is not sandboxed",
            shared.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_configs_differ_only_in_the_sandbox() -> anyhow::Result<()> {
        let env = Env {
            bin: "portcullis".into(),
            dir: "/tmp/bench".into(),
        };
        let off: toml::Table = config(&env, "x", OFF).parse()?;
        let on: toml::Table = config(&env, "x", "").parse()?;
        assert_eq!(off["servers"]["demo"]["sandbox"].as_str(), Some("off"));
        assert!(on["servers"]["demo"].get("sandbox").is_none());
        assert_eq!(off["rules"], on["rules"]);
        Ok(())
    }

    #[test]
    fn a_sandboxed_server_in_the_benchmarks_namespaces_is_refused() {
        assert!(expect_isolation("sandbox off", false, &[]).is_ok());
        assert!(expect_isolation("sandbox off", false, &["net"]).is_err());
        if portcullis_sandbox::support().namespaces.is_ok() {
            assert!(expect_isolation("sandboxed", true, &[]).is_err());
            assert!(expect_isolation("sandboxed", true, &["user", "mnt", "pid", "net"]).is_ok());
        }
    }
}
