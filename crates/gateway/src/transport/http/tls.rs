//! TLS termination for `portcullis serve` (`gateway.tls`).
//!
//! rustls with the aws-lc-rs provider, TLS 1.3 and 1.2 only, ALPN `h2` and `http/1.1`.
//! Certificates are renewed by replacing files in place (certbot, cert-manager), so the
//! files are watched: every [`RELOAD_CHECK_INTERVAL`] their identity (inode, size, times) is
//! compared with what was loaded, and on a change the pair is loaded again and swapped in
//! for new connections. A pair that fails to load (a half-written file, a key of another
//! certificate) is logged and the previous certificate stays: a renewal gone wrong must not
//! take the gateway down, and it is retried as soon as either file changes again.
//!
//! Handshakes run in their own tasks, at most [`MAX_CONCURRENT_HANDSHAKES`] at a time, each
//! bounded by [`HANDSHAKE_TIMEOUT`]: a client that connects and says nothing holds neither
//! the accept loop nor memory for long.

use std::fmt;
use std::io::{self, Read as _};
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject as _};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{InconsistentKeys, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::TlsFiles;

/// Longest a TLS handshake may take, from accept to the last handshake message.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most handshakes in progress at once; further connections wait in the kernel's backlog.
pub const MAX_CONCURRENT_HANDSHAKES: usize = 256;
/// How often the certificate and key files are checked for a change.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// Largest certificate or key file read: a chain of a few certificates is a few KiB.
const MAX_PEM_BYTES: u64 = 1 << 20;
/// Finished handshakes waiting for the HTTP server to take them.
const READY_QUEUE: usize = 64;

/// Why a certificate and key pair cannot be used. Messages name the file and never hold
/// key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    /// The certificate file cannot be read or holds no usable certificate.
    #[error("certificate file {}: {reason}", path.display())]
    Certificate { path: PathBuf, reason: String },
    /// The key file cannot be read or holds no usable private key.
    #[error("private key file {}: {reason}", path.display())]
    PrivateKey { path: PathBuf, reason: String },
    /// The key is not the one of the certificate's public key.
    #[error(
        "private key file {} does not belong to the certificate in {}",
        key.display(),
        cert.display()
    )]
    Mismatch { cert: PathBuf, key: PathBuf },
}

/// The crypto provider of the front door: aws-lc-rs, as everywhere in the gateway.
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// Reads a file of at most [`MAX_PEM_BYTES`].
fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(format!("larger than {MAX_PEM_BYTES} bytes"));
    }
    Ok(bytes)
}

/// Loads the certificate chain and its private key, and checks that they belong together.
pub fn load_certified_key(files: &TlsFiles) -> Result<Arc<CertifiedKey>, TlsFileError> {
    let cert_error = |reason: String| TlsFileError::Certificate {
        path: files.cert.clone(),
        reason,
    };
    let key_error = |reason: &str| TlsFileError::PrivateKey {
        path: files.key.clone(),
        reason: reason.to_owned(),
    };
    let pem_bytes = read_bounded(&files.cert).map_err(cert_error)?;
    let chain = CertificateDer::pem_slice_iter(&pem_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(format!("not valid PEM: {e}")))?;
    if chain.is_empty() {
        return Err(cert_error(
            "no certificate in it (expected PEM blocks `BEGIN CERTIFICATE`)".to_owned(),
        ));
    }
    let key_bytes = read_bounded(&files.key).map_err(|e| key_error(&e))?;
    // The PEM parser's own messages may quote the file; of a key file, only the kind of
    // problem is told.
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => key_error(
            "no private key in it (expected PEM `BEGIN PRIVATE KEY`, `BEGIN RSA PRIVATE KEY` or `BEGIN EC PRIVATE KEY`)",
        ),
        _ => key_error("not valid PEM"),
    })?;
    let signing_key = provider().key_provider.load_private_key(key).map_err(|_| {
        key_error("not a private key this gateway can use (RSA, ECDSA P-256/P-384 or Ed25519)")
    })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // `Unknown`: the key type cannot tell its public key; rustls accepts that too.
        Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => {
            Ok(Arc::new(certified))
        }
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            Err(TlsFileError::Mismatch {
                cert: files.cert.clone(),
                key: files.key.clone(),
            })
        }
        Err(e) => Err(cert_error(format!(
            "the first certificate is not valid: {e}"
        ))),
    }
}

/// What identifies a file's content without reading it.
type FileId = (u64, u64, u64, i64, i64, i64, i64);

/// The identity of both files: a change in either means a renewal may have happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    cert: Option<FileId>,
    key: Option<FileId>,
}

impl FileStamp {
    fn of(files: &TlsFiles) -> FileStamp {
        // `metadata` follows symbolic links: a Kubernetes secret volume swaps a link.
        let id = |path: &Path| {
            std::fs::metadata(path).ok().map(|m| {
                (
                    m.dev(),
                    m.ino(),
                    m.size(),
                    m.mtime(),
                    m.mtime_nsec(),
                    m.ctime(),
                    m.ctime_nsec(),
                )
            })
        };
        FileStamp {
            cert: id(&files.cert),
            key: id(&files.key),
        }
    }
}

/// What a look at the files found.
#[derive(Debug)]
pub enum Reload {
    /// Neither file changed since the last look.
    Unchanged,
    /// A new pair was loaded; new connections get it.
    Reloaded,
    /// A file changed but the pair does not load; the previous certificate stays.
    Failed(TlsFileError),
}

/// The certificate new handshakes get, swapped atomically when the files change.
pub struct CertificateStore {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' identity at the last load attempt.
    seen: Mutex<FileStamp>,
}

/// The files only: a certified key's debug form would describe the private key.
impl fmt::Debug for CertificateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateStore")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl CertificateStore {
    /// Loads the pair; an error names the file at fault.
    pub fn load(files: TlsFiles) -> Result<CertificateStore, TlsFileError> {
        // Stamped before reading: a change made during the read is seen at the next look.
        let stamp = FileStamp::of(&files);
        let key = load_certified_key(&files)?;
        Ok(CertificateStore {
            files,
            current: RwLock::new(key),
            seen: Mutex::new(stamp),
        })
    }

    /// The certificate chain and key handshakes use now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Loads the pair again if either file changed since the last attempt (blocking I/O:
    /// call it off the async workers).
    pub fn reload_if_changed(&self) -> Reload {
        let stamp = FileStamp::of(&self.files);
        {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if *seen == stamp {
                return Reload::Unchanged;
            }
            *seen = stamp;
        }
        match load_certified_key(&self.files) {
            Ok(key) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = key;
                Reload::Reloaded
            }
            Err(e) => Reload::Failed(e),
        }
    }
}

impl ResolvesServerCert for CertificateStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The rustls server configuration: TLS 1.3 and 1.2, ALPN `h2` then `http/1.1`, the
/// certificate from `store`.
pub fn server_config(store: Arc<CertificateStore>) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(store);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Checks the files every [`RELOAD_CHECK_INTERVAL`] and logs what changed.
async fn watch(store: Arc<CertificateStore>) {
    let mut ticks = tokio::time::interval(RELOAD_CHECK_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.reload_if_changed()).await {
            Ok(Reload::Unchanged) => {}
            Ok(Reload::Reloaded) => tracing::info!(
                cert = %store.files.cert.display(),
                key = %store.files.key.display(),
                "TLS certificate reloaded"
            ),
            Ok(Reload::Failed(e)) => tracing::error!(
                "cannot reload the TLS certificate, still serving the previous one: {e}"
            ),
            Err(e) => tracing::error!("TLS certificate reload check failed: {e}"),
        }
    }
}

/// A listener that hands out connections whose TLS handshake is complete, for
/// `axum::serve`. Dropping it stops accepting and watching the files.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl TlsListener {
    /// Starts accepting on `tcp` with the certificate of `store`, and watching its files.
    pub fn new(tcp: TcpListener, store: Arc<CertificateStore>) -> io::Result<TlsListener> {
        let local_addr = tcp.local_addr()?;
        let config = server_config(store.clone()).map_err(io::Error::other)?;
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        let tasks = vec![
            tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), tx)),
            tokio::spawn(watch(store)),
        ];
        Ok(TlsListener {
            ready,
            local_addr,
            tasks,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

/// Accepts TCP connections and runs each handshake in its own bounded task.
async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONCURRENT_HANDSHAKES));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                accept_error(e).await;
                continue;
            }
        };
        if ready.is_closed() {
            return;
        }
        // No Nagle: SSE answers are written event by event (see `serve`).
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
            drop(slot);
            match handshake {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// As axum's own accept loop: a connection that died before it was accepted is skipped;
/// anything else (out of file descriptors) is logged and retried after a second.
async fn accept_error(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!("accept error: {e}");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = include_str!("../../config/tests/tls/test-only-cert.pem");
    const KEY: &str = include_str!("../../config/tests/tls/test-only-key.pem");

    fn files_in(dir: &Path) -> TlsFiles {
        let files = TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&files.cert, CERT).unwrap();
        std::fs::write(&files.key, KEY).unwrap();
        files
    }

    #[test]
    fn an_oversized_certificate_file_is_refused_without_parsing_it() {
        let dir = tempfile::tempdir().unwrap();
        let files = files_in(dir.path());
        let huge = CERT.repeat((MAX_PEM_BYTES as usize / CERT.len()) + 1);
        std::fs::write(&files.cert, huge).unwrap();
        let err = load_certified_key(&files).unwrap_err().to_string();
        assert!(err.contains("larger than"), "{err}");
    }

    #[test]
    fn a_failed_reload_keeps_the_certificate_and_a_fixed_one_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let files = files_in(dir.path());
        let store = CertificateStore::load(files.clone()).unwrap();
        let first = store.current();
        assert!(matches!(store.reload_if_changed(), Reload::Unchanged));

        std::fs::write(&files.key, "-----BEGIN PRIVATE KEY-----\nAAAA\n").unwrap();
        let Reload::Failed(e) = store.reload_if_changed() else {
            panic!("a broken key must fail the reload");
        };
        assert!(matches!(e, TlsFileError::PrivateKey { .. }), "{e}");
        assert!(!e.to_string().contains("AAAA"), "key file content in {e}");
        assert!(Arc::ptr_eq(&store.current(), &first));
        // Tried once per change, not at every look.
        assert!(matches!(store.reload_if_changed(), Reload::Unchanged));

        std::fs::write(&files.key, KEY).unwrap();
        assert!(matches!(store.reload_if_changed(), Reload::Reloaded));
        assert!(!Arc::ptr_eq(&store.current(), &first));
        assert_eq!(store.current().cert, first.cert);
    }

    #[test]
    fn the_store_s_debug_form_names_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = CertificateStore::load(files_in(dir.path())).unwrap();
        let shown = format!("{store:?}");
        assert!(
            shown.contains("key.pem") && !shown.contains("current"),
            "{shown}"
        );
    }
}
