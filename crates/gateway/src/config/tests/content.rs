//! `[content]`: the defaults are the safe ones, every value and entry is checked at its line,
//! and each loosening is a warning.

use portcullis_guard::SanitizeMode;

use super::{SERVER, errors, ok};
use crate::config::SecretsInArguments;

#[test]
fn without_a_content_section_everything_is_sanitized_and_redacted() {
    let config = ok(SERVER);
    let c = &config.content;
    assert_eq!(c.sanitize, Some(SanitizeMode::Strip));
    assert!(c.redact);
    assert_eq!(c.secrets_in_arguments, SecretsInArguments::Deny);
    assert!(c.allow.is_empty() && c.open_world.is_empty());
    assert!(
        crate::config::warnings::collect(&config)
            .iter()
            .all(|w| !w.contains("content."))
    );
}

#[test]
fn allow_and_open_world_entries_apply_to_their_server_and_tools() {
    let config = ok(&format!(
        "{SERVER}[servers.web]\nurl = \"https://web.example.com/mcp\"\n\n[content]\nsanitize = \"escape\"\nsecrets_in_arguments = \"consent\"\n\n[[content.allow]]\nserver = \"files\"\ntools = [\"read_*\"]\nkinds = [\"jwt\"]\n\n[[content.allow]]\nvalues = [\"demo-key-0123456789abcdef\"]\n\n[[content.open_world]]\nserver = \"web\"\ntools = [\"post_*\"]\n"
    ));
    let c = &config.content;
    assert_eq!(c.sanitize, Some(SanitizeMode::Escape));
    assert_eq!(c.secrets_in_arguments, SecretsInArguments::Consent);
    let read = c.allowlist("files", Some("read_file"));
    assert!(read.allows("jwt", "x") && read.allows("password", "demo-key-0123456789abcdef"));
    let write = c.allowlist("files", Some("write_file"));
    assert!(!write.allows("jwt", "x") && write.allows("password", "demo-key-0123456789abcdef"));
    assert!(!c.allowlist("files", None).allows("jwt", "x"));
    assert!(c.is_open_world("web", "post_form", None));
    assert!(!c.is_open_world("web", "get_page", None));
    assert!(!c.is_open_world("files", "post_form", None));
    assert!(c.is_open_world(
        "files",
        "x",
        Some(&serde_json::json!({"openWorldHint": true}))
    ));
    // The allowed values are not printed with the config.
    assert!(!format!("{config:?}").contains("demo-key-0123456789abcdef"));
}

#[test]
fn bad_values_and_entries_are_errors_at_their_line() {
    let errs = errors(&format!(
        "{SERVER}[content]\nsanitize = \"scrub\"\nsecrets_in_arguments = \"allow\"\n\n[[content.allow]]\nserver = \"nope\"\nkinds = [\"jwt\"]\n\n[[content.allow]]\nkinds = [\"githib-token\"]\n\n[[content.allow]]\nserver = \"files\"\n\n[[content.open_world]]\ntools = [\"[unclosed\"]\n"
    ));
    let expect = [
        ("4:12", "content.sanitize \"scrub\""),
        ("5:24", "content.secrets_in_arguments \"allow\""),
        ("8:10", "content.allow: unknown server \"nope\""),
        ("12:10", "unknown secret kind \"githib-token\""),
        ("14:1", "allows nothing without `kinds` or `values`"),
        ("18:10", "content.open_world: tool glob \"[unclosed\""),
    ];
    assert_eq!(errs.len(), expect.len(), "{errs:#?}");
    for ((at, what), err) in expect.iter().zip(&errs) {
        assert!(
            err.starts_with(at) && err.contains(what),
            "{at} {what}: {err}"
        );
    }
}

#[test]
fn switching_sanitizing_or_redaction_off_is_a_warning() {
    let config = ok(&format!(
        "{SERVER}[content]\nsanitize = \"off\"\nredact = false\n"
    ));
    let warnings = crate::config::warnings::collect(&config);
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("content.sanitize = \"off\""))
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("content.redact = false"))
    );
}
