//! What `portcullis trust` shows of a server's definitions: each tool that is new, changed,
//! renamed, listed twice or removed, with the words of its description removed and added
//! and each place its schemas or annotations changed; the instructions likewise.
//!
//! Fingerprints are shortened to their first 12 hex digits here (the JSON has them whole).
//! Definitions come from the server, which nobody vouches for: every string goes through
//! [`shown`], which makes control, bidirectional, zero-width and tag characters visible as
//! `\u{…}` — hidden instructions are what a rug pull hides.

use std::fmt::Write as _;

use portcullis_gateway::upstream::definitions::compare::{Compared, Status};
use portcullis_gateway::upstream::definitions::diff::{self, MemberChange, Words};
use portcullis_gateway::upstream::definitions::{short, shown_identity};
use portcullis_store::DefinitionPin;
use serde_json::{Value, json};

use super::super::text::clean;
use super::super::time::format_ms;
use super::definitions::{DefinitionsReview, Instructions};

/// `text` for a terminal: [`clean`], and every invisible character escaped too.
pub(super) fn shown(text: &str) -> String {
    let cleaned = clean(text);
    let mut out = String::with_capacity(cleaned.len());
    for c in cleaned.chars() {
        if invisible(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters that print as nothing (or change how the next one prints).
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00ad}' | '\u{034f}' | '\u{061c}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}'
        | '\u{180b}'..='\u{180f}' | '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{206f}'
        | '\u{3164}' | '\u{fe00}'..='\u{fe0f}' | '\u{feff}' | '\u{ffa0}' | '\u{fff0}'..='\u{fffb}'
        | '\u{1bca0}'..='\u{1bca3}' | '\u{1d173}'..='\u{1d17a}' | '\u{e0000}'..='\u{e0fff}')
}

/// The review as text.
pub(super) fn text(server: &str, review: &DefinitionsReview) -> String {
    let mut out = format!(
        "\nDefinitions of \"{}\" (pinned under {}, definitions = \"{}\"):\n",
        clean(server),
        shown(&shown_identity(&review.identity)),
        review.mode.as_str()
    );
    if let Some(e) = &review.pins_error {
        let _ = writeln!(
            out,
            "  the pins cannot be read ({}): every tool is shown as new, and accepting replaces them",
            clean(e)
        );
    }
    let mut unchanged = Vec::new();
    for t in &review.comparison.tools {
        match &t.status {
            Status::Unchanged => unchanged.push(shown(&t.tool.name)),
            status => out.push_str(&tool_text(t, status)),
        }
    }
    for pin in &review.comparison.removed {
        let _ = writeln!(
            out,
            "  {}: REMOVED (no longer listed; accepting drops its pin, {})",
            shown(&pin.name),
            pinned_by(pin)
        );
    }
    if !unchanged.is_empty() {
        let _ = writeln!(
            out,
            "  unchanged ({}): {}",
            unchanged.len(),
            unchanged.join(", ")
        );
    }
    if review.comparison.tools.is_empty() && review.comparison.removed.is_empty() {
        out.push_str("  no tools\n");
    }
    out.push_str(&instructions_text(&review.instructions));
    out
}

fn tool_text(t: &Compared, status: &Status) -> String {
    let name = shown(&t.tool.name);
    let mut out = String::new();
    match status {
        Status::Unchanged => {}
        Status::New => {
            let _ = writeln!(out, "  {name}: NEW ({})", short(&t.tool.full));
            for member in diff::changed_members(&Value::Null, &t.tool.pinned) {
                if member == "name" {
                    continue;
                }
                let value = &t.tool.pinned[member];
                let value = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned);
                out.push_str(&indented(&format!("{member}: {value}"), 4));
            }
        }
        Status::Changed { pinned } => {
            let _ = writeln!(
                out,
                "  {name}: CHANGED ({}; {} -> {})",
                pinned_by(pinned),
                short(&pinned.fingerprint),
                short(&t.tool.full)
            );
            out.push_str(&members_text(&pinned.definition, &t.tool.pinned));
        }
        Status::Renamed { pinned } => {
            let _ = writeln!(
                out,
                "  {name}: RENAMED from \"{}\" (the same definition; {})",
                shown(&pinned.name),
                pinned_by(pinned)
            );
        }
        Status::Duplicate => {
            let _ = writeln!(
                out,
                "  {name}: LISTED TWICE with different definitions (cannot be accepted; it stays withheld)"
            );
        }
    }
    out
}

fn members_text(before: &Value, after: &Value) -> String {
    let mut out = String::new();
    for (member, change) in diff::members(before, after) {
        match change {
            MemberChange::Text { words, .. } => {
                out.push_str(&indented(
                    &format!("{member}: {}", diff::render_words(&words)),
                    4,
                ));
            }
            MemberChange::Json { changes, truncated } => {
                let _ = writeln!(out, "    {member}:");
                for c in &changes {
                    let what = match (&c.before, &c.after) {
                        (None, Some(after)) => format!("added   {} = {after}", pointer(&c.path)),
                        (Some(before), None) => {
                            format!("removed {} (was {before})", pointer(&c.path))
                        }
                        (Some(before), Some(after)) => {
                            format!("changed {}: {before} -> {after}", pointer(&c.path))
                        }
                        (None, None) => continue,
                    };
                    out.push_str(&indented(&what, 6));
                }
                if truncated {
                    out.push_str("      … and more\n");
                }
            }
        }
    }
    out
}

fn pointer(path: &str) -> &str {
    if path.is_empty() { "(whole)" } else { path }
}

/// `text` cleaned, one line per line of the text, each indented by `by` spaces.
fn indented(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    let mut out = String::new();
    for (i, line) in text.split('\n').enumerate() {
        let lead = if i == 0 {
            pad.clone()
        } else {
            format!("{pad}  ")
        };
        let _ = writeln!(out, "{lead}{}", shown(line));
    }
    out
}

fn pinned_by(pin: &DefinitionPin) -> String {
    format!(
        "pinned by {} at {}",
        clean(&pin.pinned_by),
        format_ms(pin.pinned_at_ms)
    )
}

fn instructions_text(instructions: &Instructions) -> String {
    match instructions {
        Instructions::None => "Instructions: none\n".to_owned(),
        Instructions::Unchanged => "Instructions: unchanged\n".to_owned(),
        Instructions::New(now) => format!("Instructions: NEW\n{}", indented(now, 4)),
        Instructions::Changed { pinned, now } => {
            let before = pinned.definition.as_str().unwrap_or_default();
            format!(
                "Instructions: CHANGED ({})\n{}",
                pinned_by(pinned),
                indented(&diff::render_words(&diff::words(before, now)), 4)
            )
        }
        Instructions::Removed(pin) => format!(
            "Instructions: REMOVED (the server sends none now; accepting drops the pin, {})\n",
            pinned_by(pin)
        ),
    }
}

/// The review as JSON (under `definitions` in `trust --json`).
pub(super) fn json(review: &DefinitionsReview) -> Value {
    let tools: Vec<Value> = review
        .comparison
        .tools
        .iter()
        .map(|t| {
            let mut tool = json!({
                "name": t.tool.name,
                "status": t.status.as_str(),
                "fingerprint": t.tool.full,
            });
            match &t.status {
                Status::Changed { pinned } => {
                    tool["pinned"] = pin_json(pinned);
                    tool["changes"] = changes_json(&pinned.definition, &t.tool.pinned);
                }
                Status::Renamed { pinned } => {
                    tool["renamed_from"] = json!(pinned.name);
                    tool["pinned"] = pin_json(pinned);
                }
                Status::New => tool["definition"] = t.tool.pinned.clone(),
                Status::Unchanged | Status::Duplicate => {}
            }
            tool
        })
        .collect();
    let removed: Vec<Value> = review
        .comparison
        .removed
        .iter()
        .map(|p| json!({ "name": p.name, "pinned": pin_json(p) }))
        .collect();
    let instructions = match &review.instructions {
        Instructions::None => json!({ "status": "none" }),
        Instructions::Unchanged => json!({ "status": "unchanged" }),
        Instructions::New(now) => json!({ "status": "new", "text": now }),
        Instructions::Changed { pinned, now } => json!({
            "status": "changed", "text": now, "pinned": pin_json(pinned),
            "diff": diff::render_words(&diff::words(pinned.definition.as_str().unwrap_or_default(), now)),
        }),
        Instructions::Removed(pin) => json!({ "status": "removed", "pinned": pin_json(pin) }),
    };
    json!({
        "identity": shown_identity(&review.identity),
        "mode": review.mode.as_str(),
        "pins_error": review.pins_error,
        "differs": review.differs(),
        "tools": tools,
        "removed": removed,
        "instructions": instructions,
    })
}

fn pin_json(pin: &DefinitionPin) -> Value {
    json!({
        "fingerprint": pin.fingerprint,
        "pinned_by": pin.pinned_by,
        "pinned_at": format_ms(pin.pinned_at_ms),
    })
}

fn changes_json(before: &Value, after: &Value) -> Value {
    let members: Vec<Value> = diff::members(before, after)
        .into_iter()
        .map(|(member, change)| match change {
            MemberChange::Text { before, after, words } => json!({
                "member": member, "kind": "text", "before": before, "after": after,
                "diff": diff::render_words(&words),
                "removed": words.iter().filter_map(|w| match w { Words::Removed(s) => Some(s.as_str()), _ => None }).collect::<Vec<_>>(),
                "added": words.iter().filter_map(|w| match w { Words::Added(s) => Some(s.as_str()), _ => None }).collect::<Vec<_>>(),
            }),
            MemberChange::Json { changes, truncated } => json!({
                "member": member, "kind": "json", "truncated": truncated,
                "changes": changes.iter().map(|c| json!({
                    "path": c.path, "change": c.kind(), "before": c.before, "after": c.after,
                })).collect::<Vec<_>>(),
            }),
        })
        .collect();
    Value::Array(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_characters_are_shown() {
        assert_eq!(shown("a\u{200b}b"), "a\\u{200b}b");
        assert_eq!(shown("x\u{e0049}\u{e0047}y"), "x\\u{e0049}\\u{e0047}y");
        assert_eq!(shown("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(shown("plain ü"), "plain ü");
    }
}
