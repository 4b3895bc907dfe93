//! The state store of Portcullis.
//!
//! The gateway holds an `Arc<dyn Store>`; the embedded default is [`SqliteStore`], a single
//! SQLite file (`state = "sqlite:portcullis.db"`); Redis, for replicas sharing state, comes
//! later behind the same trait. The store holds the hash-chained audit log, the launch
//! pins of local servers ([`LaunchPin`]), the sealed OAuth grants and client registrations
//! of remote servers ([`GrantKey`]) and the definition pins that catch rug pulls
//! ([`DefinitionPin`]) and the consent approvals a person asked to remember "always"
//! ([`RememberedApproval`]).
//!
//! Modules, one idea each:
//! - `record`: what an audit record is, stored records, queries, bounds;
//! - `chain`: the hash chain (encoding, link hashes, genesis), over the canonical JSON of
//!   [`portcullis_wire::canonical`];
//! - `schema`: connections, pragmas, the versioned schema and its migrations, `meta`;
//! - `writer`: the single writer thread and its group commit;
//! - `query`, `verify`: reading the log back, and checking it;
//! - `mirror`: the optional JSON-lines copy;
//! - `pin`: launch pins (`portcullis trust`), what they hold and how they are stored;
//! - `grant`: OAuth grants and client registrations, as sealed blobs under their keys;
//! - `definition`: definition pins (tool definitions and instructions per server identity);
//! - `approval`: consent approvals remembered until an expiry;
//! - `sqlite`: [`SqliteStore`], tying these together.
//!
//! Where the store lives (`gateway.state`) is read by the gateway's config, not here.

mod approval;
mod chain;
mod definition;
mod error;
mod grant;
mod mirror;
mod pin;
mod query;
mod record;
mod schema;
mod sqlite;
mod verify;
mod writer;

pub use approval::{
    ApprovalKey, MAX_APPROVAL_HOW_BYTES, MAX_APPROVAL_KEY_PART_BYTES, MAX_APPROVALS,
    RememberedApproval,
};
pub use chain::{GENESIS_HASH, link_hash};
pub use definition::{
    DefinitionKey, DefinitionKind, DefinitionPin, MAX_DEFINITION_KEY_BYTES,
    MAX_DEFINITION_PIN_BYTES,
};
pub use error::StoreError;
pub use grant::{GrantKey, GrantRow, MAX_GRANT_KEY_PART_BYTES, MAX_SEALED_BYTES};
pub use mirror::AuditMirror;
pub use pin::{LaunchPin, MAX_PIN_BYTES};
pub use record::{AuditQuery, AuditRecord, MAX_QUERY_LIMIT, MAX_RECORD_BYTES, StoredRecord};
pub use schema::{Durability, SCHEMA_VERSION};
pub use sqlite::{SqliteOptions, SqliteStore};
pub use verify::{ChainProblem, VerifyOutcome};

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The longest [`Store::append_audit_deferred`] holds a record back before committing it.
pub const DEFER_AT_MOST: Duration = Duration::from_millis(2);

/// A boxed, sendable future (the same type as `futures::future::BoxFuture`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The state store (SQLite now; Redis later). Object-safe, so the gateway holds
/// `Arc<dyn Store>`.
pub trait Store: Send + Sync {
    /// Appends a record to the audit chain and resolves once it is durable (committed), with
    /// its sequence number. An error means it is not stored (or not known to be): the caller
    /// must not forward the call it describes. When the writer's queue is full, the future
    /// waits for room (backpressure); records are never dropped.
    fn append_audit(&self, record: AuditRecord) -> BoxFuture<'static, Result<u64, StoreError>>;

    /// [`append_audit`](Store::append_audit) for a record nothing waits on (a call's outcome,
    /// a refusal): the store may hold it back a little, at most [`DEFER_AT_MOST`], to commit
    /// it together with the next records, so that a call costs one commit rather than two.
    /// It is still durable when the future resolves.
    fn append_audit_deferred(
        &self,
        record: AuditRecord,
    ) -> BoxFuture<'static, Result<u64, StoreError>> {
        self.append_audit(record)
    }

    /// The records matching `q`, in ascending `seq` order. Blocking: from async code, call it
    /// in `spawn_blocking`.
    fn query_audit(&self, q: &AuditQuery) -> Result<Vec<StoredRecord>, StoreError>;

    /// Walks the whole chain and reports the first bad record, if any. Blocking, and linear in
    /// the size of the log.
    fn verify_audit(&self) -> Result<VerifyOutcome, StoreError>;

    /// Stores `pin` as the launch pin of `pin.server`, replacing any earlier one, and returns
    /// once it is committed. Blocking: from async code, call it in `spawn_blocking`. A store
    /// opened read-only refuses with [`StoreError::ReadOnly`].
    fn put_pin(&self, pin: &LaunchPin) -> Result<(), StoreError>;

    /// The launch pin of `server`, if it has one. Blocking. A pin that cannot be decoded is
    /// an error ([`StoreError::CorruptPin`]), never `None`: the caller refuses the launch.
    fn get_pin(&self, server: &str) -> Result<Option<LaunchPin>, StoreError>;

    /// Removes the launch pin of `server`; `true` if there was one. Blocking. A store opened
    /// read-only refuses with [`StoreError::ReadOnly`].
    fn remove_pin(&self, server: &str) -> Result<bool, StoreError>;

    /// Every launch pin, ordered by server name. Blocking.
    fn list_pins(&self) -> Result<Vec<LaunchPin>, StoreError>;

    /// Stores the sealed OAuth grant of `key`, replacing any earlier one, stamped with the
    /// time. The blob is opaque to the store (the gateway seals it). Blocking. Refused:
    /// an empty key part or blob ([`StoreError::InvalidGrant`]), a blob over
    /// [`MAX_SEALED_BYTES`], a read-only store ([`StoreError::ReadOnly`]).
    fn put_grant(&self, key: &GrantKey, sealed: &[u8]) -> Result<(), StoreError>;

    /// The sealed grant of `key`, if there is one. Blocking.
    fn get_grant(&self, key: &GrantKey) -> Result<Option<Vec<u8>>, StoreError>;

    /// Removes the grants for `server` (at every issuer), of `principal` or, with `None`, of
    /// everyone; how many were removed. Blocking.
    fn remove_grants(&self, server: &str, principal: Option<&str>) -> Result<usize, StoreError>;

    /// Every grant's key and time, never its blob, ordered by server, principal, issuer.
    /// Blocking.
    fn list_grants(&self) -> Result<Vec<GrantRow>, StoreError>;

    /// Stores the gateway's sealed client registration for `server` at `issuer`, replacing
    /// any earlier one. Blocking; refused as [`put_grant`](Store::put_grant) is.
    fn put_client(&self, server: &str, issuer: &str, sealed: &[u8]) -> Result<(), StoreError>;

    /// The sealed client registration for `server` at `issuer`, if there is one. Blocking.
    fn get_client(&self, server: &str, issuer: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Removes the client registrations for `server` (at every issuer); how many. Blocking.
    fn remove_clients(&self, server: &str) -> Result<usize, StoreError>;

    /// Every definition pin of the server `identity`, ordered by kind and name. Blocking. A
    /// pin that cannot be decoded is an error ([`StoreError::CorruptDefinitionPin`]), never
    /// left out: the caller withholds rather than treating the definition as new.
    fn definition_pins(&self, identity: &str) -> Result<Vec<DefinitionPin>, StoreError>;

    /// Inserts or replaces the pins `put` and deletes the pins `remove` of `identity`, in
    /// one transaction. Blocking. Refused before any SQL: a pin of another identity, an
    /// empty or oversized identity or name ([`StoreError::InvalidDefinitionPin`]), a pin over
    /// [`MAX_DEFINITION_PIN_BYTES`], a read-only store ([`StoreError::ReadOnly`]).
    fn update_definition_pins(
        &self,
        identity: &str,
        put: &[DefinitionPin],
        remove: &[DefinitionKey],
    ) -> Result<(), StoreError>;

    /// Removes every definition pin of `identity`; how many. Blocking.
    fn remove_definition_pins(&self, identity: &str) -> Result<usize, StoreError>;

    /// Stores a consent approval remembered until `approval.expires_at_ms`, replacing one
    /// with the same key; expired ones are swept. Blocking. Refused: an empty or oversized
    /// key part, a full table ([`StoreError::InvalidApproval`]), a read-only store.
    fn put_approval(&self, approval: &RememberedApproval) -> Result<(), StoreError>;

    /// The live approval covering `key` at `now_ms`: one for exactly `key.digest`, else one
    /// for any arguments (empty digest). Blocking.
    fn find_approval(
        &self,
        key: &ApprovalKey,
        now_ms: i64,
    ) -> Result<Option<RememberedApproval>, StoreError>;

    /// Every approval live at `now_ms`, ordered by server, identity, tool. Blocking.
    fn list_approvals(&self, now_ms: i64) -> Result<Vec<RememberedApproval>, StoreError>;

    /// Removes the approvals for `server` (every server with `None`) of `identity` (everyone
    /// with `None`); how many. Blocking.
    fn remove_approvals(
        &self,
        server: Option<&str>,
        identity: Option<&str>,
        now_ms: i64,
    ) -> Result<usize, StoreError>;
}
