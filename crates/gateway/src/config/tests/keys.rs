//! The key reference (docs/config.md), the `KEYS` list and the serde structs agree.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{Deserialize, Visitor};
use toml::de::{DeTable, DeValue};

use super::super::auth::{RawAuth, RawIntrospection, RawSignIn};
use super::super::raw::{
    KEYS, RawAudit, RawEnv, RawGateway, RawLimits, RawLog, RawRestart, RawRule, RawServer,
    RawVirtual, TOP_LEVEL,
};
use super::super::sandbox::RawSandbox;
use super::super::tls::{RawBehindProxy, RawTls};
use super::ok;

const DOCS: &str = include_str!("../../../../../docs/config.md");

/// A config that sets every key.
const EVERY_KEY: &str = r#"
[gateway]
listen = "127.0.0.1:8440"
public_url = "https://mcp.example.com"
client_metadata_url = "https://mcp.example.com/oauth/client-metadata.json"
allowed_origins = ["https://app.example.com"]
allowed_hosts = ["mcp.example.com"]
max_message_bytes = "4MiB"
request_timeout = "60s"
session_idle_timeout = "30m"
max_sessions = 100
worker_threads = 2
state = "sqlite:state/portcullis.db"
insecure_no_auth = false
session_lifetime = "24h"
tls = { cert = "src/config/tests/tls/test-only-cert.pem", key = "src/config/tests/tls/test-only-key.pem" }
behind_proxy = { trusted = ["127.0.0.1", "10.0.0.0/8"] }

[auth]
issuer = "https://idp.example.com"
audience = "https://mcp.example.com/mcp/files"
scopes_supported = ["mcp:tools"]
jwks_uri = "https://idp.example.com/jwks"
algorithms = ["RS256", "ES256"]
leeway = "60s"
required_claims = ["email"]
groups_claim = "groups"
strip_headers = ["X-Api-Key"]
max_sessions_per_principal = 100
introspection = { endpoint = "https://idp.example.com/introspect", client_id = "gateway", secret_env = "INTROSPECTION_SECRET" }
sign_in = { client_id = "portcullis-browser", secret_env = "SIGN_IN_SECRET" }

[log]
level = "info"
format = "json"
file = "portcullis.log"

[audit]
include_args = false
mirror = "stderr"

[limits]
rate = "100/minute"
burst = 20

[egress]
allow = ["10.1.2.3/32", "idp.internal:443", "127.0.0.1:8080"]
http = ["127.0.0.1", "localhost"]

[content]
sanitize = "escape"
redact = true
secrets_in_arguments = "consent"

[[content.allow]]
server = "files"
tools = ["read_*"]
kinds = ["jwt"]
values = ["not-a-secret-0123456789"]

[[content.open_world]]
server = "tickets"
tools = ["create_*"]

[approvals]
admin_token = { env = "PORTCULLIS_ADMIN_TOKEN" }
max_pending = 100

[servers.files]
command = ["files-server", "/srv"]
cwd = "/srv"
env = { pass = ["PATH"], set = { DEBUG = "1" }, secrets = { API_TOKEN = { env = "FILES_TOKEN" } } }
timeout = "30s"
instances = "per-session"
protocol = "2025-11-25"
restart = { max_backoff = "30s" }
roots = ["/srv"]
pinning = "required"
sandbox = { read = ["/opt/data"], write = ["/srv/out"], network = { allow = ["api.example.com:443"] }, memory = "512M", processes = 64, files = 256, cpu_seconds = 600, required = true }
consent = { channels = ["approvals", "tty"], timeout = "5m", trust_elicitation = false, remember = ["once", "session", "always"], for_tool = true, always_ttl = "8h" }

[servers.tickets]
url = "https://tickets.example.com/mcp"
credential = { bearer_env = "TICKETS_TOKEN" }
definitions = "strict"
scan = { warn = "medium", block = "critical" }

[virtual.work]
servers = ["files", "tickets"]
on_upstream_failure = "fail"

[[rules]]
server = "files"
tools = ["read_*"]
prompts = ["greeting"]
resources = ["file:///srv/*"]
effect = "allow"

[[rules]]
server = "files"
tools = ["fetch"]
principals = ["sub:alice", "group:admins"]
when = 'args.path.startsWith("/srv/")'
scopes = ["files:read"]
paths = ["args.path"]
roots = ["/srv"]
urls = ["args.url"]
hosts = ["*.example.com"]
max_arg_bytes = "64KiB"
rate = "10/minute"
burst = 5
effect = "allow"

[[rules]]
server = "files"
tools = ["write_*"]
effect = "consent"
consent = { channels = ["elicitation", "approvals"], timeout = "2m", trust_elicitation = true, remember = ["once", "session"], for_tool = false, always_ttl = "1h" }
"#;

/// A deserializer that only records which fields a struct asks for.
struct FieldProbe;

#[derive(Debug)]
struct Fields(Vec<&'static str>);

impl fmt::Display for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::error::Error for Fields {}

impl serde::de::Error for Fields {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Fields(Vec::new())
    }
}

impl<'de> serde::Deserializer<'de> for FieldProbe {
    type Error = Fields;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Fields> {
        Err(Fields(Vec::new()))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Fields> {
        Err(Fields(fields.to_vec()))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The field names of a serde struct, prefixed with `prefix`.
fn fields<T: for<'de> Deserialize<'de>>(prefix: &str) -> Vec<String> {
    match T::deserialize(FieldProbe) {
        Err(Fields(f)) if !f.is_empty() => f.iter().map(|f| format!("{prefix}{f}")).collect(),
        _ => panic!("{prefix}: not a struct"),
    }
}

#[test]
fn keys_list_matches_the_serde_structs_exactly() {
    let mut from_structs: BTreeSet<String> = TOP_LEVEL.iter().map(|k| k.to_string()).collect();
    from_structs.extend(fields::<RawGateway>("gateway."));
    from_structs.extend(fields::<RawTls>("gateway.tls."));
    from_structs.extend(fields::<RawBehindProxy>("gateway.behind_proxy."));
    from_structs.extend(fields::<RawAuth>("auth."));
    from_structs.extend(fields::<RawIntrospection>("auth.introspection."));
    from_structs.extend(fields::<RawSignIn>("auth.sign_in."));
    from_structs.extend(fields::<RawLog>("log."));
    from_structs.extend(fields::<RawAudit>("audit."));
    from_structs.extend(fields::<RawLimits>("limits."));
    from_structs.extend(fields::<crate::config::egress::RawEgress>("egress."));
    from_structs.extend(fields::<crate::config::content::RawContent>("content."));
    from_structs.extend(fields::<crate::config::content::RawContentAllow>(
        "content.allow.",
    ));
    from_structs.extend(fields::<crate::config::content::RawOpenWorld>(
        "content.open_world.",
    ));
    from_structs.extend(fields::<crate::config::approvals::RawApprovals>(
        "approvals.",
    ));
    from_structs.extend(fields::<RawServer>("servers.<name>."));
    from_structs.extend(fields::<RawEnv>("servers.<name>.env."));
    from_structs.extend(fields::<RawRestart>("servers.<name>.restart."));
    from_structs.extend(fields::<RawSandbox>("servers.<name>.sandbox."));
    from_structs.extend(fields::<RawVirtual>("virtual.<name>."));
    from_structs.extend(fields::<RawRule>("rules."));
    from_structs.extend(fields::<crate::config::scan::RawScan>(
        "servers.<name>.scan.",
    ));
    from_structs.extend(fields::<crate::config::consent::RawConsent>(
        "servers.<name>.consent.",
    ));
    from_structs.extend(fields::<crate::config::consent::RawConsent>(
        "rules.consent.",
    ));
    let listed: BTreeSet<String> = KEYS.iter().map(|k| k.to_string()).collect();
    assert_eq!(listed.len(), KEYS.len(), "KEYS has duplicates");
    assert_eq!(from_structs, listed);
}

#[test]
fn docs_mention_every_key() {
    let missing: Vec<&str> = KEYS
        .iter()
        .copied()
        .filter(|k| !DOCS.contains(&format!("`{k}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/config.md does not mention {missing:?}"
    );
}

/// Collects the dotted key paths used in a TOML value, with server and virtual names as
/// `<name>`; user-chosen keys (`env.set` variables) are not descended into, nor is a
/// `credential` (its forms are the auth crate's, documented in their own table) or a
/// sandbox's `network` (a word or `{ allow = [...] }`, documented with it).
fn paths(prefix: &str, value: &DeValue<'_>, out: &mut BTreeSet<String>) {
    match value {
        DeValue::Table(table) => {
            for (key, v) in table.iter() {
                let key = key.get_ref();
                let named = prefix == "servers" || prefix == "virtual";
                let path = match (prefix, named) {
                    ("", _) => key.to_string(),
                    (p, true) => format!("{p}.<name>"),
                    (p, false) => format!("{p}.{key}"),
                };
                if !named {
                    out.insert(path.clone());
                }
                if !path.ends_with("env.set")
                    && !path.ends_with("env.secrets")
                    && !path.ends_with(".credential")
                    && path != "approvals.admin_token"
                    && !path.ends_with("sandbox.network")
                {
                    paths(&path, v.get_ref(), out);
                }
            }
        }
        DeValue::Array(items) if prefix == "rules" || prefix.starts_with("content.") => {
            for item in items.iter() {
                paths(prefix, item.get_ref(), out);
            }
        }
        _ => {}
    }
}

#[test]
fn a_config_using_every_key_parses() {
    let config = ok(EVERY_KEY);
    assert_eq!(config.servers.len(), 2);
    let doc = DeTable::parse(EVERY_KEY).expect("valid TOML");
    let mut used = BTreeSet::new();
    paths("", &DeValue::Table(doc.into_inner()), &mut used);
    let listed: BTreeSet<String> = KEYS.iter().map(|k| k.to_string()).collect();
    assert_eq!(used, listed, "EVERY_KEY must use exactly the keys in KEYS");
}
