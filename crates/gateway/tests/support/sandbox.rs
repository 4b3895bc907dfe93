//! Support for the containment suites (`sandbox_containment.rs`, `sandbox_real_servers.rs`):
//! the bundled fixture with its probe tools as a sandboxed stdio server, probe calls and their
//! outcomes, loopback listeners that count who reached them, the host-side view of a
//! sandboxed server's process, and a gateway run inside a network and mount namespace the
//! test makes itself (for attacks that need addresses and names the host must not have).
//!
//! Everything stays on loopback (or on a private namespace's own interfaces) and every wait is
//! bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use super::{Gateway, RawHttp, isolate_state, portcullis_bin, spawn_until};

/// A `[servers.<name>]` table running `portcullis fixture stdio --probes` (the gateway's own
/// binary, so launch pinning trusts it), with `extra` lines added to the table (`sandbox = …`,
/// `roots = …`, `env = …`), and a rule allowing every tool on it.
pub fn probe_server(name: &str, extra: &str) -> String {
    format!(
        "[servers.{name}]\ncommand = [\"{bin}\", \"fixture\", \"stdio\", \"--probes\"]\n{extra}\n\n[[rules]]\nserver = \"{name}\"\neffect = \"allow\"\n\n",
        bin = portcullis_bin().display()
    )
}

/// A new session on `route`, initialized.
pub async fn session(gw: &Gateway, route: &str) -> RawHttp {
    let mut c = RawHttp::new(&gw.url(route));
    c.initialize(json!({})).await;
    c
}

/// What one probe call came to: its `structuredContent` (`outcome`, `detail`, `errno`, and
/// the probe's own fields).
#[derive(Debug, Clone)]
pub struct Probe(pub Value);

impl Probe {
    pub fn ok(&self) -> bool {
        self.0["outcome"] == "ok"
    }

    pub fn errno(&self) -> Option<&str> {
        self.0["errno"].as_str()
    }

    pub fn detail(&self) -> &str {
        self.0["detail"].as_str().unwrap_or_default()
    }

    /// The probe must have been refused; returns its errno (or "" when it has none, e.g. an
    /// HTTP status).
    #[track_caller]
    pub fn denied(&self) -> &str {
        assert!(!self.ok(), "the probe succeeded: {}", self.0);
        self.errno().unwrap_or_default()
    }
}

/// Calls probe `tool` with `args` on `c`; fails the test if the answer is not a probe result.
pub async fn probe(c: &RawHttp, id: i64, tool: &str, args: Value) -> Probe {
    let r = c.call_tool(id, tool, args).await;
    let structured = &r["result"]["structuredContent"];
    assert!(
        structured["outcome"].is_string(),
        "{tool} gave no probe result: {r}"
    );
    Probe(structured.clone())
}

/// The gateway still serves: a new session on `route` gets an answer to `echo`.
pub async fn assert_still_serving(gw: &Gateway, route: &str) {
    let c = session(gw, route).await;
    let r = c
        .call_tool(9001, "echo", json!({"message": "still serving"}))
        .await;
    assert_eq!(
        r["result"]["content"][0]["text"],
        "still serving",
        "the gateway no longer serves a new session: {r}\nstderr:\n{}",
        gw.proc.stderr()
    );
}

/// Host processes whose initial environment holds exactly `entry` (`NAME=value`), found by
/// reading every `/proc/<pid>/environ` the test may read. A sandboxed server's host pid is
/// found this way from a variable its config gives it.
pub fn host_pids_with_env(entry: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == entry.as_bytes()))
        })
        .collect()
}

/// The parent of host process `pid` (from `/proc/<pid>/stat`).
pub fn host_ppid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: skip past its last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(1)?.parse().ok()
}

/// A TCP listener that counts the connections it accepts and, given a body, answers each
/// with `200 OK` and that body (as `text/html`); without one it closes them unanswered.
/// Stopped (and its thread joined) on drop.
pub struct Listener {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Listener {
    /// Binds `addr` in the calling thread's network namespace and serves it from a thread.
    pub fn start(addr: &str, body: Option<&str>) -> Listener {
        let listener = TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let body = body.map(str::to_owned);
        let thread = {
            let (hits, stop) = (Arc::clone(&hits), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            hits.fetch_add(1, Ordering::SeqCst);
                            if let Some(body) = &body {
                                answer(stream, body);
                            }
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        Listener {
            addr,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    /// A listener on a free port of 127.0.0.1.
    pub fn loopback(body: Option<&str>) -> Listener {
        Listener::start("127.0.0.1:0", body)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads a request head (bounded in size and time) and answers `200` with `body`.
fn answer(mut stream: std::net::TcpStream, body: &str) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Fails the test, with a clear message, unless it runs as root with `unshare`, `ip` and
/// `mount` available (CI does): the namespace tests need them and must not skip silently.
#[track_caller]
pub fn require_root_namespace_tools() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test makes a network and mount namespace of its own and must run as root (CI does)"
    );
    for tool in ["unshare", "ip", "mount"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        assert!(
            found,
            "this test needs `{tool}` on PATH (util-linux, iproute2)"
        );
    }
}

/// A `portcullis serve` started under `unshare -n -m`: a network namespace whose loopback is
/// up and also holds `extra_addresses`, and a mount namespace where `hosts` is bound over
/// `/etc/hosts`. The host's network and files never see any of it. A test reaches the
/// gateway (and binds listeners next to it) from threads that entered the namespace with
/// [`NetnsGateway::run`].
pub struct NetnsGateway {
    pub gw: Gateway,
    netns: std::fs::File,
}

impl NetnsGateway {
    pub fn start(config: &str, hosts: &str, extra_addresses: &[&str]) -> NetnsGateway {
        require_root_namespace_tools();
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("portcullis.toml");
        std::fs::write(&config_path, config).expect("write config");
        let hosts_path = dir.path().join("hosts");
        std::fs::write(&hosts_path, hosts).expect("write hosts");
        let mut setup = String::from("set -e\nip link set lo up\n");
        for a in extra_addresses {
            setup.push_str(&format!("ip addr add {a} dev lo\n"));
        }
        setup.push_str("mount --bind \"$0\" /etc/hosts\nexec \"$@\"\n");
        let mut cmd = Command::new("unshare");
        isolate_state(&mut cmd);
        cmd.args(["--net", "--mount", "--propagation", "private", "--"])
            .args(["/bin/sh", "-c", &setup])
            .arg(&hosts_path)
            .arg(portcullis_bin())
            .args(["serve", "--config"])
            .arg(&config_path)
            .args(["--listen", "127.0.0.1:0"])
            .env(
                "PORTCULLIS_LOG",
                std::env::var("PORTCULLIS_LOG").unwrap_or_else(|_| "info".into()),
            );
        let (proc, line) = spawn_until(cmd, "Portcullis is listening on", dir.path());
        let base = line.rsplit(' ').next().expect("address").trim().to_owned();
        // `unshare` and the shell exec'd the gateway: its pid is the namespace's.
        let netns = std::fs::File::open(format!("/proc/{}/ns/net", proc.child.id()))
            .expect("open the gateway's network namespace");
        NetnsGateway {
            gw: Gateway { proc, base, dir },
            netns,
        }
    }

    /// Runs `f` on a new thread that has entered the gateway's network namespace, with a
    /// current-thread Tokio runtime: every socket it opens (clients, listeners) is in there.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(&self.netns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .expect("enter the gateway's network namespace");
                f()
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }
}

/// A current-thread Tokio runtime for [`NetnsGateway::run`] bodies.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Whether `path` exists on the host (for files a sandboxed write must not have made).
pub fn exists_on_host(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}
