//! The compiled rule set: one Aho-Corasick automaton over every rule's keywords, and each
//! rule's regex, run only when one of its keywords is in the text — over the whole text, or,
//! for an anchored rule, only where its keywords occur.

use std::ops::Range;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::Regex;

use super::Finding;
use super::entropy::shannon;
use super::rules::{ANCHORED_WINDOW, Ctx, Spec};

/// The text is searched for a rule only when it is at least this long: no secret any rule
/// reports is shorter (a 6-character password after `pwd=`).
const MIN_TEXT: usize = 10;

struct Rule {
    spec: &'static Spec,
    regex: Regex,
    /// Whether the pattern has capture groups (else the whole match is the secret and the
    /// cheaper `find_iter` is used).
    groups: bool,
}

/// Where an anchored rule is tried: (rule, offset of a keyword).
type Anchor = (usize, usize);

/// Every rule, compiled. Build once ([`super::detector`]) and share: it is immutable.
pub struct Detector {
    rules: Vec<Rule>,
    prefilter: AhoCorasick,
    /// For each keyword of the automaton, the rules it wakes.
    wakes: Vec<Vec<usize>>,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("rules", &self.rules.len())
            .finish_non_exhaustive()
    }
}

/// A pattern as the engine gets it: `\b` made ASCII-only (the Unicode one would send
/// non-ASCII text to the engine's slow path).
fn ascii_boundaries(pattern: &str) -> String {
    pattern.replace(r"\b", r"(?-u:\b)")
}

impl Detector {
    /// Compiles `specs`. A pattern that does not compile is a bug in this crate (a unit test
    /// compiles every one), reported as the error.
    pub(crate) fn new(specs: &'static [&'static [Spec]]) -> Result<Self, String> {
        let mut rules = Vec::new();
        let mut keywords: Vec<&'static str> = Vec::new();
        let mut wakes: Vec<Vec<usize>> = Vec::new();
        for spec in specs.iter().flat_map(|s| s.iter()) {
            let pattern = ascii_boundaries(spec.pattern);
            let pattern = if spec.anchored {
                format!("^(?:{pattern})")
            } else {
                pattern
            };
            let regex = Regex::new(&pattern).map_err(|e| format!("rule {}: {e}", spec.kind))?;
            let index = rules.len();
            for keyword in spec.keywords {
                match keywords.iter().position(|k| k == keyword) {
                    Some(at) => wakes[at].push(index),
                    None => {
                        keywords.push(keyword);
                        wakes.push(vec![index]);
                    }
                }
            }
            let groups = regex.captures_len() > 1;
            rules.push(Rule {
                spec,
                regex,
                groups,
            });
        }
        let prefilter = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&keywords)
            .map_err(|e| format!("keywords: {e}"))?;
        Ok(Detector {
            rules,
            prefilter,
            wakes,
        })
    }

    /// Every credential in `text`, in order, not overlapping (see `resolve` for what happens
    /// where two rules match the same text).
    #[must_use]
    pub fn find(&self, text: &str) -> Vec<Finding> {
        if text.len() < MIN_TEXT {
            return Vec::new();
        }
        let mut woken = vec![false; self.rules.len()];
        let mut anchors: Vec<Anchor> = Vec::new();
        for m in self.prefilter.find_overlapping_iter(text) {
            for &rule in &self.wakes[m.pattern().as_usize()] {
                if self.rules[rule].spec.anchored {
                    anchors.push((rule, m.start()));
                } else {
                    woken[rule] = true;
                }
            }
        }
        let mut found: Vec<(Finding, usize)> = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            if woken[index] {
                rule.matches(text, 0, |finding| found.push((finding, index)));
            }
        }
        anchors.sort_unstable();
        anchors.dedup();
        for (index, at) in anchors {
            self.rules[index].matches(text, at, |finding| found.push((finding, index)));
        }
        resolve(found)
    }

    /// Whether `text` holds any credential.
    #[must_use]
    pub fn is_match(&self, text: &str) -> bool {
        !self.find(text).is_empty()
    }
}

impl Rule {
    /// Reports the rule's matches in `text`: all of them, or for an anchored rule the one
    /// starting at `at` (a keyword's offset), looked for in the window after it.
    fn matches(&self, text: &str, at: usize, mut out: impl FnMut(Finding)) {
        let haystack = if self.spec.anchored {
            let mut end = (at + ANCHORED_WINDOW).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            &text[at..end]
        } else {
            text
        };
        let shift = |r: Range<usize>| r.start + at..r.end + at;
        let mut accept = |whole: Range<usize>, secret: Range<usize>| {
            let ctx = Ctx {
                text,
                whole: shift(whole),
                secret: shift(secret),
            };
            if self.spec.min_entropy > 0.0 && shannon(ctx.secret()) < self.spec.min_entropy {
                return;
            }
            if self.spec.check.is_some_and(|check| !check(&ctx)) {
                return;
            }
            out(Finding {
                kind: self.spec.kind,
                range: ctx.secret,
            });
        };
        if !self.groups {
            for m in self.regex.find_iter(haystack) {
                accept(m.range(), m.range());
            }
            return;
        }
        for caps in self.regex.captures_iter(haystack) {
            let Some(whole) = caps.get(0) else {
                continue;
            };
            let secret = caps
                .iter()
                .skip(1)
                .flatten()
                .next()
                .map_or(whole.range(), |m| m.range());
            accept(whole.range(), secret);
        }
    }
}

/// Findings without overlaps. Two findings that start at the same place: the earlier rule's
/// (the more specific) is kept and the other dropped (`token=ghp_…@host` is a `github-token`
/// ending where the token ends, not a `generic-secret` running on into the host). Findings
/// that overlap from different starts are merged into one covering both, under the first one's
/// kind, so no part of either is left in the clear.
fn resolve(mut found: Vec<(Finding, usize)>) -> Vec<Finding> {
    found.sort_by(|(a, ra), (b, rb)| a.range.start.cmp(&b.range.start).then(ra.cmp(rb)));
    let mut kept: Vec<Finding> = Vec::with_capacity(found.len());
    for (finding, _) in found {
        match kept.last_mut() {
            Some(last) if finding.range.start < last.range.end => {
                if finding.range.start > last.range.start {
                    last.range.end = last.range.end.max(finding.range.end);
                }
            }
            _ => kept.push(finding),
        }
    }
    kept
}

#[cfg(test)]
pub(super) mod tests_support {
    use super::*;

    /// `resolve` on bare ranges with rule indices.
    pub fn resolve_ranges(found: &[(Range<usize>, usize)]) -> Vec<Range<usize>> {
        let found = found
            .iter()
            .map(|(range, rule)| {
                (
                    Finding {
                        kind: "test",
                        range: range.clone(),
                    },
                    *rule,
                )
            })
            .collect();
        resolve(found).into_iter().map(|f| f.range).collect()
    }
}
