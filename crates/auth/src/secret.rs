//! Secret strings that never print.
//!
//! A [`Secret`] is how every credential travels inside Portcullis: client secrets, static
//! upstream tokens, issued access tokens. It exists so that a `{:?}` in a log line, an error
//! message or a panic can never show one: `Debug` and `Display` print `[redacted]`, and the
//! only way to the value is the explicit [`Secret::expose`]. The bytes are overwritten when
//! the secret is dropped, and equality is constant-time.
//!
//! Secrets come from the environment or from files, never from the configuration file
//! itself: a config file is read by many tools and often committed, a secret should be neither.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use http::HeaderValue;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// The largest secret file read (64 KiB): a token or key is far smaller, and a bound keeps a
/// misconfigured path (a log file, a device) from being read whole into memory.
pub const MAX_SECRET_FILE_BYTES: usize = 64 * 1024;

/// An owned secret string. `Debug` and `Display` print `[redacted]`; the bytes are zeroed on
/// drop; `==` takes time independent of where the values differ (it does reveal whether the
/// lengths differ).
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value already in memory.
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The secret value. Call it only where the value leaves the process (a header, a form
    /// field), never to log or format it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Reads the environment variable `name`. Unset, empty and non-UTF-8 values are errors
    /// that name the variable (and never carry a value): an empty credential is a mistake,
    /// not a credential.
    pub fn from_env(name: &str) -> Result<Self, SecretError> {
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(SecretError::InvalidEnvName {
                name: name.to_owned(),
            });
        }
        let value = std::env::var_os(name).ok_or_else(|| SecretError::EnvNotSet {
            name: name.to_owned(),
        })?;
        let value = value
            .into_string()
            .map_err(|_| SecretError::EnvNotUnicode {
                name: name.to_owned(),
            })?;
        if value.is_empty() {
            return Err(SecretError::EnvEmpty {
                name: name.to_owned(),
            });
        }
        Ok(Secret(value))
    }

    /// Reads a secret file (such as a Kubernetes or Docker secret): at most
    /// [`MAX_SECRET_FILE_BYTES`], UTF-8, with trailing newlines (`\n`, `\r\n`) removed, since
    /// editors and `echo` add one. An empty file is an error.
    ///
    /// File permissions are not enforced: secret mounts are often group-readable by design.
    /// A file that others may read is still accepted, and a `warn`-level log line (naming the
    /// file, not its content) says so; [`readable_by_others`] gives the same answer to a
    /// caller that wants to report it itself (`portcullis check`).
    pub fn from_file(path: &Path) -> Result<Self, SecretError> {
        let file_error = |e: std::io::Error| SecretError::FileRead {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        let file = std::fs::File::open(path).map_err(file_error)?;
        let meta = file.metadata().map_err(file_error)?;
        if !meta.is_file() {
            return Err(SecretError::NotAFile {
                path: path.to_owned(),
            });
        }
        if meta.len() > MAX_SECRET_FILE_BYTES as u64 {
            return Err(SecretError::FileTooLarge {
                path: path.to_owned(),
                limit: MAX_SECRET_FILE_BYTES,
            });
        }
        // Room for the whole bound up front, so the buffer never reallocates and leaves a
        // copy of the secret behind in freed memory; the buffer itself is wiped on drop.
        let mut buf = Zeroizing::new(Vec::with_capacity(MAX_SECRET_FILE_BYTES + 1));
        file.take(MAX_SECRET_FILE_BYTES as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(file_error)?;
        if buf.len() > MAX_SECRET_FILE_BYTES {
            return Err(SecretError::FileTooLarge {
                path: path.to_owned(),
                limit: MAX_SECRET_FILE_BYTES,
            });
        }
        let text = std::str::from_utf8(&buf).map_err(|_| SecretError::FileNotUtf8 {
            path: path.to_owned(),
        })?;
        let value = text.trim_end_matches(['\n', '\r']);
        if value.is_empty() {
            return Err(SecretError::FileEmpty {
                path: path.to_owned(),
            });
        }
        if readable_by_others(path) {
            tracing::warn!(
                path = %path.display(),
                "secret file is readable by group or others; consider mode 0600"
            );
        }
        Ok(Secret(value.to_owned()))
    }

    /// The secret as a header value, marked sensitive (HTTP/2 never indexes it in HPACK
    /// tables, and `http` prints it as `Sensitive`).
    pub fn header_value(&self) -> Result<HeaderValue, InvalidSecretHeader> {
        sensitive_header(&self.0)
    }

    /// `Bearer <secret>` as a header value, marked sensitive.
    pub fn bearer_header_value(&self) -> Result<HeaderValue, InvalidSecretHeader> {
        let mut text = Zeroizing::new(String::with_capacity(7 + self.0.len()));
        text.push_str("Bearer ");
        text.push_str(&self.0);
        sensitive_header(&text)
    }
}

fn sensitive_header(text: &str) -> Result<HeaderValue, InvalidSecretHeader> {
    let mut value = HeaderValue::from_str(text).map_err(|_| InvalidSecretHeader)?;
    value.set_sensitive(true);
    Ok(value)
}

/// Whether a file's mode lets its group or other users read it (always `false` off Unix, and
/// when the file cannot be inspected).
pub fn readable_by_others(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o044 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Why a secret could not be read. Names the variable or file, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("{name:?} is not a valid environment variable name")]
    InvalidEnvName { name: String },
    #[error("environment variable {name} is not set")]
    EnvNotSet { name: String },
    #[error("environment variable {name} is empty")]
    EnvEmpty { name: String },
    #[error("environment variable {name} is not valid UTF-8")]
    EnvNotUnicode { name: String },
    #[error("cannot read secret file {}: {reason}", path.display())]
    FileRead { path: PathBuf, reason: String },
    #[error("secret file {} is not a regular file", path.display())]
    NotAFile { path: PathBuf },
    #[error("secret file {} is larger than {limit} bytes", path.display())]
    FileTooLarge { path: PathBuf, limit: usize },
    #[error("secret file {} is not valid UTF-8", path.display())]
    FileNotUtf8 { path: PathBuf },
    #[error("secret file {} is empty", path.display())]
    FileEmpty { path: PathBuf },
}

/// A secret holds characters a header value cannot (control characters, non-ASCII). The
/// value is deliberately not part of the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the secret contains characters that are not allowed in an HTTP header value")]
pub struct InvalidSecretHeader;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const VALUE: &str = "hunter2-very-secret";

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new(VALUE.to_owned());
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some([redacted])");
        assert_eq!(s.expose(), VALUE);
    }

    #[test]
    fn equality_compares_values() {
        let a = Secret::new(VALUE.to_owned());
        assert_eq!(a, Secret::new(VALUE.to_owned()));
        assert_ne!(a, Secret::new("hunter2-very-secreT".to_owned()));
        assert_ne!(a, Secret::new("hunter2".to_owned()));
    }

    #[test]
    fn from_env_reads_the_variable() {
        // Tests cannot set variables (`set_var` is unsafe, and unsafe code is forbidden), so
        // read one every test process has.
        let expected = std::env::var("PATH").unwrap();
        assert_eq!(Secret::from_env("PATH").unwrap().expose(), expected);
    }

    #[test]
    fn a_missing_variable_is_named_in_the_error() {
        let name = "PORTCULLIS_TEST_SURELY_UNSET_9C1E";
        let err = Secret::from_env(name).unwrap_err();
        assert_eq!(
            err,
            SecretError::EnvNotSet {
                name: name.to_owned()
            }
        );
        assert!(err.to_string().contains(name));
    }

    #[test]
    fn invalid_variable_names_are_refused_without_panicking() {
        for name in ["", "A=B", "A\0B"] {
            assert!(matches!(
                Secret::from_env(name),
                Err(SecretError::InvalidEnvName { .. })
            ));
        }
    }

    #[test]
    fn from_file_trims_trailing_newlines_only() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        write!(f, "  {VALUE}\r\n\n").unwrap();
        let s = Secret::from_file(f.path()).unwrap();
        assert_eq!(s.expose(), format!("  {VALUE}"));
    }

    #[test]
    fn an_oversize_secret_file_is_refused_without_its_content() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&vec![b'a'; MAX_SECRET_FILE_BYTES + 1]).unwrap();
        let err = Secret::from_file(f.path()).unwrap_err();
        assert!(matches!(err, SecretError::FileTooLarge { .. }), "{err}");
        assert!(!err.to_string().contains("aaaa"));
        // Exactly at the bound is fine.
        let mut g = tempfile::NamedTempFile::new().unwrap();
        g.write_all(&vec![b'a'; MAX_SECRET_FILE_BYTES]).unwrap();
        assert_eq!(
            Secret::from_file(g.path()).unwrap().expose().len(),
            MAX_SECRET_FILE_BYTES
        );
    }

    #[test]
    fn empty_missing_and_directory_secret_files_are_errors_naming_the_path() {
        let empty = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(empty.path(), "\n").unwrap();
        let err = Secret::from_file(empty.path()).unwrap_err();
        assert!(matches!(err, SecretError::FileEmpty { .. }));
        assert!(
            err.to_string()
                .contains(&empty.path().display().to_string())
        );

        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = Secret::from_file(&missing).unwrap_err();
        assert!(matches!(err, SecretError::FileRead { .. }));
        assert!(err.to_string().contains("nope"));

        assert!(matches!(
            Secret::from_file(dir.path()),
            Err(SecretError::NotAFile { .. })
        ));
    }

    #[test]
    fn non_utf8_secret_files_are_refused() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), [0xff, 0xfe, b'a']).unwrap();
        assert!(matches!(
            Secret::from_file(f.path()),
            Err(SecretError::FileNotUtf8 { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn a_group_readable_secret_file_is_accepted_and_reported() {
        use std::os::unix::fs::PermissionsExt;
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), VALUE).unwrap();
        std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(!readable_by_others(f.path()));
        std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(readable_by_others(f.path()));
        assert_eq!(Secret::from_file(f.path()).unwrap().expose(), VALUE);
    }

    #[test]
    fn header_values_are_marked_sensitive() {
        let s = Secret::new(VALUE.to_owned());
        let h = s.header_value().unwrap();
        assert!(h.is_sensitive());
        assert_eq!(h.as_bytes(), VALUE.as_bytes());
        let b = s.bearer_header_value().unwrap();
        assert!(b.is_sensitive());
        assert_eq!(b.as_bytes(), format!("Bearer {VALUE}").as_bytes());
        assert!(!format!("{b:?}").contains(VALUE));
    }

    #[test]
    fn a_secret_with_a_newline_cannot_smuggle_a_header() {
        let s = Secret::new("tok\r\nX-Injected: 1".to_owned());
        assert_eq!(s.header_value(), Err(InvalidSecretHeader));
        assert_eq!(s.bearer_header_value(), Err(InvalidSecretHeader));
    }
}
