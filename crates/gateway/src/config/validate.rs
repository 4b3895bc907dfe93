//! From the raw sections to [`Config`]: every semantic check that needs more than serde.
//!
//! Checks never stop at the first problem; each records an issue at the offending value's
//! span and carries on with a default, so one load reports everything wrong with a file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::diagnostic::{Issues, LineIndex};
use super::raw::{Named, RawConfig, RawGateway, RawLog, RawVirtual};
use super::units::{RawDuration, RawSize, format_duration, format_size, parse_duration};
use super::{
    Config, ConfigSource, GatewayConfig, LogConfig, MAX_DURATION, MAX_MESSAGE_BYTES,
    MAX_SESSIONS_LIMIT, MIN_MESSAGE_BYTES, VirtualConfig, net, rules, sections,
};

/// Longest server or virtual name.
pub(crate) const MAX_NAME_LEN: usize = 64;

/// Builds the config, recording every problem in `issues`. The result is only meaningful
/// when `issues` stays empty.
pub(crate) fn build(
    mut raw: RawConfig,
    source: ConfigSource,
    file: &str,
    text: &str,
    issues: &mut Issues,
) -> Config {
    // Paths in the file (state, audit mirror) are relative to the file's directory.
    let base: Option<PathBuf> = match &source {
        ConfigSource::File(path) => path
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .map(Path::to_path_buf),
        ConfigSource::Embedded(_) => None,
    };
    let listen_span = raw.gateway.listen.as_ref().map(|l| l.span());
    let insecure_span = raw.gateway.insecure_no_auth.as_ref().map(|l| l.span());
    let gateway = gateway(raw.gateway, base.as_deref(), issues);
    let auth_span = raw.auth.as_ref().map(|(span, _)| span.clone());
    let auth = raw
        .auth
        .map(|(span, raw)| super::auth::auth(raw, span, issues));
    if auth.is_none() && !gateway.listens_on_loopback() && !gateway.insecure_no_auth {
        issues.at(
            listen_span.unwrap_or(0..0),
            format!(
                "gateway.listen {} is reachable from other machines, and there is no [auth] section: anyone who can reach it could use every server. Configure [auth], or write `insecure_no_auth = true` in [gateway] to accept that risk",
                gateway.listen
            ),
        );
    }
    if let (Some(span), Some(_), true) = (insecure_span, &auth, gateway.insecure_no_auth) {
        issues.at(
            span,
            "gateway.insecure_no_auth contradicts the [auth] section: remove one of them",
        );
    }
    let log = log(raw.log, issues);
    let audit = sections::audit(raw.audit, base.as_deref(), issues);
    let limits = sections::limits(raw.limits, issues);
    let egress = super::egress::egress(raw.egress, issues);
    let approvals = raw
        .approvals
        .and_then(|(span, a)| super::approvals::approvals(a, span, base.as_deref(), issues));

    // Every server named in the file counts as known, even one with errors of its own, so a
    // mistake in a server is reported once, not again at each rule that names it.
    let names: Vec<String> = raw
        .servers
        .iter()
        .map(|s| s.name.clone())
        .chain(raw.broken_servers)
        .collect();
    let known: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    let content = super::content::content(raw.content, &known, issues);
    let mut consent = super::consent::ConsentConfig::default();
    for server in &mut raw.servers {
        if let Some(c) = server.value.consent.take() {
            let key = format!("servers.{}.consent", server.name);
            let o = super::consent::overrides(c.into_inner(), &key, issues);
            consent.servers.insert(server.name.clone(), o);
        }
    }
    for rule in &mut raw.rules {
        let effect = *rule.rule.effect.get_ref();
        if effect == portcullis_policy::Effect::Consent {
            let rule_text = text.get(rule.span.clone()).unwrap_or_default();
            let key = super::consent::rule_key(rule.index + 1, rule_text);
            consent.rule_keys.insert(rule.index, key);
        }
        if let Some(c) = rule.rule.consent.take()
            && let Some(o) = super::consent::rule_overrides(c, rule.index + 1, effect, issues)
        {
            consent.rules.insert(rule.index, o);
        }
    }
    let mut servers = BTreeMap::new();
    for server in raw.servers {
        if let Some(s) = super::servers::server(server, gateway.request_timeout, issues) {
            servers.insert(s.name.clone(), s);
        }
    }

    if let (Some(span), Some(a)) = (auth_span, &auth)
        && a.sign_in.is_none()
    {
        super::auth::require_sign_in(&servers, span, issues);
    }

    let mut virtuals = BTreeMap::new();
    for v in raw.virtuals {
        let v = virtual_server(v, &known, issues);
        virtuals.insert(v.name.clone(), v);
    }

    let lines = LineIndex::new(text);
    let policy = rules::policy(
        raw.rules,
        &known,
        &servers,
        &virtuals,
        Arc::from(file),
        &lines,
        issues,
    );

    Config {
        source,
        gateway,
        auth,
        log,
        audit,
        limits,
        egress,
        content,
        approvals,
        servers,
        virtuals,
        policy,
        consent,
        run_mode: super::RunMode::default(),
    }
}

fn gateway(raw: RawGateway, base: Option<&Path>, issues: &mut Issues) -> GatewayConfig {
    let mut g = GatewayConfig::default();
    if let Some(state) = raw
        .state
        .as_ref()
        .and_then(|s| sections::state(s, base, issues))
    {
        g.state = state;
    }
    if let Some(listen) = raw.listen {
        match net::listen_address(listen.get_ref()) {
            Ok(addr) => g.listen = addr,
            Err(e) => issues.at(listen.span(), e),
        }
    }
    if let Some(url) = raw.public_url {
        match net::public_url(url.get_ref()) {
            Ok(url) => g.public_url = Some(url),
            Err(e) => issues.at(url.span(), e),
        }
    }
    if let Some(url) = raw.client_metadata_url {
        match net::client_metadata_url(url.get_ref()) {
            Ok(url) => g.client_metadata_url = Some(url),
            Err(e) => issues.at(url.span(), e),
        }
    }
    for origin in raw.allowed_origins.unwrap_or_default() {
        match net::origin(origin.get_ref()) {
            Ok(o) if !g.allowed_origins.contains(&o) => g.allowed_origins.push(o),
            Ok(_) => {}
            Err(e) => issues.at(origin.span(), e),
        }
    }
    for host in raw.allowed_hosts.unwrap_or_default() {
        match net::host(host.get_ref()) {
            Ok(h) if !g.allowed_hosts.contains(&h) => g.allowed_hosts.push(h),
            Ok(_) => {}
            Err(e) => issues.at(host.span(), e),
        }
    }
    if let Some(bytes) = raw
        .max_message_bytes
        .and_then(|size| message_size(&size, issues))
    {
        g.max_message_bytes = bytes;
    }
    if let Some(d) = raw.request_timeout {
        g.request_timeout =
            duration(&d, "gateway.request_timeout", issues).unwrap_or(g.request_timeout);
    }
    if let Some(d) = raw.session_idle_timeout {
        g.session_idle_timeout =
            duration(&d, "gateway.session_idle_timeout", issues).unwrap_or(g.session_idle_timeout);
    }
    if let Some(b) = raw.insecure_no_auth {
        g.insecure_no_auth = *b.get_ref();
    }
    if let Some(d) = raw.session_lifetime {
        g.session_lifetime =
            duration(&d, "gateway.session_lifetime", issues).unwrap_or(g.session_lifetime);
    }
    if let Some(n) = raw.max_sessions {
        match usize::try_from(*n.get_ref()) {
            Ok(n) if (1..=MAX_SESSIONS_LIMIT).contains(&n) => g.max_sessions = n,
            _ => issues.at(
                n.span(),
                format!(
                    "gateway.max_sessions must be between 1 and {MAX_SESSIONS_LIMIT}, not {}",
                    n.get_ref()
                ),
            ),
        }
    }
    if let Some(n) = raw.worker_threads {
        match usize::try_from(*n.get_ref()) {
            Ok(t) if t >= 1 && *n.get_ref() <= super::MAX_WORKER_THREADS => g.worker_threads = t,
            _ => issues.at(
                n.span(),
                format!(
                    "gateway.worker_threads must be between 1 and {}, not {}",
                    super::MAX_WORKER_THREADS,
                    n.get_ref()
                ),
            ),
        }
    }
    if let Some(tls) = raw.tls {
        g.tls = super::tls::tls(tls, base, issues);
    }
    if let Some(proxy) = raw.behind_proxy {
        g.behind_proxy = super::tls::behind_proxy(proxy, issues);
    }
    g
}

fn message_size(size: &Spanned<RawSize>, issues: &mut Issues) -> Option<usize> {
    let bytes = match size.get_ref().bytes() {
        Ok(b) => b,
        Err(e) => {
            let shown = match size.get_ref() {
                RawSize::Bytes(n) => n.to_string(),
                RawSize::Text(t) => format!("\"{t}\""),
            };
            issues.at(
                size.span(),
                format!("invalid size {shown} for gateway.max_message_bytes: {e}"),
            );
            return None;
        }
    };
    match usize::try_from(bytes) {
        Ok(b) if (MIN_MESSAGE_BYTES..=MAX_MESSAGE_BYTES).contains(&b) => Some(b),
        _ => {
            issues.at(
                size.span(),
                format!(
                    "gateway.max_message_bytes must be between {} and {}, not {}",
                    format_size(MIN_MESSAGE_BYTES as u64),
                    format_size(MAX_MESSAGE_BYTES as u64),
                    format_size(bytes)
                ),
            );
            None
        }
    }
}

/// A duration for `key`: parsed, more than zero, at most [`MAX_DURATION`].
pub(super) fn duration(
    d: &Spanned<RawDuration>,
    key: &str,
    issues: &mut Issues,
) -> Option<Duration> {
    duration_up_to(d, key, MAX_DURATION, issues)
}

/// [`duration`] with another bound than [`MAX_DURATION`] (how long a stored thing lasts,
/// not how long anything waits).
pub(super) fn duration_up_to(
    d: &Spanned<RawDuration>,
    key: &str,
    max: Duration,
    issues: &mut Issues,
) -> Option<Duration> {
    let text = &d.get_ref().0;
    match parse_duration(text) {
        Err(e) => issues.at(
            d.span(),
            format!("invalid duration \"{text}\" for {key}: {e}"),
        ),
        Ok(v) if v.is_zero() => issues.at(d.span(), format!("{key} must be more than 0")),
        Ok(v) if v > max => issues.at(
            d.span(),
            format!(
                "{key} must be at most {}, not \"{text}\"",
                format_duration(max)
            ),
        ),
        Ok(v) => return Some(v),
    }
    None
}

fn log(raw: RawLog, issues: &mut Issues) -> LogConfig {
    let mut l = LogConfig::default();
    if let Some(level) = raw.level {
        let text = level.get_ref().trim();
        match tracing_subscriber::EnvFilter::builder().parse(text) {
            Ok(_) if !text.is_empty() => l.level = text.to_owned(),
            Ok(_) => issues.at(level.span(), "log.level must not be empty (e.g. \"info\")"),
            Err(e) => issues.at(
                level.span(),
                format!(
                    "invalid log.level \"{text}\": {e} (e.g. \"info\" or \"portcullis=debug,info\")"
                ),
            ),
        }
    }
    l.format = raw.format.unwrap_or_default();
    if let Some(file) = raw.file {
        if file.get_ref().is_empty() {
            issues.at(
                file.span(),
                "log.file must not be empty (leave it out to log to stderr)",
            );
        } else {
            l.file = Some(PathBuf::from(file.into_inner()));
        }
    }
    l
}

/// `[a-z0-9-]+`, at most 64 characters: safe in a URL path, and free of `.`, so that
/// `<server>.<tool>` in a virtual server splits unambiguously at the first dot.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

pub(super) fn check_name(
    kind: &str,
    name: &str,
    span: std::ops::Range<usize>,
    issues: &mut Issues,
) {
    if !valid_name(name) {
        issues.at(
            span,
            format!(
                "invalid {kind} name \"{name}\": use 1 to {MAX_NAME_LEN} lowercase letters, digits and '-'"
            ),
        );
    }
}

fn virtual_server(
    named: Named<RawVirtual>,
    known: &BTreeSet<&str>,
    issues: &mut Issues,
) -> VirtualConfig {
    let Named {
        name,
        name_span,
        value: raw,
    } = named;
    check_name("virtual server", &name, name_span.clone(), issues);
    if known.contains(name.as_str()) {
        issues.at(
            name_span,
            format!("virtual server \"{name}\" has the same name as server \"{name}\": both would be served at /mcp/{name}"),
        );
    }
    if raw.servers.get_ref().is_empty() {
        issues.at(
            raw.servers.span(),
            format!("virtual \"{name}\" must join at least one server"),
        );
    }
    let mut members: Vec<String> = Vec::new();
    for member in raw.servers.into_inner() {
        let m = member.get_ref();
        if !known.contains(m.as_str()) {
            issues.at(
                member.span(),
                format!(
                    "unknown server \"{m}\" in virtual \"{name}\" ({})",
                    rules::known_list(known)
                ),
            );
        } else if members.contains(m) {
            issues.at(
                member.span(),
                format!("server \"{m}\" is listed twice in virtual \"{name}\""),
            );
        } else {
            members.push(member.into_inner());
        }
    }
    VirtualConfig {
        name,
        servers: members,
        on_upstream_failure: raw.on_upstream_failure.unwrap_or_default(),
    }
}
