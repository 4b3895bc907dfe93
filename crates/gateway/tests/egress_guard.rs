//! The egress guard wired into the gateway, through the real binary: an upstream, a JWKS or
//! issuer metadata on an internal address is refused unless `[egress]` opens it; the caller
//! gets an error naming the rule, the audit gets the URL, the address and the rule, and a
//! trap listener at the address proves nothing connected. Every test here writes its own
//! `[egress]` (even an empty one), so the test support's loopback opening does not apply.

mod support;

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use support::oauth::{MintHeader, TestKey};
use support::{FixtureHttp, Gateway, RawHttp, wait_until};

const UPSTREAM_UNAVAILABLE: i64 = -32010;

/// A loopback listener that counts every connection made to it (and answers none).
struct Trap {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl Trap {
    fn start() -> Trap {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the trap");
        let addr = listener.local_addr().expect("trap address");
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = connections.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                seen.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut conn) = conn {
                    let _ = conn.set_read_timeout(Some(Duration::from_millis(100)));
                    let _ = conn.read(&mut [0u8; 512]);
                }
            }
        });
        Trap { addr, connections }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// The egress records of the gateway's audit mirror (`audit.jsonl` beside its config; each
/// line is `{"hash", "prev_hash", "record", "seq"}`).
fn egress_records(gw: &Gateway) -> Vec<Value> {
    let text = std::fs::read_to_string(gw.dir.path().join("audit.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|line| line["record"].clone())
        .filter(|r| r["event"] == "egress")
        .collect()
}

fn wait_for_egress_record(gw: &Gateway) -> Value {
    assert!(
        wait_until(Duration::from_secs(10), || !egress_records(gw).is_empty()),
        "no egress audit record; stderr:\n{}",
        gw.proc.stderr()
    );
    egress_records(gw).remove(0)
}

const AUDIT: &str = "[audit]\nmirror = \"file:audit.jsonl\"\n";

fn remote_server(url: &str) -> String {
    format!(
        "[servers.remote]\nurl = \"{url}\"\ntimeout = \"5s\"\n\n[[rules]]\nserver = \"remote\"\neffect = \"allow\"\n"
    )
}

fn initialize_body() -> String {
    json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}})
    .to_string()
}

#[tokio::test]
async fn an_upstream_on_loopback_is_refused_without_an_allow_entry_and_nothing_connects() {
    let trap = Trap::start();
    let url = format!("http://127.0.0.1:{}/mcp", trap.port());
    // Plain http is opened for the host, so the rule that refuses is the address's.
    let cfg = format!(
        "[egress]\nhttp = [\"127.0.0.1\"]\n{AUDIT}{}",
        remote_server(&url)
    );
    let gw = Gateway::start(&cfg);
    let a = RawHttp::new(&gw.url("remote"))
        .post(initialize_body())
        .await;
    let error = &a.response()["error"];
    assert_eq!(error["code"], UPSTREAM_UNAVAILABLE, "{}", a.body);
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("egress guard") && message.contains("blocked_address"),
        "the caller learns the rule: {message}"
    );
    let record = wait_for_egress_record(&gw);
    assert_eq!(record["decision"], "refused", "{record}");
    assert_eq!(record["rule"], "blocked_address", "{record}");
    assert_eq!(record["name"], url.as_str(), "{record}");
    assert!(
        record["reason"]
            .as_str()
            .is_some_and(|r| r.contains("address 127.0.0.1")),
        "{record}"
    );
    assert!(
        wait_until(Duration::from_secs(5), || gw
            .proc
            .stderr()
            .contains("refused by the egress guard")),
        "the refusal is logged: {}",
        gw.proc.stderr()
    );
    assert_eq!(
        trap.connections(),
        0,
        "the refused upstream was connected to"
    );
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_without_naming_the_address_to_the_caller() {
    let trap = Trap::start();
    let url = format!("http://localhost:{}/mcp", trap.port());
    let cfg = format!(
        "[egress]\nhttp = [\"localhost\"]\n{AUDIT}{}",
        remote_server(&url)
    );
    let gw = Gateway::start(&cfg);
    let a = RawHttp::new(&gw.url("remote"))
        .post(initialize_body())
        .await;
    let message = a.response()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("blocked_address"), "{}", a.body);
    assert!(
        !message.contains("127.0.0.1") && !message.contains("::1"),
        "the resolved address is for the audit, not the caller: {message}"
    );
    let record = wait_for_egress_record(&gw);
    assert_eq!(record["rule"], "blocked_address", "{record}");
    let reason = record["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("127.0.0.1") || reason.contains("::1"),
        "the audit names the resolved address: {record}"
    );
    assert_eq!(trap.connections(), 0, "the refused name was connected to");
}

#[tokio::test]
async fn plain_http_is_refused_unless_the_host_is_on_the_http_list() {
    let trap = Trap::start();
    let url = format!("http://127.0.0.1:{}/mcp", trap.port());
    // The address is opened, but not plain http to it.
    let cfg = format!(
        "[egress]\nallow = [\"127.0.0.1:{}\"]\n{AUDIT}{}",
        trap.port(),
        remote_server(&url)
    );
    let gw = Gateway::start(&cfg);
    let a = RawHttp::new(&gw.url("remote"))
        .post(initialize_body())
        .await;
    let message = a.response()["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("plain_http"), "{}", a.body);
    assert_eq!(wait_for_egress_record(&gw)["rule"], "plain_http");
    assert_eq!(trap.connections(), 0);
}

#[tokio::test]
async fn an_allowed_loopback_upstream_works() {
    let fixture = FixtureHttp::start(&[]);
    let port = fixture
        .url
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .expect("fixture port")
        .to_owned();
    let cfg = format!(
        "[egress]\nallow = [\"127.0.0.1:{port}\"]\nhttp = [\"127.0.0.1\"]\n{AUDIT}{}",
        remote_server(&fixture.url)
    );
    let gw = Gateway::start(&cfg);
    let mut c = RawHttp::new(&gw.url("remote"));
    c.initialize(json!({})).await;
    let r = c.call_tool(1, "echo", json!({"message": "through"})).await;
    assert_eq!(r["result"]["content"][0]["text"], "through", "{r}");
    assert!(egress_records(&gw).is_empty(), "{:?}", egress_records(&gw));
}

/// A token signed by a key the gateway would have to fetch, for an issuer on `issuer`.
fn token_for(issuer: &str, audience: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    TestKey::generate("egress-k1").sign(
        &json!({"iss": issuer, "aud": audience, "sub": "alice", "exp": now + 300,
                "iat": now, "scope": "mcp:tools"}),
        &MintHeader::default(),
    )
}

/// `[auth]` pointing at the trap; a request with a token makes the gateway fetch from it.
async fn auth_fetch_is_refused(auth: &str, issuer: &str, trap: &Trap) {
    let cfg = format!(
        "[egress]\n{AUDIT}[auth]\n{auth}\n{}",
        support::fixture_stdio_server("demo")
    );
    let gw = Gateway::start(&cfg);
    let audience = gw.url("demo");
    let token = token_for(issuer, &audience);
    let a = RawHttp::new(&audience)
        .post_with(
            initialize_body(),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_ne!(a.status, 200, "a token was accepted: {}", a.body);
    let record = wait_for_egress_record(&gw);
    assert_eq!(record["rule"], "blocked_address", "{record}");
    assert!(
        record["name"]
            .as_str()
            .is_some_and(|u| u.starts_with(&format!("http://127.0.0.1:{}/", trap.port()))),
        "{record}"
    );
    assert_eq!(
        trap.connections(),
        0,
        "the refused key source was connected to"
    );
}

#[tokio::test]
async fn a_jwks_uri_on_a_loopback_address_not_allowed_is_refused() {
    let trap = Trap::start();
    let issuer = format!("http://127.0.0.1:{}", trap.port());
    let auth = format!("issuer = \"{issuer}\"\njwks_uri = \"{issuer}/jwks\"\n");
    auth_fetch_is_refused(&auth, &issuer, &trap).await;
}

#[tokio::test]
async fn issuer_metadata_on_a_loopback_address_not_allowed_is_refused() {
    let trap = Trap::start();
    let issuer = format!("http://127.0.0.1:{}", trap.port());
    let auth = format!("issuer = \"{issuer}\"\n");
    auth_fetch_is_refused(&auth, &issuer, &trap).await;
}

#[test]
fn a_bad_allow_entry_is_a_config_error_naming_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("egress.toml");
    std::fs::write(
        &path,
        "[egress]\nallow = [\n  \"10.0.0.0/8\",\n  \"idp.internal\",\n]\n",
    )
    .expect("write the config");
    let mut cmd = Command::new(support::portcullis_bin());
    cmd.args(["check", "--config"]).arg(&path);
    let (code, _stdout, stderr) = support::run_code_with_timeout(cmd, Duration::from_secs(30));
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("egress.toml:4:3") && stderr.contains("\"idp.internal\""),
        "the error names the file, line and entry: {stderr}"
    );
}

#[test]
fn check_warns_about_each_egress_exception() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("egress.toml");
    std::fs::write(
        &path,
        "[egress]\nallow = [\"10.0.0.0/8\"]\nhttp = [\"localhost\"]\n",
    )
    .expect("write the config");
    let mut cmd = Command::new(support::portcullis_bin());
    cmd.args(["check", "--config"]).arg(&path);
    let (_code, stdout, stderr) = support::run_code_with_timeout(cmd, Duration::from_secs(30));
    let out = format!("{stdout}{stderr}");
    assert!(out.contains("egress.allow = \"10.0.0.0/8\""), "{out}");
    assert!(out.contains("egress.http = \"localhost\""), "{out}");
}

/// Calls that open an outbound connection or build an HTTP client. Only the egress crate may
/// hold them; a line that is a comment does not count.
const OUTBOUND_CONSTRUCTORS: &[&str] = &[
    "reqwest::",
    "ureq::",
    "isahc::",
    "hyper_util::client",
    "hyper::client",
    "HttpConnector",
    "TcpStream::connect",
    "TcpSocket::new",
    "UdpSocket::bind",
    "socket2::Socket::new",
];

/// Where an outbound constructor is expected, and why that is not a second path out of the
/// gateway.
const OUTBOUND_ALLOWED: &[(&str, &str)] = &[
    (
        "crates/egress/",
        "the egress client and the sandbox's network proxy: the one outbound path",
    ),
    (
        "crates/bench/",
        "the load generator: a client of the gateway under test, its own binary, not linked into portcullis (checked below)",
    ),
    (
        "crates/gateway/src/consent/approvals/tests.rs",
        "the approvals page's unit tests (`#[cfg(test)]`): a browser-like client of the page, compiled only into the test binary",
    ),
    (
        "crates/fixtures/src/tools/probe/",
        "the fixture server's probe tools: the connections a sandboxed upstream attempts so the containment tests can see them refused; they run in the fixture's process, never in the gateway's",
    ),
];

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_source_outside_the_egress_crate_opens_an_outbound_connection() {
    let root = support::workspace_root();
    let mut files = Vec::new();
    for krate in std::fs::read_dir(root.join("crates"))
        .expect("crates/")
        .flatten()
    {
        rust_files(&krate.path().join("src"), &mut files);
    }
    assert!(
        files.len() > 50,
        "the walk found too few sources: {files:?}"
    );
    let mut found = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(&root)
            .expect("under the workspace")
            .to_string_lossy()
            .replace('\\', "/");
        if OUTBOUND_ALLOWED
            .iter()
            .any(|(prefix, _)| rel.starts_with(prefix))
        {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("read a source file");
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for pattern in OUTBOUND_CONSTRUCTORS {
                if line.contains(pattern) {
                    found.push(format!("{rel}:{}: {pattern}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "outbound connections outside crates/egress (route them through EgressClient, or add an allow entry with its reason):\n{}",
        found.join("\n")
    );
}

/// The Rust target triple of this machine (Portcullis builds for Linux).
fn host_triple() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

#[test]
fn the_gateway_binary_links_no_other_http_client() {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(support::workspace_root())
        .args(["metadata", "--format-version", "1", "--offline"])
        // This platform's graph only (the others' crates are not downloaded offline).
        .args(["--filter-platform", &host_triple()]);
    let (code, stdout, stderr) = support::run_code_with_timeout(cmd, Duration::from_secs(120));
    assert_eq!(code, Some(0), "cargo metadata failed: {stderr}");
    let meta: Value = serde_json::from_str(&stdout).expect("cargo metadata JSON");
    let nodes = meta["resolve"]["nodes"].as_array().expect("resolve nodes");
    let name_of = |id: &str| -> String {
        meta["packages"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["id"] == id))
            .and_then(|p| p["name"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let root = meta["packages"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "portcullis"))
        .and_then(|p| p["id"].as_str())
        .expect("the portcullis package")
        .to_owned();
    // Everything the binary links: normal (not dev, not build) dependencies, transitively.
    let mut linked = std::collections::BTreeSet::new();
    let mut todo = vec![root];
    while let Some(id) = todo.pop() {
        if !linked.insert(id.clone()) {
            continue;
        }
        let Some(node) = nodes.iter().find(|n| n["id"] == id.as_str()) else {
            continue;
        };
        for dep in node["deps"].as_array().into_iter().flatten() {
            let normal = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].is_null());
            if normal && let Some(pkg) = dep["pkg"].as_str() {
                todo.push(pkg.to_owned());
            }
        }
    }
    let names: Vec<String> = linked.iter().map(|id| name_of(id)).collect();
    assert!(names.iter().any(|n| n == "portcullis-egress"), "{names:?}");
    for client in [
        "reqwest",
        "ureq",
        "isahc",
        "surf",
        "curl",
        "attohttpc",
        "awc",
    ] {
        assert!(
            !names.iter().any(|n| n == client),
            "portcullis links {client}, an HTTP client besides the egress crate's"
        );
    }
    assert!(
        !names.iter().any(|n| n == "portcullis-bench"),
        "portcullis links portcullis-bench, whose sources the walk above skips"
    );
}

/// A remote server that answers every request `401` with a challenge whose
/// `resource_metadata` points at `metadata_url`.
fn challenging_upstream(metadata_url: String) -> SocketAddr {
    use std::io::Write;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the upstream");
    let addr = listener.local_addr().expect("upstream address");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
            let _ = conn.read(&mut [0u8; 8192]);
            let _ = write!(
                conn,
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer resource_metadata=\"{metadata_url}\"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    addr
}

/// Per-user OAuth discovery follows the upstream's challenge only through the guard: a
/// `resource_metadata` on an address `[egress]` does not open is refused, and the trap there
/// is never reached, though the upstream itself is allowed.
#[tokio::test]
async fn a_resource_metadata_url_on_an_internal_address_is_refused() {
    let trap = Trap::start();
    let upstream = challenging_upstream(format!(
        "http://127.0.0.1:{}/.well-known/oauth-protected-resource/mcp",
        trap.port()
    ));
    let cfg = format!(
        "[egress]\nallow = [\"127.0.0.1:{port}\"]\nhttp = [\"127.0.0.1\"]\n{AUDIT}\
         [servers.remote]\nurl = \"http://127.0.0.1:{port}/mcp\"\ncredential = {{ oauth = {{}} }}\n\n\
         [[rules]]\nserver = \"remote\"\ntools = [\"*\"]\neffect = \"allow\"\n",
        port = upstream.port()
    );
    let gw = Gateway::start(&cfg);
    let mut client = RawHttp::new(&gw.url("remote"));
    client.initialize(json!({})).await;
    let list = client.request(1, "tools/list", json!({})).await;
    let message = list["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("egress guard refused") && message.contains("blocked_address"),
        "discovery was not refused by the guard: {list}"
    );
    assert!(!message.contains("address 127.0.0.1"), "{message}");
    let record = wait_for_egress_record(&gw);
    assert_eq!(record["rule"], "blocked_address", "{record}");
    // Audited for the server and the principal the discovery was for.
    assert_eq!(record["server"], "remote", "{record}");
    assert_eq!(record["principal"], "anonymous", "{record}");
    assert_eq!(
        trap.connections(),
        0,
        "the internal metadata URL was fetched"
    );
}
