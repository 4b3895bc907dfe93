//! `consent = { … }` on a server and on a consent rule: how a call that a rule with
//! `effect = "consent"` holds is put to a person (the channels, in order), how long the
//! gateway waits, whether an answer the client gives by itself counts, and what a person may
//! ask to be remembered.
//!
//! A rule's table overrides its server's key by key, and the server's the defaults, so a
//! server can say "ask through the approvals page" once and a rule only shorten the timeout.
//! The defaults are the safe ones: a client's own answer (elicitation, `input_required`) can
//! refuse but not approve until `trust_elicitation = true`, and nothing is remembered beyond
//! the session unless `remember` lists `"always"`.

use std::collections::BTreeMap;
use std::time::Duration;

use portcullis_policy::Effect;
use serde::Deserialize;
use toml::Spanned;

use super::diagnostic::Issues;
use super::raw::SpannedList;
use super::units::RawDuration;
use super::validate::{duration, duration_up_to};

/// Default `consent.timeout`: long enough to read a call, short enough that an agent is not
/// left hanging.
pub const DEFAULT_CONSENT_TIMEOUT: Duration = Duration::from_secs(120);
/// Default `consent.always_ttl`: an `always` approval lasts a working day.
pub const DEFAULT_ALWAYS_TTL: Duration = Duration::from_secs(24 * 3600);
/// Longest `consent.always_ttl`: an `always` approval is kept in the state store, and is
/// asked again at least every 90 days.
pub const MAX_ALWAYS_TTL: Duration = Duration::from_secs(90 * 24 * 3600);

/// A way to put a held call to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// `elicitation/create` (form) to a 2025-06-18+ client that declared `elicitation`.
    Elicitation,
    /// An `input_required` result to a 2026-07-28 client that declared `elicitation`.
    InputRequired,
    /// The gateway's approvals page and `portcullis approvals` (`[approvals]`).
    Approvals,
    /// A prompt on `/dev/tty` under `portcullis stdio`, when there is a terminal.
    Tty,
}

impl Channel {
    pub const ALL: [Channel; 4] = [
        Channel::Elicitation,
        Channel::InputRequired,
        Channel::Tty,
        Channel::Approvals,
    ];

    /// The name in the config and in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Elicitation => "elicitation",
            Channel::InputRequired => "input_required",
            Channel::Approvals => "approvals",
            Channel::Tty => "tty",
        }
    }

    fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The client answers by itself on these (a person may or may not have seen the form).
    pub fn answered_by_client(self) -> bool {
        matches!(self, Channel::Elicitation | Channel::InputRequired)
    }
}

/// How long a person may ask an approval to last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RememberChoice {
    /// This call only.
    Once,
    /// The rest of the session.
    Session,
    /// Until `always_ttl` passes.
    Always,
}

impl RememberChoice {
    pub const ALL: [RememberChoice; 3] = [
        RememberChoice::Once,
        RememberChoice::Session,
        RememberChoice::Always,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RememberChoice::Once => "once",
            RememberChoice::Session => "session",
            RememberChoice::Always => "always",
        }
    }

    pub fn parse(s: &str) -> Option<RememberChoice> {
        RememberChoice::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// The consent settings of one call, resolved (rule over server over defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentSettings {
    /// Asked in this order; a channel that cannot reach a person for this call is skipped.
    pub channels: Vec<Channel>,
    /// No decision by then: denied.
    pub timeout: Duration,
    /// Whether an approval the client gives (elicitation, `input_required`) counts. A denial
    /// always counts.
    pub trust_elicitation: bool,
    /// What a person may ask to be remembered; `once` is always possible.
    pub remember: Vec<RememberChoice>,
    /// Whether a remembered approval may cover any arguments of the tool (else only the
    /// exact arguments approved).
    pub for_tool: bool,
    /// How long an `always` approval lasts.
    pub always_ttl: Duration,
}

impl Default for ConsentSettings {
    fn default() -> Self {
        ConsentSettings {
            channels: Channel::ALL.to_vec(),
            timeout: DEFAULT_CONSENT_TIMEOUT,
            trust_elicitation: false,
            remember: vec![RememberChoice::Once, RememberChoice::Session],
            for_tool: false,
            always_ttl: DEFAULT_ALWAYS_TTL,
        }
    }
}

impl ConsentSettings {
    pub fn allows(&self, choice: RememberChoice) -> bool {
        choice == RememberChoice::Once || self.remember.contains(&choice)
    }
}

/// One `consent` table as written: each key optional, to override what is below it.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a consent table such as { channels = [\"elicitation\", \"approvals\"], timeout = \"2m\" }"
)]
pub(crate) struct RawConsent {
    pub channels: Option<SpannedList>,
    pub timeout: Option<Spanned<RawDuration>>,
    pub trust_elicitation: Option<bool>,
    pub remember: Option<SpannedList>,
    pub for_tool: Option<bool>,
    pub always_ttl: Option<Spanned<RawDuration>>,
}

/// One `consent` table, checked: what it sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentOverrides {
    pub channels: Option<Vec<Channel>>,
    pub timeout: Option<Duration>,
    pub trust_elicitation: Option<bool>,
    pub remember: Option<Vec<RememberChoice>>,
    pub for_tool: Option<bool>,
    pub always_ttl: Option<Duration>,
}

impl ConsentOverrides {
    fn apply(&self, s: &mut ConsentSettings) {
        if let Some(c) = &self.channels {
            s.channels = c.clone();
        }
        if let Some(t) = self.timeout {
            s.timeout = t;
        }
        if let Some(t) = self.trust_elicitation {
            s.trust_elicitation = t;
        }
        if let Some(r) = &self.remember {
            s.remember = r.clone();
        }
        if let Some(f) = self.for_tool {
            s.for_tool = f;
        }
        if let Some(t) = self.always_ttl {
            s.always_ttl = t;
        }
    }
}

/// Every `consent` table of the file: per server, and per rule (by its position among the
/// `[[rules]]`, as [`portcullis_policy::RuleOrigin::index`] keeps it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentConfig {
    pub servers: BTreeMap<String, ConsentOverrides>,
    pub rules: BTreeMap<usize, ConsentOverrides>,
    /// What an "always" approval remembers of the consent rule that asked: its number and
    /// the digest of its text (`rule 3 sha256:…`), so that an approval stored before the
    /// rule was edited, moved or removed covers nothing and the person is asked again.
    pub rule_keys: BTreeMap<usize, String>,
}

impl ConsentConfig {
    /// The settings for a call to `server` decided by the rule at `rule_index` (its place in
    /// the file; `None` for a consent that no rule asked for, e.g. a secret in arguments).
    pub fn settings(&self, server: &str, rule_index: Option<usize>) -> ConsentSettings {
        let mut s = ConsentSettings::default();
        if let Some(o) = self.servers.get(server) {
            o.apply(&mut s);
        }
        if let Some(o) = rule_index.and_then(|i| self.rules.get(&i)) {
            o.apply(&mut s);
        }
        s
    }

    /// The key remembered approvals use for the rule at `rule_index` (see `rule_keys`); a
    /// consent no rule asked for is `consent (no rule)`.
    pub fn rule_key(&self, rule_index: Option<usize>) -> String {
        match rule_index {
            Some(i) => self
                .rule_keys
                .get(&i)
                .cloned()
                .unwrap_or_else(|| format!("rule {}", i + 1)),
            None => "consent (no rule)".to_owned(),
        }
    }
}

/// The key of a consent rule for remembered approvals: its number and text digest.
pub(crate) fn rule_key(number: usize, text: &str) -> String {
    format!(
        "rule {number} {}",
        portcullis_guard::digest(&serde_json::Value::String(text.to_owned()))
    )
}

/// Checks one `consent` table; `key` names it in messages (`servers.files.consent`,
/// `consent in rule 3`).
pub(crate) fn overrides(raw: RawConsent, key: &str, issues: &mut Issues) -> ConsentOverrides {
    let mut o = ConsentOverrides {
        trust_elicitation: raw.trust_elicitation,
        for_tool: raw.for_tool,
        ..ConsentOverrides::default()
    };
    if let Some(list) = raw.channels {
        let known = Channel::ALL
            .map(|c| format!("\"{}\"", c.as_str()))
            .join(", ");
        o.channels = names(
            list,
            &format!("{key}.channels"),
            &known,
            Channel::parse,
            issues,
        );
    }
    if let Some(list) = raw.remember {
        let known = RememberChoice::ALL
            .map(|c| format!("\"{}\"", c.as_str()))
            .join(", ");
        o.remember = names(
            list,
            &format!("{key}.remember"),
            &known,
            RememberChoice::parse,
            issues,
        );
    }
    if let Some(d) = &raw.timeout {
        o.timeout = duration(d, &format!("{key}.timeout"), issues);
    }
    if let Some(d) = &raw.always_ttl {
        o.always_ttl = duration_up_to(d, &format!("{key}.always_ttl"), MAX_ALWAYS_TTL, issues);
    }
    o
}

/// A non-empty list of known names, each once.
fn names<T: PartialEq>(
    list: SpannedList,
    key: &str,
    known: &str,
    parse: fn(&str) -> Option<T>,
    issues: &mut Issues,
) -> Option<Vec<T>> {
    if list.get_ref().is_empty() {
        issues.at(
            list.span(),
            format!("{key} must not be empty: list one or more of {known}"),
        );
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for item in list.into_inner() {
        match parse(item.get_ref()) {
            Some(v) if out.contains(&v) => {
                issues.at(
                    item.span(),
                    format!("\"{}\" appears twice in {key}", item.get_ref()),
                );
                ok = false;
            }
            Some(v) => out.push(v),
            None => {
                issues.at(
                    item.span(),
                    format!("unknown \"{}\" in {key}: use {known}", item.get_ref()),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// A rule's `consent` table: only a consent rule holds calls.
pub(crate) fn rule_overrides(
    raw: Spanned<RawConsent>,
    number: usize,
    effect: Effect,
    issues: &mut Issues,
) -> Option<ConsentOverrides> {
    if effect != Effect::Consent {
        issues.at(
            raw.span(),
            format!(
                "`consent` in rule {number} applies only to a rule with effect = \"consent\", not \"{}\"",
                effect.as_str()
            ),
        );
        return None;
    }
    Some(overrides(
        raw.into_inner(),
        &format!("rules[{number}].consent"),
        issues,
    ))
}

/// What `portcullis check` says about consent settings that loosen a default or cannot work:
/// a client's own answer that counts, and a consent that no channel can ever put to a
/// person in this configuration. `rules` are the consent rules: (origin index, description,
/// the servers the rule can apply to).
pub(crate) fn warnings(
    config: &ConsentConfig,
    rules: &[(usize, String, Vec<String>)],
    approvals_configured: bool,
    stdio: bool,
    out: &mut Vec<String>,
) {
    for (index, what, servers) in rules {
        let mut trusting = Vec::new();
        let mut unreachable = Vec::new();
        for server in servers {
            let s = config.settings(server, Some(*index));
            if s.trust_elicitation {
                trusting.push(format!("\"{server}\""));
            }
            let reachable = s.channels.iter().any(|c| match c {
                Channel::Approvals => approvals_configured,
                Channel::Elicitation | Channel::InputRequired => s.trust_elicitation,
                Channel::Tty => stdio,
            });
            if !reachable {
                unreachable.push(format!("\"{server}\""));
            }
        }
        if !trusting.is_empty() {
            out.push(format!(
                "{what} counts an approval the client gives by itself (consent.trust_elicitation = true) on {}: a client that answers elicitations automatically approves its own calls",
                trusting.join(", ")
            ));
        }
        if !unreachable.is_empty() {
            out.push(format!(
                "{what} can never be approved on {}: no consent channel there can reach a person ({}a client's own answer only refuses without consent.trust_elicitation = true{})",
                unreachable.join(", "),
                if approvals_configured { "" } else { "[approvals] is not configured; " },
                if stdio { "" } else { "; tty needs portcullis stdio" },
            ));
        }
    }
}
