//! `servers.<name>.sandbox`, `.pinning` and `.roots`: how a local server is contained, how
//! its launch is pinned, and the directories it works in.

use std::fmt;
use std::path::PathBuf;

use portcullis_sandbox::{HostPort, Network, PinMode, Profile, ResourceLimits};
use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use toml::Spanned;

use super::diagnostic::Issues;
use super::raw::SpannedList;
use super::units::RawSize;

/// `sandbox = "off"` or a profile table.
#[derive(Debug)]
pub(crate) enum RawSandboxSetting {
    Off,
    Profile(Box<RawSandbox>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a sandbox table such as { read = [\"/srv/data\"], network = \"none\", memory = \"512M\" }"
)]
pub(crate) struct RawSandbox {
    pub read: Option<SpannedList>,
    pub write: Option<SpannedList>,
    pub network: Option<Spanned<RawNetwork>>,
    pub memory: Option<Spanned<RawSize>>,
    pub processes: Option<Spanned<i64>>,
    pub files: Option<Spanned<i64>>,
    pub cpu_seconds: Option<Spanned<i64>>,
    pub required: Option<bool>,
}

impl<'de> Deserialize<'de> for RawSandboxSetting {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawSandboxSetting;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"off\" or a sandbox table such as { read = [\"/srv/data\"], network = \"none\" }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v {
                    "off" => Ok(RawSandboxSetting::Off),
                    _ => Err(E::custom(format!(
                        "unknown sandbox setting \"{v}\": use \"off\" or a table {{ read = [...], write = [...], network = ... }}"
                    ))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                RawSandbox::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|t| RawSandboxSetting::Profile(Box::new(t)))
            }
        }
        d.deserialize_any(V)
    }
}

/// `network = "none" | "host" | { allow = [...] }`.
#[derive(Debug)]
pub(crate) enum RawNetwork {
    None,
    Host,
    Allow(Vec<String>),
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table { allow = [\"api.example.com:443\"] }"
)]
struct RawAllow {
    allow: Vec<String>,
}

impl<'de> Deserialize<'de> for RawNetwork {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawNetwork;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"none\", \"host\" or { allow = [\"host:port\", ...] }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v {
                    "none" => Ok(RawNetwork::None),
                    "host" => Ok(RawNetwork::Host),
                    _ => Err(E::custom(format!(
                        "unknown network \"{v}\": use \"none\", \"host\" or {{ allow = [\"host:port\"] }}"
                    ))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                RawAllow::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|t| RawNetwork::Allow(t.allow))
            }
        }
        d.deserialize_any(V)
    }
}

/// The sandbox of a stdio server: `None` when the config says `sandbox = "off"`.
pub(super) fn sandbox(
    server: &str,
    raw: Option<Spanned<RawSandboxSetting>>,
    issues: &mut Issues,
) -> Option<Profile> {
    let key = |k: &str| format!("servers.{server}.sandbox.{k}");
    let raw = match raw.map(Spanned::into_inner) {
        None => return Some(Profile::default()),
        Some(RawSandboxSetting::Off) => return None,
        Some(RawSandboxSetting::Profile(raw)) => *raw,
    };
    let defaults = ResourceLimits::default();
    let count = |v: Option<Spanned<i64>>, name: &str, max: i64, issues: &mut Issues| {
        let v = v?;
        match u64::try_from(*v.get_ref()) {
            Ok(n) if n >= 1 && *v.get_ref() <= max => Some(n),
            _ => {
                issues.at(v.span(), format!("{} must be 1 to {max}", key(name)));
                None
            }
        }
    };
    let memory = raw.memory.and_then(|m| match m.get_ref().bytes() {
        Ok(b) if b >= 16 << 20 => Some(b),
        Ok(_) => {
            issues.at(
                m.span(),
                format!(
                    "{} must be at least 16M: no server starts in less",
                    key("memory")
                ),
            );
            None
        }
        Err(e) => {
            issues.at(m.span(), format!("invalid size for {}: {e}", key("memory")));
            None
        }
    });
    let limits = ResourceLimits {
        memory: memory.unwrap_or(defaults.memory),
        processes: count(raw.processes, "processes", 1 << 20, issues).unwrap_or(defaults.processes),
        files: count(raw.files, "files", 1 << 20, issues).unwrap_or(defaults.files),
        cpu_seconds: count(raw.cpu_seconds, "cpu_seconds", i64::from(u32::MAX), issues),
    };
    let network = match raw.network.map(|n| (n.span(), n.into_inner())) {
        None | Some((_, RawNetwork::None)) => Network::None,
        Some((_, RawNetwork::Host)) => Network::Host,
        Some((span, RawNetwork::Allow(list))) => {
            let mut out = Vec::new();
            for entry in list {
                match HostPort::parse(&entry) {
                    Ok(hp) if !out.contains(&hp) => out.push(hp),
                    Ok(_) => {}
                    Err(e) => issues.at(span.clone(), format!("{}: {e}", key("network.allow"))),
                }
            }
            if out.is_empty() {
                issues.at(
                    span,
                    format!(
                        "{} is empty: use network = \"none\" for a server without network",
                        key("network.allow")
                    ),
                );
            }
            Network::Allow(out)
        }
    };
    Some(Profile {
        read: paths(raw.read, &key("read"), issues),
        write: paths(raw.write, &key("write"), issues),
        network,
        limits,
        required: raw.required,
    })
}

/// `servers.<name>.roots`: absolute paths, made canonical when they exist (a root is
/// compared with resolved paths, so a symlinked root must be resolved too).
pub(super) fn roots(server: &str, raw: Option<SpannedList>, issues: &mut Issues) -> Vec<PathBuf> {
    let key = format!("servers.{server}.roots");
    if let Some(list) = &raw {
        super::roots::check_server_roots(list, &key, issues);
    }
    paths(raw, &key, issues)
}

fn paths(raw: Option<SpannedList>, key: &str, issues: &mut Issues) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for p in raw.map(Spanned::into_inner).unwrap_or_default() {
        let path = PathBuf::from(p.get_ref());
        if !path.is_absolute() || p.get_ref().contains('\0') {
            issues.at(
                p.span(),
                format!("{key}: \"{}\" must be an absolute path", p.get_ref()),
            );
            continue;
        }
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        if !out.contains(&path) {
            out.push(path);
        }
    }
    out
}

/// `servers.<name>.pinning`.
pub(super) fn pinning(
    server: &str,
    raw: Option<Spanned<String>>,
    issues: &mut Issues,
) -> Option<PinMode> {
    let raw = raw?;
    match raw.get_ref().as_str() {
        "required" => Some(PinMode::Required),
        "warn" => Some(PinMode::Warn),
        "off" => Some(PinMode::Off),
        other => {
            issues.at(
                raw.span(),
                format!(
                    "unknown pinning \"{other}\" for servers.{server}.pinning: use \"required\", \"warn\" or \"off\""
                ),
            );
            None
        }
    }
}
