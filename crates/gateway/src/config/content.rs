//! `[content]`: what the gateway does to the text it relays to a client (tool results,
//! prompts, resource contents, log messages) and how it treats credentials in the arguments
//! of open-world tools. The work itself is `crate::content`; this file turns the section into
//! a [`ContentConfig`], checking every kind name, server name and glob at load.

use portcullis_guard::SanitizeMode;
use portcullis_guard::secrets::Allowlist;
use portcullis_policy::Glob;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;
use toml::Spanned;

use super::diagnostic::Issues;
use super::raw::SpannedList;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [content] table")]
pub(crate) struct RawContent {
    pub sanitize: Option<Spanned<String>>,
    pub redact: Option<bool>,
    pub secrets_in_arguments: Option<Spanned<String>>,
    pub allow: Option<Vec<Spanned<RawContentAllow>>>,
    pub open_world: Option<Vec<Spanned<RawOpenWorld>>>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an allow entry such as { server = \"files\", tools = [\"read_*\"], kinds = [\"jwt\"], values = [\"…\"] }"
)]
pub(crate) struct RawContentAllow {
    pub server: Option<Spanned<String>>,
    pub tools: Option<SpannedList>,
    pub kinds: Option<SpannedList>,
    pub values: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an open_world entry such as { server = \"web\", tools = [\"fetch*\"] }"
)]
pub(crate) struct RawOpenWorld {
    pub server: Option<Spanned<String>>,
    pub tools: Option<SpannedList>,
}

/// What a credential in the arguments of an open-world tool does to the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecretsInArguments {
    /// The call is refused (audited, with the kinds found).
    #[default]
    Deny,
    /// The call is held for a person's consent, as a `consent` rule holds it.
    Consent,
}

/// Which calls an entry is about: a server (or every server) and tool globs (or every tool,
/// and then also the server's prompts, resources and log messages).
#[derive(Debug, Clone)]
pub struct ContentSelector {
    pub server: Option<String>,
    pub tools: Vec<Glob>,
}

impl ContentSelector {
    /// Whether the selector covers `name` (a tool; `None` for what is not a tool) of `server`.
    pub fn covers(&self, server: &str, tool: Option<&str>) -> bool {
        self.server.as_deref().is_none_or(|s| s == server)
            && (self.tools.is_empty()
                || tool.is_some_and(|t| self.tools.iter().any(|g| g.matches(t))))
    }
}

/// `[content]`, checked.
#[derive(Debug, Clone)]
pub struct ContentConfig {
    /// `sanitize`: `None` is `"off"`.
    pub sanitize: Option<SanitizeMode>,
    /// `redact`.
    pub redact: bool,
    /// `secrets_in_arguments`.
    pub secrets_in_arguments: SecretsInArguments,
    /// `[[content.allow]]`: known false positives, each for the calls its selector covers.
    pub allow: Vec<(ContentSelector, Allowlist)>,
    /// `[[content.open_world]]`: tools treated as open-world whatever their annotations say.
    pub open_world: Vec<ContentSelector>,
}

impl Default for ContentConfig {
    fn default() -> Self {
        ContentConfig {
            sanitize: Some(SanitizeMode::Strip),
            redact: true,
            secrets_in_arguments: SecretsInArguments::Deny,
            allow: Vec::new(),
            open_world: Vec::new(),
        }
    }
}

impl ContentConfig {
    /// Every allow entry that covers `tool` (or, for `None`, what is not a tool) of
    /// `server`, together.
    pub fn allowlist(&self, server: &str, tool: Option<&str>) -> Allowlist {
        let mut out = Allowlist::default();
        for (selector, list) in &self.allow {
            if selector.covers(server, tool) {
                out.extend(list);
            }
        }
        out
    }

    /// Whether a tool is open-world: its (untrusted) annotations say `openWorldHint: true`,
    /// or an `open_world` entry names it. The MCP default for an absent hint is `true`, but
    /// only an explicit one counts here, so a tool without annotations is not refused a
    /// credential it is meant to use locally; list such tools in `open_world`.
    pub fn is_open_world(&self, server: &str, tool: &str, annotations: Option<&Value>) -> bool {
        annotations
            .and_then(|a| a.get("openWorldHint"))
            .and_then(Value::as_bool)
            == Some(true)
            || self.open_world.iter().any(|s| s.covers(server, Some(tool)))
    }
}

/// `[content]` into a [`ContentConfig`]; `known` are the configured server names.
pub(crate) fn content(
    raw: RawContent,
    known: &BTreeSet<&str>,
    issues: &mut Issues,
) -> ContentConfig {
    let mut c = ContentConfig::default();
    if let Some(mode) = raw.sanitize {
        c.sanitize = match mode.get_ref().as_str() {
            "strip" => Some(SanitizeMode::Strip),
            "escape" => Some(SanitizeMode::Escape),
            "off" => None,
            other => {
                issues.at(
                    mode.span(),
                    format!("content.sanitize {other:?}: write \"strip\", \"escape\" or \"off\""),
                );
                c.sanitize
            }
        };
    }
    if let Some(redact) = raw.redact {
        c.redact = redact;
    }
    if let Some(mode) = raw.secrets_in_arguments {
        c.secrets_in_arguments = match mode.get_ref().as_str() {
            "deny" => SecretsInArguments::Deny,
            "consent" => SecretsInArguments::Consent,
            other => {
                issues.at(
                    mode.span(),
                    format!(
                        "content.secrets_in_arguments {other:?}: write \"deny\" or \"consent\""
                    ),
                );
                c.secrets_in_arguments
            }
        };
    }
    for entry in raw.allow.unwrap_or_default() {
        let span = entry.span();
        let entry = entry.into_inner();
        let Some(selector) = selector("content.allow", entry.server, entry.tools, known, issues)
        else {
            continue;
        };
        let kinds: Vec<Spanned<String>> = entry.kinds.map(Spanned::into_inner).unwrap_or_default();
        let mut ok = true;
        for kind in &kinds {
            if !portcullis_guard::secrets::is_kind(kind.get_ref()) {
                ok = false;
                issues.at(
                    kind.span(),
                    format!(
                        "content.allow: unknown secret kind {:?}; the kinds are: {}",
                        kind.get_ref(),
                        portcullis_guard::secrets::kinds().join(", ")
                    ),
                );
            }
        }
        let values = entry.values.unwrap_or_default();
        if kinds.is_empty() && values.is_empty() {
            ok = false;
            issues.at(
                span.clone(),
                "content.allow: an entry allows nothing without `kinds` or `values`",
            );
        }
        if values.iter().any(String::is_empty) {
            ok = false;
            issues.at(span.clone(), "content.allow: an empty string in `values`");
        }
        if !ok {
            continue;
        }
        match Allowlist::new(kinds.into_iter().map(Spanned::into_inner), values) {
            Ok(list) => c.allow.push((selector, list)),
            Err(e) => issues.at(span, format!("content.allow: {e}")),
        }
    }
    for entry in raw.open_world.unwrap_or_default() {
        let entry = entry.into_inner();
        if let Some(s) = selector(
            "content.open_world",
            entry.server,
            entry.tools,
            known,
            issues,
        ) {
            c.open_world.push(s);
        }
    }
    c
}

/// A `server` / `tools` pair, checked: a configured server, globs that parse.
fn selector(
    key: &str,
    server: Option<Spanned<String>>,
    tools: Option<SpannedList>,
    known: &BTreeSet<&str>,
    issues: &mut Issues,
) -> Option<ContentSelector> {
    let mut ok = true;
    if let Some(s) = &server
        && !known.contains(s.get_ref().as_str())
    {
        ok = false;
        issues.at(s.span(), format!("{key}: unknown server {:?}", s.get_ref()));
    }
    let mut globs = Vec::new();
    for tool in tools.map(Spanned::into_inner).unwrap_or_default() {
        match Glob::new(tool.get_ref()) {
            Ok(g) => globs.push(g),
            Err(e) => {
                ok = false;
                issues.at(
                    tool.span(),
                    format!("{key}: tool glob {:?}: {e}", tool.get_ref()),
                );
            }
        }
    }
    ok.then(|| ContentSelector {
        server: server.map(Spanned::into_inner),
        tools: globs,
    })
}

/// `portcullis check`'s warnings: each loosening of the defaults, named.
pub(crate) fn warnings(c: &ContentConfig, out: &mut Vec<String>) {
    if c.sanitize.is_none() {
        out.push("content.sanitize = \"off\": results, prompts, resources and log messages reach clients with ANSI escape sequences, control, tag, bidi and zero-width characters as the server wrote them".to_owned());
    }
    if !c.redact {
        out.push("content.redact = false: credentials in what servers return reach clients (and models) in the clear".to_owned());
    }
}
