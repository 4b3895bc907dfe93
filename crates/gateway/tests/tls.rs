//! TLS termination (`gateway.tls`) on the real `portcullis serve`: MCP over https with
//! HTTP/2 and HTTP/1.1, TLS 1.2 and 1.3 only, the handshake timeout, certificate files
//! replaced on disk without a restart (and a broken replacement that keeps the old
//! certificate), and config errors that name the line.

#![allow(clippy::unwrap_used)] // test helpers: a failure there is a failed test

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A test certificate authority and the leaf certificates it signs for 127.0.0.1.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate: the files' contents and the DER a client sees.
struct Leaf {
    fullchain_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Pki { ca }
    }

    fn leaf(&self) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &self.ca)
            .unwrap();
        Leaf {
            fullchain_pem: format!("{}{}", cert.pem(), self.ca.pem()),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        roots
    }

    fn reqwest_ca(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(self.ca.pem().as_bytes()).unwrap()
    }
}

/// The certificate files of a test, in their own directory.
struct CertFiles {
    dir: tempfile::TempDir,
}

impl CertFiles {
    fn new(leaf: &Leaf) -> CertFiles {
        let files = CertFiles {
            dir: tempfile::tempdir().unwrap(),
        };
        files.write(leaf);
        files
    }
    fn cert(&self) -> PathBuf {
        self.dir.path().join("fullchain.pem")
    }
    fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }
    /// Replaces both files the way renewal tools do: write aside, rename into place.
    fn write(&self, leaf: &Leaf) {
        replace(&self.cert(), &leaf.fullchain_pem);
        replace(&self.key(), &leaf.key_pem);
    }
}

fn replace(path: &Path, contents: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn config(files: &CertFiles) -> String {
    format!(
        "[gateway]\ntls = {{ cert = \"{}\", key = \"{}\" }}\n\n{}\n[[rules]]\nserver = \"fx\"\ntools = [\"*\"]\neffect = \"allow\"\n",
        files.cert().display(),
        files.key().display(),
        support::fixture_stdio_server("fx"),
    )
}

/// `127.0.0.1:PORT` of a gateway whose base is `https://127.0.0.1:PORT`.
fn socket_addr(gw: &support::Gateway) -> String {
    gw.base
        .strip_prefix("https://")
        .unwrap_or_else(|| panic!("not an https listener: {}", gw.base))
        .to_owned()
}

/// What a TLS client saw of a handshake.
struct Handshake {
    version: rustls::ProtocolVersion,
    alpn: Option<Vec<u8>>,
    leaf: CertificateDer<'static>,
}

/// A rustls client handshake offering `versions` and ALPN h2, http/1.1.
async fn handshake(
    addr: &str,
    roots: RootCertStore,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<Handshake, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("127.0.0.1").map_err(|e| e.to_string())?;
    let tls = tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
        .await
        .map_err(|_| "handshake timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let (_, conn) = tls.get_ref();
    Ok(Handshake {
        version: conn.protocol_version().ok_or("no version")?,
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        leaf: conn
            .peer_certificates()
            .and_then(|c| c.first().cloned())
            .ok_or("no certificate")?,
    })
}

async fn served_leaf(addr: &str, pki: &Pki) -> CertificateDer<'static> {
    handshake(addr, pki.roots(), rustls::ALL_VERSIONS)
        .await
        .unwrap_or_else(|e| panic!("handshake failed: {e}"))
        .leaf
}

/// Polls handshakes until the served certificate is `want` (bounded).
async fn wait_for_leaf(addr: &str, pki: &Pki, want: &CertificateDer<'static>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if &served_leaf(addr, pki).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

fn https_client(pki: &Pki, http1_only: bool) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .tls_certs_only([pki.reqwest_ca()]);
    let builder = if http1_only {
        builder.http1_only()
    } else {
        builder
    };
    builder.build().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn mcp_initialize_and_tools_list_work_over_https_with_h2_and_http1() {
    let pki = Pki::new();
    let files = CertFiles::new(&pki.leaf());
    let gw = support::Gateway::start(&config(&files));
    assert!(gw.base.starts_with("https://127.0.0.1:"), "{}", gw.base);

    for http1_only in [false, true] {
        let client = https_client(&pki, http1_only);
        let health = client
            .get(format!("{}/healthz", gw.base))
            .send()
            .await
            .unwrap();
        let want = if http1_only {
            reqwest::Version::HTTP_11
        } else {
            reqwest::Version::HTTP_2
        };
        assert_eq!(health.version(), want, "ALPN should pick {want:?}");
        let mut mcp = support::RawHttp {
            client,
            url: gw.url("fx"),
            session: None,
            version: None,
        };
        let init = mcp.initialize(json!({})).await;
        assert!(init["serverInfo"].is_object(), "{init}");
        let list = mcp.request(1, "tools/list", json!({})).await;
        let tools = list["result"]["tools"].as_array().expect("tools");
        assert!(!tools.is_empty(), "{list}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_1_2_and_1_3_clients_are_served() {
    let pki = Pki::new();
    let leaf = pki.leaf();
    let files = CertFiles::new(&leaf);
    let gw = support::Gateway::start(&config(&files));
    let addr = socket_addr(&gw);
    for (version, want) in [
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
    ] {
        let h = handshake(&addr, pki.roots(), &[version]).await.unwrap();
        assert_eq!(h.version, want);
        assert_eq!(h.alpn.as_deref(), Some(&b"h2"[..]));
        assert_eq!(h.leaf, leaf.der);
    }
}

/// A ClientHello at legacy version 3.2 (TLS 1.1), with no `supported_versions` extension.
/// `tls12_extensions` adds what a TLS 1.2 client would send besides (signature algorithms,
/// groups), so that only the version is wrong.
fn tls_1_1_client_hello(tls12_extensions: bool) -> Vec<u8> {
    let mut body = vec![0x03, 0x02];
    body.extend([0x42; 32]); // random
    body.push(0); // no session id
    body.extend([0x00, 0x06, 0xc0, 0x2b, 0xc0, 0x2f, 0xc0, 0x13]);
    body.extend([0x01, 0x00]); // null compression
    if tls12_extensions {
        let extensions: [u8; 20] = [
            0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, // sigalgs
            0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x1d, // groups: x25519
        ];
        body.extend((extensions.len() as u16).to_be_bytes());
        body.extend(extensions);
    }
    let mut handshake = vec![0x01, 0x00, 0x00, body.len() as u8];
    handshake.extend(body);
    let mut record = vec![0x16, 0x03, 0x01, 0x00, handshake.len() as u8];
    record.extend(handshake);
    record
}

/// Writes `bytes`, then reads until the server closes (bounded).
async fn exchange(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(bytes).await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), tcp.read_to_end(&mut got)).await;
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_1_1_client_is_refused_with_a_fatal_alert() {
    let pki = Pki::new();
    let files = CertFiles::new(&pki.leaf());
    let gw = support::Gateway::start(&config(&files));
    let addr = socket_addr(&gw);
    // One alert record and nothing else (no ServerHello): fatal (2), and with everything a
    // TLS 1.2 client sends except the version, protocol_version (70); a bare TLS 1.1 hello
    // fails earlier, on its missing signature algorithms: handshake_failure (40).
    for (tls12_extensions, alert) in [(true, 70u8), (false, 40)] {
        let reply = exchange(&addr, &tls_1_1_client_hello(tls12_extensions)).await;
        assert_eq!(reply.len(), 7, "one alert record only: {reply:?}");
        assert_eq!(reply[0], 21, "not an alert: {reply:?}");
        assert_eq!(&reply[5..7], &[2u8, alert], "{reply:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_to_the_tls_port_gets_no_http_answer() {
    let pki = Pki::new();
    let files = CertFiles::new(&pki.leaf());
    let gw = support::Gateway::start(&config(&files));
    let addr = socket_addr(&gw);
    let reply = exchange(
        &addr,
        format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(
        !reply.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&reply)
    );
    assert!(!String::from_utf8_lossy(&reply).contains("ok"));
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = plain.get(format!("http://{addr}/healthz")).send().await;
    assert!(r.is_err(), "plain http got an answer: {r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_says_hello_is_dropped_after_the_handshake_timeout() {
    let pki = Pki::new();
    let files = CertFiles::new(&pki.leaf());
    let gw = support::Gateway::start(&config(&files));
    let mut tcp = TcpStream::connect(socket_addr(&gw)).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(20), tcp.read(&mut buf)).await;
    let waited = started.elapsed();
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the connection should be closed, got {read:?}"
    );
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(15),
        "closed after {waited:?}, the handshake timeout is 10 s"
    );
    // The listener still serves others.
    served_leaf(&socket_addr(&gw), &pki).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replaced_certificate_files_are_served_to_new_connections_without_restart() {
    let pki = Pki::new();
    let (first, second) = (pki.leaf(), pki.leaf());
    let files = CertFiles::new(&first);
    let gw = support::Gateway::start(&config(&files));
    let addr = socket_addr(&gw);
    assert_eq!(served_leaf(&addr, &pki).await, first.der);
    let pid = gw.proc.child.id();

    files.write(&second);
    assert!(
        wait_for_leaf(&addr, &pki, &second.der).await,
        "the new certificate was not served; stderr:\n{}",
        gw.proc.stderr()
    );
    assert_eq!(gw.proc.child.id(), pid);
    // Log lines are flushed every 100 ms.
    assert!(support::wait_until(Duration::from_secs(5), || gw
        .proc
        .stderr()
        .contains("TLS certificate reloaded")));
    // MCP still works on the new certificate.
    let mut mcp = support::RawHttp {
        client: https_client(&pki, false),
        url: gw.url("fx"),
        session: None,
        version: None,
    };
    mcp.initialize(json!({})).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_replacement_keeps_the_old_certificate_until_a_good_one_arrives() {
    let pki = Pki::new();
    let (first, second) = (pki.leaf(), pki.leaf());
    let files = CertFiles::new(&first);
    let gw = support::Gateway::start(&config(&files));
    let addr = socket_addr(&gw);

    // Garbage in the certificate file.
    replace(
        &files.cert(),
        "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n",
    );
    assert!(
        support::wait_until(Duration::from_secs(20), || gw
            .proc
            .stderr()
            .contains("cannot reload the TLS certificate")),
        "no reload error logged; stderr:\n{}",
        gw.proc.stderr()
    );
    assert_eq!(served_leaf(&addr, &pki).await, first.der);

    // A new certificate with the old key: a pair that does not match.
    replace(&files.cert(), &second.fullchain_pem);
    assert!(
        support::wait_until(Duration::from_secs(20), || gw
            .proc
            .stderr()
            .contains("does not belong to the certificate")),
        "no mismatch logged; stderr:\n{}",
        gw.proc.stderr()
    );
    assert_eq!(served_leaf(&addr, &pki).await, first.der);
    assert!(
        !gw.proc.stderr().contains("PRIVATE KEY-----\n"),
        "key material in the log"
    );

    // The matching key completes the renewal.
    replace(&files.key(), &second.key_pem);
    assert!(wait_for_leaf(&addr, &pki, &second.der).await);
}

/// Runs `portcullis <args> --config F` on `text` written to `dir/portcullis.toml`.
fn run(dir: &Path, text: &str, args: &[&str]) -> (Option<i32>, String, String, String) {
    let path = dir.join("portcullis.toml");
    std::fs::write(&path, text).unwrap();
    let mut cmd = Command::new(support::portcullis_bin());
    support::isolate_state(&mut cmd);
    cmd.args(args).arg("--config").arg(&path);
    let (code, out, err) = support::run_code_with_timeout(cmd, Duration::from_secs(30));
    (code, out, err, path.display().to_string())
}

/// `line:col` (1-based) of the first occurrence of `needle` in `text`.
fn position(text: &str, needle: &str) -> String {
    let at = text.find(needle).unwrap();
    let line = text[..at].matches('\n').count() + 1;
    let col = at - text[..at].rfind('\n').map_or(0, |n| n + 1) + 1;
    format!("{line}:{col}")
}

#[test]
fn check_reports_tls_and_reads_paths_relative_to_the_config_file() {
    let pki = Pki::new();
    let leaf = pki.leaf();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("tls")).unwrap();
    std::fs::write(dir.path().join("tls/fullchain.pem"), &leaf.fullchain_pem).unwrap();
    std::fs::write(dir.path().join("tls/key.pem"), &leaf.key_pem).unwrap();
    let text = "[gateway]\ntls = { cert = \"tls/fullchain.pem\", key = \"tls/key.pem\" }\n";
    let (code, out, err, _) = run(dir.path(), text, &["check"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("TLS: on"), "{out}");
    assert!(out.contains("tls/fullchain.pem"), "{out}");
    assert!(out.contains("Behind a proxy: no"), "{out}");
}

#[test]
fn an_unreadable_certificate_file_is_an_error_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[gateway]\nlisten = \"127.0.0.1:8440\"\ntls = { cert = \"missing.pem\", key = \"key.pem\" }\n";
    let (code, _, err, path) = run(dir.path(), text, &["check"]);
    assert_eq!(code, Some(2), "{err}");
    let at = position(text, "\"missing.pem\"");
    assert!(err.contains(&format!("{path}:{at}:")), "{err}");
    assert!(
        err.contains("missing.pem") && err.contains("cannot read"),
        "{err}"
    );
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_an_error_naming_its_line() {
    let pki = Pki::new();
    let (leaf, other) = (pki.leaf(), pki.leaf());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), &leaf.fullchain_pem).unwrap();
    std::fs::write(dir.path().join("other.pem"), &other.key_pem).unwrap();
    let text = "[gateway]\ntls = { cert = \"cert.pem\", key = \"other.pem\" }\n";
    let (code, _, err, path) = run(dir.path(), text, &["check"]);
    assert_eq!(code, Some(2), "{err}");
    let at = position(text, "\"other.pem\"");
    assert!(err.contains(&format!("{path}:{at}:")), "{err}");
    assert!(err.contains("does not belong to the certificate"), "{err}");
    assert!(!err.contains("BEGIN"), "key material in the error: {err}");
    // `serve` refuses to start on it too, naming the file.
    let (code, _, err, _) = run(dir.path(), text, &["serve", "--listen", "127.0.0.1:0"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("other.pem"), "{err}");
}

#[test]
fn a_certificate_file_holding_only_a_key_is_refused() {
    let pki = Pki::new();
    let leaf = pki.leaf();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.pem"), &leaf.key_pem).unwrap();
    let text = "[gateway]\ntls = { cert = \"key.pem\", key = \"key.pem\" }\n";
    let (code, _, err, path) = run(dir.path(), text, &["check"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("{path}:2:")), "{err}");
    assert!(err.contains("no certificate"), "{err}");
}

#[test]
fn plain_http_beyond_loopback_is_a_warning_that_tls_silences() {
    let pki = Pki::new();
    let leaf = pki.leaf();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), &leaf.fullchain_pem).unwrap();
    std::fs::write(dir.path().join("key.pem"), &leaf.key_pem).unwrap();
    let open = "[gateway]\nlisten = \"0.0.0.0:8440\"\ninsecure_no_auth = true\n";
    let (code, out, err, _) = run(dir.path(), open, &["check"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("serves plain HTTP beyond loopback"), "{out}");
    assert!(out.contains("TLS: off"), "{out}");
    let with_tls = format!("{open}tls = {{ cert = \"cert.pem\", key = \"key.pem\" }}\n");
    let (code, out, err, _) = run(dir.path(), &with_tls, &["check"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.contains("serves plain HTTP"), "{out}");
}
