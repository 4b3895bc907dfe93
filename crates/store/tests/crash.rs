//! A gateway killed in the middle of appending leaves an intact chain holding every record it
//! had acknowledged. The appending process is `store-crash-helper`; it is SIGKILLed (only its
//! own pid, through `Child::kill`) at a different point in each round.

use portcullis_store::{AuditQuery, SqliteStore, Store, VerifyOutcome};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Kills the helper if the test fails before it does.
struct Helper(Child);

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs one helper until it has acknowledged `kill_after` appends, kills it, and returns every
/// acknowledgement it printed (`seq` → `reason`).
fn run_and_kill(db: &std::path::Path, round: u32, kill_after: usize) -> HashMap<u64, String> {
    let child = Command::new(env!("CARGO_BIN_EXE_store-crash-helper"))
        .arg(db)
        .arg(round.to_string())
        .arg("16")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start store-crash-helper");
    let mut helper = Helper(child);
    let stdout = helper.0.stdout.take().expect("piped stdout");
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut acked = HashMap::new();
    while acked.len() < kill_after {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("helper stopped acknowledging");
        record(&mut acked, &line);
    }
    helper.0.kill().expect("SIGKILL the helper");
    let status = helper.0.wait().expect("reap the helper");
    assert!(!status.success(), "the helper was killed, not finished");
    // Whatever it printed before dying was acknowledged before the kill.
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(10)) {
        record(&mut acked, &line);
    }
    acked
}

fn record(acked: &mut HashMap<u64, String>, line: &str) {
    let mut parts = line.splitn(3, ' ');
    if let (Some("ack"), Some(seq), Some(reason)) = (parts.next(), parts.next(), parts.next()) {
        let seq: u64 = seq.parse().expect("seq");
        assert!(
            acked.insert(seq, reason.to_owned()).is_none(),
            "seq {seq} acked twice"
        );
    }
}

#[test]
fn killing_the_writer_mid_stream_keeps_every_acknowledged_record_and_an_intact_chain() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let mut all_acked: HashMap<u64, String> = HashMap::new();
    for (round, kill_after) in [(0, 500), (1, 3000), (2, 1), (3, 1500)] {
        let acked = run_and_kill(&db, round, kill_after);
        assert!(acked.len() >= kill_after);
        for (seq, reason) in acked {
            assert!(all_acked.insert(seq, reason).is_none(), "seq {seq} reused");
        }

        let store = SqliteStore::open_read_only(&db).expect("reopen after the kill");
        let outcome = store.verify_audit().unwrap();
        let VerifyOutcome::Intact { records, .. } = outcome else {
            panic!("round {round}: chain broken by the crash: {outcome}");
        };
        let mut stored = HashMap::new();
        let mut after = None;
        loop {
            let page = store
                .query_audit(&AuditQuery {
                    after_seq: after,
                    limit: 10_000,
                    ..AuditQuery::default()
                })
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.seq);
            stored.extend(page.into_iter().map(|r| (r.seq, r.record.reason)));
        }
        assert_eq!(stored.len() as u64, records);
        for (seq, reason) in &all_acked {
            assert_eq!(
                stored.get(seq),
                Some(reason),
                "round {round}: acknowledged record {seq} lost or changed"
            );
        }
    }
}

/// Several processes creating, migrating and closing the same new store at once (a host
/// starting two `portcullis stdio` together, tests starting gateways on one state file) all
/// open it: every lock one holds, the others wait for within `busy_timeout` (switching to
/// WAL included, which the store retries itself: the busy handler does not cover it).
#[test]
fn processes_opening_a_new_store_at_once_all_open_it() {
    for round in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("new.db");
        let children: Vec<_> = (0..8)
            .map(|_| {
                Command::new(env!("CARGO_BIN_EXE_store-crash-helper"))
                    .arg(&db)
                    .args([round.to_string().as_str(), "0"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("the helper starts")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("the helper runs");
            assert!(
                out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ready"),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
