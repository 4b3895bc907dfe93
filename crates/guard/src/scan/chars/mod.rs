//! Characters a reader does not see: Unicode tags, bidi controls, zero-width characters,
//! variation selectors, other default-ignorable code points, C0/C1 controls and ANSI escape
//! sequences.
//!
//! Contiguous characters of one kind are one finding, with their code points and offset.
//! What is ordinary in honest text is let through: a zero-width joiner inside an emoji
//! sequence or between letters of a script that needs it, an emoji or CJK variation selector
//! after its base character, an emoji flag's tag sequence, a byte order mark at the start.
//! Tag characters and runs of variation selectors can encode text; that text is decoded and
//! returned so it can be read like any other.

use super::evidence::{code_points, escape};
use super::{Hit, MAX_FINDINGS_PER_RULE, Rule, Severity};

/// What [`scan`] found in one string.
#[derive(Debug, Default)]
pub(super) struct CharScan {
    pub hits: Vec<Hit>,
    /// Text spelled out by invisible characters, with the offset of its first one.
    pub hidden: Vec<Hidden>,
}

#[derive(Debug)]
pub(super) struct Hidden {
    pub offset: usize,
    pub text: String,
}

/// The invisible kinds, by code point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Tag,
    /// Overrides, embeddings and isolates (`strong`), or marks.
    Bidi {
        strong: bool,
    },
    ZeroWidth,
    Selector,
    Other,
}

fn class(c: char) -> Option<Class> {
    Some(match c as u32 {
        0xE0000..=0xE007F => Class::Tag,
        0x202A..=0x202E | 0x2066..=0x2069 => Class::Bidi { strong: true },
        0x200E | 0x200F | 0x061C => Class::Bidi { strong: false },
        0x200B..=0x200D
        | 0x2060..=0x2064
        | 0xFEFF
        | 0x180E
        | 0x00AD
        | 0x034F
        | 0x115F
        | 0x1160
        | 0x3164
        | 0xFFA0
        | 0x17B4
        | 0x17B5 => Class::ZeroWidth,
        0xFE00..=0xFE0F | 0xE0100..=0xE01EF | 0x180B..=0x180D | 0x180F => Class::Selector,
        0x2065
        | 0x206A..=0x206F
        | 0xFFF0..=0xFFFB
        | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A
        | 0xE0080..=0xE00FF
        | 0xE01F0..=0xE0FFF => Class::Other,
        _ => return None,
    })
}

/// Whether `c` is invisible: a default-ignorable code point, a tag, a bidi control.
pub(crate) fn is_invisible(c: char) -> bool {
    class(c).is_some()
}

/// A control character other than `\n`, `\t`, `\r` (C0, DEL, C1).
fn is_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\n' | '\t' | '\r')
}

const ESC: char = '\u{1b}';
/// C1 CSI and OSC, the one-character forms of `ESC [` and `ESC ]`.
const C1_CSI: char = '\u{9b}';
const C1_OSC: char = '\u{9d}';

/// Scans one string; `name` for identifiers, where nothing invisible is ever expected and
/// every finding is at least high.
pub(super) fn scan(text: &str, name: bool) -> CharScan {
    let chars: Vec<char> = text.chars().collect();
    let mut out = CharScan::default();
    let zero_width_total = chars
        .iter()
        .filter(|c| class(**c) == Some(Class::ZeroWidth))
        .count();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == ESC || c == C1_CSI || c == C1_OSC {
            let (len, what) = ansi(&chars[i..]);
            let seq: String = chars[i..i + len].iter().collect();
            out.hits.push(Hit {
                rule: Rule::AnsiEscape,
                severity: Severity::High,
                offset: i,
                evidence: escape(&seq),
                message: format!(
                    "an ANSI escape sequence that {what}: on a terminal the text shown differs from the text the model reads"
                ),
            });
            i += len;
            continue;
        }
        if is_control(c) {
            let end = run_end(&chars, i, |c| {
                is_control(c) && c != ESC && c != C1_CSI && c != C1_OSC
            });
            let run = &chars[i..end];
            out.hits.push(Hit {
                rule: Rule::ControlCharacter,
                severity: if name {
                    Severity::High
                } else {
                    Severity::Medium
                },
                offset: i,
                evidence: escape(&run.iter().collect::<String>()),
                message: format!(
                    "{} control character{} ({})",
                    run.len(),
                    plural(run.len()),
                    code_points(run.iter().copied(), 6)
                ),
            });
            i = end;
            continue;
        }
        let Some(kind) = class(c) else {
            i += 1;
            continue;
        };
        let end = run_end(&chars, i, |d| same_rule(class(d), kind));
        let hit = classify(
            &chars,
            i,
            end,
            kind,
            zero_width_total,
            name,
            &mut out.hidden,
        );
        if let Some(mut hit) = hit {
            if name {
                hit.severity = hit.severity.max(Severity::High);
                hit.message.push_str(" in a name");
            }
            out.hits.push(hit);
        }
        i = end;
    }
    out.hits = cap(out.hits);
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn same_rule(a: Option<Class>, b: Class) -> bool {
    match (a, b) {
        (Some(Class::Bidi { .. }), Class::Bidi { .. }) => true,
        (Some(a), b) => a == b,
        (None, _) => false,
    }
}

fn run_end(chars: &[char], start: usize, within: impl Fn(char) -> bool) -> usize {
    let mut end = start + 1;
    while end < chars.len() && within(chars[end]) {
        end += 1;
    }
    end
}

/// The finding for the run `chars[start..end]` of invisible characters of `kind`, if it
/// is not an ordinary use.
fn classify(
    chars: &[char],
    start: usize,
    end: usize,
    kind: Class,
    zero_width_total: usize,
    name: bool,
    hidden: &mut Vec<Hidden>,
) -> Option<Hit> {
    let run = &chars[start..end];
    let before = start.checked_sub(1).map(|i| chars[i]);
    let after = chars.get(end).copied();
    let evidence = escape(&run.iter().collect::<String>());
    let points = code_points(run.iter().copied(), 6);
    let n = run.len();
    let hit = |rule, severity, message: String| {
        Some(Hit {
            rule,
            severity,
            offset: start,
            evidence: evidence.clone(),
            message,
        })
    };
    match kind {
        Class::Tag => {
            if !name && is_flag_tag_sequence(before, run) {
                return None;
            }
            let decoded: String = run
                .iter()
                .filter_map(|c| match *c as u32 {
                    t @ 0xE0020..=0xE007E => char::from_u32(t - 0xE0000),
                    _ => None,
                })
                .collect();
            let readable = decoded.chars().any(|c| c.is_ascii_alphanumeric());
            if readable && hidden.len() < MAX_FINDINGS_PER_RULE {
                hidden.push(Hidden {
                    offset: start,
                    text: decoded.clone(),
                });
            }
            let (severity, says) = if readable {
                (
                    Severity::Critical,
                    format!(": they spell out \"{}\"", escape(&decoded)),
                )
            } else {
                (Severity::High, String::new())
            };
            hit(
                Rule::UnicodeTags,
                severity,
                format!(
                    "{n} invisible Unicode tag character{} ({points}){says}",
                    plural(n)
                ),
            )
        }
        Class::Bidi { .. } => {
            let strong = run
                .iter()
                .any(|c| class(*c) == Some(Class::Bidi { strong: true }));
            if strong {
                hit(
                    Rule::BidiControl,
                    Severity::High,
                    format!(
                        "{n} bidirectional override or isolate control{} ({points}): the text is shown in another order than the model reads it",
                        plural(n)
                    ),
                )
            } else {
                hit(
                    Rule::BidiControl,
                    Severity::Low,
                    format!("{n} bidirectional mark{} ({points})", plural(n)),
                )
            }
        }
        Class::ZeroWidth => {
            if !name && n == 1 && ordinary_zero_width(run[0], before, after, start) {
                return None;
            }
            let (severity, why) = if n >= 4 || zero_width_total >= 8 {
                (Severity::High, ": many of them can encode hidden data")
            } else {
                (Severity::Medium, "")
            };
            hit(
                Rule::ZeroWidth,
                severity,
                format!("{n} zero-width character{} ({points}){why}", plural(n)),
            )
        }
        Class::Selector => {
            if !name && n == 1 && ordinary_selector(run[0], before) {
                return None;
            }
            let bytes: Vec<u8> = run.iter().filter_map(|c| selector_byte(*c)).collect();
            let decoded = (n >= 2)
                .then(|| String::from_utf8(bytes).ok())
                .flatten()
                .filter(|t| t.chars().any(char::is_alphanumeric));
            match decoded {
                Some(text) => {
                    let says = escape(&text);
                    if hidden.len() < MAX_FINDINGS_PER_RULE {
                        hidden.push(Hidden {
                            offset: start,
                            text,
                        });
                    }
                    hit(
                        Rule::VariationSelector,
                        Severity::Critical,
                        format!(
                            "{n} variation selectors ({points}) that carry bytes: they spell out \"{says}\""
                        ),
                    )
                }
                None if n >= 2 => hit(
                    Rule::VariationSelector,
                    Severity::High,
                    format!(
                        "{n} variation selectors in a row ({points}): they can carry hidden bytes"
                    ),
                ),
                None => hit(
                    Rule::VariationSelector,
                    Severity::Medium,
                    format!("a variation selector ({points}) where no glyph variant applies"),
                ),
            }
        }
        Class::Other => hit(
            Rule::InvisibleFormat,
            Severity::Medium,
            format!("{n} invisible formatting character{} ({points})", plural(n)),
        ),
    }
}

/// 🏴 followed by tag letters or digits and CANCEL TAG: a subdivision flag (England's).
fn is_flag_tag_sequence(before: Option<char>, run: &[char]) -> bool {
    before == Some('\u{1F3F4}')
        && (3..=8).contains(&run.len())
        && run.last() == Some(&'\u{E007F}')
        && run[..run.len() - 1]
            .iter()
            .all(|c| matches!(*c as u32, 0xE0030..=0xE0039 | 0xE0061..=0xE007A))
}

/// A lone joiner in an emoji sequence or between letters of a script that uses it, or a
/// byte order mark at the very start.
fn ordinary_zero_width(c: char, before: Option<char>, after: Option<char>, at: usize) -> bool {
    match c {
        '\u{FEFF}' => at == 0,
        '\u{200D}' | '\u{200C}' => {
            let joins =
                |x: Option<char>| x.is_some_and(|x| is_pictograph(x) || is_joining_letter(x));
            joins(before) && joins(after)
        }
        _ => false,
    }
}

/// A lone variation selector that selects a glyph: after an emoji, a symbol, a CJK
/// ideograph or a keycap digit.
fn ordinary_selector(c: char, before: Option<char>) -> bool {
    let Some(base) = before else {
        return false;
    };
    if is_invisible(base) {
        return false;
    }
    match c as u32 {
        0xE0100..=0xE01EF => is_ideograph(base),
        0xFE0E | 0xFE0F => !base.is_ascii() || matches!(base, '0'..='9' | '#' | '*'),
        _ => !base.is_ascii(),
    }
}

/// The byte a variation selector stands for in the "emoji smuggling" encoding.
fn selector_byte(c: char) -> Option<u8> {
    match c as u32 {
        v @ 0xFE00..=0xFE0F => u8::try_from(v - 0xFE00).ok(),
        v @ 0xE0100..=0xE01EF => u8::try_from(v - 0xE0100 + 16).ok(),
        _ => None,
    }
}

fn is_pictograph(c: char) -> bool {
    matches!(c as u32,
        0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2300..=0x23FF | 0x2B00..=0x2BFF | 0xFE0F)
}

/// Letters of scripts whose spelling uses ZWJ/ZWNJ (Arabic, Syriac, Indic, Sinhala, …).
fn is_joining_letter(c: char) -> bool {
    matches!(c as u32, 0x0600..=0x08FF | 0x0900..=0x0DFF | 0x0F00..=0x0FFF | 0x1780..=0x17FF)
}

fn is_ideograph(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x3134F)
}

/// Length of the escape sequence at the start of `s` (which starts with ESC, C1 CSI or C1
/// OSC), and what it does.
fn ansi(s: &[char]) -> (usize, &'static str) {
    const MAX_SEQUENCE: usize = 512;
    let bounded = &s[..s.len().min(MAX_SEQUENCE)];
    match bounded {
        [C1_CSI, ..] => csi(bounded, 1),
        [C1_OSC, ..] => osc(bounded, 1),
        [ESC, '[', ..] => csi(bounded, 2),
        [ESC, ']', ..] => osc(bounded, 2),
        [ESC, 'P' | 'X' | '^' | '_', ..] => {
            let end = until_terminator(bounded, 2);
            (end, "carries a device control string")
        }
        [ESC, c, ..] if ('\u{20}'..='\u{2f}').contains(c) => {
            let mut j = 2;
            while j < bounded.len() && ('\u{20}'..='\u{2f}').contains(&bounded[j]) {
                j += 1;
            }
            (
                (j + 1).min(bounded.len()),
                "switches character sets or modes",
            )
        }
        [ESC, c, ..] if ('\u{30}'..='\u{7e}').contains(c) => (2, "controls the terminal"),
        _ => (1, "starts a control sequence"),
    }
}

fn csi(s: &[char], from: usize) -> (usize, &'static str) {
    let mut j = from;
    while j < s.len() && ('\u{30}'..='\u{3f}').contains(&s[j]) {
        j += 1;
    }
    let params: String = s[from..j].iter().collect();
    while j < s.len() && ('\u{20}'..='\u{2f}').contains(&s[j]) {
        j += 1;
    }
    let Some(&fin) = s.get(j).filter(|c| ('\u{40}'..='\u{7e}').contains(*c)) else {
        return (j, "is left unterminated");
    };
    let what = match fin {
        'm' if params.split(';').any(|p| p == "8") => "conceals the text after it (SGR 8)",
        'm' => "changes colors or styles (SGR)",
        'A'..='H' | 'J' | 'K' | 'f' | 's' | 'u' | 'd' => "moves the cursor or erases the screen",
        _ => "controls the terminal",
    };
    (j + 1, what)
}

fn osc(s: &[char], from: usize) -> (usize, &'static str) {
    let body: String = s[from..s.len().min(from + 3)].iter().collect();
    let what = if body.starts_with("8;") {
        "makes a hyperlink whose target is not shown (OSC 8)"
    } else if body.starts_with("52") {
        "writes to the clipboard (OSC 52)"
    } else {
        "sends an operating system command (window title, …)"
    };
    (until_terminator(s, from), what)
}

/// The end of a control string: after BEL, `ESC \` or C1 ST; the whole input if none.
fn until_terminator(s: &[char], from: usize) -> usize {
    let mut j = from;
    while j < s.len() {
        match s[j] {
            '\u{07}' | '\u{9c}' => return j + 1,
            ESC if s.get(j + 1) == Some(&'\\') => return j + 2,
            _ => j += 1,
        }
    }
    s.len()
}

/// At most [`MAX_FINDINGS_PER_RULE`] per rule, the worst kept; the last kept says how many
/// more there were. The result is in offset order.
pub(super) fn cap(hits: Vec<Hit>) -> Vec<Hit> {
    let mut by_rule: Vec<(Rule, Vec<Hit>)> = Vec::new();
    for hit in hits {
        match by_rule.iter_mut().find(|(r, _)| *r == hit.rule) {
            Some((_, v)) => v.push(hit),
            None => by_rule.push((hit.rule, vec![hit])),
        }
    }
    let mut out = Vec::new();
    for (_, mut v) in by_rule {
        if v.len() > MAX_FINDINGS_PER_RULE {
            let more = v.len() - MAX_FINDINGS_PER_RULE;
            v.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.offset.cmp(&b.offset)));
            v.truncate(MAX_FINDINGS_PER_RULE);
            if let Some(last) = v.last_mut() {
                last.message
                    .push_str(&format!(" (and {more} more like it in this string)"));
            }
        }
        out.extend(v);
    }
    out.sort_by_key(|h| h.offset);
    out
}

#[cfg(test)]
mod tests;
