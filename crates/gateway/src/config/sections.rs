//! `gateway.state`, `[audit]`, `[limits]`, and the rate syntax shared with rules.

use std::path::{Path, PathBuf};

use portcullis_policy::RateSpec;
use toml::Spanned;

use super::diagnostic::Issues;
use super::raw::{RawAudit, RawLimits};
use super::{AuditConfig, AuditMirror, LimitsConfig, StateLocation};

/// A path from the file, relative to the config file's directory (`base`) when relative.
pub(crate) fn relative_to(base: Option<&Path>, path: &str) -> PathBuf {
    match base {
        Some(dir) if Path::new(path).is_relative() => dir.join(path),
        _ => PathBuf::from(path),
    }
}

/// `gateway.state = "sqlite:<path>"`.
pub(crate) fn state(
    raw: &Spanned<String>,
    base: Option<&Path>,
    issues: &mut Issues,
) -> Option<StateLocation> {
    let text = raw.get_ref();
    if let Some(path) = text.strip_prefix("sqlite:") {
        if path.is_empty() || path.contains('\0') {
            issues.at(
                raw.span(),
                "gateway.state needs a database path after `sqlite:` (e.g. \"sqlite:portcullis.db\")",
            );
            return None;
        }
        return Some(StateLocation::Sqlite(relative_to(base, path)));
    }
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("redis://") || lower.starts_with("rediss://") {
        issues.at(
            raw.span(),
            format!(
                "gateway.state \"{text}\": Redis state is not yet supported; use \"sqlite:<path>\""
            ),
        );
    } else {
        issues.at(
            raw.span(),
            format!(
                "gateway.state must be \"sqlite:<path>\" (e.g. \"sqlite:portcullis.db\"), not \"{text}\""
            ),
        );
    }
    None
}

/// `[audit]`.
pub(crate) fn audit(raw: RawAudit, base: Option<&Path>, issues: &mut Issues) -> AuditConfig {
    let mirror = raw.mirror.and_then(|m| {
        let text = m.get_ref();
        match text.as_str() {
            "stdout" => Some(AuditMirror::Stdout),
            "stderr" => Some(AuditMirror::Stderr),
            _ => match text.strip_prefix("file:") {
                Some(path) if !path.is_empty() && !path.contains('\0') => {
                    Some(AuditMirror::File(relative_to(base, path)))
                }
                _ => {
                    issues.at(
                        m.span(),
                        format!(
                            "audit.mirror must be \"stdout\", \"stderr\" or \"file:<path>\", not \"{text}\""
                        ),
                    );
                    None
                }
            },
        }
    });
    AuditConfig {
        include_args: raw.include_args.unwrap_or(false),
        mirror,
    }
}

/// `[limits]`.
pub(crate) fn limits(raw: RawLimits, issues: &mut Issues) -> LimitsConfig {
    LimitsConfig {
        rate: rate(
            raw.rate.as_ref(),
            raw.burst.as_ref(),
            "limits.rate",
            "limits.burst needs limits.rate (e.g. rate = \"10/minute\")",
            issues,
        ),
    }
}

/// A `rate` and its optional `burst`. `what` names the place in messages; `orphan` is the
/// message for a burst without a rate.
pub(crate) fn rate(
    rate: Option<&Spanned<String>>,
    burst: Option<&Spanned<i64>>,
    what: &str,
    orphan: &str,
    issues: &mut Issues,
) -> Option<RateSpec> {
    let Some(rate) = rate else {
        if let Some(burst) = burst {
            issues.at(burst.span(), orphan);
        }
        return None;
    };
    let spec = match RateSpec::parse(rate.get_ref()) {
        Ok(spec) => spec,
        Err(e) => {
            issues.at(rate.span(), format!("{e} ({what})"));
            return None;
        }
    };
    match burst {
        None => Some(spec),
        Some(b) => match spec.with_burst(*b.get_ref()) {
            Ok(spec) => Some(spec),
            Err(e) => {
                issues.at(b.span(), format!("{e} ({what})"));
                None
            }
        },
    }
}
