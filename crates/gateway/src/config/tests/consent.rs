//! `consent = { … }` on servers and consent rules.

use std::time::Duration;

use super::{SERVER, error, errors, ok};
use crate::config::{ConsentChannel as Channel, ConsentSettings, RememberChoice};

const CONSENT_RULE: &str =
    "[[rules]]\nserver = \"files\"\ntools = [\"write_*\"]\neffect = \"consent\"\n";

#[test]
fn without_a_table_a_consent_rule_gets_the_safe_defaults() {
    let c = ok(&format!("{SERVER}{CONSENT_RULE}"));
    let s = c.consent.settings("files", Some(0));
    assert_eq!(s, ConsentSettings::default());
    assert!(!s.trust_elicitation);
    assert_eq!(s.timeout, Duration::from_secs(120));
    assert_eq!(
        s.channels,
        [
            Channel::Elicitation,
            Channel::InputRequired,
            Channel::Tty,
            Channel::Approvals
        ]
    );
    assert_eq!(s.remember, [RememberChoice::Once, RememberChoice::Session]);
}

#[test]
fn a_rule_overrides_its_server_key_by_key() {
    let c = ok(&format!(
        "[servers.files]\ncommand = [\"files-server\"]\nconsent = {{ channels = [\"approvals\"], timeout = \"5m\", remember = [\"once\", \"always\"], always_ttl = \"8h\" }}\n{CONSENT_RULE}consent = {{ timeout = \"30s\", trust_elicitation = true, for_tool = true }}\n[[rules]]\nserver = \"files\"\ntools = [\"delete_*\"]\neffect = \"consent\"\n"
    ));
    let rule = c.consent.settings("files", Some(0));
    assert_eq!(rule.channels, [Channel::Approvals]);
    assert_eq!(rule.timeout, Duration::from_secs(30));
    assert!(rule.trust_elicitation && rule.for_tool);
    assert_eq!(
        rule.remember,
        [RememberChoice::Once, RememberChoice::Always]
    );
    assert_eq!(rule.always_ttl, Duration::from_secs(8 * 3600));
    let other = c.consent.settings("files", Some(1));
    assert_eq!(other.timeout, Duration::from_secs(300));
    assert!(!other.trust_elicitation && !other.for_tool);
}

#[test]
fn bad_consent_tables_are_errors_at_their_values() {
    let e = errors(&format!(
        "{SERVER}{CONSENT_RULE}consent = {{ channels = [\"email\", \"tty\", \"tty\"], remember = [], timeout = \"0s\" }}\n"
    ));
    assert_eq!(
        e,
        [
            "7:25: unknown \"email\" in rules[1].consent.channels: use \"elicitation\", \"input_required\", \"tty\", \"approvals\"",
            "7:41: \"tty\" appears twice in rules[1].consent.channels",
            "7:60: rules[1].consent.remember must not be empty: list one or more of \"once\", \"session\", \"always\"",
            "7:74: rules[1].consent.timeout must be more than 0",
        ]
    );
    assert_eq!(
        error(&format!(
            "{SERVER}[[rules]]\nserver = \"files\"\neffect = \"allow\"\nconsent = {{ timeout = \"1m\" }}\n"
        )),
        "6:11: `consent` in rule 1 applies only to a rule with effect = \"consent\", not \"allow\""
    );
    assert!(
        error(&format!(
            "[servers.files]\ncommand = [\"x\"]\nconsent = {{ timout = \"1m\" }}\n{CONSENT_RULE}"
        ))
        .contains("unknown field `timout`")
    );
}

#[test]
fn always_ttl_may_last_past_a_day_but_not_past_90_days() {
    let c = ok(&format!(
        "{SERVER}{CONSENT_RULE}consent = {{ remember = [\"always\"], always_ttl = \"720h\" }}\n"
    ));
    assert_eq!(
        c.consent.settings("files", Some(0)).always_ttl,
        Duration::from_secs(30 * 24 * 3600)
    );
    let e = error(&format!(
        "{SERVER}{CONSENT_RULE}consent = {{ remember = [\"always\"], always_ttl = \"2161h\" }}\n"
    ));
    assert!(
        e.contains("rules[1].consent.always_ttl must be at most"),
        "{e}"
    );
}
