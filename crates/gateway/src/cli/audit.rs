//! `portcullis audit tail|query|verify`: the audit log of the state database named by
//! `gateway.state` (or `PORTCULLIS_STATE`), opened read-only, so it is safe next to a
//! running gateway.
//!
//! Text output is one line per record:
//!
//! ```text
//! 2026-11-26T10:00:00.123Z #12 allow local:alice demo tools/call echo [rule 1 (p.toml:3)] rule 1 (p.toml:3) allows tool "echo" on server "demo"
//! ```
//!
//! time (RFC 3339, UTC), `#seq`, decision (`event/decision` for events other than
//! decisions), principal, server, method, name, `[rule]` (`[-]` when none), reason, and the
//! latency in parentheses when the record has one (outcomes of calls). Fields
//! that are empty or contain spaces are quoted; control characters are escaped. `--json`
//! prints each stored record (seq, hashes, record) as one JSON line instead.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use portcullis_gateway::config::{Config, StateLocation};
use portcullis_store::{
    AuditQuery, MAX_QUERY_LIMIT, SqliteStore, Store, StoredRecord, VerifyOutcome,
};

use super::text::{clean, emit, field};
use super::{USAGE, load_or_exit, state, time, usage_error};

/// How often `audit tail --follow` looks for new records.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Print the newest records (oldest first); with --follow, keep printing new ones
    /// until interrupted (Ctrl-C or SIGTERM).
    Tail(TailArgs),
    /// Print the records matching every filter given, oldest first.
    Query(QueryArgs),
    /// Check the hash chain: "intact: N records, head <hash>" (exit 0), or the first bad
    /// record and what is wrong with it (exit 1).
    Verify(VerifyArgs),
}

#[derive(Args, Debug)]
pub struct StoreArgs {
    /// The config whose gateway.state names the database (default: the built-in
    /// quickstart's, i.e. the default location). PORTCULLIS_STATE overrides it.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct Filters {
    /// Only records of this principal, as recorded (`local:alice`, `anonymous`, `iss|sub`).
    #[arg(long)]
    principal: Option<String>,
    /// Only records about this server.
    #[arg(long)]
    server: Option<String>,
    /// Only records with this decision (`allow`, `deny`, `consent`, ...).
    #[arg(long)]
    decision: Option<String>,
}

#[derive(Args, Debug)]
pub struct TailArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// How many of the newest records to print.
    #[arg(short = 'n', long = "lines", default_value_t = 20, value_parser = limit)]
    lines: usize,
    /// Keep going: print new records as they are written (polling every 500 ms) until
    /// Ctrl-C or SIGTERM.
    #[arg(long, short)]
    follow: bool,
    #[command(flatten)]
    filters: Filters,
    /// One JSON object per record (seq, prev_hash, hash, record).
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct QueryArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    filters: Filters,
    /// Only records at or after this time: 2026-11-26T10:00:00Z, 2026-11-26, or an age
    /// (30m, 1h, 2d: that long ago).
    #[arg(long)]
    since: Option<String>,
    /// Only records before this time (same forms as --since).
    #[arg(long)]
    until: Option<String>,
    /// Only records after this sequence number (to page on from the last one printed).
    #[arg(long)]
    after: Option<u64>,
    /// At most this many records (1 to 10000).
    #[arg(long, default_value_t = 100, value_parser = limit)]
    limit: usize,
    /// One JSON object per record (seq, prev_hash, hash, record).
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Print the outcome as one JSON object.
    #[arg(long)]
    json: bool,
}

fn limit(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_QUERY_LIMIT).contains(&n) => Ok(n),
        _ => Err(format!("must be a number from 1 to {MAX_QUERY_LIMIT}")),
    }
}

pub fn run(command: AuditCommand) -> anyhow::Result<ExitCode> {
    let code = match command {
        AuditCommand::Tail(args) => tail(args),
        AuditCommand::Query(args) => query(args),
        AuditCommand::Verify(args) => verify(args),
    };
    Ok(code.unwrap_or_else(|code| code))
}

/// The store of the config's `gateway.state`, opened read-only. A missing database, or one
/// that is not a Portcullis store, is a clear error (exit 2).
fn open(args: &StoreArgs) -> Result<Arc<SqliteStore>, ExitCode> {
    let config: Config = load_or_exit(args.config.as_ref())?;
    let StateLocation::Sqlite(path) = &config.gateway.state;
    let origin = state::describe_origin(&config);
    if path.is_dir() {
        return Err(usage_error(format_args!(
            "no audit log at {} ({origin}): that is a directory, not a database file",
            path.display()
        )));
    }
    if !path.exists() {
        return Err(usage_error(format_args!(
            "no audit log at {} ({origin}): the database does not exist (the gateway creates it when it starts)",
            path.display()
        )));
    }
    SqliteStore::open_read_only(path).map_err(|e| {
        usage_error(format_args!(
            "cannot read the audit log at {} ({origin}): {e}",
            path.display()
        ))
    })
}

fn query_of(filters: &Filters) -> AuditQuery {
    AuditQuery {
        principal: filters.principal.clone(),
        server: filters.server.clone(),
        decision: filters.decision.clone(),
        ..AuditQuery::default()
    }
}

fn tail(args: TailArgs) -> Result<ExitCode, ExitCode> {
    let store = open(&args.store)?;
    let q = AuditQuery {
        limit: args.lines,
        latest: true,
        ..query_of(&args.filters)
    };
    let records = read(&*store, &q, store.path())?;
    let mut out = Output::new(args.json);
    let mut last = records.last().map_or(0, |r| r.seq);
    if !out.print(&records) {
        return Ok(ExitCode::SUCCESS);
    }
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    // A newest-first tail that matched nothing starts following from the current end, not
    // from the first record.
    if records.is_empty() {
        let end = AuditQuery {
            limit: 1,
            latest: true,
            ..AuditQuery::default()
        };
        last = read(&*store, &end, store.path())?
            .last()
            .map_or(0, |r| r.seq);
    }
    let runtime = super::runtime(None).map_err(usage_error)?;
    runtime.block_on(follow(&store, &args.filters, last, &mut out))
}

/// Polls for records after `last` every [`FOLLOW_EVERY`] until SIGINT or SIGTERM (exit 0),
/// or until stdout is gone.
async fn follow(
    store: &Arc<SqliteStore>,
    filters: &Filters,
    mut last: u64,
    out: &mut Output,
) -> Result<ExitCode, ExitCode> {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind| {
        signal(kind).map_err(|e| usage_error(format_args!("cannot listen for signals: {e}")))
    };
    let mut interrupt = listen(SignalKind::interrupt())?;
    let mut terminate = listen(SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = interrupt.recv() => return Ok(ExitCode::SUCCESS),
            _ = terminate.recv() => return Ok(ExitCode::SUCCESS),
            () = tokio::time::sleep(FOLLOW_EVERY) => {}
        }
        loop {
            let q = AuditQuery {
                limit: MAX_QUERY_LIMIT,
                after_seq: Some(last),
                ..query_of(filters)
            };
            let records = read(&**store, &q, store.path())?;
            let Some(newest) = records.last() else { break };
            last = newest.seq;
            if !out.print(&records) {
                return Ok(ExitCode::SUCCESS);
            }
            if records.len() < MAX_QUERY_LIMIT {
                break;
            }
        }
    }
}

fn query(args: QueryArgs) -> Result<ExitCode, ExitCode> {
    let now = time::now_ms();
    let at = |option: &str, value: &Option<String>| -> Result<Option<i64>, ExitCode> {
        value
            .as_deref()
            .map(|v| time::parse_time(v, now))
            .transpose()
            .map_err(|e| usage_error(format_args!("--{option}: {e}")))
    };
    let since_ms = at("since", &args.since)?;
    let until_ms = at("until", &args.until)?;
    let store = open(&args.store)?;
    let q = AuditQuery {
        since_ms,
        until_ms,
        limit: args.limit,
        after_seq: args.after,
        ..query_of(&args.filters)
    };
    let records = read(&*store, &q, store.path())?;
    let mut out = Output::new(args.json);
    if out.print(&records)
        && records.len() == args.limit
        && let Some(last) = records.last()
    {
        eprintln!(
            "portcullis: {} records shown, the --limit; more may match: add --after {}",
            records.len(),
            last.seq
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(args: VerifyArgs) -> Result<ExitCode, ExitCode> {
    let store = open(&args.store)?;
    let outcome = store.verify_audit().map_err(|e| {
        usage_error(format_args!(
            "cannot verify the audit log at {}: {e}",
            store.path().display()
        ))
    })?;
    if args.json {
        match serde_json::to_string(&outcome) {
            Ok(line) => emit(&format!("{line}\n")),
            Err(e) => return Err(usage_error(e)),
        }
    } else {
        emit(&format!("{}\n", clean(&outcome.to_string())));
    }
    Ok(match outcome {
        VerifyOutcome::Intact { .. } => ExitCode::SUCCESS,
        VerifyOutcome::Broken { .. } => ExitCode::FAILURE,
    })
}

fn read(store: &dyn Store, q: &AuditQuery, path: &Path) -> Result<Vec<StoredRecord>, ExitCode> {
    store.query_audit(q).map_err(|e| {
        eprintln!(
            "portcullis: cannot read the audit log at {}: {e}",
            path.display()
        );
        ExitCode::from(USAGE)
    })
}

/// Where records are printed: stdout, flushed after each batch (so `--follow` shows records
/// as they arrive, and a pipe that closed ends the command quietly).
struct Output {
    json: bool,
    out: io::Stdout,
}

impl Output {
    fn new(json: bool) -> Self {
        Output {
            json,
            out: io::stdout(),
        }
    }

    /// Prints the records; `false` once stdout is gone (a closed pipe).
    fn print(&mut self, records: &[StoredRecord]) -> bool {
        let mut out = self.out.lock();
        for r in records {
            let line = if self.json {
                serde_json::to_string(r).unwrap_or_else(|e| {
                    format!(
                        "{{\"seq\":{},\"error\":\"{}\"}}",
                        r.seq,
                        clean(&e.to_string())
                    )
                })
            } else {
                line(r)
            };
            if writeln!(out, "{line}").is_err() {
                return false;
            }
        }
        out.flush().is_ok()
    }
}

/// One record as one line of text (see the module documentation).
pub fn line(r: &StoredRecord) -> String {
    let rec = &r.record;
    let decision = if rec.event == "decision" || rec.event.is_empty() {
        field(&rec.decision)
    } else {
        field(&format!("{}/{}", rec.event, rec.decision))
    };
    let mut line = format!(
        "{} #{} {} {} {} {} {} [{}]",
        time::format_ms(rec.time_ms),
        r.seq,
        decision,
        field(&rec.principal),
        field(&rec.server),
        field(&rec.method),
        field(&rec.name),
        rec.rule.as_deref().map_or_else(|| "-".to_owned(), clean),
    );
    if !rec.reason.is_empty() {
        line.push(' ');
        line.push_str(&clean(&rec.reason));
    }
    if let Some(us) = rec.latency_us {
        line.push_str(&format!(" ({})", latency(us)));
    }
    line
}

/// `850 µs`, `9.6 ms`, `2.3 s`.
fn latency(us: u64) -> String {
    match us {
        0..1_000 => format!("{us} µs"),
        1_000..1_000_000 => format!("{:.1} ms", us as f64 / 1e3),
        _ => format!("{:.1} s", us as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use portcullis_store::AuditRecord;

    use super::*;

    fn stored(event: &str, name: &str, rule: Option<&str>) -> StoredRecord {
        StoredRecord {
            seq: 12,
            prev_hash: "0".repeat(64),
            hash: "1".repeat(64),
            record: AuditRecord {
                time_ms: 1_795_687_200_123,
                event: event.to_owned(),
                principal: "local:alice".to_owned(),
                session: String::new(),
                transport: "http".to_owned(),
                server: "demo".to_owned(),
                method: "tools/call".to_owned(),
                name: name.to_owned(),
                args_digest: None,
                args: None,
                decision: "allow".to_owned(),
                rule: rule.map(str::to_owned),
                reason: "rule 1 allows it".to_owned(),
                latency_us: None,
                trace: None,
            },
        }
    }

    #[test]
    fn a_record_is_one_line_in_a_fixed_order() {
        assert_eq!(
            line(&stored("decision", "echo", Some("rule 1 (p.toml:3)"))),
            "2026-11-26T10:00:00.123Z #12 allow local:alice demo tools/call echo [rule 1 (p.toml:3)] rule 1 allows it"
        );
        let mut completed = stored("completed", "", None);
        completed.record.decision = "ok".to_owned();
        completed.record.reason = String::new();
        completed.record.latency_us = Some(9_595);
        assert_eq!(
            line(&completed),
            "2026-11-26T10:00:00.123Z #12 completed/ok local:alice demo tools/call \"\" [-] (9.6 ms)"
        );
    }

    #[test]
    fn hostile_names_are_escaped() {
        let l = line(&stored("decision", "x\u{1b}]0;pwned\u{7} y", None));
        assert!(!l.contains('\u{1b}'), "{l}");
        assert!(l.contains("\"x\\u{1b}]0;pwned\\u{7} y\""), "{l}");
    }
}
