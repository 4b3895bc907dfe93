//! Audit write throughput of the SQLite store.
//!
//! ```text
//! cargo run --release -p portcullis-store --example audit_bench -- [--records N] [--tasks T]
//!     [--single N] [--full-single N] [--dir PATH]
//! ```
//! For each durability (NORMAL, the default, and FULL): `--records` appends from `--tasks`
//! concurrent tokio tasks (group commit), then `--single` appends from one task awaiting each
//! (latency per append: p50, p99). The database goes in a fresh directory under `--dir`
//! (default: the system temp dir; put it on the disk the gateway will use).

use portcullis_store::{AuditRecord, Durability, SqliteOptions, SqliteStore, Store, VerifyOutcome};
use std::path::PathBuf;
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    records: u64,
    tasks: u64,
    single: u64,
    full_single: u64,
    dir: Option<PathBuf>,
}

fn parse_args() -> Result<Args, Error> {
    let mut args = Args {
        records: 100_000,
        tasks: 32,
        single: 100_000,
        full_single: 2_000,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--records" => args.records = value.parse()?,
            "--tasks" => args.tasks = value.parse()?,
            "--single" => args.single = value.parse()?,
            "--full-single" => args.full_single = value.parse()?,
            "--dir" => args.dir = Some(value.into()),
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    Ok(args)
}

fn record(i: u64) -> AuditRecord {
    AuditRecord {
        time_ms: 1_700_000_000_000 + i as i64,
        event: "decision".into(),
        principal: "<https://idp.example.com/realms/acme,alice@example.com>".into(),
        session: "3f1c2a9e-1b4d-4c8e-9a57-6d2f0e8b7c41".into(),
        transport: "http".into(),
        server: "files".into(),
        method: "tools/call".into(),
        name: "read_file".into(),
        args_digest: Some(format!("sha256:{i:064x}")),
        args: None,
        decision: "allow".into(),
        rule: Some("rules[0]".into()),
        reason: "matched rule 0 (server files, tools read_*)".into(),
        latency_us: Some(1234),
        trace: Some(format!("req-{i}")),
    }
}

fn main() -> Result<(), Error> {
    let args = parse_args()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    for (durability, single) in [
        (Durability::Normal, args.single),
        (Durability::Full, args.full_single),
    ] {
        let dir = match &args.dir {
            Some(dir) => tempfile::tempdir_in(dir)?,
            None => tempfile::tempdir()?,
        };
        let path = dir.path().join("bench.db");
        let store = SqliteStore::open(
            &path,
            SqliteOptions {
                durability,
                ..SqliteOptions::default()
            },
        )?;
        let name = format!("{durability:?}").to_uppercase();
        runtime.block_on(concurrent(&store, &name, args.records, args.tasks))?;
        runtime.block_on(sequential(&store, &name, single))?;
        let verify = Instant::now();
        let outcome = match store.verify_audit()? {
            VerifyOutcome::Intact { records, .. } => format!("intact, {records} records"),
            broken => broken.to_string(),
        };
        println!(
            "{name:6} verify:     {outcome} in {:.2} s",
            verify.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

async fn concurrent(
    store: &std::sync::Arc<SqliteStore>,
    name: &str,
    records: u64,
    tasks: u64,
) -> Result<(), Error> {
    let per_task = records / tasks.max(1);
    let start = Instant::now();
    let mut handles = Vec::new();
    for task in 0..tasks {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..per_task {
                store.append_audit(record(task * per_task + i)).await?;
            }
            Ok::<(), Error>(())
        }));
    }
    for handle in handles {
        handle.await??;
    }
    let elapsed = start.elapsed();
    let total = per_task * tasks;
    println!(
        "{name:6} concurrent: {total} appends from {tasks} tasks in {:.2} s = {:.0} records/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

async fn sequential(
    store: &std::sync::Arc<SqliteStore>,
    name: &str,
    count: u64,
) -> Result<(), Error> {
    if count == 0 {
        return Ok(());
    }
    let mut latencies = Vec::with_capacity(count as usize);
    let start = Instant::now();
    for i in 0..count {
        let t = Instant::now();
        store.append_audit(record(i)).await?;
        latencies.push(t.elapsed());
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{name:6} one task:   {count} appends in {:.2} s = {:.0} records/s; per append p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        us(at(0.50)),
        us(at(0.99)),
        us(at(1.0)),
    );
    Ok(())
}
