//! Users' grants as the request path reads them: the vault (encrypted, in the state store)
//! behind an in-memory copy, so that a request costs a map lookup, not a database read and
//! a decryption.
//!
//! The vault is the truth. The copy is filled on a miss and replaced on every write, and
//! read again after [`CACHE_TTL`], so that a grant removed elsewhere (`portcullis
//! connections forget`, another gateway on the same store) stops being sent within it; a
//! refresh reads the vault afresh (under the user's refresh lock), so that gateways sharing
//! one state store see each other's rotations instead of spending a dead refresh token.
//! Database calls block, so they run where blocking is allowed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use portcullis_auth::client::{ClientIdentity, StoredGrant};

use super::vault::{GrantVault, GrantVaultError};

type Key = (String, String, String);

/// The most grants kept in memory; past it the copy is dropped and refilled on demand.
const MAX_CACHED: usize = 10_000;

/// How long a copy is used before the vault is read again: how long a grant revoked by
/// another process can still be sent.
pub const CACHE_TTL: Duration = Duration::from_secs(30);

pub struct Grants {
    vault: GrantVault,
    /// Each copy with when it was read.
    cached: Mutex<HashMap<Key, (StoredGrant, Instant)>>,
}

impl Grants {
    pub fn new(vault: GrantVault) -> Self {
        Grants {
            vault,
            cached: Mutex::new(HashMap::new()),
        }
    }

    fn key(principal: &str, server: &str, issuer: &str) -> Key {
        (principal.to_owned(), server.to_owned(), issuer.to_owned())
    }

    /// `principal`'s grant at `server` from `issuer`: the copy, or the vault (`fresh`: the
    /// vault in any case).
    pub fn get(
        &self,
        principal: &str,
        server: &str,
        issuer: &str,
        fresh: bool,
    ) -> Result<Option<StoredGrant>, GrantVaultError> {
        let key = Self::key(principal, server, issuer);
        if !fresh
            && let Some((g, _)) = self
                .cached
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&key)
                .filter(|(_, read)| read.elapsed() < CACHE_TTL)
        {
            return Ok(Some(g.clone()));
        }
        let read = blocking(|| self.vault.get_grant(principal, server, issuer))?;
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        match &read {
            Some(g) => {
                if cached.len() >= MAX_CACHED {
                    cached.clear();
                }
                cached.insert(key, (g.clone(), Instant::now()));
            }
            None => {
                cached.remove(&key);
            }
        }
        Ok(read)
    }

    pub fn put(
        &self,
        principal: &str,
        server: &str,
        grant: &StoredGrant,
    ) -> Result<(), GrantVaultError> {
        blocking(|| self.vault.put_grant(principal, server, grant))?;
        let key = Self::key(principal, server, &grant.issuer);
        self.cached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, (grant.clone(), Instant::now()));
        Ok(())
    }

    /// Forgets `principal`'s grants at `server` (every principal's with `None`).
    /// The vault first: a `get` in between must not put the grant back into the copy.
    pub fn forget(&self, server: &str, principal: Option<&str>) -> Result<usize, GrantVaultError> {
        let removed = blocking(|| self.vault.forget(server, principal));
        self.cached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(p, s, _), _| !(s == server && principal.is_none_or(|want| want == p)));
        removed
    }

    pub fn client(
        &self,
        server: &str,
        issuer: &str,
    ) -> Result<Option<ClientIdentity>, GrantVaultError> {
        blocking(|| self.vault.get_client(server, issuer))
    }

    pub fn put_client(
        &self,
        server: &str,
        issuer: &str,
        client: &ClientIdentity,
    ) -> Result<(), GrantVaultError> {
        blocking(|| self.vault.put_client(server, issuer, client))
    }
}

/// Runs a database call: on a multi-threaded runtime, in place with the worker handed over
/// (`block_in_place`), so a busy database does not stall other requests; elsewhere as is.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
