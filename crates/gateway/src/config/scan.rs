//! `servers.<name>.scan`: what the description scan's findings do to a server's tools.
//!
//! `scan = { warn = "low", block = "high" }` (the defaults): a tool with a finding of `warn`'s
//! severity or worse is audited (event `scan`, once per definition); one with a finding of
//! `block`'s severity or worse is withheld (absent from lists, calls refused with the
//! finding). `"off"` turns either off.

use portcullis_guard::scan::Severity;
use serde::Deserialize;
use toml::Spanned;

use super::diagnostic::Issues;

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a scan table such as { warn = \"low\", block = \"high\" }"
)]
pub(crate) struct RawScan {
    pub warn: Option<Spanned<String>>,
    pub block: Option<Spanned<String>>,
}

/// The thresholds of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanPolicy {
    /// Findings this bad or worse are audited; `None`: none are.
    pub warn: Option<Severity>,
    /// Findings this bad or worse withhold their tool; `None`: none do.
    pub block: Option<Severity>,
}

impl Default for ScanPolicy {
    fn default() -> Self {
        ScanPolicy {
            warn: Some(Severity::Low),
            block: Some(Severity::High),
        }
    }
}

/// What a tool's worst finding makes of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanAction {
    Pass,
    Warn,
    Block,
}

impl ScanAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ScanAction::Pass => "pass",
            ScanAction::Warn => "warn",
            ScanAction::Block => "block",
        }
    }
}

impl ScanPolicy {
    /// What a finding of `severity` (the worst of a tool's) leads to.
    pub fn action(&self, severity: Option<Severity>) -> ScanAction {
        let Some(severity) = severity else {
            return ScanAction::Pass;
        };
        if self.block.is_some_and(|b| severity >= b) {
            ScanAction::Block
        } else if self.warn.is_some_and(|w| severity >= w) {
            ScanAction::Warn
        } else {
            ScanAction::Pass
        }
    }

    /// `"high"`, or `"off"`.
    pub fn describe(threshold: Option<Severity>) -> &'static str {
        threshold.map_or("off", Severity::as_str)
    }
}

/// `servers.<name>.scan`, checked.
pub(super) fn scan(server: &str, raw: Option<Spanned<RawScan>>, issues: &mut Issues) -> ScanPolicy {
    let mut policy = ScanPolicy::default();
    let Some(raw) = raw else {
        return policy;
    };
    let raw = raw.into_inner();
    let mut threshold = |key: &str, value: Option<Spanned<String>>, slot: &mut Option<Severity>| {
        let Some(value) = value else {
            return;
        };
        match value.get_ref().as_str() {
            "off" => *slot = None,
            other => match other.parse::<Severity>() {
                Ok(s) => *slot = Some(s),
                Err(_) => issues.at(
                    value.span(),
                    format!(
                        "unknown severity \"{other}\" for servers.{server}.scan.{key}: use \"low\", \"medium\", \"high\", \"critical\" or \"off\""
                    ),
                ),
            },
        }
    };
    threshold("warn", raw.warn, &mut policy.warn);
    threshold("block", raw.block, &mut policy.block);
    policy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_finding_decides() {
        let p = ScanPolicy::default();
        assert_eq!(p.action(None), ScanAction::Pass);
        assert_eq!(p.action(Some(Severity::Low)), ScanAction::Warn);
        assert_eq!(p.action(Some(Severity::Medium)), ScanAction::Warn);
        assert_eq!(p.action(Some(Severity::High)), ScanAction::Block);
        assert_eq!(p.action(Some(Severity::Critical)), ScanAction::Block);
        let quiet = ScanPolicy {
            warn: Some(Severity::Medium),
            block: None,
        };
        assert_eq!(quiet.action(Some(Severity::Low)), ScanAction::Pass);
        assert_eq!(quiet.action(Some(Severity::Critical)), ScanAction::Warn);
    }
}
