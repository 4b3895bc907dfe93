//! `[servers.<name>]`: a stdio or an HTTP upstream, and a stdio child's environment.

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::diagnostic::Issues;
use super::raw::{Named, RawEnv, RawServer, SpannedList};
use super::validate::{check_name, duration};
use super::{
    DEFAULT_MAX_BACKOFF, EnvConfig, HttpUpstream, ProtocolVersion, ServerConfig, StdioUpstream,
    Upstream, UpstreamProtocol, net,
};

pub(super) fn server(
    named: Named<RawServer>,
    default_timeout: Duration,
    issues: &mut Issues,
) -> Option<ServerConfig> {
    let Named {
        name,
        name_span,
        value: raw,
    } = named;
    check_name("server", &name, name_span.clone(), issues);
    let key = |k: &str| format!("servers.{name}.{k}");

    let timeout = raw
        .timeout
        .as_ref()
        .and_then(|d| duration(d, &key("timeout"), issues))
        .unwrap_or(default_timeout);
    let protocol = match &raw.protocol {
        None => UpstreamProtocol::Auto,
        Some(p) if p.get_ref() == "auto" => UpstreamProtocol::Auto,
        Some(p) => match ProtocolVersion::parse(p.get_ref()) {
            Some(v) => UpstreamProtocol::Fixed(v),
            None => {
                issues.at(
                    p.span(),
                    format!(
                        "unknown protocol version \"{}\" for {}: use \"auto\" or one of {}",
                        p.get_ref(),
                        key("protocol"),
                        ProtocolVersion::ALL
                            .iter()
                            .map(|v| format!("\"{v}\""))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                UpstreamProtocol::Auto
            }
        },
    };

    let mut raw = raw;
    let roots = super::sandbox::roots(&name, raw.roots.take(), issues);
    let definitions = definitions(&name, raw.definitions.take(), issues);
    let scan = super::scan::scan(&name, raw.scan.take(), issues);
    let upstream = match (raw.command.take(), raw.url.take()) {
        (Some(command), None) => Upstream::Stdio(stdio(&name, command, raw, issues)),
        (None, Some(url)) => Upstream::Http(http(&name, url, raw, issues)?),
        (Some(_), Some(url)) => {
            issues.at(
                url.span(),
                format!(
                    "server \"{name}\" has both `command` and `url`: use `command` for a stdio server or `url` for an HTTP server, not both"
                ),
            );
            return None;
        }
        (None, None) => {
            issues.at(
                name_span,
                format!(
                    "server \"{name}\" needs `command` (a stdio server) or `url` (an HTTP server)"
                ),
            );
            return None;
        }
    };
    Some(ServerConfig {
        name,
        upstream,
        timeout,
        protocol,
        roots,
        definitions,
        scan,
    })
}

/// `servers.<name>.definitions`.
fn definitions(
    server: &str,
    raw: Option<Spanned<String>>,
    issues: &mut Issues,
) -> crate::upstream::definitions::DefinitionMode {
    use crate::upstream::definitions::DefinitionMode;
    let Some(raw) = raw else {
        return DefinitionMode::default();
    };
    DefinitionMode::parse(raw.get_ref()).unwrap_or_else(|| {
        issues.at(
            raw.span(),
            format!(
                "unknown definitions mode \"{}\" for servers.{server}.definitions: use \"tofu\", \"strict\" or \"off\"",
                raw.get_ref()
            ),
        );
        DefinitionMode::default()
    })
}

/// An HTTP upstream; `rest` is the server table without `command` and `url`, checked for
/// keys that only make sense for a process the gateway starts.
fn http(
    name: &str,
    url: Spanned<String>,
    rest: RawServer,
    issues: &mut Issues,
) -> Option<HttpUpstream> {
    for (key, span) in [
        ("cwd", rest.cwd.map(|v| v.span())),
        ("env", rest.env.map(|v| v.span())),
        ("instances", rest.instances.map(|v| v.span())),
        ("restart", rest.restart.map(|v| v.span())),
        ("pinning", rest.pinning.map(|v| v.span())),
        ("sandbox", rest.sandbox.map(|v| v.span())),
    ] {
        if let Some(span) = span {
            issues.at(
                span,
                format!(
                    "`{key}` applies only to stdio servers (with `command`), but server \"{name}\" has `url`"
                ),
            );
        }
    }
    let credential = rest.credential.map(Spanned::into_inner);
    match net::upstream_url(url.get_ref(), &format!("servers.{name}.url")) {
        Ok(url) => Some(HttpUpstream { url, credential }),
        Err(e) => {
            issues.at(url.span(), e);
            None
        }
    }
}

/// A stdio upstream; `rest` is the server table without `command` and `url`.
fn stdio(name: &str, command: SpannedList, rest: RawServer, issues: &mut Issues) -> StdioUpstream {
    if let Some(c) = &rest.credential {
        issues.at(
            c.span(),
            format!(
                "`credential` applies only to HTTP servers (with `url`): a stdio server \"{name}\" gets its secrets through `env`"
            ),
        );
    }
    if command.get_ref().is_empty() {
        issues.at(
            command.span(),
            format!("servers.{name}.command must not be empty: give the program and its arguments"),
        );
    }
    for (i, arg) in command.get_ref().iter().enumerate() {
        if i == 0 && arg.get_ref().trim().is_empty() {
            issues.at(
                arg.span(),
                format!("servers.{name}.command starts with an empty program name"),
            );
        }
        if arg.get_ref().contains('\0') {
            issues.at(
                arg.span(),
                format!("servers.{name}.command contains a NUL character"),
            );
        }
    }
    let cwd = rest.cwd.and_then(|c| {
        if c.get_ref().is_empty() || c.get_ref().contains('\0') {
            issues.at(
                c.span(),
                format!("servers.{name}.cwd must be a non-empty path"),
            );
            None
        } else {
            Some(PathBuf::from(c.into_inner()))
        }
    });
    let max_backoff = rest
        .restart
        .and_then(|r| r.into_inner().max_backoff)
        .and_then(|d| duration(&d, &format!("servers.{name}.restart.max_backoff"), issues))
        .unwrap_or(DEFAULT_MAX_BACKOFF);
    StdioUpstream {
        command: command
            .into_inner()
            .into_iter()
            .map(Spanned::into_inner)
            .collect(),
        cwd,
        env: rest
            .env
            .map(|e| env_config(name, e.into_inner(), issues))
            .unwrap_or_default(),
        instances: rest.instances.map(Spanned::into_inner).unwrap_or_default(),
        max_backoff,
        pinning: super::sandbox::pinning(name, rest.pinning, issues),
        sandbox: super::sandbox::sandbox(name, rest.sandbox, issues),
    }
}

/// Environment variable names as POSIX shells accept them: a name that is not one is a
/// typo, and passing it would silently pass nothing.
fn valid_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn env_config(server: &str, raw: RawEnv, issues: &mut Issues) -> EnvConfig {
    let explicit_pass = raw.pass.is_some();
    let mut env = EnvConfig::default();
    if explicit_pass {
        env.pass.clear();
    }
    for var in raw.pass.unwrap_or_default() {
        if !valid_env_name(var.get_ref()) {
            issues.at(
                var.span(),
                format!(
                    "invalid environment variable name \"{}\" in servers.{server}.env.pass: use letters, digits and '_', not starting with a digit",
                    var.get_ref()
                ),
            );
        } else if !env.pass.contains(var.get_ref()) {
            env.pass.push(var.into_inner());
        }
    }
    for (var, value) in raw.set.unwrap_or_default() {
        if !valid_env_name(var.get_ref()) {
            issues.at(
                var.span(),
                format!(
                    "invalid environment variable name \"{}\" in servers.{server}.env.set: use letters, digits and '_', not starting with a digit",
                    var.get_ref()
                ),
            );
        } else if !explicit_pass
            && env.pass.contains(var.get_ref())
            && !value.get_ref().contains('\0')
        {
            // A fixed value replaces a variable that is only passed by default.
            env.pass.retain(|p| p != var.get_ref());
            env.set.insert(var.into_inner(), value.into_inner());
            continue;
        } else if env.pass.contains(var.get_ref()) {
            issues.at(
                var.span(),
                format!(
                    "environment variable \"{}\" is both passed and set in servers.{server}.env: keep one",
                    var.get_ref()
                ),
            );
        } else if value.get_ref().contains('\0') {
            issues.at(
                value.span(),
                format!("servers.{server}.env.set value contains a NUL character"),
            );
        } else {
            env.set.insert(var.into_inner(), value.into_inner());
        }
    }
    for (var, source) in raw.secrets.unwrap_or_default() {
        let name = var.get_ref();
        if !valid_env_name(name) {
            issues.at(
                var.span(),
                format!(
                    "invalid environment variable name \"{name}\" in servers.{server}.env.secrets: use letters, digits and '_', not starting with a digit"
                ),
            );
        } else if env.set.contains_key(name) || (explicit_pass && env.pass.contains(name)) {
            issues.at(
                var.span(),
                format!(
                    "environment variable \"{name}\" is named twice in servers.{server}.env: keep one of pass, set and secrets"
                ),
            );
        } else {
            // A secret replaces a variable that is only passed by default.
            env.pass.retain(|p| p != name);
            env.secrets.insert(var.into_inner(), source.into_inner());
        }
    }
    env
}
