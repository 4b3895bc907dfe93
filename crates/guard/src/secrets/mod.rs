//! Secret detection: which credentials a text holds, and the text with each replaced by a
//! typed placeholder such as `[REDACTED:github-token]`.
//!
//! A rule is a kind name, keywords, a pattern for the `regex` crate (linear time: no
//! backtracking whatever the text), and where the format alone is not enough an entropy floor
//! and a check. The keywords of every rule go into one Aho-Corasick automaton (ASCII
//! case-insensitive); a text is scanned once by it, and only the rules one of whose keywords
//! occurs run their pattern. Text without any keyword costs that one scan.
//!
//! The rules (`rules.rs`: provider formats; `context.rs`: private keys, JWTs, URL passwords,
//! `Authorization` values, assignments) are listed by [`kinds`]. Where two rules match the
//! same text, the earlier-starting match wins; at the same start, the more specific rule
//! (provider formats come before context rules) wins with its own extent; a match starting
//! inside a kept one extends it.
//!
//! An [`Allowlist`] keeps known false positives: whole kinds, or exact values.

mod context;
mod detector;
mod entropy;
mod rules;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::sync::LazyLock;

pub use detector::Detector;

/// Every rule, in order of preference.
static SPECS: &[&[rules::Spec]] = &[rules::PROVIDERS, context::CONTEXT];

static DETECTOR: LazyLock<Detector> = LazyLock::new(|| match Detector::new(SPECS) {
    Ok(detector) => detector,
    // Patterns are constants of this crate and a unit test compiles them all.
    Err(e) => panic!("the built-in secret rules do not compile: {e}"),
});

/// The built-in detector, compiled on first use.
#[must_use]
pub fn detector() -> &'static Detector {
    &DETECTOR
}

/// One credential found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule's kind (`github-token`, `jwt`, `password`, …).
    pub kind: &'static str,
    /// Where the secret is, in bytes: only the secret (`hunter22` of `password=hunter22`).
    pub range: Range<usize>,
}

/// Every kind the detector reports, sorted, each once.
#[must_use]
pub fn kinds() -> Vec<&'static str> {
    let set: BTreeSet<&'static str> = SPECS
        .iter()
        .flat_map(|specs| specs.iter().map(|s| s.kind))
        .collect();
    set.into_iter().collect()
}

/// Whether `kind` is one [`kinds`] lists.
#[must_use]
pub fn is_kind(kind: &str) -> bool {
    SPECS
        .iter()
        .any(|specs| specs.iter().any(|s| s.kind == kind))
}

/// What replaces a secret of `kind`: `[REDACTED:<kind>]`.
#[must_use]
pub fn placeholder(kind: &str) -> String {
    format!("[REDACTED:{kind}]")
}

/// A kind an [`Allowlist`] names that no rule reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown secret kind {kind:?}; the kinds are: {}", kinds().join(", "))]
pub struct UnknownKind {
    pub kind: String,
}

/// Findings to leave alone: every finding of a kind, or a finding whose secret is exactly one
/// of the values. `Debug` shows how many values, never them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    kinds: BTreeSet<String>,
    values: BTreeSet<String>,
}

impl fmt::Debug for Allowlist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Allowlist")
            .field("kinds", &self.kinds)
            .field("values", &self.values.len())
            .finish()
    }
}

impl Allowlist {
    /// # Errors
    /// A kind the detector does not have: a typo would otherwise allow nothing, silently.
    pub fn new(
        kinds: impl IntoIterator<Item = String>,
        values: impl IntoIterator<Item = String>,
    ) -> Result<Self, UnknownKind> {
        let kinds: BTreeSet<String> = kinds.into_iter().collect();
        if let Some(kind) = kinds.iter().find(|k| !is_kind(k)) {
            return Err(UnknownKind { kind: kind.clone() });
        }
        Ok(Allowlist {
            kinds,
            values: values.into_iter().collect(),
        })
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty() && self.values.is_empty()
    }

    /// Whether a finding of `kind` with this `secret` is allowed.
    #[must_use]
    pub fn allows(&self, kind: &str, secret: &str) -> bool {
        self.kinds.contains(kind) || self.values.contains(secret)
    }

    /// Adds `other`'s kinds and values (a server's list and a tool's, together).
    pub fn extend(&mut self, other: &Allowlist) {
        self.kinds.extend(other.kinds.iter().cloned());
        self.values.extend(other.values.iter().cloned());
    }
}

/// How many secrets of each kind were replaced. Never the values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redactions {
    counts: BTreeMap<&'static str, usize>,
}

impl Redactions {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Secrets replaced, all kinds together.
    #[must_use]
    pub fn total(&self) -> usize {
        self.counts.values().sum()
    }

    /// `(kind, count)`, by kind.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, usize)> + '_ {
        self.counts.iter().map(|(k, n)| (*k, *n))
    }

    /// Counts one more secret of `kind` replaced.
    pub fn note(&mut self, kind: &'static str) {
        *self.counts.entry(kind).or_default() += 1;
    }
}

/// `github-token 2, jwt 1`.
impl fmt::Display for Redactions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (kind, n)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{kind} {n}")?;
        }
        Ok(())
    }
}

/// `text` with every credential the built-in detector finds, and `allow` does not keep,
/// replaced by its [`placeholder`]; borrowed when there was none.
#[must_use]
pub fn redact_text<'t>(text: &'t str, allow: &Allowlist) -> (Cow<'t, str>, Redactions) {
    let mut redactions = Redactions::default();
    let findings = detector().find(text);
    let mut out: Option<String> = None;
    let mut copied = 0;
    for finding in findings {
        let secret = &text[finding.range.clone()];
        if allow.allows(finding.kind, secret) {
            continue;
        }
        let buffer = out.get_or_insert_with(|| String::with_capacity(text.len()));
        buffer.push_str(&text[copied..finding.range.start]);
        buffer.push_str("[REDACTED:");
        buffer.push_str(finding.kind);
        buffer.push(']');
        copied = finding.range.end;
        redactions.note(finding.kind);
    }
    match out {
        None => (Cow::Borrowed(text), redactions),
        Some(mut buffer) => {
            buffer.push_str(&text[copied..]);
            (Cow::Owned(buffer), redactions)
        }
    }
}

#[cfg(test)]
mod tests;
