//! The config file as written: serde structs that mirror the TOML, with spans kept on every
//! value that a later semantic check may need to point at.
//!
//! Each section is deserialized on its own (see [`parse_document`]), so an unknown key in
//! one server does not hide a mistake in the next: all of them are reported together.
//! `deny_unknown_fields` everywhere: a misspelt key (`comand`, `efect`) must be an error,
//! never a silently ignored setting, least of all in a security policy.

use std::collections::BTreeMap;
use std::ops::Range;

use portcullis_policy::Effect;
use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::auth::RawAuth;
use super::diagnostic::Issues;
use super::units::{RawDuration, RawSize};
use super::{FailureMode, Instances, LogFormat};

/// Every key the config accepts, as a dotted path (`<name>` stands for a server or virtual
/// name). `docs/config.md` must mention each one, and a unit test checks this list against
/// the serde structs below in both directions, so the reference cannot drift from the code.
#[cfg(test)]
pub(crate) const KEYS: &[&str] = &[
    "gateway",
    "gateway.listen",
    "gateway.public_url",
    "gateway.client_metadata_url",
    "gateway.allowed_origins",
    "gateway.allowed_hosts",
    "gateway.max_message_bytes",
    "gateway.request_timeout",
    "gateway.session_idle_timeout",
    "gateway.max_sessions",
    "gateway.worker_threads",
    "gateway.state",
    "gateway.insecure_no_auth",
    "gateway.session_lifetime",
    "gateway.tls",
    "gateway.tls.cert",
    "gateway.tls.key",
    "gateway.behind_proxy",
    "gateway.behind_proxy.trusted",
    "auth",
    "auth.issuer",
    "auth.audience",
    "auth.scopes_supported",
    "auth.jwks_uri",
    "auth.algorithms",
    "auth.leeway",
    "auth.required_claims",
    "auth.groups_claim",
    "auth.strip_headers",
    "auth.max_sessions_per_principal",
    "auth.introspection",
    "auth.introspection.endpoint",
    "auth.introspection.client_id",
    "auth.introspection.secret_env",
    "auth.sign_in",
    "auth.sign_in.client_id",
    "auth.sign_in.secret_env",
    "log",
    "log.level",
    "log.format",
    "log.file",
    "audit",
    "audit.include_args",
    "audit.mirror",
    "limits",
    "limits.rate",
    "limits.burst",
    "egress",
    "egress.allow",
    "egress.http",
    "content",
    "content.sanitize",
    "content.redact",
    "content.secrets_in_arguments",
    "content.allow",
    "content.allow.server",
    "content.allow.tools",
    "content.allow.kinds",
    "content.allow.values",
    "content.open_world",
    "content.open_world.server",
    "content.open_world.tools",
    "approvals",
    "approvals.admin_token",
    "approvals.max_pending",
    "servers",
    "servers.<name>.command",
    "servers.<name>.url",
    "servers.<name>.cwd",
    "servers.<name>.env",
    "servers.<name>.env.pass",
    "servers.<name>.env.set",
    "servers.<name>.env.secrets",
    "servers.<name>.timeout",
    "servers.<name>.instances",
    "servers.<name>.protocol",
    "servers.<name>.restart",
    "servers.<name>.restart.max_backoff",
    "servers.<name>.credential",
    "servers.<name>.roots",
    "servers.<name>.pinning",
    "servers.<name>.definitions",
    "servers.<name>.scan",
    "servers.<name>.scan.warn",
    "servers.<name>.scan.block",
    "servers.<name>.sandbox",
    "servers.<name>.sandbox.read",
    "servers.<name>.sandbox.write",
    "servers.<name>.sandbox.network",
    "servers.<name>.sandbox.memory",
    "servers.<name>.sandbox.processes",
    "servers.<name>.sandbox.files",
    "servers.<name>.sandbox.cpu_seconds",
    "servers.<name>.sandbox.required",
    "servers.<name>.consent",
    "servers.<name>.consent.channels",
    "servers.<name>.consent.timeout",
    "servers.<name>.consent.trust_elicitation",
    "servers.<name>.consent.remember",
    "servers.<name>.consent.for_tool",
    "servers.<name>.consent.always_ttl",
    "virtual",
    "virtual.<name>.servers",
    "virtual.<name>.on_upstream_failure",
    "rules",
    "rules.server",
    "rules.tools",
    "rules.prompts",
    "rules.resources",
    "rules.principals",
    "rules.when",
    "rules.scopes",
    "rules.paths",
    "rules.roots",
    "rules.urls",
    "rules.hosts",
    "rules.max_arg_bytes",
    "rules.rate",
    "rules.burst",
    "rules.effect",
    "rules.consent",
    "rules.consent.channels",
    "rules.consent.timeout",
    "rules.consent.trust_elicitation",
    "rules.consent.remember",
    "rules.consent.for_tool",
    "rules.consent.always_ttl",
];

/// The top-level tables, in the order the reference documents them.
pub(crate) const TOP_LEVEL: &[&str] = &[
    "gateway",
    "auth",
    "log",
    "audit",
    "limits",
    "egress",
    "approvals",
    "content",
    "servers",
    "virtual",
    "rules",
];

/// A list whose elements each keep their span, and which keeps its own (to point at an
/// empty list).
pub(crate) type SpannedList = Spanned<Vec<Spanned<String>>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [gateway] table")]
pub(crate) struct RawGateway {
    pub listen: Option<Spanned<String>>,
    pub public_url: Option<Spanned<String>>,
    pub client_metadata_url: Option<Spanned<String>>,
    pub allowed_origins: Option<Vec<Spanned<String>>>,
    pub allowed_hosts: Option<Vec<Spanned<String>>>,
    pub max_message_bytes: Option<Spanned<RawSize>>,
    pub request_timeout: Option<Spanned<RawDuration>>,
    pub session_idle_timeout: Option<Spanned<RawDuration>>,
    pub max_sessions: Option<Spanned<i64>>,
    pub worker_threads: Option<Spanned<i64>>,
    pub state: Option<Spanned<String>>,
    pub insecure_no_auth: Option<Spanned<bool>>,
    pub session_lifetime: Option<Spanned<RawDuration>>,
    pub tls: Option<super::tls::RawTls>,
    pub behind_proxy: Option<super::tls::RawBehindProxy>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [log] table")]
pub(crate) struct RawLog {
    pub level: Option<Spanned<String>>,
    pub format: Option<LogFormat>,
    pub file: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [audit] table")]
pub(crate) struct RawAudit {
    pub include_args: Option<bool>,
    pub mirror: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [limits] table")]
pub(crate) struct RawLimits {
    pub rate: Option<Spanned<String>>,
    pub burst: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a server table ([servers.<name>])")]
pub(crate) struct RawServer {
    pub command: Option<SpannedList>,
    pub url: Option<Spanned<String>>,
    pub cwd: Option<Spanned<String>>,
    pub env: Option<Spanned<RawEnv>>,
    pub timeout: Option<Spanned<RawDuration>>,
    pub instances: Option<Spanned<Instances>>,
    pub protocol: Option<Spanned<String>>,
    pub restart: Option<Spanned<RawRestart>>,
    pub credential: Option<Spanned<portcullis_auth::upstream::CredentialSpec>>,
    pub roots: Option<SpannedList>,
    pub pinning: Option<Spanned<String>>,
    /// `definitions`: tool definition pinning (`tofu`, `strict`, `off`).
    pub definitions: Option<Spanned<String>>,
    /// `scan`: what description-scan findings do (`{ warn, block }` severities).
    pub scan: Option<Spanned<super::scan::RawScan>>,
    pub sandbox: Option<Spanned<super::sandbox::RawSandboxSetting>>,
    /// How calls held by consent rules about this server are put to a person.
    pub consent: Option<Spanned<super::consent::RawConsent>>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an env table such as { pass = [\"PATH\"], set = { DEBUG = \"1\" }, secrets = { API_TOKEN = { env = \"MY_TOKEN\" } } }"
)]
pub(crate) struct RawEnv {
    pub pass: Option<Vec<Spanned<String>>>,
    pub set: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
    pub secrets:
        Option<BTreeMap<Spanned<String>, Spanned<portcullis_auth::upstream::SecretSource>>>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a restart table such as { max_backoff = \"30s\" }"
)]
pub(crate) struct RawRestart {
    pub max_backoff: Option<Spanned<RawDuration>>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a virtual server table ([virtual.<name>])"
)]
pub(crate) struct RawVirtual {
    pub servers: SpannedList,
    pub on_upstream_failure: Option<FailureMode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a rule table ([[rules]])")]
pub(crate) struct RawRule {
    pub server: Option<Spanned<String>>,
    pub tools: Option<SpannedList>,
    pub prompts: Option<SpannedList>,
    pub resources: Option<SpannedList>,
    pub principals: Option<SpannedList>,
    pub when: Option<Spanned<String>>,
    pub scopes: Option<SpannedList>,
    pub paths: Option<SpannedList>,
    pub roots: Option<SpannedList>,
    pub urls: Option<SpannedList>,
    pub hosts: Option<SpannedList>,
    pub max_arg_bytes: Option<Spanned<RawSize>>,
    pub rate: Option<Spanned<String>>,
    pub burst: Option<Spanned<i64>>,
    pub effect: Spanned<Effect>,
    /// How the calls this consent rule holds are put to a person (taken out by `validate`).
    pub consent: Option<Spanned<super::consent::RawConsent>>,
}

/// A table entry keyed by a name that itself needs checking (server and virtual names).
#[derive(Debug)]
pub(crate) struct Named<T> {
    pub name: String,
    pub name_span: Range<usize>,
    pub value: T,
}

/// A rule with its position among the `[[rules]]` and the span of its table, for its
/// origin.
#[derive(Debug)]
pub(crate) struct RawRuleAt {
    pub index: usize,
    pub span: Range<usize>,
    pub rule: RawRule,
}

/// The whole document. A section that failed to deserialize is absent here and its errors
/// are in the [`Issues`]; validation still runs on the rest, and reports what it finds.
#[derive(Debug, Default)]
pub(crate) struct RawConfig {
    pub gateway: RawGateway,
    /// `[auth]` and the span of its key.
    pub auth: Option<(Range<usize>, RawAuth)>,
    pub log: RawLog,
    pub audit: RawAudit,
    pub limits: RawLimits,
    pub egress: super::egress::RawEgress,
    pub content: super::content::RawContent,
    /// `[approvals]` and the span of its key.
    pub approvals: Option<(Range<usize>, super::approvals::RawApprovals)>,
    pub servers: Vec<Named<RawServer>>,
    /// Server names whose table failed to deserialize: they still count as configured, so
    /// that rules naming them do not get a second, misleading "unknown server" error.
    pub broken_servers: Vec<String>,
    pub virtuals: Vec<Named<RawVirtual>>,
    pub rules: Vec<RawRuleAt>,
}

/// Parses the TOML text and deserializes each section separately, collecting every error.
/// Returns `None` only for a TOML syntax error, after which nothing else can be trusted.
pub(crate) fn parse_document(text: &str, issues: &mut Issues) -> Option<RawConfig> {
    let doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(err) => {
            issues.toml(&err, 0..0);
            return None;
        }
    };
    let mut raw = RawConfig::default();
    for (key, value) in doc.into_inner() {
        let key_span = key.span();
        match key.get_ref().as_ref() {
            "gateway" => raw.gateway = section(value, issues).unwrap_or_default(),
            "auth" => {
                // A broken [auth] still counts as present: the gateway must not then start
                // without authentication (the load fails anyway, with the section's errors).
                raw.auth = Some((key_span, section(value, issues).unwrap_or_default()));
            }
            "log" => raw.log = section(value, issues).unwrap_or_default(),
            "audit" => raw.audit = section(value, issues).unwrap_or_default(),
            "limits" => raw.limits = section(value, issues).unwrap_or_default(),
            "egress" => raw.egress = section(value, issues).unwrap_or_default(),
            "content" => raw.content = section(value, issues).unwrap_or_default(),
            "approvals" => {
                raw.approvals = section(value, issues).map(|a| (key_span, a));
            }
            "servers" => {
                for entry in named_entries(value, "servers", "[servers.<name>]", issues) {
                    match section(entry.value, issues) {
                        Some(server) => raw.servers.push(Named {
                            name: entry.name,
                            name_span: entry.name_span,
                            value: server,
                        }),
                        None => raw.broken_servers.push(entry.name),
                    }
                }
            }
            "virtual" => {
                for entry in named_entries(value, "virtual", "[virtual.<name>]", issues) {
                    if let Some(v) = section(entry.value, issues) {
                        raw.virtuals.push(Named {
                            name: entry.name,
                            name_span: entry.name_span,
                            value: v,
                        });
                    }
                }
            }
            "rules" => raw.rules = rules(value, issues),
            other => issues.at(
                key_span,
                format!(
                    "unknown field `{other}`, expected one of {}",
                    TOP_LEVEL
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        }
    }
    Some(raw)
}

/// Most unknown keys reported in one section before giving up on it.
const MAX_UNKNOWN_KEYS: usize = 32;

/// Deserializes one section, recording its errors (which `toml` places on the offending
/// key or value). An unknown key is reported, removed, and the section tried again, so
/// that every misspelt key is reported at once and the rest of the section is still
/// checked; any other error gives up on the section.
fn section<T: for<'de> Deserialize<'de>>(
    value: Spanned<DeValue<'_>>,
    issues: &mut Issues,
) -> Option<T> {
    let span = value.span();
    let mut value = value;
    for _ in 0..MAX_UNKNOWN_KEYS {
        let err = match T::deserialize(toml::de::ValueDeserializer::from(value.clone())) {
            Ok(v) => return Some(v),
            Err(err) => err,
        };
        issues.toml(&err, span.clone());
        let unknown_key = err.message().starts_with("unknown field");
        match err.span() {
            Some(at) if unknown_key && remove_entry_at(value.get_mut(), at.start) => {}
            _ => return None,
        }
    }
    None
}

/// Removes the table entry whose key starts at byte `offset`, searching nested tables and
/// arrays of tables. Returns whether one was found.
fn remove_entry_at(value: &mut DeValue<'_>, offset: usize) -> bool {
    match value {
        DeValue::Table(table) => {
            let hit = table
                .iter()
                .find(|(key, _)| key.span().start == offset)
                .map(|(key, _)| key.get_ref().to_string());
            match hit {
                Some(name) => table.remove(name.as_str()).is_some(),
                None => table
                    .iter_mut()
                    .any(|(_, v)| remove_entry_at(v.get_mut(), offset)),
            }
        }
        DeValue::Array(items) => items
            .iter_mut()
            .any(|v| remove_entry_at(v.get_mut(), offset)),
        _ => false,
    }
}

/// The entries of a table of named tables (`[servers.<name>]`, `[virtual.<name>]`).
fn named_entries<'i>(
    value: Spanned<DeValue<'i>>,
    key: &str,
    form: &str,
    issues: &mut Issues,
) -> Vec<Named<Spanned<DeValue<'i>>>> {
    let span = value.span();
    match value.into_inner() {
        DeValue::Table(table) => table
            .into_iter()
            .map(|(name, value)| Named {
                name_span: name.span(),
                name: name.into_inner().into_owned(),
                value,
            })
            .collect(),
        _ => {
            issues.at(
                span,
                format!("`{key}` must be a table of named tables: write {form}"),
            );
            Vec::new()
        }
    }
}

/// The `[[rules]]` array, each rule deserialized on its own.
fn rules(value: Spanned<DeValue<'_>>, issues: &mut Issues) -> Vec<RawRuleAt> {
    let span = value.span();
    match value.into_inner() {
        DeValue::Array(items) => items
            .into_iter()
            .enumerate()
            .filter_map(|(index, item)| {
                let span = item.span();
                section(item, issues).map(|rule| RawRuleAt { index, span, rule })
            })
            .collect(),
        _ => {
            issues.at(
                span,
                "`rules` must be an array of tables: write each rule as [[rules]]",
            );
            Vec::new()
        }
    }
}
