//! `[auth]` and the rule that a listener beyond loopback needs it.

use std::time::Duration;

use super::{SERVER, error, errors, ok};

#[test]
fn a_minimal_auth_section_takes_every_default() {
    let c = ok("[auth]\nissuer = \"https://idp.example.com/realms/acme\"\n");
    let a = c.auth.expect("auth");
    assert_eq!(a.issuers, ["https://idp.example.com/realms/acme"]);
    assert_eq!(a.audience, None);
    assert_eq!(
        a.algorithms,
        [
            "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"
        ]
    );
    assert_eq!(a.leeway, Duration::from_secs(60));
    assert_eq!(a.groups_claim, "groups");
    assert_eq!(a.max_sessions_per_principal, 100);
    assert!(a.introspection.is_none());
}

#[test]
fn every_key_is_read() {
    let c = ok(r#"[auth]
issuer = ["https://a.example.com", "http://127.0.0.1:3919"]
audience = "HTTPS://MCP.example.com:443/mcp/files/"
scopes_supported = ["mcp:tools", "mcp:read"]
algorithms = ["ES256"]
leeway = "10s"
required_claims = ["email"]
groups_claim = "roles"
strip_headers = ["X-Api-Key"]
max_sessions_per_principal = 5
introspection = { client_id = "gw", secret_env = "INTROSPECTION_SECRET" }
"#);
    let a = c.auth.expect("auth");
    assert_eq!(
        a.issuers,
        ["https://a.example.com", "http://127.0.0.1:3919"]
    );
    assert_eq!(
        a.audience.as_deref(),
        Some("https://mcp.example.com/mcp/files")
    );
    assert_eq!(a.scopes_supported, ["mcp:tools", "mcp:read"]);
    assert_eq!(a.algorithms, ["ES256"]);
    assert_eq!(a.leeway, Duration::from_secs(10));
    assert_eq!(a.required_claims, ["email"]);
    assert_eq!(a.groups_claim, "roles");
    assert_eq!(a.strip_headers, ["x-api-key"]);
    assert_eq!(a.max_sessions_per_principal, 5);
    let i = a.introspection.expect("introspection");
    assert_eq!(
        (i.client_id.as_str(), i.secret_env.as_str()),
        ("gw", "INTROSPECTION_SECRET")
    );
}

#[test]
fn symmetric_and_none_algorithms_are_refused_even_when_configured() {
    let errs = errors(
        "[auth]\nissuer = \"https://idp.example.com\"\nalgorithms = [\"RS256\", \"HS256\", \"none\", \"XY1\"]\n",
    );
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert!(
        errs[0].starts_with("3:24: algorithm \"HS256\" is refused"),
        "{errs:#?}"
    );
    assert!(
        errs[1].starts_with("3:33: algorithm \"none\" is refused"),
        "{errs:#?}"
    );
    assert!(
        errs[2].starts_with("3:41: unknown algorithm \"XY1\""),
        "{errs:#?}"
    );
}

#[test]
fn an_issuer_must_be_https_unless_on_this_machine() {
    assert_eq!(
        error("[auth]\nissuer = \"http://idp.example.com\"\n"),
        "2:10: auth.issuer must be an https:// URL (http:// only for a loopback host), not \"http://idp.example.com\""
    );
    assert!(
        errors("[auth]\n")
            .iter()
            .any(|e| e.contains("[auth] needs `issuer`"))
    );
}

#[test]
fn a_listener_beyond_loopback_without_auth_does_not_load() {
    let e = error(&format!("[gateway]\nlisten = \"0.0.0.0:8440\"\n{SERVER}"));
    assert!(e.starts_with("2:10: gateway.listen 0.0.0.0:8440 is reachable from other machines, and there is no [auth] section"), "{e}");
    assert!(e.contains("insecure_no_auth = true"), "{e}");
    // Either remedy loads.
    ok(&format!(
        "[gateway]\nlisten = \"0.0.0.0:8440\"\ninsecure_no_auth = true\n{SERVER}"
    ));
    ok(&format!(
        "[gateway]\nlisten = \"10.1.2.3:8440\"\n[auth]\nissuer = \"https://idp.example.com\"\n{SERVER}"
    ));
    // Both at once is a contradiction, not a preference.
    assert!(
        error("[gateway]\ninsecure_no_auth = true\n[auth]\nissuer = \"https://idp.example.com\"\n")
            .contains("contradicts the [auth] section")
    );
}

#[test]
fn bad_values_name_their_line() {
    let errs = errors(
        r#"[auth]
issuer = "https://idp.example.com"
leeway = "1h"
strip_headers = ["bad header"]
max_sessions_per_principal = 0
scopes_supported = ["two words"]
jwks_uri = "ftp://x"
"#,
    );
    assert_eq!(errs.len(), 5, "{errs:#?}");
    assert!(
        errs.iter()
            .any(|e| e.starts_with("3:10: auth.leeway must be at most 5m")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("4:18: \"bad header\" is not a valid HTTP header name")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("5:30: auth.max_sessions_per_principal must be between 1")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("6:21: scope \"two words\" is not a valid OAuth scope")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("7:12: auth.jwks_uri must be an http:// or https:// URL")),
        "{errs:#?}"
    );
}

#[test]
fn an_http_server_takes_a_credential_and_a_stdio_server_does_not() {
    let c = ok(r#"[servers.tickets]
url = "https://tickets.example.com/mcp"
credential = { client_credentials = { token_url = "https://idp.example.com/token", client_id = "gw", secret_env = "TICKETS_SECRET", scope = "tickets" } }
"#);
    let crate::config::Upstream::Http(h) = &c.servers["tickets"].upstream else {
        panic!("an HTTP server");
    };
    assert!(matches!(
        h.credential,
        Some(portcullis_auth::upstream::CredentialSpec::ClientCredentials(_))
    ));
    let e = error("[servers.files]\ncommand = [\"x\"]\ncredential = { bearer_env = \"T\" }\n");
    assert!(
        e.starts_with("3:14: `credential` applies only to HTTP servers"),
        "{e}"
    );
}

#[test]
fn a_secret_written_in_the_file_is_refused() {
    let errs = errors(
        "[servers.t]\nurl = \"https://t.example.com/mcp\"\ncredential = { headers = { \"X-Api-Key\" = \"inline-value\" } }\n",
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].starts_with("3:"), "{errs:#?}");
    assert!(
        errs[0].contains("env") && errs[0].contains("file"),
        "{errs:#?}"
    );
}

#[test]
fn check_summarizes_how_callers_are_authenticated() {
    let c = ok("[auth]\nissuer = \"https://idp.example.com\"\nalgorithms = [\"ES256\"]\n");
    assert_eq!(
        c.auth.expect("auth").summary(),
        "Auth: OAuth bearer tokens from https://idp.example.com (audience: each route's URL; ES256); sessions bound to their caller, at most 100 each"
    );
}

#[test]
fn env_secrets_name_their_source_never_a_value_and_each_name_once() {
    let c = ok(
        "[servers.files]\ncommand = [\"x\"]\nenv = { secrets = { HOME = { env = \"FILES_HOME\" }, TOKEN = { file = \"/run/t\" } } }\n",
    );
    let crate::config::Upstream::Stdio(s) = &c.servers["files"].upstream else {
        panic!("a stdio server");
    };
    assert_eq!(s.env.secrets.len(), 2);
    // A secret replaces the default pass-through of the same name.
    assert!(!s.env.pass.contains(&"HOME".to_owned()), "{:?}", s.env.pass);
    let e = error(
        "[servers.files]\ncommand = [\"x\"]\nenv = { set = { T = \"1\" }, secrets = { T = { env = \"X\" } } }\n",
    );
    assert!(e.contains("\"T\" is named twice"), "{e}");
    let errs =
        errors("[servers.files]\ncommand = [\"x\"]\nenv = { secrets = { T = \"inline\" } }\n");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].starts_with("3:"), "{errs:#?}");
}
