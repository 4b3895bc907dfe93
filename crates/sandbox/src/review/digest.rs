//! SHA-256 of the files a launch runs, remembered per file identity.
//!
//! A per-session server is launched once per session; rehashing a 100 MB `node` binary each
//! time would add a third of a second to every session. The digest is therefore cached
//! under the file's identity as the kernel reports it for the open file: device, inode,
//! size, modification and status-change times. Any write to the file changes its `ctime`,
//! which no unprivileged process can set back, and replacing it changes the inode — so a
//! tampered file is always hashed again. Timestamps are coarse (a clock tick), so a file
//! changed in the last [`RACY`] is never remembered: a write in the same tick as the hash
//! would otherwise leave the identity as it was.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::ReviewError;

/// Largest file hashed. An executable or script over this is not something a person
/// reviewed either.
pub const MAX_HASHED_BYTES: u64 = 4 << 30;

/// How recent a status change keeps a digest out of the cache.
const RACY: Duration = Duration::from_secs(2);

/// Most files remembered; the cache starts over when full (a gateway runs a handful).
const MAX_CACHED: usize = 1024;

/// What identifies one version of a file's contents, for the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    fn of(meta: &std::fs::Metadata) -> Identity {
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

fn cache() -> &'static Mutex<HashMap<PathBuf, (Identity, String)>> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, (Identity, String)>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

/// Lower-case hex SHA-256 of the regular file at `path`, from the cache when the open
/// file's identity is the one hashed before.
pub fn sha256_file(path: &Path) -> Result<String, ReviewError> {
    sha256_file_racy(path, RACY)
}

fn sha256_file_racy(path: &Path, racy: Duration) -> Result<String, ReviewError> {
    let io = |source| ReviewError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let before = file.metadata().map_err(io)?;
    if !before.is_file() {
        return Err(ReviewError::NotAFile(path.to_path_buf()));
    }
    if before.size() > MAX_HASHED_BYTES {
        return Err(ReviewError::TooLarge {
            path: path.to_path_buf(),
            size: before.size(),
            limit: MAX_HASHED_BYTES,
        });
    }
    let identity = Identity::of(&before);
    {
        let cached = cache().lock().unwrap_or_else(|p| p.into_inner());
        if let Some((id, digest)) = cached.get(path)
            && *id == identity
        {
            return Ok(digest.clone());
        }
    }
    let digest = hash(&mut file).map_err(io)?;
    // A file written while it was read is not remembered: the next launch hashes it again.
    let after = file.metadata().map_err(io)?;
    if Identity::of(&after) == identity && !changed_within(&identity, racy) {
        let mut cached = cache().lock().unwrap_or_else(|p| p.into_inner());
        if cached.len() >= MAX_CACHED {
            cached.clear();
        }
        cached.insert(path.to_path_buf(), (identity, digest.clone()));
    }
    Ok(digest)
}

/// Whether the file's status changed less than `racy` ago (or in the future).
fn changed_within(identity: &Identity, racy: Duration) -> bool {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let ctime = Duration::new(
        u64::try_from(identity.ctime.0).unwrap_or(0),
        u32::try_from(identity.ctime.1).unwrap_or(0),
    );
    now.checked_sub(ctime).is_none_or(|age| age < racy)
}

fn hash(file: &mut File) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut left = MAX_HASHED_BYTES;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        left = left.saturating_sub(n as u64);
        if left == 0 {
            return Err(std::io::Error::other(
                "the file grew past the hashing limit",
            ));
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_digest_is_sha256_of_the_contents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").expect("write");
        assert_eq!(
            sha256_file(&path).expect("hash"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    fn cached(path: &Path) -> bool {
        cache()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(path)
    }

    #[test]
    fn a_file_changed_in_place_is_hashed_again_even_at_the_same_size_and_mtime() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("server");
        std::fs::write(&path, b"trusted contents").expect("write");
        let first = sha256_file_racy(&path, Duration::ZERO).expect("hash");
        assert!(cached(&path));
        assert_eq!(
            sha256_file_racy(&path, Duration::ZERO).expect("cached"),
            first
        );
        // Past the timestamps' granularity (a clock tick), as a later attack would be.
        std::thread::sleep(Duration::from_millis(30));
        let mtime = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .expect("mtime");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        f.write_all(b"tampered content").expect("overwrite");
        // The tamperer puts the modification time back; the status-change time moves anyway.
        f.set_modified(mtime).expect("set mtime");
        drop(f);
        let second = sha256_file_racy(&path, Duration::ZERO).expect("rehash");
        assert_ne!(first, second);
        assert_eq!(second, hex(&Sha256::digest(b"tampered content")));
    }

    #[test]
    fn a_file_changed_just_now_is_not_remembered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fresh");
        std::fs::write(&path, b"x").expect("write");
        sha256_file(&path).expect("hash");
        assert!(
            !cached(&path),
            "a change in the last clock tick could go unseen"
        );
    }

    #[test]
    fn directories_are_not_hashed() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            sha256_file(dir.path()),
            Err(ReviewError::NotAFile(_))
        ));
        assert!(matches!(
            sha256_file(&dir.path().join("missing")),
            Err(ReviewError::Read { .. })
        ));
    }
}
