//! The three measurements: stdio and HTTP (each direct, then through the gateway, on the
//! same fixture server) and the memory of idle HTTP sessions; and the runners `full` uses to
//! put more gateways beside them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::full;
use crate::http_auth::{self, AuthChecks};
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
    /// Timed decisions per policy scenario.
    pub decisions: usize,
    /// Timed argument validations.
    pub validations: usize,
    /// Audit records appended from `concurrency` tasks, and one at a time.
    pub audit_records: usize,
    pub audit_single: usize,
    /// Timed JWT validations per algorithm.
    pub jwt_validations: usize,
    /// Timed starts of each way in the spawn part.
    pub spawn_runs: usize,
    /// Bound on every single wait for an answer.
    pub timeout: Duration,
}

/// Where the binary is and where configs and logs go.
pub struct Env {
    pub bin: PathBuf,
    pub dir: PathBuf,
}

impl Env {
    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub(crate) fn write(&self, name: &str, text: &str) -> anyhow::Result<PathBuf> {
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
    /// A gateway with `[auth]`: how it refused requests without a good token.
    pub auth: Option<AuthChecks>,
}

impl Side {
    fn new(m: Measured, answers: &'static str) -> Self {
        Side {
            latency: m.latency,
            throughput: m.throughput,
            cpu_sequential: m.cpu_sequential,
            cpu_concurrent: m.cpu_concurrent,
            answers,
            auth: None,
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

/// `[gateway]`'s `state`: the audit log (and whatever else the gateway keeps) goes to a file
/// of the run's own in the work directory, never to the user's default state database.
pub(crate) fn state_line(env_dir: &Path, tag: &str) -> String {
    format!(
        "state = {}",
        full::state_value(&env_dir.join(format!("state-{tag}.db")))
    )
}

fn stdio_config(state: &str) -> String {
    stdio_config_with(state, "")
}

/// The stdio config with more keys of `[servers.demo]` (e.g. its `sandbox`), one a line.
pub(crate) fn stdio_config_with(state: &str, server_keys: &str) -> String {
    format!(
        "# Written by portcullis-bench: the fixture over stdio behind the gateway.\n\
         [gateway]\n{state}\n\n\
         [servers.demo]\ncommand = [\"portcullis\", \"fixture\", \"stdio\"]\n{server_keys}{RULES}"
    )
}

pub(crate) fn http_config(upstream: &str, max_sessions: usize, state: &str) -> String {
    format!(
        "# Written by portcullis-bench: the fixture over HTTP behind the gateway.\n\
         [gateway]\nmax_sessions = {max_sessions}\n{state}\n\n\
         [servers.demo]\nurl = {}\n{RULES}",
        full::toml_string(upstream)
    )
}

pub async fn stdio(env: &Env, s: &Settings) -> anyhow::Result<Comparison> {
    let sides = stdio_sides(env, s, &[("stdio", None)]).await?;
    let [direct, gateway]: [Side; 2] = sides
        .try_into()
        .map_err(|_| anyhow::anyhow!("two targets measured, not two results"))?;
    Ok(Comparison { direct, gateway })
}

/// The fixture over stdio, directly and behind one gateway per entry of `gateways` (its tag,
/// and its config: `None` for the plain one), measured in the same alternating rounds; the
/// figures direct first, then in the order given. Each gateway starts its own fixture child.
pub async fn stdio_sides(
    env: &Env,
    s: &Settings,
    gateways: &[(&str, Option<String>)],
) -> anyhow::Result<Vec<Side>> {
    stdio_sides_calling(env, s, gateways, &[], crate::protocol::echo_call).await
}

/// [`stdio_sides`] with more fixture options (`fixture_options`, for the direct fixture; the
/// gateways' configs start their own) and another measured call than `echo`.
pub async fn stdio_sides_calling(
    env: &Env,
    s: &Settings,
    gateways: &[(&str, Option<String>)],
    fixture_options: &[&str],
    call: fn(u64) -> Vec<u8>,
) -> anyhow::Result<Vec<Side>> {
    let first = gateways.first().map_or("stdio", |g| g.0);
    let mut args = vec!["fixture", "stdio"];
    args.extend_from_slice(fixture_options);
    let mut fixture = Proc::spawn(
        "fixture (stdio)",
        &env.bin,
        &args,
        Some(&env.file(&format!("fixture-{first}.log"))),
    )?;
    let mut procs = Vec::with_capacity(gateways.len());
    for (tag, config) in gateways {
        let text = match config {
            Some(text) => text.clone(),
            None => stdio_config(&state_line(&env.dir, tag)),
        };
        let config = env.write(&format!("{tag}.toml"), &text)?;
        procs.push(Proc::spawn(
            &format!("gateway ({tag})"),
            &env.bin,
            &["stdio", "demo", "--config", path_str(&config)?],
            Some(&env.file(&format!("gateway-{tag}.log"))),
        )?);
    }
    let mut direct = stdio_client(&mut fixture, s).await?.calling(call);
    let mut clients = Vec::with_capacity(procs.len());
    for proc in &mut procs {
        clients.push(stdio_client(proc, s).await?.calling(call));
    }
    let mut contestants = vec![Contestant {
        target: &mut direct,
        servers: vec![fixture.pid()],
        gateway: None,
    }];
    for (client, proc) in clients.iter_mut().zip(&procs) {
        // The gateway starts its own fixture child during the handshake (a sandboxed one
        // is the grandchild, under the sandbox's keeper).
        let mut servers = vec![proc.pid()];
        servers.extend(procs::descendants(proc.pid()));
        contestants.push(Contestant {
            target: client,
            servers,
            gateway: Some(proc.pid()),
        });
    }
    let measured = measure::compare_all(contestants, s).await?;
    direct.close().await?;
    fixture.wait_exit().await?;
    for (client, proc) in clients.into_iter().zip(procs) {
        client.close().await?;
        proc.wait_exit().await?;
    }
    Ok(measured
        .into_iter()
        .map(|m| Side::new(m, "NDJSON"))
        .collect())
}

pub(crate) async fn stdio_client(proc: &mut Proc, s: &Settings) -> anyhow::Result<StdioClient> {
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

/// What every HTTP gateway of the benchmark adds to its config when it has no `[egress]`:
/// its upstream (the HTTP fixture) and its issuer (the in-process authorization server) are
/// on loopback over plain http, which the egress guard refuses unless the config opens it.
/// The gateway measured is the production binary with its production defaults otherwise.
pub(crate) const LOOPBACK_EGRESS: &str =
    "\n[egress]\nallow = [\"127.0.0.0/8\"]\nhttp = [\"127.0.0.1\"]\n";

/// `text` with [`LOOPBACK_EGRESS`], unless it opens egress itself.
pub(crate) fn with_loopback_egress(text: &str) -> String {
    if text.lines().any(|l| l.trim_start().starts_with("[egress]")) {
        text.to_owned()
    } else {
        format!("{text}{LOOPBACK_EGRESS}")
    }
}

/// `portcullis serve` with config `text` (and [`LOOPBACK_EGRESS`]); the URL of its
/// `/mcp/demo` route.
async fn start_gateway_http(env: &Env, text: &str, tag: &str) -> anyhow::Result<(Proc, String)> {
    let name = format!("gateway ({tag})");
    let name = name.as_str();
    let config = env.write(&format!("{tag}.toml"), &with_loopback_egress(text))?;
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
    let sides = http_sides(env, s, &[HttpGateway::plain("http")]).await?;
    let [direct, gateway]: [Side; 2] = sides
        .try_into()
        .map_err(|_| anyhow::anyhow!("two targets measured, not two results"))?;
    Ok(Comparison { direct, gateway })
}

/// Writes a gateway's config from the fixture's URL.
pub type HttpConfig<'a> = &'a dyn Fn(&str) -> String;
/// Mints an access token for an audience.
pub type MintToken<'a> = &'a dyn Fn(&str) -> anyhow::Result<String>;

/// A gateway in front of the HTTP fixture.
pub struct HttpGateway<'a> {
    /// Names its config, log and state files.
    pub tag: &'a str,
    /// Its config from the fixture's URL; `None`: the plain gateway.
    pub config: Option<HttpConfig<'a>>,
    /// For a gateway with `[auth]`: its client's token is minted for the MCP endpoint URL
    /// the gateway printed (the audience it expects from a client that addresses it so).
    pub bearer: Option<MintToken<'a>>,
}

impl<'a> HttpGateway<'a> {
    pub fn plain(tag: &'a str) -> Self {
        HttpGateway {
            tag,
            config: None,
            bearer: None,
        }
    }
}

/// The fixture over HTTP, directly and behind each of `gateways`, all on the same fixture,
/// measured in the same alternating rounds; the figures direct first, then in the order
/// given. A gateway with a `bearer` must first refuse requests without a good token
/// ([`http_auth::authorize`]). The gateways are stopped (SIGTERM: they finish what
/// they were writing) before this returns.
pub async fn http_sides(
    env: &Env,
    s: &Settings,
    gateways: &[HttpGateway<'_>],
) -> anyhow::Result<Vec<Side>> {
    let (fixture, upstream) = start_fixture_http(env).await?;
    let mut procs = Vec::with_capacity(gateways.len());
    let mut sessions = Vec::with_capacity(gateways.len());
    let mut checks = Vec::with_capacity(gateways.len());
    for g in gateways {
        let tag = g.tag;
        let text = match g.config {
            Some(config) => config(&upstream),
            None => http_config(&upstream, 1000, &state_line(&env.dir, tag)),
        };
        let (proc, url) = start_gateway_http(env, &text, tag).await?;
        let name = format!("gateway ({tag})");
        let mut client = HttpClient::new(&name, &url, s.concurrency * 2, s.timeout)?;
        if let Some(mint) = g.bearer {
            let (authorized, refused) = http_auth::authorize(client, &url, mint)
                .await
                .with_context(|| name.clone())?;
            client = authorized;
            checks.push(Some(refused));
        } else {
            checks.push(None);
        }
        sessions.push(open_for_calls(&client).await?);
        procs.push(proc);
    }
    let mut direct = http_session("fixture (http)", &upstream, s).await?;
    let mut contestants = vec![Contestant {
        target: &mut direct,
        servers: vec![fixture.pid()],
        gateway: None,
    }];
    for (session, proc) in sessions.iter_mut().zip(&procs) {
        contestants.push(Contestant {
            target: session,
            servers: vec![proc.pid(), fixture.pid()],
            gateway: Some(proc.pid()),
        });
    }
    let measured = measure::compare_all(contestants, s).await?;
    let mut sides = vec![answers(&direct)];
    sides.extend(sessions.iter().map(|session| answers(session)));
    // Close the clients' connections first: a gateway stops once its connections are gone.
    drop(direct);
    drop(sessions);
    for proc in procs {
        let name = proc.name().to_owned();
        if !proc.terminate().await {
            eprintln!("portcullis-bench: {name} did not stop on SIGTERM in time; killed");
        }
    }
    drop(fixture);
    let checks = std::iter::once(None).chain(checks);
    Ok(measured
        .into_iter()
        .zip(sides)
        .zip(checks)
        .map(|((m, answers), auth)| Side {
            auth,
            ..Side::new(m, answers)
        })
        .collect())
}

/// A session for calls: opened, and its tools listed, as a client does.
async fn http_session(name: &str, url: &str, s: &Settings) -> anyhow::Result<Arc<HttpSession>> {
    let client = HttpClient::new(name, url, s.concurrency * 2, s.timeout)?;
    open_for_calls(&client).await
}

async fn open_for_calls(client: &HttpClient) -> anyhow::Result<Arc<HttpSession>> {
    let session = client.open_session().await?;
    session.list_tools().await?;
    Ok(Arc::new(session))
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
    let text = http_config(&upstream, s.sessions + 100, &state_line(&env.dir, "memory"));
    let (gateway, url) = start_gateway_http(env, &text, "memory").await?;
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

pub(crate) fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not valid UTF-8", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_configs_are_toml() -> anyhow::Result<()> {
        let state = state_line(Path::new("/tmp/bench \"dir\""), "x");
        let stdio: toml::Table = stdio_config(&state).parse()?;
        assert!(stdio.contains_key("servers"));
        assert_eq!(
            stdio["gateway"]["state"].as_str(),
            Some("sqlite:/tmp/bench \"dir\"/state-x.db")
        );
        let http: toml::Table = http_config("http://127.0.0.1:1/mcp", 10100, &state).parse()?;
        assert_eq!(http["gateway"]["max_sessions"].as_integer(), Some(10100));
        Ok(())
    }

    #[test]
    fn http_gateways_open_loopback_for_their_fixture_and_issuer() -> anyhow::Result<()> {
        use portcullis_gateway::config::{Config, ConfigSource};
        let state = state_line(Path::new("/tmp/bench"), "x");
        let text = with_loopback_egress(&http_config("http://127.0.0.1:1/mcp", 10, &state));
        let cfg = Config::parse(&text, ConfigSource::Embedded("bench"))?;
        assert!(cfg.egress.opens_address("127.0.0.1".parse()?, 1));
        let own = "[egress]\nallow = []\n";
        assert_eq!(
            with_loopback_egress(own),
            own,
            "a config's own [egress] is kept"
        );
        Ok(())
    }
}
