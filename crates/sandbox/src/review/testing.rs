//! Helpers of the review's unit tests.

use std::path::Path;

use super::command::{Analysis, Target, analyze};
use super::findings::{Finding, Severity};

/// The analysis of `argv`, with `/home/alice` as the home directory.
pub(super) fn read(argv: &[&str]) -> Analysis {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    analyze(&argv, Some(Path::new("/home/alice")))
}

/// The package an analysis found, and whether it is pinned.
pub(super) fn package(a: &Analysis) -> (&str, bool) {
    match &a.target {
        Target::Package(p) => (p.spec.as_str(), p.pinned),
        other => panic!("not a package: {other:?}"),
    }
}

/// Whether a danger mentioning `text` was found.
pub(super) fn danger(a: &Analysis, text: &str) -> bool {
    has(&a.findings, Severity::Danger, text)
}

/// Whether `findings` hold one of `severity` mentioning `text`.
pub(super) fn has(findings: &[Finding], severity: Severity, text: &str) -> bool {
    findings
        .iter()
        .any(|f| f.severity == severity && f.message.contains(text))
}
