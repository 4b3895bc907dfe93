//! `portcullis-bench`: tool calls to the fixture MCP server, directly and through the
//! gateway, measured in one run on one machine, beside the project's targets.
//!
//! - [`procs`]: child processes (own process group, killed on drop), RSS, locating the binary.
//! - [`protocol`]: the messages sent and how answers are read.
//! - [`stdio_client`], [`http_client`]: the two MCP clients.
//! - [`measure`]: direct and gateway measured in alternating rounds.
//! - [`stats`]: percentiles and rates.
//! - [`scenarios`]: stdio, HTTP and idle-session memory, direct and through the gateway.
//! - [`decide`], [`validate`], [`audit`]: in process, the policy's decision time over 1,000
//!   rules, argument validation, and audit log writes to SQLite.
//! - [`jwt`]: in process, JWT access-token validation with the issuer's keys cached, against
//!   the in-process authorization server of [`auth_server`].
//! - [`http_auth`]: HTTP again, beside a gateway with `[auth]` on.
//! - [`full`]: stdio and HTTP again, beside a gateway with everything switched on.
//! - [`spawn`], [`cgroup_join`], [`sandbox_gateway`]: a stdio server's start, sandboxed and
//!   not, in process (and what joining a pids cgroup costs) and through the gateway; and
//!   stdio calls to a sandboxed server (opt-in parts).
//! - [`content`]: output sanitizing and secret redaction, a 1 MiB result in process and 4 KiB
//!   calls with `[content]` off and on (opt-in part).
//! - [`report`], [`report_sandbox`], [`report_content`]: the tables and the targets; [`json`]:
//!   the same as JSON.
//!
//! See `crates/bench/README.md`.

mod audit;
mod auth_server;
mod cgroup_join;
mod content;
mod decide;
mod full;
mod http_auth;
mod http_client;
mod json;
mod jwt;
mod measure;
mod procs;
mod protocol;
mod report;
mod report_content;
mod report_sandbox;
mod report_three_way;
mod sandbox_gateway;
mod scenarios;
mod spawn;
mod stats;
mod stdio_client;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};

use crate::report::Results;
use crate::scenarios::{Env, Settings};

/// Measures the gateway against the fixture server it fronts, over stdio and HTTP (and HTTP
/// with `[auth]` on beside auth off), and the memory of idle HTTP sessions; in process,
/// decisions over 1,000 rules, argument validation, JWT validation and audit writes; then
/// stdio and HTTP again with everything switched on. Prints the figures beside the
/// project's targets.
#[derive(Parser, Debug)]
#[command(name = "portcullis-bench", version)]
struct Cli {
    /// The portcullis binary [default: target/release/portcullis, built first].
    #[arg(long)]
    portcullis: Option<PathBuf>,
    /// Do not run `cargo build --release -p portcullis` before measuring.
    #[arg(long)]
    no_build: bool,
    /// Small counts and 500 sessions: a smoke test that ends in well under a minute.
    #[arg(long)]
    quick: bool,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Only these measurements (repeat or comma-separate). `spawn` and `sandbox-calls` run
    /// only when named here.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Part>,
    /// Sequential calls measured at concurrency 1 [default: 2000; quick: 200].
    #[arg(long)]
    latency_calls: Option<usize>,
    /// Calls measured at full concurrency [default: 20000; quick: 2000].
    #[arg(long)]
    throughput_calls: Option<usize>,
    /// Calls kept in flight in the throughput phase.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Calls made and discarded before each phase [default: 500; quick: 100].
    #[arg(long)]
    warmup: Option<usize>,
    /// Rounds each phase is split into, alternating direct and gateway [default: 4; quick: 2].
    #[arg(long)]
    rounds: Option<usize>,
    /// Idle sessions opened for the memory measurement [default: 10000; quick: 500].
    #[arg(long)]
    sessions: Option<usize>,
    /// Timed decisions per policy scenario [default: 100000; quick: 5000].
    #[arg(long)]
    decisions: Option<usize>,
    /// Timed argument validations [default: 100000; quick: 5000].
    #[arg(long)]
    validations: Option<usize>,
    /// Audit records appended by the concurrent tasks [default: 100000; quick: 10000].
    #[arg(long)]
    audit_records: Option<usize>,
    /// Audit appends awaited one at a time, for their latency [default: 2000; quick: 200].
    #[arg(long)]
    audit_single: Option<usize>,
    /// Timed JWT validations per algorithm [default: 100000; quick: 5000].
    #[arg(long)]
    jwt_validations: Option<usize>,
    /// Timed starts of each way in the `spawn` part, at most 1000 [default: 30; quick: 10].
    #[arg(long)]
    spawn_runs: Option<usize>,
    /// Longest wait for any one answer, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Exit with status 1 when a target is missed.
    #[arg(long)]
    strict: bool,
    /// Keep the work directory (generated configs, gateway logs) and print where it is.
    #[arg(long)]
    keep: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    Stdio,
    Http,
    /// HTTP direct, auth off and auth on.
    HttpAuth,
    Memory,
    Policy,
    Validation,
    Jwt,
    Audit,
    Full,
    /// Spawn-to-ready of the fixture, sandboxed and not, in process and through the gateway.
    Spawn,
    /// stdio calls through the gateway, its server sandboxed and with `sandbox = "off"`.
    SandboxCalls,
    /// Sanitizing and redaction: a 1 MiB result in process, and 4 KiB calls with
    /// `[content]` off and on.
    Content,
}

impl Part {
    /// Parts that run only when `--only` names them: they measure the sandbox, not the
    /// gateway's per-call path, and the default run stays as long as it was.
    fn opt_in(self) -> bool {
        matches!(self, Part::Spawn | Part::SandboxCalls | Part::Content)
    }
}

impl Cli {
    fn settings(&self) -> Settings {
        let pick = |given: Option<usize>, full: usize, quick: usize| {
            given.unwrap_or(if self.quick { quick } else { full })
        };
        Settings {
            latency_calls: pick(self.latency_calls, 2_000, 200),
            throughput_calls: pick(self.throughput_calls, 20_000, 2_000),
            concurrency: self.concurrency.max(1),
            warmup: pick(self.warmup, 500, 100),
            rounds: pick(self.rounds, 4, 2).max(1),
            sessions: pick(self.sessions, 10_000, 500),
            decisions: pick(self.decisions, 100_000, 5_000).max(1),
            validations: pick(self.validations, 100_000, 5_000).max(1),
            audit_records: pick(self.audit_records, 100_000, 10_000),
            audit_single: pick(self.audit_single, 2_000, 200).max(1),
            jwt_validations: pick(self.jwt_validations, 100_000, 5_000).max(1),
            spawn_runs: pick(self.spawn_runs, 30, 10).clamp(1, spawn::MAX_RUNS),
            timeout: Duration::from_millis(self.timeout_ms.max(1)),
        }
    }

    fn runs(&self, part: Part) -> bool {
        if self.only.is_empty() {
            !part.opt_in()
        } else {
            self.only.contains(&part)
        }
    }
}

// One thread drives the load: the machine's cores are left to the servers being measured,
// and the client costs the same on both sides of each comparison.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = tokio::select! {
        r = run(&cli) => r,
        r = interrupted() => r,
    };
    // Children were killed (with their process groups) as `run` returned or was dropped.
    match outcome {
        Ok(results) => {
            if cli.json {
                println!("{:#}", results.json());
            } else {
                print!("{}", results.table());
            }
            if cli.strict && !results.all_pass() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("portcullis-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: &Cli) -> anyhow::Result<Results> {
    let needs_gateway = [
        Part::Stdio,
        Part::Http,
        Part::HttpAuth,
        Part::Memory,
        Part::Full,
        Part::Spawn,
        Part::SandboxCalls,
        Part::Content,
    ]
    .into_iter()
    .any(|p| cli.runs(p));
    let bin = if needs_gateway {
        procs::locate_portcullis(cli.portcullis.clone(), !cli.no_build).await?
    } else {
        PathBuf::new()
    };
    let workdir = tempfile::Builder::new()
        .prefix("portcullis-bench-")
        .tempdir()
        .context("cannot create a work directory")?;
    let env = Env {
        bin,
        dir: workdir.path().to_path_buf(),
    };
    if cli.keep {
        let kept = workdir.keep();
        eprintln!("portcullis-bench: configs and logs in {}", kept.display());
    }
    let settings = cli.settings();
    let progress = |what: &str| eprintln!("portcullis-bench: {what}");
    let stdio = if cli.runs(Part::Stdio) {
        progress("stdio: direct, then through the gateway");
        Some(scenarios::stdio(&env, &settings).await.context("stdio")?)
    } else {
        None
    };
    let http = if cli.runs(Part::Http) {
        progress("HTTP: direct, then through the gateway");
        Some(scenarios::http(&env, &settings).await.context("HTTP")?)
    } else {
        None
    };
    let http_auth = if cli.runs(Part::HttpAuth) {
        progress("HTTP with auth: direct, gateway with auth off, gateway with auth on");
        Some(
            http_auth::run(&env, &settings)
                .await
                .context("HTTP with auth")?,
        )
    } else {
        None
    };
    let memory = if cli.runs(Part::Memory) {
        progress(&format!("memory: {} idle sessions", settings.sessions));
        Some(
            scenarios::memory(&env, &settings)
                .await
                .context("idle sessions")?,
        )
    } else {
        None
    };
    let decisions = if cli.runs(Part::Policy) {
        progress(&format!(
            "policy: {} decisions over {} rules, without and with CEL",
            settings.decisions,
            decide::RULES
        ));
        let n = settings.decisions;
        Some(blocking(move || decide::run(n)).await.context("policy")?)
    } else {
        None
    };
    let validation = if cli.runs(Part::Validation) {
        progress(&format!("validation: {} validations", settings.validations));
        let n = settings.validations;
        Some(
            blocking(move || validate::run(n))
                .await
                .context("validation")?,
        )
    } else {
        None
    };
    let jwt = if cli.runs(Part::Jwt) {
        progress(&format!(
            "jwt: {} validations each of an RS256 and an ES256 token, keys cached",
            settings.jwt_validations
        ));
        Some(
            jwt::run(settings.jwt_validations)
                .await
                .context("JWT validation")?,
        )
    } else {
        None
    };
    let audit = if cli.runs(Part::Audit) {
        progress(&format!(
            "audit: {} records from {} tasks, then {} one at a time",
            settings.audit_records, settings.concurrency, settings.audit_single
        ));
        Some(
            audit::run(
                &env.dir.join("audit"),
                settings.audit_records,
                settings.concurrency,
                settings.audit_single,
            )
            .await
            .context("audit")?,
        )
    } else {
        None
    };
    let full = if cli.runs(Part::Full) {
        Some(full::run(&env, &settings).await.context("everything on")?)
    } else {
        None
    };
    let spawn = if cli.runs(Part::Spawn) {
        progress(&format!(
            "spawn: the fixture started {} times each way, then the gateway {} times sandboxed and not",
            settings.spawn_runs, settings.spawn_runs
        ));
        Some(
            spawn::run(&env, &settings)
                .await
                .context("spawn to ready")?,
        )
    } else {
        None
    };
    let gateway_start = if cli.runs(Part::Spawn) {
        Some(
            sandbox_gateway::start(&env, &settings)
                .await
                .context("gateway start, sandbox off and on")?,
        )
    } else {
        None
    };
    let sandbox_calls = if cli.runs(Part::SandboxCalls) {
        progress("sandbox calls: direct, gateway with sandbox off, gateway sandboxed");
        Some(
            sandbox_gateway::calls(&env, &settings)
                .await
                .context("stdio calls, sandbox off and on")?,
        )
    } else {
        None
    };
    let content = if cli.runs(Part::Content) {
        progress("content: a 1 MiB result in process, then 4 KiB calls direct, content off and on");
        Some(content::run(&env, &settings).await.context("content")?)
    } else {
        None
    };
    Ok(Results {
        cpus: std::thread::available_parallelism().map_or(0, usize::from),
        cpu_model: cpu_model(),
        settings,
        stdio,
        http,
        http_auth,
        memory,
        decisions,
        validation,
        jwt,
        audit,
        full,
        spawn,
        gateway_start,
        sandbox_calls,
        content,
    })
}

/// Runs CPU-bound work off the runtime's one thread (so Ctrl-C is still heard).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .context("the measurement panicked")?
}

/// Ctrl-C or SIGTERM: an error, so `run` is dropped and every child is killed.
async fn interrupted() -> anyhow::Result<Results> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch SIGTERM")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    anyhow::bail!("interrupted")
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_owned())
}
