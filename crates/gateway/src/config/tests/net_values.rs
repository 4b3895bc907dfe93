//! Listen addresses, URLs, origins and hosts are normalized to what the gateway compares.

use super::ok;

#[test]
fn origins_are_normalized_as_browsers_send_them() {
    let c = ok(
        "[gateway]\nallowed_origins = [\"HTTPS://App.Example.com:443\", \"http://localhost:3000/\", \"https://app.example.com\"]\n",
    );
    assert_eq!(
        c.gateway.allowed_origins,
        ["https://app.example.com", "http://localhost:3000"]
    );
}

#[test]
fn hosts_are_lowercased_and_keep_explicit_ports() {
    let c = ok(
        "[gateway]\nallowed_hosts = [\"MCP.example.com\", \"mcp.example.com:8443\", \"10.0.0.5\", \"[::1]:80\"]\n",
    );
    assert_eq!(
        c.gateway.allowed_hosts,
        [
            "mcp.example.com",
            "mcp.example.com:8443",
            "10.0.0.5",
            "[::1]:80"
        ]
    );
}

#[test]
fn public_url_is_stored_without_trailing_slash_and_yields_its_host() {
    let c = ok("[gateway]\npublic_url = \"https://MCP.example.com/\"\n");
    assert_eq!(
        c.gateway.public_url.as_deref(),
        Some("https://mcp.example.com")
    );
    assert_eq!(c.gateway.public_host().as_deref(), Some("mcp.example.com"));
    let c = ok("[gateway]\npublic_url = \"https://mcp.example.com:8443/gw\"\n");
    assert_eq!(
        c.gateway.public_url.as_deref(),
        Some("https://mcp.example.com:8443/gw")
    );
    assert_eq!(
        c.gateway.public_host().as_deref(),
        Some("mcp.example.com:8443")
    );
}

#[test]
fn listen_accepts_ipv4_and_ipv6() {
    let c = ok("[gateway]\nlisten = \"[::1]:9000\"\n");
    assert_eq!(c.gateway.listen.to_string(), "[::1]:9000");
    assert!(c.gateway.listens_on_loopback());
    let c = ok("[gateway]\nlisten = \"0.0.0.0:9000\"\ninsecure_no_auth = true\n");
    assert!(!c.gateway.listens_on_loopback());
}

#[test]
fn upstream_urls_are_normalized() {
    let c = ok(
        "[servers.a]\nurl = \"HTTPS://Tickets.Example.com:443/mcp?tenant=1\"\n[servers.b]\nurl = \"http://[::1]:3001\"\n[servers.c]\nurl = \"http://127.0.0.1:80/mcp\"\n",
    );
    let url = |name: &str| match &c.servers[name].upstream {
        super::super::Upstream::Http(h) => h.url.clone(),
        super::super::Upstream::Stdio(_) => String::new(),
    };
    assert_eq!(url("a"), "https://tickets.example.com/mcp?tenant=1");
    assert_eq!(url("b"), "http://[::1]:3001/");
    assert_eq!(url("c"), "http://127.0.0.1/mcp");
}

#[test]
fn url_hosts_must_be_ascii_names_or_addresses() {
    for bad in [
        "https://exämple.com/mcp",
        "https://a..b/mcp",
        "https://[::g]/mcp",
        "https://host:99999/mcp",
        "https:///mcp",
        "https://host:/mcp",
    ] {
        let text = format!("[servers.a]\nurl = \"{bad}\"\n");
        assert!(super::parse(&text).is_err(), "{bad} should be refused");
    }
}
