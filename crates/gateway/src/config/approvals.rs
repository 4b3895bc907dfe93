//! `[approvals]`: the approvals page (`/approvals`) and `portcullis approvals`, where a person
//! decides the calls that a rule with `effect = "consent"` holds.
//!
//! Deciding approves tool calls for anyone, so the page and its API need an administrator's
//! secret: the admin token, named here by where it is (an environment variable or a file,
//! never the value: config files are read by many tools and often committed). Without the
//! section nobody can decide through the page, which is then not served at all.

use std::path::{Path, PathBuf};

use portcullis_auth::upstream::SecretSource;
use serde::Deserialize;
use toml::Spanned;

use super::diagnostic::Issues;

/// Default `approvals.max_pending`.
pub const DEFAULT_MAX_PENDING: usize = 100;
/// Largest accepted `approvals.max_pending`: each pending call holds its arguments in memory.
pub const MAX_PENDING_LIMIT: usize = 10_000;

/// `[approvals]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalsConfig {
    /// Where the admin token is; read when the gateway starts (and by the CLI).
    pub admin_token: AdminTokenSource,
    /// Most calls waiting for a decision at once; a call past it is denied at once.
    pub max_pending: usize,
}

/// `approvals.admin_token`: where the admin token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminTokenSource {
    /// An environment variable of the gateway's (and the CLI's) process.
    Env(String),
    /// A file (relative paths were made relative to the config file's directory).
    File(PathBuf),
}

impl std::fmt::Display for AdminTokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminTokenSource::Env(name) => write!(f, "environment variable {name}"),
            AdminTokenSource::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [approvals] table")]
pub(crate) struct RawApprovals {
    /// `{ env = "VARIABLE" }` or `{ file = "/path" }`; an inline string is refused.
    pub admin_token: Option<Spanned<SecretSource>>,
    pub max_pending: Option<Spanned<i64>>,
}

/// `[approvals]` (the span is the section key's, for a section that names no token).
pub(crate) fn approvals(
    raw: RawApprovals,
    key_span: std::ops::Range<usize>,
    base: Option<&Path>,
    issues: &mut Issues,
) -> Option<ApprovalsConfig> {
    let Some(source) = raw.admin_token else {
        issues.at(
            key_span,
            "[approvals] needs the admin token that protects the approvals page: \
             admin_token = { env = \"VARIABLE\" } or admin_token = { file = \"/path/to/file\" }",
        );
        return None;
    };
    // The variable name and the path were checked when the table was read.
    let admin_token = match source.into_inner() {
        SecretSource::Env(name) => AdminTokenSource::Env(name),
        SecretSource::File(path) => AdminTokenSource::File(match base {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path,
        }),
    };
    let mut max_pending = DEFAULT_MAX_PENDING;
    if let Some(n) = raw.max_pending {
        match usize::try_from(*n.get_ref()) {
            Ok(v) if (1..=MAX_PENDING_LIMIT).contains(&v) => max_pending = v,
            _ => issues.at(
                n.span(),
                format!(
                    "approvals.max_pending must be between 1 and {MAX_PENDING_LIMIT}, not {}",
                    n.get_ref()
                ),
            ),
        }
    }
    Some(ApprovalsConfig {
        admin_token,
        max_pending,
    })
}
