//! Encryption at rest of what the gateway keeps for users: OAuth grants and client
//! registrations, sealed before they reach the state store.
//!
//! A database file gets copied, backed up and read by tools that never see the gateway's
//! environment; the tokens in it would let anyone holding a copy act as the user at the
//! remote server. So every grant is sealed with AES-256-GCM under a [`VaultKey`] that lives
//! elsewhere: the environment variable [`VAULT_KEY_ENV`] (base64 of 32 bytes), or else a
//! file `vault.key` of 32 random bytes next to the database, created on first use with mode
//! 0600. A copy of the database alone opens nothing.
//!
//! A sealed value is `1 || nonce (12 random bytes) || ciphertext || tag (16 bytes)`. The
//! caller passes *associated data* naming where the value is stored (its row), so a value
//! copied to another row fails to open instead of handing one user's tokens to another.

use std::ffi::OsString;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use zeroize::Zeroizing;

/// The environment variable holding the key (base64 of 32 bytes); it wins over the file.
pub const VAULT_KEY_ENV: &str = "PORTCULLIS_VAULT_KEY";

/// The key file's name, in the directory of the state database.
pub const VAULT_KEY_FILE: &str = "vault.key";

/// Length of a key: AES-256.
pub const KEY_BYTES: usize = 32;

/// The first byte of every sealed value: the format (AES-256-GCM, 12-byte random nonce).
const FORMAT_V1: u8 = 1;

const TAG_BYTES: usize = 16;

/// The shortest sealed value: version, nonce and tag around an empty plaintext.
const MIN_SEALED_BYTES: usize = 1 + NONCE_LEN + TAG_BYTES;

/// Where a key came from, for messages (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// The named environment variable.
    Env(String),
    /// This key file.
    File(PathBuf),
    /// Handed over in memory ([`VaultKey::from_bytes`]).
    Memory,
}

impl fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyOrigin::Env(name) => write!(f, "environment variable {name}"),
            KeyOrigin::File(path) => write!(f, "key file {}", path.display()),
            KeyOrigin::Memory => f.write_str("a key in memory"),
        }
    }
}

/// The key grants are sealed with: 32 bytes, wiped on drop, never printed.
pub struct VaultKey {
    bytes: Zeroizing<[u8; KEY_BYTES]>,
    origin: KeyOrigin,
}

impl fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultKey")
            .field("origin", &self.origin)
            .field("bytes", &"[redacted]")
            .finish()
    }
}

/// Why a key could not be had, or a value not sealed or opened. Names variables and files,
/// never a key, a plaintext or a sealed value.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("environment variable {var} is set but empty")]
    EnvEmpty { var: String },
    #[error("environment variable {var} is not valid UTF-8")]
    EnvNotUnicode { var: String },
    #[error(
        "environment variable {var} is not base64 (it holds 32 random bytes in base64: `head -c 32 /dev/urandom | base64`)"
    )]
    EnvNotBase64 { var: String },
    #[error("environment variable {var} holds {len} bytes once decoded, not {KEY_BYTES}")]
    EnvWrongLength { var: String, len: usize },
    #[error("cannot {op} vault key file {}: {source}", path.display())]
    KeyFile {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("vault key file {} is not a regular file", path.display())]
    KeyFileNotAFile { path: PathBuf },
    #[error(
        "vault key file {} is open to group or others (mode {mode:04o}); run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    KeyFileExposed { path: PathBuf, mode: u32 },
    #[error(
        "vault key file {} holds {len} bytes, not {KEY_BYTES} (it holds raw random bytes, not text)",
        path.display()
    )]
    KeyFileWrongLength { path: PathBuf, len: u64 },
    #[error("the system random number generator failed")]
    Random,
    #[error("AES-256-GCM refused the operation")]
    Cipher,
    #[error("the sealed value is truncated")]
    Truncated,
    #[error("the sealed value has format {0}, which this build does not know")]
    UnknownVersion(u8),
    #[error(
        "the sealed value does not open: it was sealed with another key, belongs to another row, or was altered"
    )]
    Unauthentic,
}

impl VaultKey {
    /// A key held in memory (tests, and callers with their own key management).
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        VaultKey {
            bytes: Zeroizing::new(bytes),
            origin: KeyOrigin::Memory,
        }
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self, VaultError> {
        let mut bytes = Zeroizing::new([0u8; KEY_BYTES]);
        aws_lc_rs::rand::fill(bytes.as_mut()).map_err(|_| VaultError::Random)?;
        Ok(VaultKey {
            bytes,
            origin: KeyOrigin::Memory,
        })
    }

    /// Where the key came from.
    pub fn origin(&self) -> &KeyOrigin {
        &self.origin
    }

    /// The key in `env_var` (base64 of 32 bytes) if that is set, else the file
    /// `<dir>/vault.key`, created (with `dir`, mode 0700, if missing) on first use. Two
    /// processes starting at once end up with the same key: the file appears whole or not at
    /// all (written aside, then hard-linked into place, which fails if it exists), and the
    /// one that loses reads the winner's.
    ///
    /// Refused: a variable that is set but empty or not 32 bytes of base64; a file that
    /// group or others may read or write (someone able to replace the key would read every
    /// grant sealed after), that is not a regular file, or not exactly 32 bytes.
    pub fn from_env_or_file(env_var: &str, dir: &Path) -> Result<Self, VaultError> {
        if let Some(key) = Self::from_env(env_var, std::env::var_os(env_var))? {
            return Ok(key);
        }
        Self::from_file_or_create(&dir.join(VAULT_KEY_FILE))
    }

    /// As [`from_env_or_file`](VaultKey::from_env_or_file), but never creates the file:
    /// `None` when neither the variable nor the file exists (a reader such as `portcullis
    /// connections list` has nothing to open then, and must not mint a key nobody uses).
    pub fn from_env_or_existing_file(
        env_var: &str,
        dir: &Path,
    ) -> Result<Option<Self>, VaultError> {
        if let Some(key) = Self::from_env(env_var, std::env::var_os(env_var))? {
            return Ok(Some(key));
        }
        match Self::read_file(&dir.join(VAULT_KEY_FILE)) {
            Ok(key) => Ok(Some(key)),
            Err(VaultError::KeyFile { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The key of the variable `var` whose value is `value` (`None`: unset).
    fn from_env(var: &str, value: Option<OsString>) -> Result<Option<Self>, VaultError> {
        let Some(value) = value else {
            return Ok(None);
        };
        let value = Zeroizing::new(value.into_string().map_err(|_| VaultError::EnvNotUnicode {
            var: var.to_owned(),
        })?);
        let text = value.trim();
        if text.is_empty() {
            return Err(VaultError::EnvEmpty {
                var: var.to_owned(),
            });
        }
        let mut decoded = Zeroizing::new(Vec::with_capacity(text.len()));
        // The decoder's message names the offending character: a piece of the key.
        base64::engine::general_purpose::STANDARD
            .decode_vec(text, &mut decoded)
            .map_err(|_| VaultError::EnvNotBase64 {
                var: var.to_owned(),
            })?;
        let bytes: [u8; KEY_BYTES] =
            decoded
                .as_slice()
                .try_into()
                .map_err(|_| VaultError::EnvWrongLength {
                    var: var.to_owned(),
                    len: decoded.len(),
                })?;
        Ok(Some(VaultKey {
            bytes: Zeroizing::new(bytes),
            origin: KeyOrigin::Env(var.to_owned()),
        }))
    }

    /// Reads the key file at `path`, creating it first when there is none.
    fn from_file_or_create(path: &Path) -> Result<Self, VaultError> {
        match Self::read_file(path) {
            Err(VaultError::KeyFile { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            other => return other,
        }
        match create_file(path)? {
            Some(key) => Ok(key),
            // Another process created it first: its key is the key.
            None => Self::read_file(path),
        }
    }

    /// Reads and checks an existing key file.
    fn read_file(path: &Path) -> Result<Self, VaultError> {
        let io = |op| {
            move |source| VaultError::KeyFile {
                op,
                path: path.to_owned(),
                source,
            }
        };
        let file = std::fs::File::open(path).map_err(io("open"))?;
        let meta = file.metadata().map_err(io("inspect"))?;
        if !meta.is_file() {
            return Err(VaultError::KeyFileNotAFile {
                path: path.to_owned(),
            });
        }
        check_private(path, &meta)?;
        let mut buf = Zeroizing::new(Vec::with_capacity(KEY_BYTES + 1));
        file.take(KEY_BYTES as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(io("read"))?;
        let bytes: [u8; KEY_BYTES] =
            buf.as_slice()
                .try_into()
                .map_err(|_| VaultError::KeyFileWrongLength {
                    path: path.to_owned(),
                    len: meta.len(),
                })?;
        Ok(VaultKey {
            bytes: Zeroizing::new(bytes),
            origin: KeyOrigin::File(path.to_owned()),
        })
    }

    /// Seals `plaintext` for the place `aad` names: `1 || nonce || ciphertext || tag`, with a
    /// fresh random nonce each time (so sealing the same value twice gives different bytes).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| VaultError::Random)?;
        // Exactly the room needed: the plaintext copied in is encrypted in place, and no
        // reallocation leaves a copy of it behind.
        let mut out = Vec::with_capacity(MIN_SEALED_BYTES + plaintext.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = self
            .cipher()?
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut out[1 + NONCE_LEN..],
            )
            .map_err(|_| VaultError::Cipher)?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Opens a value [`seal`](VaultKey::seal)ed with this key for the same `aad`. Anything
    /// else (another key, another `aad`, a changed byte, a cut value, an unknown format) is
    /// an error, never a panic and never a partial plaintext.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        match sealed.first() {
            None => return Err(VaultError::Truncated),
            Some(&FORMAT_V1) => {}
            Some(&other) => return Err(VaultError::UnknownVersion(other)),
        }
        if sealed.len() < MIN_SEALED_BYTES {
            return Err(VaultError::Truncated);
        }
        let (nonce, body) = sealed[1..].split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| VaultError::Truncated)?;
        let mut buf = Zeroizing::new(body.to_vec());
        let plain = self
            .cipher()?
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| VaultError::Unauthentic)?
            .len();
        buf.truncate(plain);
        Ok(buf)
    }

    fn cipher(&self) -> Result<LessSafeKey, VaultError> {
        UnboundKey::new(&AES_256_GCM, self.bytes.as_ref())
            .map(LessSafeKey::new)
            .map_err(|_| VaultError::Cipher)
    }
}

/// Refuses a key file that group or others may read or write.
#[cfg(unix)]
fn check_private(path: &Path, meta: &std::fs::Metadata) -> Result<(), VaultError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(VaultError::KeyFileExposed {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path, _: &std::fs::Metadata) -> Result<(), VaultError> {
    Ok(())
}

/// Creates the key file with a new key: written whole to a private file beside it (O_EXCL,
/// 0600, synced), then hard-linked to `path`, which fails when `path` exists. `None` when
/// another process got there first.
#[cfg(unix)]
fn create_file(path: &Path) -> Result<Option<VaultKey>, VaultError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let io = |op, at: &Path| {
        let at = at.to_owned();
        move |source| VaultError::KeyFile {
            op,
            path: at,
            source,
        }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("create the directory of", path))?;
    let key = VaultKey::generate()?;
    let mut suffix = [0u8; 8];
    aws_lc_rs::rand::fill(&mut suffix).map_err(|_| VaultError::Random)?;
    let aside = dir.join(format!(
        ".{VAULT_KEY_FILE}.{}.{:016x}",
        std::process::id(),
        u64::from_le_bytes(suffix)
    ));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&aside)
        .and_then(|mut file| {
            file.write_all(key.bytes.as_ref())?;
            file.sync_all()
        });
    let linked = written.map_err(io("write", &aside)).and_then(|()| {
        match std::fs::hard_link(&aside, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io("create", path)(e)),
        }
    });
    // The name beside it goes whatever happened; the key stays under `path` alone.
    let _ = std::fs::remove_file(&aside);
    if !linked? {
        return Ok(None);
    }
    // The new name survives a crash only once the directory is synced.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(Some(VaultKey {
        origin: KeyOrigin::File(path.to_owned()),
        ..key
    }))
}

#[cfg(not(unix))]
fn create_file(path: &Path) -> Result<Option<VaultKey>, VaultError> {
    let key = VaultKey::generate()?;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(mut file) => {
            file.write_all(key.bytes.as_ref())
                .and_then(|()| file.sync_all())
                .map_err(|source| VaultError::KeyFile {
                    op: "write",
                    path: path.to_owned(),
                    source,
                })?;
            Ok(Some(VaultKey {
                origin: KeyOrigin::File(path.to_owned()),
                ..key
            }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
        Err(source) => Err(VaultError::KeyFile {
            op: "create",
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VAR: &str = "PORTCULLIS_TEST_VAULT_KEY";

    #[test]
    fn a_key_in_the_variable_is_used_and_the_file_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = [7u8; KEY_BYTES];
        let value = base64::engine::general_purpose::STANDARD.encode(bytes);
        let key = VaultKey::from_env(VAR, Some(format!("{value}\n").into()))
            .unwrap()
            .unwrap();
        assert_eq!(key.origin(), &KeyOrigin::Env(VAR.to_owned()));
        let sealed = key.seal(b"row", b"token").unwrap();
        let same = VaultKey::from_bytes(bytes);
        assert_eq!(&*same.open(b"row", &sealed).unwrap(), b"token");
        assert!(!dir.path().join(VAULT_KEY_FILE).exists());
        assert!(VaultKey::from_env(VAR, None).unwrap().is_none(), "unset");
    }

    #[test]
    fn a_bad_variable_is_refused_without_quoting_it() {
        let refused = |value: &str| VaultKey::from_env(VAR, Some(value.into())).unwrap_err();
        let errors = [
            refused("   "),
            refused("not-base64-s3cr3t!"),
            refused("c2VjcmV0LXNob3J0"),
        ];
        assert!(matches!(errors[0], VaultError::EnvEmpty { .. }));
        assert!(matches!(errors[1], VaultError::EnvNotBase64 { .. }));
        assert!(matches!(
            errors[2],
            VaultError::EnvWrongLength { len: 12, .. }
        ));
        for error in errors {
            let text = error.to_string();
            assert!(text.contains(VAR), "{text}");
            assert!(!text.contains("s3cr3t") && !text.contains("c2Vj"), "{text}");
        }
    }

    #[test]
    fn debug_shows_where_the_key_came_from_and_not_the_key() {
        let key = VaultKey::from_bytes([0xab; KEY_BYTES]);
        let shown = format!("{key:?}");
        assert!(
            shown.contains("[redacted]") && shown.contains("Memory"),
            "{shown}"
        );
        assert!(!shown.contains("171") && !shown.to_lowercase().contains("abab"));
    }
}
