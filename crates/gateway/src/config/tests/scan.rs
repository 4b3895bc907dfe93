//! `servers.<name>.scan`: severity thresholds, their defaults, and errors that say what to
//! write.

use portcullis_guard::scan::Severity;

use super::{errors, ok};
use crate::config::ScanPolicy;

const SERVER: &str = "[servers.fx]\ncommand = [\"fx\"]\n";

#[test]
fn a_server_without_scan_warns_from_low_and_blocks_from_high() {
    let config = ok(SERVER);
    assert_eq!(config.servers["fx"].scan, ScanPolicy::default());
    assert_eq!(
        ScanPolicy::default(),
        ScanPolicy {
            warn: Some(Severity::Low),
            block: Some(Severity::High),
        }
    );
}

#[test]
fn thresholds_are_severities_or_off() {
    let config = ok(&format!(
        "{SERVER}scan = {{ warn = \"medium\", block = \"off\" }}\n"
    ));
    assert_eq!(
        config.servers["fx"].scan,
        ScanPolicy {
            warn: Some(Severity::Medium),
            block: None,
        }
    );
    let config = ok(&format!("{SERVER}scan = {{ block = \"critical\" }}\n"));
    assert_eq!(config.servers["fx"].scan.block, Some(Severity::Critical));
    assert_eq!(config.servers["fx"].scan.warn, Some(Severity::Low));
}

#[test]
fn an_unknown_severity_or_key_is_an_error_at_its_line() {
    let errs = errors(&format!("{SERVER}scan = {{ block = \"severe\" }}\n"));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("3:"), "{errs:?}");
    assert!(
        errs[0].contains("unknown severity \"severe\" for servers.fx.scan.block"),
        "{errs:?}"
    );
    let errs = errors(&format!("{SERVER}scan = {{ warm = \"low\" }}\n"));
    assert!(errs[0].contains("unknown field `warm`"), "{errs:?}");
}

#[test]
fn blocking_less_than_high_findings_is_a_warning() {
    let allow = "[[rules]]\nserver = \"fx\"\ntools = [\"*\"]\neffect = \"allow\"\n";
    assert!(
        ok(&format!("{SERVER}scan = {{ block = \"medium\" }}\n{allow}"))
            .warnings()
            .is_empty()
    );
    for (block, shown) in [("off", "off"), ("critical", "critical")] {
        let w = ok(&format!(
            "{SERVER}scan = {{ block = \"{block}\" }}\n{allow}"
        ))
        .warnings();
        assert_eq!(
            w,
            [format!(
                "servers.fx.scan.block = \"{shown}\": tools whose descriptions hide text or instructions for the model at high severity are listed and callable"
            )]
        );
    }
}
