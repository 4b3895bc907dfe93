//! Audit write throughput, in process: the SQLite store the gateway writes its audit log to,
//! in a fresh file in the work directory, with its default settings (durability NORMAL,
//! group commit by one writer thread).
//!
//! - throughput: `records` appends from `tasks` concurrent tasks, each awaiting its own
//!   appends one after the other (as calls do: a call is forwarded once its record is
//!   committed), so the writer commits them in groups;
//! - latency: `single` appends from one task, each awaited before the next (no group to
//!   share a commit with);
//! - then the whole chain is verified, and must hold every record.
//!
//! What earlier parts wrote is flushed to disk first (`sync`), so its write-back does not
//! slow these writes down.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use portcullis_store::{AuditRecord, SqliteOptions, SqliteStore, Store, VerifyOutcome};

use crate::stats::Latency;

#[derive(Debug, Clone)]
pub struct AuditWrites {
    pub records: usize,
    pub tasks: usize,
    pub elapsed: Duration,
    /// One append awaited at a time.
    pub single: Latency,
    /// How long verifying the whole chain took, and how many records it held.
    pub verify_elapsed: Duration,
    pub verified_records: u64,
}

impl AuditWrites {
    pub fn per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.records as f64 / secs
        } else {
            0.0
        }
    }
}

/// A decision record of the size the gateway writes.
fn record(i: usize) -> AuditRecord {
    AuditRecord {
        time_ms: 1_700_000_000_000 + i as i64,
        event: "decision".into(),
        principal: "<https://idp.example.com,alice@example.com>".into(),
        session: "3f1c2a9e-1b4d-4c8e-9a57-6d2f0e8b7c41".into(),
        transport: "http".into(),
        server: "files".into(),
        method: "tools/call".into(),
        name: "read_file".into(),
        args_digest: Some(format!("sha256:{i:064x}")),
        args: None,
        decision: "allow".into(),
        rule: Some("rules[999] (bench.toml:4001)".into()),
        reason: "rule 999 allows tool \"read_file\" on server \"files\"".into(),
        latency_us: None,
        trace: Some(format!("req-{i}")),
    }
}

pub async fn run(
    dir: &Path,
    records: usize,
    tasks: usize,
    single: usize,
) -> anyhow::Result<AuditWrites> {
    let tasks = tasks.max(1);
    flush_disks().await;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("audit-bench.db");
    let store = SqliteStore::open(&path, SqliteOptions::default())
        .with_context(|| format!("cannot open the audit store {}", path.display()))?;
    // A few appends first: the file, its WAL and the writer's statements exist before timing.
    for i in 0..100 {
        store.append_audit(record(i)).await?;
    }
    let written = 100;

    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for task in 0..tasks {
        let store = store.clone();
        let mine = records / tasks + usize::from(task < records % tasks);
        set.spawn(async move {
            for i in 0..mine {
                store.append_audit(record(task * records + i)).await?;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(joined) = set.join_next().await {
        joined.context("an append task panicked")??;
    }
    let elapsed = start.elapsed();

    let mut times = Vec::with_capacity(single);
    for i in 0..single {
        let start = Instant::now();
        store.append_audit(record(i)).await?;
        times.push(start.elapsed());
    }

    let expected = (written + records + single) as u64;
    let verify_start = Instant::now();
    let outcome = tokio::task::spawn_blocking({
        let store: Arc<SqliteStore> = store.clone();
        move || store.verify_audit()
    })
    .await
    .context("verify panicked")??;
    let verify_elapsed = verify_start.elapsed();
    let verified_records = match outcome {
        VerifyOutcome::Intact { records, .. } if records == expected => records,
        VerifyOutcome::Intact { records, .. } => {
            bail!("the audit chain holds {records} records after {expected} appends")
        }
        broken => bail!("the audit chain is broken after the benchmark's appends: {broken}"),
    };
    Ok(AuditWrites {
        records,
        tasks,
        elapsed,
        single: Latency::from_samples(times),
        verify_elapsed,
        verified_records,
    })
}

/// Writes out what earlier parts left dirty in the page cache (the gateways' audit logs), so
/// that its write-back does not fall into this measurement. Best effort, bounded.
async fn flush_disks() {
    let sync = tokio::process::Command::new("sync")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(60), sync).await;
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "current_thread")]
    async fn appends_are_counted_and_verified() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let a = super::run(dir.path(), 200, 8, 10).await?;
        assert_eq!(a.verified_records, 310);
        assert!(a.per_sec() > 0.0);
        Ok(())
    }
}
