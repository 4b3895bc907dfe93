//! The users' OAuth grants and the gateway's client registrations, encrypted at rest.
//!
//! A [`GrantVault`] is the state store plus the [`VaultKey`]: it turns a [`StoredGrant`] or a
//! [`ClientIdentity`] into JSON, seals it with the key, and hands the store an opaque blob
//! under its key (principal, server, issuer). The associated data of each seal names that
//! row (`portcullis-grant\0{principal}\0{server}\0{issuer}`), so a blob copied to another
//! principal's row — by someone with write access to the database — does not open: the
//! worst they can do is make a user connect again.
//!
//! The key is `PORTCULLIS_VAULT_KEY` (base64 of 32 bytes) or the file `vault.key` in the
//! directory of the state database, created on first use with mode 0600
//! ([`VaultKey::from_env_or_file`]). A row that does not open (another key, damage) is an
//! error the caller logs, and then treats the user as not connected.
//!
//! Every method blocks on SQLite (a write waits up to the store's `busy_timeout` for the
//! audit writer): from async code that must not stall, call it in `spawn_blocking`.

use std::path::PathBuf;
use std::sync::Arc;

use portcullis_auth::client::{ClientIdentity, StoredFormError, StoredGrant};
use portcullis_auth::vault::{VAULT_KEY_ENV, VaultError, VaultKey};
use portcullis_store::{GrantKey, Store, StoreError};

use crate::config::{Config, StateLocation};

/// Why a grant or registration could not be stored or read. Names rows (principal, server,
/// issuer: not secrets), never a token.
#[derive(Debug, thiserror::Error)]
pub enum GrantVaultError {
    /// The key could not be read or created.
    #[error("vault key: {0}")]
    Key(#[source] VaultError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored row that does not open or decode: the user is to connect again.
    #[error("the stored {what} for {row} cannot be read: {reason}")]
    Unreadable {
        what: &'static str,
        row: String,
        reason: String,
    },
    /// A value could not be sealed or encoded.
    #[error("the {what} for {row} cannot be stored: {reason}")]
    Unsealable {
        what: &'static str,
        row: String,
        reason: String,
    },
    /// A principal, server or issuer with a NUL byte: it would make two rows' associated data
    /// alike.
    #[error("a {0} with a NUL byte cannot key a stored grant")]
    NulInKey(&'static str),
}

/// Grants and registrations, sealed with the vault key, in the state store.
pub struct GrantVault {
    store: Arc<dyn Store>,
    key: VaultKey,
}

impl std::fmt::Debug for GrantVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrantVault")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// The directory of the state database: where the key file lives.
pub fn key_dir(config: &Config) -> PathBuf {
    let StateLocation::Sqlite(path) = &config.gateway.state;
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

impl GrantVault {
    pub fn new(store: Arc<dyn Store>, key: VaultKey) -> Self {
        GrantVault { store, key }
    }

    /// The vault of `config`'s state: the key from `PORTCULLIS_VAULT_KEY`, else the key file
    /// beside the database (created on first use).
    pub fn open_for(config: &Config, store: Arc<dyn Store>) -> Result<Self, GrantVaultError> {
        let key = VaultKey::from_env_or_file(VAULT_KEY_ENV, &key_dir(config))
            .map_err(GrantVaultError::Key)?;
        Ok(GrantVault::new(store, key))
    }

    /// As [`open_for`](GrantVault::open_for), but never creates a key: `None` when there is
    /// none yet (for readers such as `portcullis connections list`).
    pub fn open_existing_for(
        config: &Config,
        store: Arc<dyn Store>,
    ) -> Result<Option<Self>, GrantVaultError> {
        let key = VaultKey::from_env_or_existing_file(VAULT_KEY_ENV, &key_dir(config))
            .map_err(GrantVaultError::Key)?;
        Ok(key.map(|key| GrantVault::new(store, key)))
    }

    /// The key in use (its origin is what messages name).
    pub fn key(&self) -> &VaultKey {
        &self.key
    }

    /// Seals and stores `principal`'s grant at `server`, under the grant's issuer, replacing
    /// any earlier one.
    pub fn put_grant(
        &self,
        principal: &str,
        server: &str,
        grant: &StoredGrant,
    ) -> Result<(), GrantVaultError> {
        let key = grant_key(principal, server, &grant.issuer)?;
        let row = || describe(&key);
        let unsealable = |reason: String| GrantVaultError::Unsealable {
            what: "grant",
            row: row(),
            reason,
        };
        let json = grant.to_json().map_err(|e| unsealable(e.to_string()))?;
        let sealed = self
            .key
            .seal(&grant_aad(&key), &json)
            .map_err(|e| unsealable(e.to_string()))?;
        self.store.put_grant(&key, &sealed)?;
        Ok(())
    }

    /// `principal`'s grant at `server` from `issuer`, if stored. A row that does not open
    /// with this key for this row, or does not decode, or names another issuer, is
    /// [`GrantVaultError::Unreadable`].
    pub fn get_grant(
        &self,
        principal: &str,
        server: &str,
        issuer: &str,
    ) -> Result<Option<StoredGrant>, GrantVaultError> {
        let key = grant_key(principal, server, issuer)?;
        let Some(sealed) = self.store.get_grant(&key)? else {
            return Ok(None);
        };
        let unreadable = |reason: String| GrantVaultError::Unreadable {
            what: "grant",
            row: describe(&key),
            reason,
        };
        let json = self
            .key
            .open(&grant_aad(&key), &sealed)
            .map_err(|e| unreadable(opened_with(&self.key, &e)))?;
        let grant = StoredGrant::from_json(&json).map_err(|e| unreadable(e.to_string()))?;
        if grant.issuer != issuer {
            return Err(unreadable("it names another issuer".into()));
        }
        Ok(Some(grant))
    }

    /// Removes the grants for `server` (every issuer) of `principal`, or of everyone; how
    /// many.
    pub fn forget(&self, server: &str, principal: Option<&str>) -> Result<usize, GrantVaultError> {
        Ok(self.store.remove_grants(server, principal)?)
    }

    /// Seals and stores the gateway's registration for `server` at `issuer`.
    pub fn put_client(
        &self,
        server: &str,
        issuer: &str,
        client: &ClientIdentity,
    ) -> Result<(), GrantVaultError> {
        let aad = client_aad(server, issuer)?;
        let unsealable = |reason: String| GrantVaultError::Unsealable {
            what: "client registration",
            row: format!("server {server:?} at {issuer:?}"),
            reason,
        };
        let json = client.to_json().map_err(|e| unsealable(e.to_string()))?;
        let sealed = self
            .key
            .seal(&aad, &json)
            .map_err(|e| unsealable(e.to_string()))?;
        self.store.put_client(server, issuer, &sealed)?;
        Ok(())
    }

    /// The gateway's registration for `server` at `issuer`, if stored; a row that does not
    /// open or decode is [`GrantVaultError::Unreadable`].
    pub fn get_client(
        &self,
        server: &str,
        issuer: &str,
    ) -> Result<Option<ClientIdentity>, GrantVaultError> {
        let aad = client_aad(server, issuer)?;
        let Some(sealed) = self.store.get_client(server, issuer)? else {
            return Ok(None);
        };
        let unreadable = |reason: String| GrantVaultError::Unreadable {
            what: "client registration",
            row: format!("server {server:?} at {issuer:?}"),
            reason,
        };
        let json = self
            .key
            .open(&aad, &sealed)
            .map_err(|e| unreadable(opened_with(&self.key, &e)))?;
        ClientIdentity::from_json(&json)
            .map(Some)
            .map_err(|e: StoredFormError| unreadable(e.to_string()))
    }

    /// Removes the gateway's registrations for `server` (every issuer); how many.
    pub fn forget_clients(&self, server: &str) -> Result<usize, GrantVaultError> {
        Ok(self.store.remove_clients(server)?)
    }
}

/// The store's key of a grant, refusing NUL bytes (the separator of the associated data).
fn grant_key(principal: &str, server: &str, issuer: &str) -> Result<GrantKey, GrantVaultError> {
    for (what, part) in [
        ("principal", principal),
        ("server", server),
        ("issuer", issuer),
    ] {
        if part.contains('\0') {
            return Err(GrantVaultError::NulInKey(what));
        }
    }
    Ok(GrantKey {
        principal: principal.to_owned(),
        server: server.to_owned(),
        issuer: issuer.to_owned(),
    })
}

/// The associated data binding a grant's blob to its row.
pub fn grant_aad(key: &GrantKey) -> Vec<u8> {
    format!(
        "portcullis-grant\0{}\0{}\0{}",
        key.principal, key.server, key.issuer
    )
    .into_bytes()
}

/// The associated data binding a registration's blob to its row.
fn client_aad(server: &str, issuer: &str) -> Result<Vec<u8>, GrantVaultError> {
    if server.contains('\0') {
        return Err(GrantVaultError::NulInKey("server"));
    }
    if issuer.contains('\0') {
        return Err(GrantVaultError::NulInKey("issuer"));
    }
    Ok(format!("portcullis-client\0{server}\0{issuer}").into_bytes())
}

fn describe(key: &GrantKey) -> String {
    format!(
        "principal {:?} at server {:?} (issuer {:?})",
        key.principal, key.server, key.issuer
    )
}

/// An opening error, with the key's origin: "does not open with key file …" is what tells
/// an operator that the key changed.
fn opened_with(key: &VaultKey, e: &VaultError) -> String {
    format!("{e} (key: {})", key.origin())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn names_with_nul_cannot_key_a_grant() {
        assert!(matches!(
            grant_key("a\0b", "s", "i"),
            Err(GrantVaultError::NulInKey("principal"))
        ));
        assert!(matches!(
            client_aad("s", "i\0"),
            Err(GrantVaultError::NulInKey("issuer"))
        ));
        let key = grant_key("alice", "tickets", "https://as").unwrap();
        assert_eq!(
            grant_aad(&key),
            b"portcullis-grant\0alice\0tickets\0https://as"
        );
    }

    #[test]
    fn the_key_lives_beside_the_database() {
        let mut config = Config::quickstart();
        config.gateway.state = StateLocation::Sqlite(PathBuf::from("/var/lib/p/state.db"));
        assert_eq!(key_dir(&config), Path::new("/var/lib/p"));
        config.gateway.state = StateLocation::Sqlite(PathBuf::from("state.db"));
        assert_eq!(key_dir(&config), Path::new("."));
    }
}
