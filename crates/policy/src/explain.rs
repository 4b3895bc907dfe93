//! The human form of a decision: what was decided, by which rule, and why each earlier
//! rule did not decide. Printed by `portcullis explain` and kept in audit records.
//!
//! ```text
//! decision: allow
//! by: rule 3 (policy.toml:14)
//! reason: rule 3 (policy.toml:14) allows tool "read_file" on server "files"
//! rate: 10/minute
//! rules tried:
//!   rule 1 (policy.toml:3): skipped: about server "tickets"
//!   rule 2 (policy.toml:8): skipped: principal local:alice is not in principals = [group:admins]
//!   rule 3 (policy.toml:14): matched: allow
//! ```
//!
//! Runs of three or more consecutive rules about other servers (or other names) are
//! folded into one line, so a large policy still explains in a screenful.

use std::fmt::Write as _;

use crate::policy::{Decision, Policy, Step, StepOutcome};
use crate::rule::{Coverage, Rule};

/// Shortest run of rules skipped for the same plain reason that is folded into one line.
const FOLD: usize = 3;

impl Policy {
    /// The decision, its rule, and why each earlier rule did not decide, one per line.
    pub fn explain(&self, decision: &Decision) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "decision: {}", decision.verdict.as_str());
        let by = decision
            .rule
            .and_then(|i| self.rules().get(i))
            .map_or_else(|| "default deny".to_owned(), |r| r.origin.to_string());
        let _ = writeln!(out, "by: {by}");
        let _ = writeln!(out, "reason: {}", decision.reason);
        if let Some(rate) = decision.rate {
            let _ = writeln!(out, "rate: {rate}");
        }
        let _ = writeln!(out, "rules tried:");
        let end = decision.rule.map_or(self.rules().len(), |i| i + 1);
        let mut lines: Vec<Line> = Vec::new();
        for (i, rule) in self.rules().iter().enumerate().take(end) {
            let recorded = decision.trace.iter().find(|s| s.rule == i);
            let line = match recorded {
                Some(step) => Line::Text(i, self.step_text(decision, rule, step)),
                None if !rule.matches_server(&decision.server) => Line::OtherServer(i),
                None => Line::OtherName(i),
            };
            lines.push(line);
        }
        let mut k = 0;
        while k < lines.len() {
            let run = lines[k..]
                .iter()
                .take_while(|l| l.same_fold(&lines[k]))
                .count();
            if run >= FOLD {
                let (first, last) = (lines[k].rule(), lines[k + run - 1].rule());
                let what = match lines[k] {
                    Line::OtherServer(_) => "about other servers",
                    _ => "about other kinds or names",
                };
                let _ = writeln!(
                    out,
                    "  rules {}-{}{}: skipped: {what}",
                    first + 1,
                    last + 1,
                    self.lines_span(first, last)
                );
                k += run;
                continue;
            }
            let i = lines[k].rule();
            let rule = &self.rules()[i];
            let text = match &lines[k] {
                Line::Text(_, t) => t.clone(),
                Line::OtherServer(_) => format!(
                    "skipped: about server {:?}",
                    rule.server.as_deref().unwrap_or_default()
                ),
                Line::OtherName(_) => self.name_text(decision, rule),
            };
            let _ = writeln!(out, "  {}: {text}", rule.origin);
            k += 1;
        }
        if decision.rule.is_none() {
            let _ = writeln!(out, "  default deny: no rule matched");
        }
        out
    }

    /// ` (file.toml:10-40)` for a folded run, when the lines are known.
    fn lines_span(&self, first: usize, last: usize) -> String {
        let (a, b) = (&self.rules()[first].origin, &self.rules()[last].origin);
        match (&a.file, a.line, b.line) {
            (Some(file), Some(l1), Some(l2)) => format!(" ({file}:{l1}-{l2})"),
            _ => String::new(),
        }
    }

    fn name_text(&self, decision: &Decision, rule: &Rule) -> String {
        match rule.coverage(decision.kind) {
            Coverage::None => format!("skipped: does not cover {}", decision.kind.plural()),
            _ => format!(
                "skipped: {} {:?} is not in {} = [{}]",
                decision.kind,
                decision.name,
                decision.kind.plural(),
                rule.names(decision.kind)
                    .unwrap_or_default()
                    .iter()
                    .map(|g| g.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    fn step_text(&self, decision: &Decision, rule: &Rule, step: &Step) -> String {
        match &step.outcome {
            StepOutcome::NotThisServer => format!(
                "skipped: about server {:?}",
                rule.server.as_deref().unwrap_or_default()
            ),
            StepOutcome::NameNotMatched => self.name_text(decision, rule),
            StepOutcome::PrincipalNotMatched => format!(
                "skipped: principal {} is not in principals = [{}]",
                decision.principal,
                rule.principals
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            StepOutcome::ConditionFalse => format!(
                "skipped: condition is false: {}",
                rule.when.as_ref().map_or("", |c| c.source())
            ),
            StepOutcome::ConstraintFailed { which, why } => format!("skipped: {which}: {why}"),
            StepOutcome::Matched => format!("matched: {}", rule.effect),
            StepOutcome::MissingScopes { missing } => format!(
                "matched, but the token lacks {}: insufficient_scope",
                missing.join(", ")
            ),
            StepOutcome::ConditionError { msg } => {
                format!("condition failed to evaluate: {msg}: deny (fail closed)")
            }
            StepOutcome::ConstraintUnverifiable { which, why } => {
                format!("matched: deny, because {which}: {why} (fail closed)")
            }
        }
    }
}

/// One rule's line before folding.
enum Line {
    Text(usize, String),
    OtherServer(usize),
    OtherName(usize),
}

impl Line {
    fn rule(&self) -> usize {
        match self {
            Line::Text(i, _) | Line::OtherServer(i) | Line::OtherName(i) => *i,
        }
    }

    fn same_fold(&self, other: &Line) -> bool {
        matches!(
            (self, other),
            (Line::OtherServer(_), Line::OtherServer(_)) | (Line::OtherName(_), Line::OtherName(_))
        )
    }
}
