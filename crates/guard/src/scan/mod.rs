//! Description scanning: what a server's tool definitions and instructions say to the model
//! that a person reading them would not see, or should not accept.
//!
//! A tool's name, title, description, the descriptions, titles and enum strings of its input
//! and output schemas, and its annotations' title reach the model verbatim; so do the server's
//! `instructions`. A server can hide instructions there (tool poisoning): in characters a
//! screen does not show, in text addressed to the model rather than to its user, or in a name
//! that passes for another server's tool. Four families of checks look for that:
//!
//! - [`chars`]: invisible and control characters — Unicode tags (U+E0000–E007F, whose text
//!   is decoded and checked in turn), bidi controls, zero-width characters, variation
//!   selectors (runs of them can carry bytes), other default-ignorable code points, C0/C1
//!   controls and ANSI escape sequences; each with its code points and position;
//! - [`text`]: instruction-like text — hidden "important" blocks, "ignore previous
//!   instructions", "do not tell the user", references to secrets and credential files, and
//!   both together;
//! - [`names`]: tool names that are not plain identifiers, that shadow another server's tool
//!   in the same virtual server, or are confusable with one (UTS #39 skeletons);
//! - references from one server's descriptions to another server's tools (in [`names`]).
//!
//! Every finding has a rule, a [`Severity`], a [`Location`] (server, tool, field as a JSON
//! pointer, character offset) and evidence that is escaped and truncated, so printing it is
//! safe. The scan is pure computation, deterministic, and bounded ([`MAX_FIELD_CHARS`],
//! [`MAX_STRINGS`], [`MAX_SCHEMA_DEPTH`], [`MAX_FINDINGS_PER_RULE`]).
//!
//! What the checks do *not* do: judge whether a tool does what it says, or read meaning into
//! ordinary prose. Benign documentation ("Important: paths are absolute", "reads `.env`
//! files") gives at most a low or medium finding; high and critical are kept for text that
//! hides itself or addresses the model against its user.

mod chars;
mod evidence;
mod fields;
mod names;
mod text;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::Value;

pub use evidence::{MAX_EVIDENCE_CHARS, escape};

/// Longest stretch of one string that is scanned, in characters; the rest is not looked at,
/// and an [`Rule::OversizedText`] finding says so (the model would read all of it).
pub const MAX_FIELD_CHARS: usize = 65_536;
/// Most strings scanned in one tool definition (name, description, schema strings, …).
pub const MAX_STRINGS: usize = 2_000;
/// Deepest schema nesting followed.
pub const MAX_SCHEMA_DEPTH: usize = 32;
/// Most findings of one rule in one field; further ones are counted in the last one's
/// message.
pub const MAX_FINDINGS_PER_RULE: usize = 5;

/// How bad a finding is. Ordered: `Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; common in honest definitions.
    Low,
    /// Unusual in honest definitions; a person should look.
    Medium,
    /// Text that hides itself or addresses the model against its user.
    High,
    /// Hidden instructions, or instructions to hand over secrets.
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A severity name that is not one of `low`, `medium`, `high`, `critical`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?}: use \"low\", \"medium\", \"high\" or \"critical\"")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownSeverity(s.to_owned()))
    }
}

/// What a finding is about. [`Rule::id`] is the stable name reports and audit records use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// Unicode tag characters (U+E0000–E007F): invisible ASCII.
    UnicodeTags,
    /// Bidirectional controls: text shown in another order than it is read.
    BidiControl,
    /// Zero-width and other invisible characters between visible ones.
    ZeroWidth,
    /// Variation selectors where no glyph variant is meant (runs of them carry bytes).
    VariationSelector,
    /// Other default-ignorable (invisible) code points.
    InvisibleFormat,
    /// C0 and C1 control characters other than newline, tab and carriage return.
    ControlCharacter,
    /// ANSI escape sequences (colors, cursor movement, hidden text, hyperlinks).
    AnsiEscape,
    /// Blocks marked up for the model: `<IMPORTANT>`, `<system>`, `[INST]`, comments.
    HiddenBlock,
    /// "Ignore previous instructions" and the like.
    OverrideInstructions,
    /// "Do not tell the user", "secretly", "without the user knowing".
    ConcealFromUser,
    /// Text that tells the model what to do before or instead of its task.
    DirectiveToModel,
    /// Secrets and credential files: `~/.ssh`, `id_rsa`, `.env`, API keys.
    SecretReference,
    /// Instructions to the model together with a reference to secrets.
    Exfiltration,
    /// One server's descriptions naming another server's tool.
    ToolReference,
    /// A tool name another server of the same virtual server also uses.
    ShadowedName,
    /// A tool name confusable with another server's (same UTS #39 skeleton).
    ConfusableName,
    /// A tool name that is not a plain identifier (`[A-Za-z0-9_.-]`, 1–128 characters).
    NonstandardName,
    /// A string longer than [`MAX_FIELD_CHARS`]: only its start was scanned.
    OversizedText,
}

impl Rule {
    pub const ALL: [Rule; 18] = [
        Rule::UnicodeTags,
        Rule::BidiControl,
        Rule::ZeroWidth,
        Rule::VariationSelector,
        Rule::InvisibleFormat,
        Rule::ControlCharacter,
        Rule::AnsiEscape,
        Rule::HiddenBlock,
        Rule::OverrideInstructions,
        Rule::ConcealFromUser,
        Rule::DirectiveToModel,
        Rule::SecretReference,
        Rule::Exfiltration,
        Rule::ToolReference,
        Rule::ShadowedName,
        Rule::ConfusableName,
        Rule::NonstandardName,
        Rule::OversizedText,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Rule::UnicodeTags => "unicode-tags",
            Rule::BidiControl => "bidi-control",
            Rule::ZeroWidth => "zero-width",
            Rule::VariationSelector => "variation-selector",
            Rule::InvisibleFormat => "invisible-format",
            Rule::ControlCharacter => "control-character",
            Rule::AnsiEscape => "ansi-escape",
            Rule::HiddenBlock => "hidden-block",
            Rule::OverrideInstructions => "override-instructions",
            Rule::ConcealFromUser => "conceal-from-user",
            Rule::DirectiveToModel => "directive-to-model",
            Rule::SecretReference => "secret-reference",
            Rule::Exfiltration => "exfiltration",
            Rule::ToolReference => "tool-reference",
            Rule::ShadowedName => "shadowed-name",
            Rule::ConfusableName => "confusable-name",
            Rule::NonstandardName => "nonstandard-name",
            Rule::OversizedText => "oversized-text",
        }
    }

    /// Rules that find text addressed to the model.
    fn is_directive(self) -> bool {
        matches!(
            self,
            Rule::HiddenBlock
                | Rule::OverrideInstructions
                | Rule::ConcealFromUser
                | Rule::DirectiveToModel
        )
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

/// Where a finding is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Location {
    /// The server whose definitions these are.
    pub server: String,
    /// The tool (as the server names it); `None` for the server's instructions.
    pub tool: Option<String>,
    /// The string, as a JSON pointer into the tool definition (`/description`,
    /// `/inputSchema/properties/path/description`) or `/instructions`.
    pub field: String,
    /// Where in that string, in characters (Unicode scalar values) from its start; `None`
    /// for findings about the string as a whole (a name).
    pub offset: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tool {
            Some(tool) => write!(f, "tool {:?} {}", escape(tool), self.field)?,
            None => write!(f, "server {:?} {}", self.server, self.field)?,
        }
        if let Some(offset) = self.offset {
            write!(f, " at {offset}")?;
        }
        Ok(())
    }
}

/// One thing the scan found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    pub location: Location,
    /// What was found, escaped (invisible and control characters as `\u{…}`) and
    /// truncated to [`MAX_EVIDENCE_CHARS`] with a visible `…`.
    pub evidence: String,
    /// Why it matters, for a person; code points as `U+XXXX`.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} in {}: {}",
            self.severity, self.rule, self.location, self.message
        )
    }
}

/// The worst severity among `findings`.
pub fn max_severity(findings: &[Finding]) -> Option<Severity> {
    findings.iter().map(|f| f.severity).max()
}

/// Scans one tool definition (an item of `tools/list`) of `server`: its name, title,
/// description, annotations' title, and the descriptions, titles, property names and
/// string values (`enum`, `const`, `default`, `examples`) of its input and output schemas.
/// Findings come worst first, then in the order of the definition.
pub fn scan_tool(server: &str, tool: &Value) -> Vec<Finding> {
    let name = tool.get("name").and_then(Value::as_str).map(str::to_owned);
    let mut out = Vec::new();
    for field in fields::tool_strings(tool) {
        let at = |offset| Location {
            server: server.to_owned(),
            tool: name.clone(),
            field: field.pointer.clone(),
            offset,
        };
        scan_string(field.text, field.kind, &at, &mut out);
    }
    if let Some(f) = name.as_deref().and_then(names::nonstandard) {
        out.push(f.at(Location {
            server: server.to_owned(),
            tool: name.clone(),
            field: "/name".to_owned(),
            offset: None,
        }));
    }
    sort(&mut out);
    out
}

/// Scans a server's `instructions` (from `initialize` or `server/discover`).
pub fn scan_instructions(server: &str, instructions: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let at = |offset| Location {
        server: server.to_owned(),
        tool: None,
        field: "/instructions".to_owned(),
        offset,
    };
    scan_string(instructions, fields::Kind::Prose, &at, &mut out);
    sort(&mut out);
    out
}

/// One server's tools, for the checks across the servers of a virtual server.
#[derive(Debug, Clone, Copy)]
pub struct ServerTools<'a> {
    pub server: &'a str,
    /// The tool definitions as listed (items without a string `name` are skipped).
    pub tools: &'a [Value],
}

/// The checks across the servers of one virtual server: a tool name another server also
/// has (or has in another case or separator), a name confusable with another server's (UTS
/// #39 skeleton), and descriptions naming another server's tool. Findings about one tool's
/// definition alone come from [`scan_tool`].
pub fn scan_route(servers: &[ServerTools<'_>]) -> Vec<Finding> {
    let mut out = names::across(servers);
    sort(&mut out);
    out
}

/// The character and text checks on one string.
fn scan_string(
    text: &str,
    kind: fields::Kind,
    at: &dyn Fn(Option<usize>) -> Location,
    out: &mut Vec<Finding>,
) {
    let (scanned, cut) = match text.char_indices().nth(MAX_FIELD_CHARS) {
        Some((i, _)) => (&text[..i], true),
        None => (text, false),
    };
    let found = chars::scan(scanned, kind == fields::Kind::Name);
    for hit in found.hits {
        out.push(hit.located(at));
    }
    if kind != fields::Kind::Name {
        for hit in text::scan(scanned, kind) {
            out.push(hit.located(at));
        }
        // Text the invisible characters spell out is read like any other, and whatever it
        // says was meant not to be seen.
        for hidden in &found.hidden {
            for mut hit in text::scan(&hidden.text, fields::Kind::Prose) {
                hit.severity = Severity::Critical;
                hit.message = format!("hidden in invisible characters: {}", hit.message);
                let location = at(Some(hidden.offset));
                out.push(hit.at(location));
            }
        }
    }
    if cut {
        out.push(Finding {
            rule: Rule::OversizedText,
            severity: Severity::Medium,
            location: at(Some(MAX_FIELD_CHARS)),
            evidence: String::new(),
            message: format!(
                "a string of more than {MAX_FIELD_CHARS} characters: the model reads all of it, the scan read the first {MAX_FIELD_CHARS}"
            ),
        });
    }
}

/// Worst first; within a severity, in the order found (the order of the definition), so
/// that the same definitions give the same report.
fn sort(findings: &mut [Finding]) {
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
}

/// A finding before it knows its location (the checks work on one string).
#[derive(Debug, Clone)]
struct Hit {
    rule: Rule,
    severity: Severity,
    /// In characters from the start of the string.
    offset: usize,
    evidence: String,
    message: String,
}

impl Hit {
    /// The finding, placed by `at` at the hit's own offset.
    fn located(self, at: &dyn Fn(Option<usize>) -> Location) -> Finding {
        let location = at(Some(self.offset));
        self.at(location)
    }

    fn at(self, location: Location) -> Finding {
        Finding {
            rule: self.rule,
            severity: self.severity,
            location,
            evidence: self.evidence,
            message: self.message,
        }
    }
}

#[cfg(test)]
mod tests;
