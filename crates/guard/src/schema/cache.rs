//! Compiled schemas, cached by the SHA-256 of their canonical form.

use super::{CompiledSchema, Rejected, SchemaError, compile_keyed, key};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

/// A bounded cache of compiled tool schemas, shared by every session (`Send + Sync`).
///
/// Keyed by the SHA-256 of the schema's canonical JSON, so the same schema from the next
/// `tools/list`, another session or another upstream is compiled once, and a changed schema
/// gets a new entry. Schemas that fail to compile are cached too, so a bad schema costs one
/// compile, not one per call. When full, the least recently used entry is dropped.
#[derive(Debug)]
pub struct SchemaCache {
    capacity: usize,
    entries: RwLock<HashMap<[u8; 32], Entry>>,
    clock: AtomicU64,
}

#[derive(Debug)]
struct Entry {
    compiled: Result<Arc<CompiledSchema>, SchemaError>,
    last_used: AtomicU64,
}

impl Default for SchemaCache {
    /// 1024 schemas.
    fn default() -> Self {
        SchemaCache::new(1024)
    }
}

impl SchemaCache {
    /// A cache holding at most `capacity` schemas (at least one).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        SchemaCache {
            capacity: capacity.max(1),
            entries: RwLock::new(HashMap::new()),
            clock: AtomicU64::new(0),
        }
    }

    /// Validates `args` (a JSON object; `Value::Null` for absent arguments, checked as `{}`)
    /// against `schema`, a tool's `inputSchema`. A schema that cannot be used refuses the call.
    pub fn validate(&self, schema: &Value, args: &Value) -> Result<(), Rejected> {
        self.compile(schema)?.validate(args)?;
        Ok(())
    }

    /// The compiled form of `schema`, from the cache or compiled now. Callers that keep a tool
    /// list can hold the result and call [`CompiledSchema::validate`] directly.
    pub fn compile(&self, schema: &Value) -> Result<Arc<CompiledSchema>, SchemaError> {
        let key = key(schema)?;
        if let Some(found) = self.lookup(&key) {
            return found;
        }
        // Compiled outside the lock: a slow schema holds up no one else. Two threads may
        // compile the same schema at once; the first to finish is kept.
        let compiled = compile_keyed(schema, key).map(Arc::new);
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = entries.get(&key) {
            return entry.compiled.clone();
        }
        if entries.len() >= self.capacity {
            let oldest = entries
                .iter()
                .min_by_key(|(_, entry)| entry.last_used.load(Ordering::Relaxed))
                .map(|(key, _)| *key);
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        let last_used = AtomicU64::new(self.tick());
        entries.insert(
            key,
            Entry {
                compiled: compiled.clone(),
                last_used,
            },
        );
        compiled
    }

    /// How many schemas (compiled or refused) are cached.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether nothing is cached.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lookup(&self, key: &[u8; 32]) -> Option<Result<Arc<CompiledSchema>, SchemaError>> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get(key)?;
        entry.last_used.store(self.tick(), Ordering::Relaxed);
        Some(entry.compiled.clone())
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }
}
