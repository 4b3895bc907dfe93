//! Containment, end to end (issue 5): the real gateway binary runs the bundled fixture with
//! its probe tools (`portcullis fixture stdio --probes`) as a sandboxed stdio server, and a
//! client over Streamable HTTP has it attempt each escape a malicious or compromised server
//! would try. Every attempt must fail the way the sandbox's layers make it fail (no such file,
//! read-only, refused, `EPERM` from seccomp, `403` from the proxy), nothing must land or
//! arrive on the host, and afterwards the gateway must still serve a new session.
//!
//! The probes report `OK …`/`DENIED errno…` as `structuredContent` (see
//! `crates/fixtures/README.md`); `tests/support/sandbox.rs` has the helpers. The metadata test
//! runs the gateway in a network and mount namespace the test makes (`unshare -n -m`, as
//! root): a link-local address and a host name for it exist only in there.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use support::Gateway;
use support::sandbox::{
    Listener, NetnsGateway, Probe, assert_still_serving, exists_on_host, host_pids_with_env,
    host_ppid, probe, probe_server, runtime, session,
};

const ROUTE: &str = "box";

/// The gateway with the probe fixture as `box`, its table extended by `extra`.
fn gateway(extra: &str) -> Gateway {
    Gateway::start(&probe_server(ROUTE, extra))
}

/// A scratch directory outside `/tmp` (the sandbox has a private `/tmp`, so a file there
/// would be missing inside for that reason alone; this one is missing because nothing binds
/// it).
fn host_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir")
}

fn toml_path(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

#[tokio::test]
async fn a_private_key_in_the_home_directory_is_not_there() {
    let home = host_dir();
    let key = home.path().join(".ssh/id_rsa");
    std::fs::create_dir(home.path().join(".ssh")).expect("mkdir .ssh");
    std::fs::write(&key, "-----BEGIN OPENSSH PRIVATE KEY----- canary-5e1f").expect("write key");
    let gw = gateway(&format!(
        "env = {{ set = {{ HOME = {} }} }}",
        toml_path(home.path())
    ));
    let c = session(&gw, ROUTE).await;

    let read = probe(&c, 1, "probe_read", json!({"path": key})).await;
    assert_eq!(read.denied(), "ENOENT", "{read:?}");
    assert!(!read.0.to_string().contains("canary-5e1f"), "{read:?}");
    let list = probe(&c, 2, "probe_list", json!({"path": home.path()})).await;
    assert_eq!(
        list.denied(),
        "ENOENT",
        "the home directory is visible: {list:?}"
    );
    // Through $HOME as the server sees it, the same.
    let env = probe(&c, 3, "probe_env", json!({})).await;
    assert!(
        env.0["names"]
            .as_array()
            .expect("names")
            .contains(&json!("HOME")),
        "{env:?}"
    );

    assert_still_serving(&gw, ROUTE).await;
}

#[tokio::test]
async fn another_servers_secret_cannot_be_read_from_proc() {
    const SECRET: &str = "vault-secret-0c7d93";
    let state = host_dir();
    let config = format!(
        "{}{}",
        probe_server(ROUTE, ""),
        probe_server(
            "vault",
            "env = { secrets = { VAULT_TOKEN = { env = \"PX_VAULT_SECRET\" } } }"
        )
    );
    let db = format!("sqlite:{}", state.path().join("state.db").display());
    let gw = Gateway::start_with_env(
        &config,
        &[
            ("PX_VAULT_SECRET", SECRET.as_ref()),
            ("PORTCULLIS_STATE", db.as_ref()),
        ],
    );
    // Start the victim, and find it on the host by the variable it holds.
    let vault = session(&gw, "vault").await;
    let names = probe(&vault, 1, "probe_env", json!({})).await;
    assert!(
        names.0["names"]
            .as_array()
            .expect("names")
            .contains(&json!("VAULT_TOKEN")),
        "{names:?}"
    );
    let victims = host_pids_with_env(&format!("VAULT_TOKEN={SECRET}"));
    assert_eq!(
        victims.len(),
        1,
        "the vault server on the host: {victims:?}"
    );
    let victim = victims[0];
    let keeper = host_ppid(victim).expect("the victim's parent");
    let gateway_pid = gw.proc.child.id();

    let c = session(&gw, ROUTE).await;
    let mut id = 10;
    for pid in [victim, keeper, gateway_pid] {
        let path = format!("/proc/{pid}/environ");
        let r = probe(&c, id, "probe_read", json!({"path": path})).await;
        id += 1;
        assert!(
            !r.0.to_string().contains(SECRET),
            "{path} leaked the secret: {r:?}"
        );
        assert_eq!(r.denied(), "ENOENT", "host pid {pid} is visible: {r:?}");
    }
    // Every process the server can see, and its own environment.
    let pids = probe(&c, id, "probe_pids", json!({})).await;
    for pid in pids.0["pids"].as_array().expect("pids") {
        id += 1;
        let r = probe(
            &c,
            id,
            "probe_read",
            json!({"path": format!("/proc/{pid}/environ")}),
        )
        .await;
        let seen = r.0.to_string();
        assert!(
            !seen.contains(SECRET) && !seen.contains("VAULT_TOKEN"),
            "{r:?}"
        );
    }
    let own = probe(
        &c,
        id + 1,
        "probe_read",
        json!({"path": "/proc/self/environ"}),
    )
    .await;
    assert!(!own.0.to_string().contains(SECRET), "{own:?}");

    assert_still_serving(&gw, ROUTE).await;
    assert_still_serving(&gw, "vault").await;
}

#[tokio::test]
async fn writes_outside_the_root_are_refused_and_land_nowhere() {
    let base = host_dir();
    let root = base.path().join("root");
    let other = base.path().join("other");
    std::fs::create_dir(&root).expect("mkdir root");
    std::fs::create_dir(&other).expect("mkdir other");
    let existing = other.join("existing.txt");
    std::fs::write(&existing, "original").expect("write");
    let gw = gateway(&format!("roots = [{}]", toml_path(&root)));
    let c = session(&gw, ROUTE).await;

    let inside = root.join("inside.txt");
    let w = probe(
        &c,
        1,
        "probe_write",
        json!({"path": inside, "content": "from the sandbox"}),
    )
    .await;
    assert!(w.ok(), "a write inside the root failed: {w:?}");
    assert_eq!(
        std::fs::read_to_string(&inside).expect("written"),
        "from the sandbox"
    );

    let targets: [(PathBuf, &str); 4] = [
        (other.join("outside.txt"), "a sibling of the root"),
        (existing.clone(), "an existing file outside the root"),
        (PathBuf::from("/usr/portcullis-escape-5e1f"), "/usr"),
        (PathBuf::from("/etc/portcullis-escape-5e1f"), "/etc"),
    ];
    for (i, (path, what)) in targets.iter().enumerate() {
        let w = probe(
            &c,
            10 + i as i64,
            "probe_write",
            json!({"path": path, "content": "escaped"}),
        )
        .await;
        let errno = w.denied();
        assert!(
            ["ENOENT", "EROFS", "EACCES", "EPERM"].contains(&errno),
            "{what}: unexpected refusal {w:?}"
        );
    }
    assert!(!exists_on_host(&other.join("outside.txt")));
    assert_eq!(
        std::fs::read_to_string(&existing).expect("read"),
        "original"
    );
    assert!(!exists_on_host(Path::new("/usr/portcullis-escape-5e1f")));
    assert!(!exists_on_host(Path::new("/etc/portcullis-escape-5e1f")));

    assert_still_serving(&gw, ROUTE).await;
}

#[tokio::test]
async fn a_listener_on_the_hosts_loopback_is_out_of_reach() {
    let listener = Listener::loopback(Some("host service"));
    let gw = gateway("");
    let c = session(&gw, ROUTE).await;

    let port = listener.port();
    for (i, host) in ["127.0.0.1", "localhost"].into_iter().enumerate() {
        let r = probe(
            &c,
            1 + i as i64,
            "probe_connect",
            json!({"host": host, "port": port, "timeout_ms": 2000}),
        )
        .await;
        let errno = r.denied();
        assert!(
            ["ECONNREFUSED", "ENETUNREACH", "EACCES", "EPERM"].contains(&errno),
            "{host}: {r:?}"
        );
    }
    let http = probe(
        &c,
        5,
        "probe_http",
        json!({"url": format!("http://127.0.0.1:{port}/")}),
    )
    .await;
    http.denied();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        listener.hits(),
        0,
        "the host's listener saw a connection from the sandbox"
    );

    assert_still_serving(&gw, ROUTE).await;
}

#[tokio::test]
async fn the_proxy_reaches_the_allow_list_and_nothing_else() {
    let page = Listener::loopback(Some("<html><body><p>allowed page 7a51</p></body></html>"));
    let other = Listener::loopback(Some("must not be reached"));
    let gw = gateway(&format!(
        "sandbox = {{ network = {{ allow = [\"127.0.0.1:{}\"] }} }}",
        page.port()
    ));
    let c = session(&gw, ROUTE).await;

    let ok = probe(
        &c,
        1,
        "probe_http",
        json!({"url": format!("http://127.0.0.1:{}/index.html", page.port()), "proxy": "env"}),
    )
    .await;
    assert!(
        ok.ok(),
        "the allowed destination was not reached: {ok:?}\n{}",
        gw.proc.stderr()
    );
    assert_eq!(ok.0["status"], 200, "{ok:?}");
    assert!(
        ok.0["body"]
            .as_str()
            .unwrap_or_default()
            .contains("allowed page 7a51"),
        "{ok:?}"
    );
    assert_eq!(page.hits(), 1);

    let refused = [
        // A port of the same address that is not on the list.
        format!("http://127.0.0.1:{}/", other.port()),
        // The same, as a tunnel (CONNECT).
        format!("https://127.0.0.1:{}/", other.port()),
        // The allowed address under a name that is not on the list.
        format!("http://localhost:{}/", page.port()),
    ];
    for (i, url) in refused.iter().enumerate() {
        let r = probe(
            &c,
            10 + i as i64,
            "probe_http",
            json!({"url": url, "proxy": "env"}),
        )
        .await;
        r.denied();
        assert_eq!(r.0["status"], 403, "{url}: {r:?}");
    }
    // Around the proxy, straight to the allowed listener: the sandbox has no route there.
    let direct = probe(
        &c,
        20,
        "probe_connect",
        json!({"host": "127.0.0.1", "port": page.port(), "timeout_ms": 2000}),
    )
    .await;
    direct.denied();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(other.hits(), 0, "a destination off the list was reached");
    assert_eq!(
        page.hits(),
        1,
        "the allowed listener was reached around the proxy"
    );

    assert_still_serving(&gw, ROUTE).await;
}

#[test]
fn a_metadata_address_behind_an_allowed_name_is_refused() {
    let config = probe_server(
        ROUTE,
        "sandbox = { network = { allow = [\"metadata-trap.test:80\"] } }",
    );
    let hosts = "127.0.0.1 localhost\n169.254.169.254 metadata-trap.test\n";
    let ngw = NetnsGateway::start(&config, hosts, &["169.254.169.254/32"]);
    let gw = &ngw.gw;
    let trap_hits_after_baseline = ngw.run(|| {
        let trap = Listener::start("169.254.169.254:80", Some("ami-id: i-trap"));
        runtime().block_on(async {
            let c = session(gw, ROUTE).await;
            for (i, url) in [
                "http://metadata-trap.test/latest/meta-data/",
                "https://metadata-trap.test:80/",
            ]
            .into_iter()
            .enumerate()
            {
                let r = probe(
                    &c,
                    1 + i as i64,
                    "probe_http",
                    json!({"url": url, "proxy": "env"}),
                )
                .await;
                r.denied();
                assert_eq!(r.0["status"], 403, "{url}: {r:?}\n{}", gw.proc.stderr());
            }
            std::thread::sleep(Duration::from_millis(200));
            assert_eq!(
                trap.hits(),
                0,
                "the metadata trap was reached through the proxy"
            );
            assert_still_serving(gw, ROUTE).await;
        });
        // The trap was there to be reached: from this namespace, directly, it is.
        let _ = std::net::TcpStream::connect_timeout(&trap.addr, Duration::from_secs(2))
            .expect("the trap is reachable in the test's namespace");
        support::wait_until(Duration::from_secs(2), || trap.hits() == 1);
        trap.hits()
    });
    assert_eq!(
        trap_hits_after_baseline, 1,
        "the baseline connection did not reach the trap"
    );
    let log = gw.proc.stderr();
    // Refused for the address the name resolved to (so the name did resolve in there).
    assert!(
        log.lines().any(|l| l.contains("sandbox proxy: refused")
            && l.contains("metadata-trap.test:80")
            && l.contains("169.254.169.254")),
        "the refusal is not logged with its destination and address:\n{log}"
    );
}

#[tokio::test]
async fn a_fork_bomb_stops_at_the_process_limit() {
    let gw = gateway("sandbox = { processes = 16 }");
    let c = session(&gw, ROUTE).await;
    let r = probe(&c, 1, "probe_spawn", json!({"count": 200})).await;
    let started = r.0["started"].as_u64().expect("started");
    assert!(
        started < 16,
        "{started} processes started under a limit of 16: {r:?}"
    );
    assert_eq!(r.denied(), "EAGAIN", "{r:?}");
    // The server itself survived its bomb, and the gateway serves others.
    let echo = c.call_tool(2, "echo", json!({"message": "alive"})).await;
    assert_eq!(echo["result"]["content"][0]["text"], "alive", "{echo}");
    assert_still_serving(&gw, ROUTE).await;
}

#[tokio::test]
async fn memory_beyond_the_limit_is_refused() {
    let gw = gateway("sandbox = { memory = \"128M\" }");
    let c = session(&gw, ROUTE).await;
    let r = probe(&c, 1, "probe_alloc", json!({"mib": 1024})).await;
    r.denied();
    assert!(r.detail().contains("could not reserve"), "{r:?}");
    // Within the limit, allocation works: the limit is the limit, not a broken server.
    let small = probe(&c, 2, "probe_alloc", json!({"mib": 16})).await;
    assert!(small.ok(), "{small:?}");
    assert_still_serving(&gw, ROUTE).await;
}

#[tokio::test]
async fn ptrace_of_the_parent_pid_1_and_the_gateway_is_refused() {
    let gw = gateway("");
    let c = session(&gw, ROUTE).await;
    let gateway_pid = gw.proc.child.id();
    let targets: [(&str, Value); 3] = [
        ("its parent", json!({})),
        ("pid 1", json!({"pid": 1})),
        ("the gateway's host pid", json!({"pid": gateway_pid})),
    ];
    for (i, (what, args)) in targets.into_iter().enumerate() {
        let r: Probe = probe(&c, 1 + i as i64, "probe_ptrace", args).await;
        assert_eq!(r.denied(), "EPERM", "ptrace of {what}: {r:?}");
    }
    let status = std::fs::read_to_string(format!("/proc/{gateway_pid}/status")).expect("status");
    assert!(
        status.contains("TracerPid:\t0\n"),
        "the gateway is being traced:\n{status}"
    );
    assert_still_serving(&gw, ROUTE).await;
}

#[tokio::test]
async fn proc_1_root_leads_back_into_the_sandbox_not_the_host() {
    let dir = host_dir();
    let file = dir.path().join("host-only.txt");
    std::fs::write(&file, "host canary 91d2").expect("write");
    let gw = gateway("");
    let c = session(&gw, ROUTE).await;

    for (i, path) in [
        format!("/proc/1/root{}", file.display()),
        "/proc/1/root/etc/shadow".to_owned(),
        format!("/proc/self/root{}", file.display()),
    ]
    .iter()
    .enumerate()
    {
        let r = probe(&c, 1 + i as i64, "probe_read", json!({"path": path})).await;
        assert_eq!(r.denied(), "ENOENT", "{path}: {r:?}");
        assert!(!r.0.to_string().contains("host canary"), "{r:?}");
    }
    let who = probe(&c, 10, "probe_pids", json!({})).await;
    assert_eq!(
        who.0["pid"], 1,
        "the server is not PID 1 of its namespace: {who:?}"
    );
    assert_eq!(
        who.0["pids"],
        json!([1]),
        "other processes are visible: {who:?}"
    );
    assert_eq!(who.0["hostname"], "sandbox", "{who:?}");
    assert_ne!(who.0["uid"], 0, "the server runs as root inside: {who:?}");

    assert_still_serving(&gw, ROUTE).await;
}

#[tokio::test]
async fn syscalls_no_server_needs_are_refused_with_eperm() {
    let gw = gateway("");
    let c = session(&gw, ROUTE).await;
    for (i, name) in [
        "mount",
        "unshare",
        "unshare_mount",
        "setns",
        "chroot",
        "raw_socket",
    ]
    .into_iter()
    .enumerate()
    {
        let r = probe(&c, 1 + i as i64, "probe_syscall", json!({"name": name})).await;
        assert_eq!(r.denied(), "EPERM", "{name}: {r:?}");
    }
    assert_still_serving(&gw, ROUTE).await;
}

#[tokio::test]
async fn the_environment_holds_only_what_the_config_names() {
    let state = host_dir();
    let db = format!("sqlite:{}", state.path().join("state.db").display());
    let page = Listener::loopback(Some("unused"));
    let config = format!(
        "{}{}",
        probe_server(
            ROUTE,
            "env = { pass = [\"PATH\"], set = { GREETING = \"hi\" } }"
        ),
        probe_server(
            "online",
            &format!(
                "env = {{ pass = [\"PATH\"], set = {{ GREETING = \"hi\" }} }}\nsandbox = {{ network = {{ allow = [\"127.0.0.1:{}\"] }} }}",
                page.port()
            )
        )
    );
    let gw = Gateway::start_with_env(
        &config,
        &[
            ("PX_GATEWAY_ONLY", "gateway-only-value".as_ref()),
            ("PORTCULLIS_STATE", db.as_ref()),
        ],
    );
    let names = |p: &Probe| -> Vec<String> {
        p.0["names"]
            .as_array()
            .expect("names")
            .iter()
            .map(|n| n.as_str().expect("name").to_owned())
            .collect()
    };
    let offline = probe(&session(&gw, ROUTE).await, 1, "probe_env", json!({})).await;
    assert_eq!(names(&offline), ["GREETING", "PATH"], "{offline:?}");
    let online = probe(&session(&gw, "online").await, 1, "probe_env", json!({})).await;
    let mut expected = vec![
        "ALL_PROXY",
        "GREETING",
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "NO_PROXY",
        "PATH",
        "all_proxy",
        "http_proxy",
        "https_proxy",
        "no_proxy",
    ];
    expected.sort_unstable();
    assert_eq!(names(&online), expected, "{online:?}");
    assert_still_serving(&gw, ROUTE).await;
}
