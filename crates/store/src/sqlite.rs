//! The embedded store: one SQLite file in WAL mode, one writer thread, pooled readers.

use crate::approval::{self, ApprovalKey, RememberedApproval};
use crate::chain::encode_record;
use crate::definition::{self, DefinitionKey, DefinitionPin};
use crate::error::StoreError;
use crate::grant::{self, GrantKey, GrantRow, check_client_key, check_grant_key, check_sealed};
use crate::mirror::AuditMirror;
use crate::pin::{self, LaunchPin, encode_pin};
use crate::query::query;
use crate::record::{AuditQuery, AuditRecord, StoredRecord};
use crate::schema::{Durability, check_current, open_reader, open_state_writer, open_writer};
use crate::verify::{VerifyOutcome, verify};
use crate::writer::{self, Job};
use crate::{BoxFuture, Store};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Idle read connections kept for reuse.
const READER_POOL: usize = 4;

/// How the SQLite store is opened.
#[derive(Debug)]
pub struct SqliteOptions {
    /// `synchronous = NORMAL` (default) or `FULL`; see [`Durability`].
    pub durability: Durability,
    /// How long a connection waits for a lock held by another connection or process.
    pub busy_timeout: Duration,
    /// Appends queued for the writer before `append_audit` waits (backpressure).
    pub queue_capacity: usize,
    /// Most records in one group commit.
    pub max_batch: usize,
    /// Copy every committed record here as a JSON line.
    pub mirror: Option<AuditMirror>,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            durability: Durability::Normal,
            busy_timeout: Duration::from_secs(5),
            queue_capacity: 4096,
            max_batch: 1024,
            mirror: None,
        }
    }
}

/// The SQLite state store. Appends go to the writer thread; reads use their own connections.
pub struct SqliteStore {
    path: PathBuf,
    /// `None` when opened read-only.
    writer: Option<mpsc::Sender<Job>>,
    readers: Mutex<Vec<Connection>>,
    busy_timeout: Duration,
    /// For the short-lived connections that write pins and grants.
    durability: Durability,
    /// Transactions the writer committed (for tests and metrics).
    commits: Arc<AtomicU64>,
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the store at `path` for reading and writing,
    /// and starts its writer thread. The writer thread ends once the store and every append
    /// in flight are gone.
    pub fn open(path: &Path, options: SqliteOptions) -> Result<Arc<Self>, StoreError> {
        let conn = open_writer(path, options.durability, options.busy_timeout)?;
        let (sender, receiver) = mpsc::channel(options.queue_capacity.max(1));
        let commits = Arc::new(AtomicU64::new(0));
        writer::spawn(
            conn,
            receiver,
            options.max_batch,
            options.mirror,
            commits.clone(),
        )?;
        Ok(Arc::new(SqliteStore {
            path: path.to_owned(),
            writer: Some(sender),
            readers: Mutex::new(Vec::new()),
            busy_timeout: options.busy_timeout,
            durability: options.durability,
            commits,
        }))
    }

    /// Opens an existing store for reading only (`portcullis audit …` next to a running
    /// gateway): queries, verify and reading pins work; appends and pin writes return
    /// [`StoreError::ReadOnly`].
    pub fn open_read_only(path: &Path) -> Result<Arc<Self>, StoreError> {
        std::fs::metadata(path).map_err(StoreError::io("open the database file"))?;
        let busy_timeout = SqliteOptions::default().busy_timeout;
        let conn = open_reader(path, busy_timeout)?;
        check_current(&conn)?;
        Ok(Arc::new(SqliteStore {
            path: path.to_owned(),
            writer: None,
            readers: Mutex::new(vec![conn]),
            busy_timeout,
            durability: Durability::default(),
            commits: Arc::new(AtomicU64::new(0)),
        }))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a pooled read connection.
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self
            .readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_reader(&self.path, self.busy_timeout)?,
        };
        let result = f(&conn);
        let mut pool = self
            .readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if pool.len() < READER_POOL {
            pool.push(conn);
        }
        result
    }

    /// Runs `f` on a fresh write connection, for state outside the audit chain (pins, OAuth
    /// grants). A connection per write keeps the writer thread the audit log's alone; these
    /// writes are rare (`portcullis trust`, a user connecting, a refresh), so opening one
    /// costs nothing that matters.
    fn write_state<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.writer.is_none() {
            return Err(StoreError::ReadOnly);
        }
        let mut conn = open_state_writer(&self.path, self.durability, self.busy_timeout)?;
        f(&mut conn)
    }
}

impl SqliteStore {
    /// How many transactions the writer has committed since the store was opened (one per
    /// group of appends).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    fn append(
        &self,
        record: AuditRecord,
        urgent: bool,
    ) -> BoxFuture<'static, Result<u64, StoreError>> {
        // Encoding (canonical JSON, size check) happens here, on the caller's thread, so the
        // writer thread only hashes and inserts.
        let prepared = match &self.writer {
            None => Err(StoreError::ReadOnly),
            Some(sender) => encode_record(&record).map(|body| (sender.clone(), body)),
        };
        Box::pin(async move {
            let (sender, body) = prepared?;
            let (reply, answer) = oneshot::channel();
            sender
                .send(Job {
                    body,
                    reply,
                    urgent,
                })
                .await
                .map_err(|_| StoreError::WriterGone)?;
            drop(sender);
            answer.await.map_err(|_| StoreError::WriterGone)?
        })
    }
}

impl Store for SqliteStore {
    fn append_audit(&self, record: AuditRecord) -> BoxFuture<'static, Result<u64, StoreError>> {
        self.append(record, true)
    }

    fn append_audit_deferred(
        &self,
        record: AuditRecord,
    ) -> BoxFuture<'static, Result<u64, StoreError>> {
        self.append(record, false)
    }

    fn query_audit(&self, q: &AuditQuery) -> Result<Vec<StoredRecord>, StoreError> {
        self.read(|conn| query(conn, q))
    }

    fn verify_audit(&self) -> Result<VerifyOutcome, StoreError> {
        self.read(verify)
    }

    fn put_pin(&self, launch_pin: &LaunchPin) -> Result<(), StoreError> {
        let body = encode_pin(launch_pin)?;
        self.write_state(|conn| pin::put(conn, &launch_pin.server, &body))
    }

    fn get_pin(&self, server: &str) -> Result<Option<LaunchPin>, StoreError> {
        self.read(|conn| pin::get(conn, server))
    }

    fn remove_pin(&self, server: &str) -> Result<bool, StoreError> {
        self.write_state(|conn| pin::remove(conn, server))
    }

    fn list_pins(&self) -> Result<Vec<LaunchPin>, StoreError> {
        self.read(pin::list)
    }

    fn put_grant(&self, key: &GrantKey, sealed: &[u8]) -> Result<(), StoreError> {
        check_grant_key(key)?;
        check_sealed(sealed)?;
        self.write_state(|conn| grant::put_grant(conn, key, sealed))
    }

    fn get_grant(&self, key: &GrantKey) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|conn| grant::get_grant(conn, key))
    }

    fn remove_grants(&self, server: &str, principal: Option<&str>) -> Result<usize, StoreError> {
        self.write_state(|conn| grant::remove_grants(conn, server, principal))
    }

    fn list_grants(&self) -> Result<Vec<GrantRow>, StoreError> {
        self.read(grant::list_grants)
    }

    fn put_client(&self, server: &str, issuer: &str, sealed: &[u8]) -> Result<(), StoreError> {
        check_client_key(server, issuer)?;
        check_sealed(sealed)?;
        self.write_state(|conn| grant::put_client(conn, server, issuer, sealed))
    }

    fn get_client(&self, server: &str, issuer: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|conn| grant::get_client(conn, server, issuer))
    }

    fn remove_clients(&self, server: &str) -> Result<usize, StoreError> {
        self.write_state(|conn| grant::remove_clients(conn, server))
    }

    fn definition_pins(&self, identity: &str) -> Result<Vec<DefinitionPin>, StoreError> {
        self.read(|conn| definition::list(conn, identity))
    }

    fn update_definition_pins(
        &self,
        identity: &str,
        put: &[DefinitionPin],
        remove: &[DefinitionKey],
    ) -> Result<(), StoreError> {
        let put = definition::prepare(identity, put, remove)?;
        self.write_state(|conn| definition::update(conn, identity, &put, remove))
    }

    fn remove_definition_pins(&self, identity: &str) -> Result<usize, StoreError> {
        definition::check_identity(identity)?;
        self.write_state(|conn| definition::remove_all(conn, identity))
    }

    fn put_approval(&self, remembered: &RememberedApproval) -> Result<(), StoreError> {
        approval::check(remembered)?;
        let now = remembered.created_at_ms;
        self.write_state(|conn| approval::put(conn, remembered, now))
    }

    fn find_approval(
        &self,
        key: &ApprovalKey,
        now_ms: i64,
    ) -> Result<Option<RememberedApproval>, StoreError> {
        self.read(|conn| approval::find(conn, key, now_ms))
    }

    fn list_approvals(&self, now_ms: i64) -> Result<Vec<RememberedApproval>, StoreError> {
        self.read(|conn| approval::list(conn, now_ms))
    }

    fn remove_approvals(
        &self,
        server: Option<&str>,
        identity: Option<&str>,
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        self.write_state(|conn| approval::remove(conn, server, identity, now_ms))
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("read_only", &self.writer.is_none())
            .finish_non_exhaustive()
    }
}
