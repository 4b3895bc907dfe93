//! Test helper for `tests/crash.rs`: appends audit records from several tasks until it is
//! killed, printing `ack <seq> <reason>` for every append the store acknowledged (stdout is
//! line-buffered, so a printed line means the acknowledgement happened).
//!
//! Usage: `store-crash-helper <db> <round> <tasks>`

use portcullis_store::{AuditRecord, SqliteOptions, SqliteStore, Store};
use std::io::Write;
use std::path::PathBuf;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: store-crash-helper <db> <round> <tasks>";
    let db = PathBuf::from(args.next().ok_or(usage)?);
    let round: u32 = args.next().ok_or(usage)?.parse()?;
    let tasks: u32 = args.next().ok_or(usage)?.parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()?;
    runtime.block_on(async move {
        let store: std::sync::Arc<SqliteStore> = SqliteStore::open(&db, SqliteOptions::default())?;
        println!("ready");
        let mut handles = Vec::new();
        for task in 0..tasks {
            let store = store.clone();
            handles.push(tokio::spawn(async move {
                for n in 0u64.. {
                    let reason = format!("r{round}-t{task}-n{n}");
                    let seq = store.append_audit(record(&reason)).await?;
                    writeln!(std::io::stdout(), "ack {seq} {reason}")?;
                }
                Ok::<(), Error>(())
            }));
        }
        for handle in handles {
            handle.await??;
        }
        Ok::<(), Error>(())
    })
}

fn record(reason: &str) -> AuditRecord {
    AuditRecord {
        time_ms: 1_700_000_000_000,
        event: "decision".into(),
        principal: "crash-test".into(),
        session: String::new(),
        transport: "stdio".into(),
        server: "fixture".into(),
        method: "tools/call".into(),
        name: "echo".into(),
        args_digest: None,
        args: Some(serde_json::json!({"reason": reason})),
        decision: "allow".into(),
        rule: None,
        reason: reason.to_owned(),
        latency_us: None,
        trace: None,
    }
}
