//! `gateway.behind_proxy` on the real `portcullis serve`: forwarding headers change the
//! gateway's view of a request (here: the host the Host check sees) only when the TCP peer
//! is a trusted proxy. The tests connect from 127.0.0.1, which one gateway trusts and the
//! other does not.

#![allow(clippy::unwrap_used)] // test helpers: a failure there is a failed test

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::json;

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"proxy-tests","version":"0"}}}"#;

/// A gateway that trusts `trusted` as proxies and accepts Host `mcp.example.com`.
fn gateway(trusted: &str) -> support::Gateway {
    support::Gateway::start(&format!(
        "[gateway]\nallowed_hosts = [\"mcp.example.com\"]\nbehind_proxy = {{ trusted = [{trusted}] }}\n\n{}\n[[rules]]\nserver = \"fx\"\ntools = [\"*\"]\neffect = \"allow\"\n",
        support::fixture_stdio_server("fx")
    ))
}

/// The status of an `initialize` POST with these extra headers.
async fn initialize_status(gw: &support::Gateway, headers: &[(&str, &str)]) -> u16 {
    let http = support::RawHttp::new(&gw.url("fx"));
    http.post_with(INITIALIZE, headers).await.status
}

/// The proxy's own Host: an internal name the gateway does not accept by itself.
const INTERNAL_HOST: (&str, &str) = ("host", "portcullis.internal:8440");

#[tokio::test(flavor = "multi_thread")]
async fn a_trusted_proxy_s_forwarded_host_is_what_the_host_check_sees() {
    let gw = gateway("\"127.0.0.1\"");
    // The internal Host alone is refused...
    assert_eq!(initialize_status(&gw, &[INTERNAL_HOST]).await, 403);
    // ...and passes when the trusted proxy says the client asked for mcp.example.com.
    let forwarded = [
        INTERNAL_HOST,
        ("x-forwarded-host", "mcp.example.com"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-for", "203.0.113.7"),
    ];
    assert_eq!(initialize_status(&gw, &forwarded).await, 200);
    // RFC 7239 `Forwarded` works the same way.
    let rfc7239 = [
        INTERNAL_HOST,
        (
            "forwarded",
            "for=203.0.113.7;proto=https;host=mcp.example.com",
        ),
    ];
    assert_eq!(initialize_status(&gw, &rfc7239).await, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trusted_proxy_cannot_smuggle_a_host_the_gateway_does_not_accept() {
    let gw = gateway("\"127.0.0.1\"");
    let host = gw.base.trim_start_matches("http://").to_owned();
    // The raw Host is fine, but the client asked for another site: DNS rebinding through
    // the proxy is refused like any other.
    let rebinding = [
        ("host", host.as_str()),
        ("x-forwarded-host", "evil.example.com"),
    ];
    assert_eq!(initialize_status(&gw, &rebinding).await, 403);
    // A header the proxy got wrong is an error, not a guess.
    for bad in [
        ("x-forwarded-proto", "gopher"),
        ("x-forwarded-host", "mcp.example.com, evil.example.com"),
        ("x-forwarded-host", "not a host"),
        ("forwarded", "for=203.0.113.7;host"),
    ] {
        assert_eq!(
            initialize_status(&gw, &[("host", host.as_str()), bad]).await,
            400,
            "{bad:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_forwarding_headers_from_an_untrusted_peer_are_ignored() {
    // 127.0.0.1 is not in 10.0.0.0/8: the test client is an untrusted peer.
    let gw = gateway("\"10.0.0.0/8\"");
    let forged = [
        INTERNAL_HOST,
        ("x-forwarded-host", "mcp.example.com"),
        ("x-forwarded-proto", "https"),
    ];
    assert_eq!(initialize_status(&gw, &forged).await, 403);
    let forged_rfc7239 = [
        INTERNAL_HOST,
        ("forwarded", "for=10.0.0.1;host=mcp.example.com"),
    ];
    assert_eq!(initialize_status(&gw, &forged_rfc7239).await, 403);
    // Nor do forged headers break a request whose own Host is fine: they are dropped.
    let host = gw.base.trim_start_matches("http://").to_owned();
    let harmless = [
        ("host", host.as_str()),
        ("x-forwarded-host", "evil.example.com"),
        ("x-forwarded-proto", "gopher"),
    ];
    assert_eq!(initialize_status(&gw, &harmless).await, 200);
    // A whole session works as usual.
    let mut mcp = support::RawHttp::new(&gw.url("fx"));
    mcp.initialize(json!({})).await;
    let list = mcp.request(1, "tools/list", json!({})).await;
    assert!(list["result"]["tools"].is_array(), "{list}");
}

/// `portcullis check` on `text`; (exit code, stdout, stderr, config path).
fn check(text: &str) -> (Option<i32>, String, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.toml");
    std::fs::write(&path, text).unwrap();
    let mut cmd = Command::new(support::portcullis_bin());
    cmd.args(["check", "--config"]).arg(&path);
    let (code, out, err) = support::run_code_with_timeout(cmd, Duration::from_secs(30));
    (code, out, err, path.display().to_string())
}

#[test]
fn check_prints_the_proxy_trust_list() {
    let (code, out, err, _) = check(
        "[gateway]\nbehind_proxy = { trusted = [\"127.0.0.1\", \"10.0.0.0/8\", \"fd00::/8\"] }\n",
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("believed from 127.0.0.1, 10.0.0.0/8, fd00::/8 only"),
        "{out}"
    );
}

#[test]
fn a_bad_proxy_range_is_an_error_naming_its_line() {
    let text = "[gateway]\nbehind_proxy = { trusted = [\"127.0.0.1\",\n  \"10.1.0.0/8\", \"0.0.0.0/0\", \"proxy.internal\"] }\n";
    let (code, _, err, path) = check(text);
    assert_eq!(code, Some(2), "{err}");
    for (needle, why) in [
        ("\"10.1.0.0/8\"", "did you mean 10.0.0.0/8"),
        ("\"0.0.0.0/0\"", "trusts every address"),
        ("\"proxy.internal\"", "invalid proxy address"),
    ] {
        let at = text.find(needle).unwrap();
        let line = text[..at].matches('\n').count() + 1;
        let col = at - text[..at].rfind('\n').map_or(0, |n| n + 1) + 1;
        let prefix = format!("{path}:{line}:{col}: ");
        assert!(
            err.lines()
                .any(|l| l.starts_with(&prefix) && l.contains(why)),
            "{needle}: {err}"
        );
    }
    let (code, _, err, _) = check("[gateway]\nbehind_proxy = { trusted = [] }\n");
    assert_eq!(code, Some(2));
    assert!(err.contains(":2:") && err.contains("at least one"), "{err}");
}
