//! The three measurements: stdio and HTTP (each direct, then through the gateway, on the
//! same fixture server) and the memory of idle HTTP sessions.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::http_client::{HttpClient, HttpSession};
use crate::measure::{self, Contestant, CpuPerCall, Measured};
use crate::procs::{self, Proc, wait_for_line};
use crate::stats::{Latency, Throughput};
use crate::stdio_client::StdioClient;

/// How much work each phase does.
#[derive(Debug, Clone)]
pub struct Settings {
    pub latency_calls: usize,
    pub throughput_calls: usize,
    pub concurrency: usize,
    /// Calls made, and thrown away, before each measured phase.
    pub warmup: usize,
    /// Each phase is split into this many rounds, alternating direct and gateway.
    pub rounds: usize,
    pub sessions: usize,
    /// Bound on every single wait for an answer.
    pub timeout: Duration,
}

/// Where the binary is and where configs and logs go.
pub struct Env {
    pub bin: PathBuf,
    pub dir: PathBuf,
}

impl Env {
    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn write(&self, name: &str, text: &str) -> anyhow::Result<PathBuf> {
        let path = self.file(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }
}

/// One target's figures.
#[derive(Debug, Clone)]
pub struct Side {
    pub latency: Latency,
    pub throughput: Throughput,
    /// CPU per call at concurrency 1, and at full concurrency.
    pub cpu_sequential: CpuPerCall,
    pub cpu_concurrent: CpuPerCall,
    /// How answers came back (HTTP: "JSON" or "SSE"; stdio: "NDJSON").
    pub answers: &'static str,
}

impl Side {
    fn new(m: Measured, answers: &'static str) -> Self {
        Side {
            latency: m.latency,
            throughput: m.throughput,
            cpu_sequential: m.cpu_sequential,
            cpu_concurrent: m.cpu_concurrent,
            answers,
        }
    }
}

/// The same measurement, directly and through the gateway.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub direct: Side,
    pub gateway: Side,
}

#[derive(Debug, Clone)]
pub struct Memory {
    pub sessions: usize,
    pub before_kib: u64,
    pub after_kib: u64,
    pub open_elapsed: Duration,
}

impl Memory {
    pub fn kib_per_session(&self) -> f64 {
        (self.after_kib as f64 - self.before_kib as f64) / self.sessions.max(1) as f64
    }
}

const RULES: &str = r#"
[[rules]]
server = "demo"
tools = ["echo", "add"]
effect = "allow"
"#;

fn stdio_config() -> String {
    format!(
        "# Written by portcullis-bench: the fixture over stdio behind the gateway.\n\
         [servers.demo]\ncommand = [\"portcullis\", \"fixture\", \"stdio\"]\n{RULES}"
    )
}

fn http_config(upstream: &str, max_sessions: usize) -> String {
    format!(
        "# Written by portcullis-bench: the fixture over HTTP behind the gateway.\n\
         [gateway]\nmax_sessions = {max_sessions}\n\n\
         [servers.demo]\nurl = \"{upstream}\"\n{RULES}"
    )
}

pub async fn stdio(env: &Env, s: &Settings) -> anyhow::Result<Comparison> {
    let mut fixture = Proc::spawn(
        "fixture (stdio)",
        &env.bin,
        &["fixture", "stdio"],
        Some(&env.file("fixture-stdio.log")),
    )?;
    let config = env.write("stdio.toml", &stdio_config())?;
    let mut gateway = Proc::spawn(
        "gateway (stdio)",
        &env.bin,
        &["stdio", "demo", "--config", path_str(&config)?],
        Some(&env.file("gateway-stdio.log")),
    )?;
    let mut direct = stdio_client(&mut fixture, s).await?;
    let mut through = stdio_client(&mut gateway, s).await?;
    // The gateway starts its own fixture child during the handshake.
    let mut gateway_side = vec![gateway.pid()];
    gateway_side.extend(procs::children(gateway.pid()));
    let (d, g) = measure::compare(
        Contestant {
            target: &mut direct,
            servers: vec![fixture.pid()],
            gateway: None,
        },
        Contestant {
            target: &mut through,
            servers: gateway_side,
            gateway: Some(gateway.pid()),
        },
        s,
    )
    .await?;
    for (client, proc) in [(direct, fixture), (through, gateway)] {
        client.close().await?;
        proc.wait_exit().await?;
    }
    Ok(Comparison {
        direct: Side::new(d, "NDJSON"),
        gateway: Side::new(g, "NDJSON"),
    })
}

async fn stdio_client(proc: &mut Proc, s: &Settings) -> anyhow::Result<StdioClient> {
    let (stdin, stdout) = (proc.stdin()?, proc.stdout()?);
    let mut client = StdioClient::new(proc.name(), stdin, stdout, s.timeout);
    client.handshake().await?;
    Ok(client)
}

/// The fixture's HTTP server; its MCP endpoint URL.
async fn start_fixture_http(env: &Env) -> anyhow::Result<(Proc, String)> {
    let name = "fixture (http)";
    let mut proc = Proc::spawn(
        name,
        &env.bin,
        &["fixture", "http", "--listen", "127.0.0.1:0"],
        None,
    )?;
    let url = wait_for_line(name, proc.stderr()?, |line| {
        line.trim().strip_prefix("listening on ").map(str::to_owned)
    })
    .await?;
    Ok((proc, url))
}

/// `portcullis serve` in front of `upstream`; the URL of its `/mcp/demo` route.
async fn start_gateway_http(
    env: &Env,
    upstream: &str,
    max_sessions: usize,
    tag: &str,
) -> anyhow::Result<(Proc, String)> {
    let name = "gateway (http)";
    let config = env.write(&format!("{tag}.toml"), &http_config(upstream, max_sessions))?;
    let mut proc = Proc::spawn(
        name,
        &env.bin,
        &[
            "serve",
            "--config",
            path_str(&config)?,
            "--listen",
            "127.0.0.1:0",
        ],
        Some(&env.file(&format!("gateway-{tag}.log"))),
    )?;
    let url = wait_for_line(name, proc.stdout()?, |line| {
        line.trim()
            .strip_prefix("MCP endpoint: ")
            .filter(|url| url.ends_with("/mcp/demo"))
            .map(str::to_owned)
    })
    .await?;
    Ok((proc, url))
}

pub async fn http(env: &Env, s: &Settings) -> anyhow::Result<Comparison> {
    let (fixture, upstream) = start_fixture_http(env).await?;
    let (gateway, url) = start_gateway_http(env, &upstream, 1000, "http").await?;
    let mut direct = http_session("fixture (http)", &upstream, s).await?;
    let mut through = http_session("gateway (http)", &url, s).await?;
    let (d, g) = measure::compare(
        Contestant {
            target: &mut direct,
            servers: vec![fixture.pid()],
            gateway: None,
        },
        Contestant {
            target: &mut through,
            servers: vec![gateway.pid(), fixture.pid()],
            gateway: Some(gateway.pid()),
        },
        s,
    )
    .await?;
    Ok(Comparison {
        direct: Side::new(d, answers(&direct)),
        gateway: Side::new(g, answers(&through)),
    })
}

async fn http_session(name: &str, url: &str, s: &Settings) -> anyhow::Result<Arc<HttpSession>> {
    let client = HttpClient::new(name, url, s.concurrency * 2, s.timeout)?;
    Ok(Arc::new(client.open_session().await?))
}

fn answers(session: &HttpSession) -> &'static str {
    match (session.sse_answers(), session.json_answers()) {
        (0, _) => "JSON",
        (_, 0) => "SSE",
        _ => "JSON+SSE",
    }
}

/// Opens `s.sessions` idle sessions through the gateway and weighs them.
pub async fn memory(env: &Env, s: &Settings) -> anyhow::Result<Memory> {
    let (_fixture, upstream) = start_fixture_http(env).await?;
    let (gateway, url) = start_gateway_http(env, &upstream, s.sessions + 100, "memory").await?;
    let client = HttpClient::new("gateway (http)", &url, s.concurrency * 2, s.timeout)?;
    // One session and a call first: pools, caches and runtime buffers exist before "before".
    let warm = client.open_session().await?;
    warm.call().await?;
    settle().await;
    let before_kib = gateway.rss_kib()?;
    let start = Instant::now();
    let sessions = open_sessions(&client, s.sessions, s.concurrency).await?;
    let open_elapsed = start.elapsed();
    settle().await;
    let after_kib = gateway.rss_kib()?;
    drop(sessions);
    Ok(Memory {
        sessions: s.sessions,
        before_kib,
        after_kib,
        open_elapsed,
    })
}

async fn open_sessions(
    client: &HttpClient,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<HttpSession>> {
    let remaining = Arc::new(AtomicUsize::new(count));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let remaining = remaining.clone();
        tasks.spawn(async move {
            let mut opened = Vec::new();
            while remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                opened.push(client.open_session().await?);
            }
            Ok::<_, anyhow::Error>(opened)
        });
    }
    let mut all = Vec::with_capacity(count);
    while let Some(joined) = tasks.join_next().await {
        all.extend(joined.context("a session task panicked")??);
    }
    Ok(all)
}

/// Lets background work (log writes, freed buffers) finish before RSS is read.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not valid UTF-8", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_configs_are_toml() -> anyhow::Result<()> {
        let stdio: toml::Table = stdio_config().parse()?;
        assert!(stdio.contains_key("servers"));
        let http: toml::Table = http_config("http://127.0.0.1:1/mcp", 10100).parse()?;
        assert_eq!(http["gateway"]["max_sessions"].as_integer(), Some(10100));
        Ok(())
    }
}
