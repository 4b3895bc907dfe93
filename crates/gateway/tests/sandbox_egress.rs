//! Issue 6, through the real binary: a sandboxed server's network proxy decides with the
//! gateway's `[egress]` policy, the one its own outbound client is guarded with, and audits
//! its refusals like the guard's.
//!
//! As in `sandbox_containment.rs`'s metadata test, the gateway runs in a network and mount
//! namespace the test makes (`unshare -n -m`, as root): there `internal.test` resolves (a
//! private `/etc/hosts`) to `10.0.0.1`, a private address on the namespace's loopback with a
//! listener behind it. No packet leaves the namespace.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::sandbox::{Listener, NetnsGateway, probe, probe_server, runtime, session};

const ROUTE: &str = "box";

/// What the server may ask for: the internal name, and the address itself.
const LIST: &str =
    "sandbox = { network = { allow = [\"internal.test:8080\", \"10.0.0.1:8080\"] } }";

/// The same destinations as [`LIST`], as the probe fetches them through the proxy.
const DESTINATIONS: [(&str, &str); 2] = [
    ("http://internal.test:8080/", "internal.test:8080"),
    ("http://10.0.0.1:8080/", "10.0.0.1:8080"),
];

const PAGE: &str = "internal page 5c1e";

/// The `egress` records about `server` in the audit log, as `portcullis audit query` prints
/// them from the state store of the gateway whose config is `config`.
fn egress_records(config: &Path, server: &str) -> Vec<Value> {
    let mut cmd = std::process::Command::new(support::portcullis_bin());
    cmd.args(["audit", "query", "--json", "--server", server, "--config"])
        .arg(config);
    let (code, out, err) = support::run_code_with_timeout(cmd, Duration::from_secs(30));
    assert_eq!(code, Some(0), "portcullis audit query: {err}");
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|l| l["record"].clone())
        .filter(|r| r["event"] == "egress")
        .collect()
}

/// Starts the gateway in its namespace with `egress_allow` as `[egress] allow`, has the
/// sandboxed probe fetch each of [`DESTINATIONS`] through the proxy, and returns the
/// gateway, the probes' results and how many connections reached the internal listener.
fn fetch_internal(egress_allow: &str) -> (NetnsGateway, Vec<Value>, usize) {
    let config = format!(
        "[gateway]\nstate = \"sqlite:state.db\"\n\n[egress]\nallow = [{egress_allow}]\n\n{}",
        probe_server(ROUTE, LIST)
    );
    let hosts = "127.0.0.1 localhost\n10.0.0.1 internal.test\n";
    let ngw = NetnsGateway::start(&config, hosts, &["10.0.0.1/32"]);
    let (results, hits) = ngw.run(|| {
        let inside = Listener::start("10.0.0.1:8080", Some(PAGE));
        let results = runtime().block_on(async {
            let c = session(&ngw.gw, ROUTE).await;
            let mut results = Vec::new();
            for (i, (url, _)) in DESTINATIONS.iter().enumerate() {
                let args = json!({"url": url, "proxy": "env"});
                results.push(probe(&c, 1 + i as i64, "probe_http", args).await.0);
            }
            results
        });
        std::thread::sleep(Duration::from_millis(200));
        (results, inside.hits())
    });
    (ngw, results, hits)
}

#[test]
fn an_internal_destination_on_the_list_is_refused_and_audited_while_egress_opens_nothing() {
    let (ngw, results, hits) = fetch_internal("");
    let gw = &ngw.gw;
    for (result, (url, _)) in results.iter().zip(DESTINATIONS) {
        assert_ne!(result["outcome"], "ok", "{url}: {result}");
        assert_eq!(
            result["status"],
            403,
            "{url}: {result}\n{}",
            gw.proc.stderr()
        );
    }
    assert_eq!(hits, 0, "a refused destination was reached");
    let records = || egress_records(&gw.config_path(), ROUTE);
    assert!(
        support::wait_until(Duration::from_secs(10), || records().len()
            == DESTINATIONS.len()),
        "the refusals are not in the audit log: {:?}\n{}",
        records(),
        gw.proc.stderr()
    );
    for (record, (_, destination)) in records().iter().zip(DESTINATIONS) {
        assert_eq!(record["decision"], "refused", "{record}");
        assert_eq!(record["server"], ROUTE, "{record}");
        assert_eq!(record["name"], destination, "{record}");
        assert_eq!(record["method"], "GET", "{record}");
        // The code the gateway's own client is refused with for the same address.
        assert_eq!(record["rule"], "blocked_address", "{record}");
        let reason = record["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("address 10.0.0.1"), "{record}");
    }
}

#[test]
fn an_internal_destination_on_the_list_is_reached_once_egress_allow_opens_its_address() {
    let (ngw, results, hits) = fetch_internal("\"10.0.0.1/32\"");
    let gw = &ngw.gw;
    for (result, (url, _)) in results.iter().zip(DESTINATIONS) {
        assert_eq!(
            result["outcome"],
            "ok",
            "{url}: {result}\n{}",
            gw.proc.stderr()
        );
        assert_eq!(result["status"], 200, "{url}: {result}");
        assert!(
            result["body"].as_str().is_some_and(|b| b.contains(PAGE)),
            "{url}: {result}"
        );
    }
    assert_eq!(hits, DESTINATIONS.len(), "each fetch reached the listener");
    assert_eq!(
        egress_records(&gw.config_path(), ROUTE),
        Vec::<Value>::new(),
        "nothing was refused"
    );
}
