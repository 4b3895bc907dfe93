//! Everything on: the stdio and HTTP measurements again, now with three targets in the same
//! alternating rounds — the fixture directly, the plain gateway, and a gateway whose config
//! switches on everything there is for the measured tool: a few hundred rules before the
//! deciding one, a CEL `when` over the arguments and the principal, `max_arg_bytes`, a rate
//! limit (too high ever to refuse a call), argument validation (always on) and the audit log
//! in a SQLite file of its own.
//!
//! Afterwards the all-on gateway's audit log is verified with `portcullis audit verify`
//! (or, with a binary that lacks the command, by opening the store read-only): the chain
//! must be intact and hold at least a record per call made through it. Its `tools/call`
//! records are counted by event and decision (read-only). An empty log is reported as such
//! (the relay does not write audit records yet), not as a pass.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use portcullis_store::{AuditQuery, MAX_QUERY_LIMIT, SqliteStore, Store, VerifyOutcome};

use crate::scenarios::{self, Env, Settings, Side};

/// Rules before the one that allows `echo` in the all-on config.
pub const OTHER_RULES: usize = 300;

/// The deciding rule's condition: over the principal and the arguments.
pub const CONDITION: &str = r#"!("suspended" in principal.groups) && args.message.startsWith("hello") && size(args.message) <= 1024"#;
/// The deciding rule's `max_arg_bytes`.
pub const MAX_ARG_BYTES: &str = "4KiB";
/// The deciding rule's rate: the largest count a rate may have, per second, and as big a
/// burst: about 50 times what the benchmark can send, so it never refuses a call.
pub const RATE: &str = "1000000/second";
pub const BURST: u64 = 1_000_000;

/// One transport, three ways.
#[derive(Debug, Clone)]
pub struct FullTransport {
    pub direct: Side,
    pub gateway: Side,
    pub all_on: Side,
    pub audit: AuditCheck,
}

#[derive(Debug, Clone)]
pub struct Full {
    /// Rules in the all-on config.
    pub rules: usize,
    pub stdio: FullTransport,
    pub http: FullTransport,
}

/// What the all-on gateway's audit log holds after the run.
#[derive(Debug, Clone)]
pub struct AuditCheck {
    /// `tools/call` requests sent through the all-on gateway (warm-up included).
    pub calls: usize,
    pub state: AuditState,
    /// `portcullis audit verify`, or the store opened read-only.
    pub verified_by: &'static str,
}

#[derive(Debug, Clone)]
pub enum AuditState {
    /// The chain verified intact and holds at least a record per call.
    Intact {
        records: u64,
        /// Records about `tools/call`, by decision.
        call_decisions: BTreeMap<String, u64>,
    },
    /// Nothing was written: the relay does not write audit records yet.
    NotWritten { why: String },
}

impl AuditCheck {
    pub fn written(&self) -> bool {
        matches!(self.state, AuditState::Intact { .. })
    }
}

/// `sqlite:<path>` as a TOML string.
pub fn state_value(path: &Path) -> String {
    toml_string(&format!("sqlite:{}", path.display()))
}

/// A TOML basic string (JSON's escapes are TOML's).
pub fn toml_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// The all-on config around a server section (`[servers.demo]` …).
pub fn config(server: &str, state: &Path, root: &Path) -> String {
    let mut out = format!(
        "# Written by portcullis-bench: everything on for `echo` on the fixture.\n\
         [gateway]\nmax_sessions = 1000\nstate = {}\n\n[audit]\ninclude_args = false\n\n{server}\n",
        state_value(state)
    );
    for i in 0..OTHER_RULES {
        out.push_str(&other_rule(i, root));
    }
    out.push_str(&format!(
        "\n[[rules]]\nserver = \"demo\"\ntools = [\"echo\"]\nwhen = '{CONDITION}'\n\
         max_arg_bytes = \"{MAX_ARG_BYTES}\"\nrate = \"{RATE}\"\nburst = {BURST}\neffect = \"allow\"\n"
    ));
    out
}

/// Rule `i` of those before the one for `echo`: other tools by name and by glob, `echo`
/// for other callers, conditions, paths and URLs on other tools. None decides `echo` for
/// the benchmark's caller.
fn other_rule(i: usize, root: &Path) -> String {
    let head = "\n[[rules]]\nserver = \"demo\"\n";
    match i % 6 {
        0 => format!("{head}tools = [\"tool_{i}\", \"list_{i}\"]\neffect = \"allow\"\n"),
        1 => format!("{head}tools = [\"echo_{i}_*\", \"write_*_{i}\"]\neffect = \"deny\"\n"),
        2 => format!(
            "{head}tools = [\"echo\"]\nprincipals = [\"sub:user-{i}@example.org\", \"group:team-{i}\"]\neffect = \"allow\"\n"
        ),
        3 => format!(
            "{head}tools = [\"query_{i}\"]\nwhen = 'args.table != \"secrets\" && principal.sub != \"\"'\neffect = \"allow\"\n"
        ),
        4 => format!(
            "{head}tools = [\"read_{i}\"]\npaths = [\"args.path\"]\nroots = [{}]\neffect = \"allow\"\n",
            toml_string(&root.display().to_string())
        ),
        _ => format!(
            "{head}tools = [\"fetch_{i}\"]\nurls = [\"args.url\"]\nhosts = [\"api-{i}.example.com\", \"*.example.org\"]\nmax_arg_bytes = \"1KiB\"\neffect = \"allow\"\n"
        ),
    }
}

/// Tool calls one side made: warm-up and measured.
pub(crate) fn calls_made(side: &Side, s: &Settings) -> usize {
    2 * s.warmup + side.latency.calls + side.throughput.calls
}

pub async fn run(env: &Env, s: &Settings) -> anyhow::Result<Full> {
    let root = env.dir.clone();
    eprintln!("portcullis-bench: everything on, stdio: direct, gateway, all on");
    let state = env.dir.join("state-full-stdio.db");
    let server = "[servers.demo]\ncommand = [\"portcullis\", \"fixture\", \"stdio\"]";
    let all_on = config(server, &state, &root);
    let gateways = [
        ("full-stdio-plain", None),
        ("full-stdio-all-on", Some(all_on)),
    ];
    let sides = scenarios::stdio_sides(env, s, &gateways).await?;
    let config_file = env.dir.join("full-stdio-all-on.toml");
    let stdio = finish(env, sides, &config_file, &state, s)
        .await
        .context("stdio")?;

    eprintln!("portcullis-bench: everything on, HTTP: direct, gateway, all on");
    let state = env.dir.join("state-full-http.db");
    let all_on = |upstream: &str| {
        config(
            &format!("[servers.demo]\nurl = {}", toml_string(upstream)),
            &state,
            &root,
        )
    };
    let gateways = [
        scenarios::HttpGateway::plain("full-http-plain"),
        scenarios::HttpGateway {
            tag: "full-http-all-on",
            config: Some(&all_on),
            bearer: None,
        },
    ];
    let sides = scenarios::http_sides(env, s, &gateways).await?;
    let config_file = env.dir.join("full-http-all-on.toml");
    let http = finish(env, sides, &config_file, &state, s)
        .await
        .context("HTTP")?;
    Ok(Full {
        rules: OTHER_RULES + 1,
        stdio,
        http,
    })
}

async fn finish(
    env: &Env,
    sides: Vec<Side>,
    config_file: &Path,
    state: &Path,
    s: &Settings,
) -> anyhow::Result<FullTransport> {
    let [direct, gateway, all_on]: [Side; 3] = sides
        .try_into()
        .map_err(|_| anyhow::anyhow!("three targets measured, not three results"))?;
    let calls = calls_made(&all_on, s);
    // The gateway has exited (stdio) or been stopped (HTTP): its log is complete.
    let cli = verify_with_cli(&env.bin, config_file).await?;
    let verified_by = if cli.is_some() {
        "portcullis audit verify"
    } else {
        "the store opened read-only"
    };
    let path = state.to_path_buf();
    let state = tokio::task::spawn_blocking(move || check_audit(&path, calls, cli))
        .await
        .context("the audit check panicked")??;
    Ok(FullTransport {
        direct,
        gateway,
        all_on,
        audit: AuditCheck {
            calls,
            state,
            verified_by,
        },
    })
}

/// How long `portcullis audit verify` may take.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(120);

/// `portcullis audit verify --config F --json`: the number of records in an intact chain;
/// `None` when the binary has no such command or cannot open the store (then the store is
/// checked in process); an error when the chain is broken.
async fn verify_with_cli(bin: &Path, config: &Path) -> anyhow::Result<Option<u64>> {
    let run = tokio::process::Command::new(bin)
        .args(["audit", "verify", "--json", "--config"])
        .arg(config)
        .env_remove("PORTCULLIS_STATE")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(VERIFY_TIMEOUT, run)
        .await
        .with_context(|| format!("portcullis audit verify took longer than {VERIFY_TIMEOUT:?}"))?
        .context("cannot run portcullis audit verify")?;
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
        return Ok(None);
    };
    match (answer["status"].as_str(), answer["records"].as_u64()) {
        (Some("intact"), Some(records)) if out.status.success() => Ok(Some(records)),
        _ => bail!(
            "portcullis audit verify --config {} says the all-on gateway's audit chain is not intact: {answer}",
            config.display()
        ),
    }
}

/// Verifies the all-on gateway's chain (in process unless `portcullis audit verify` already
/// did: `verified`) and counts its records, the store opened read-only.
fn check_audit(path: &Path, calls: usize, verified: Option<u64>) -> anyhow::Result<AuditState> {
    let not_written = |why: String| {
        Ok(AuditState::NotWritten {
            why: format!("the relay does not write audit records yet: {why}"),
        })
    };
    if !path.exists() {
        return not_written(format!(
            "no state database at {} after {calls} calls",
            path.display()
        ));
    }
    let store = SqliteStore::open_read_only(path)
        .with_context(|| format!("cannot open the audit store {}", path.display()))?;
    let records = match verified {
        Some(records) => records,
        None => match store.verify_audit()? {
            VerifyOutcome::Intact { records, .. } => records,
            broken => bail!(
                "the all-on gateway's audit chain ({}) is not intact: {broken}",
                path.display()
            ),
        },
    };
    if records == 0 {
        return not_written(format!("the audit log is empty after {calls} calls"));
    }
    if records < calls as u64 {
        bail!(
            "the all-on gateway's audit log holds {records} records after {calls} calls: some calls went unrecorded"
        );
    }
    let mut call_decisions = BTreeMap::new();
    let mut after = None;
    loop {
        let page = store.query_audit(&AuditQuery {
            limit: MAX_QUERY_LIMIT,
            after_seq: after,
            ..AuditQuery::default()
        })?;
        let Some(last) = page.last() else { break };
        after = Some(last.seq);
        for r in &page {
            if r.record.method == "tools/call" {
                *call_decisions
                    .entry(format!("{} {}", r.record.event, r.record.decision))
                    .or_insert(0) += 1;
            }
        }
    }
    Ok(AuditState::Intact {
        records,
        call_decisions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_all_on_config_loads_and_allows_echo_last() -> anyhow::Result<()> {
        use portcullis_gateway::config::{Config, ConfigSource};
        let dir = tempfile::tempdir()?;
        let text = config(
            "[servers.demo]\ncommand = [\"portcullis\", \"fixture\", \"stdio\"]",
            &dir.path().join("state.db"),
            dir.path(),
        );
        let cfg = Config::parse(&text, ConfigSource::File(dir.path().join("full.toml")))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        assert_eq!(cfg.policy.rules().len(), OTHER_RULES + 1);
        let me = portcullis_policy::Principal::anonymous();
        let args = serde_json::json!({"message": "hello from portcullis-bench"});
        let req =
            portcullis_policy::Request::new(&me, "demo", portcullis_policy::Kind::Tool, "echo")
                .with_args(&args)
                .in_session("s", "http");
        let d = cfg
            .policy
            .decide(&req, &portcullis_gateway::config::SystemPaths);
        assert!(d.is_allowed(), "{}", d.reason);
        assert_eq!(d.rule, Some(OTHER_RULES));
        assert!(d.rate.is_some());
        Ok(())
    }

    #[test]
    fn an_absent_store_is_reported_not_failed() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let state = check_audit(&dir.path().join("none.db"), 10, None)?;
        assert!(matches!(state, AuditState::NotWritten { .. }));
        Ok(())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn records_are_verified_and_counted() -> anyhow::Result<()> {
        use portcullis_store::{AuditRecord, SqliteOptions};
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state.db");
        let store = SqliteStore::open(&path, SqliteOptions::default())?;
        for (i, (event, method)) in [
            ("decision", "tools/call"),
            ("decision", "tools/list"),
            ("decision", "tools/call"),
        ]
        .into_iter()
        .enumerate()
        {
            store
                .append_audit(AuditRecord {
                    time_ms: i as i64,
                    event: event.into(),
                    principal: "anonymous".into(),
                    session: "s".into(),
                    transport: "http".into(),
                    server: "demo".into(),
                    method: method.into(),
                    name: "echo".into(),
                    args_digest: None,
                    args: None,
                    decision: "allow".into(),
                    rule: None,
                    reason: "test".into(),
                    latency_us: None,
                    trace: None,
                })
                .await?;
        }
        drop(store);
        let AuditState::Intact {
            records,
            call_decisions,
        } = check_audit(&path, 2, None)?
        else {
            anyhow::bail!("not intact");
        };
        assert_eq!(records, 3);
        assert_eq!(call_decisions.get("decision allow"), Some(&2));
        assert!(
            check_audit(&path, 4, None).is_err(),
            "fewer records than calls"
        );
        Ok(())
    }
}
