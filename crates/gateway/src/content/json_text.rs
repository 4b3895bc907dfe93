//! Rewriting the strings of a JSON text without parsing it into values.
//!
//! A result can be megabytes; parsing it into a `serde_json::Value`, walking it and writing it
//! out again would cost more than the checks themselves, and would reformat what the upstream
//! sent even when nothing changed. Instead one pass over the text finds every string token,
//! decodes its escapes, finds what is to be sanitized in it, and builds a *view*: the JSON
//! text with each string replaced by its decoded content in [`detection_form`] (escape
//! sequences and controls as breaks, invisible characters gone) and everything else as it
//! was. The secret detector then runs once over the view, so a credential is seen with its
//! key around it (`"api_key": "…"`) and an invisible character cannot split it; each finding
//! is mapped back to the string it falls in (findings outside strings, or in skipped strings,
//! are dropped; one running past its string's end is cut there). Only strings that changed
//! are written again — sanitized in the configured mode, with placeholders, JSON-escaped —
//! and every other byte of the text is copied as it came.
//!
//! A text without a backslash and without anything to sanitize is its own view, and is not
//! even lexed unless the detector finds something in it. This is not a JSON validator: the
//! text is one the wire layer already parsed.
//!
//! Skipped strings (decided by the caller's [`Skip`]) are neither sanitized nor redacted: base64
//! payloads, whose bytes are not text, and protocol metadata.

use std::borrow::Cow;
use std::ops::Range;

use portcullis_guard::secrets::{self, Allowlist, Redactions};
use portcullis_guard::{SanitizeMode, Sanitized, Suspect, sanitize, suspect_spans};

use super::json_string::{decode, escape_into};

/// The text is not the JSON the gateway already parsed it as (cannot happen for a result the
/// wire layer accepted; reported rather than guessed around).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed JSON text at byte {0}")]
pub struct Malformed(pub usize);

/// Which strings to leave alone, decided from where they are.
pub(super) trait Skip {
    /// A value under object key `key` (raw, as written between its quotes): skip the whole
    /// value, whatever it is.
    fn skip_value_under(&self, key: &str) -> bool;
    /// A string value under `key` with this raw content: skip it.
    fn skip_string_under(&self, key: &str, raw_content: &str) -> bool;
}

/// What the pass changes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Work<'a> {
    pub sanitize: Option<SanitizeMode>,
    /// `None`: no redaction.
    pub redact: Option<&'a Allowlist>,
}

/// The text again, if anything changed, and what was found.
#[derive(Debug, Default)]
pub(super) struct Rewritten {
    pub text: Option<String>,
    pub sanitized: Sanitized,
    pub redacted: Redactions,
}

struct Token {
    /// The content between the quotes, in the raw text.
    raw: Range<usize>,
    /// The decoded content (in detection form), in the view.
    view: Range<usize>,
    skipped: bool,
    /// The decoded content and what in it is to be sanitized, when there is something. The
    /// view then holds its detection form (see [`detection_form`]) and the output is made
    /// from this.
    original: Option<Original>,
}

/// A string's decoded content and its suspect spans.
type Original = (String, Vec<(Range<usize>, Suspect)>);

enum Frame {
    Object {
        expect_key: bool,
        key: Option<Range<usize>>,
        skip: bool,
    },
    Array {
        skip: bool,
    },
}

/// Runs `work` on the strings of `raw`, a JSON text.
pub(super) fn rewrite(raw: &str, skip: &dyn Skip, work: Work<'_>) -> Result<Rewritten, Malformed> {
    let mut out = Rewritten::default();
    // The view is needed when a string has an escape or something to sanitize; otherwise it
    // is the raw text itself, and the strings are only looked for when there is a finding.
    let plain = memchr::memchr(b'\\', raw.as_bytes()).is_none()
        && work
            .sanitize
            .is_none_or(|_| portcullis_guard::is_clean(raw));
    let (view, tokens, findings) = if plain {
        let Some(_) = work.redact else {
            return Ok(out);
        };
        let findings = secrets::detector().find(raw);
        if findings.is_empty() {
            return Ok(out);
        }
        let tokens = lex(raw, skip, None, &mut out.sanitized)?;
        (Cow::Borrowed(raw), tokens, findings)
    } else {
        let mut view = String::with_capacity(raw.len());
        let tokens = lex(
            raw,
            skip,
            Some((&mut view, work.sanitize)),
            &mut out.sanitized,
        )?;
        let findings = match work.redact {
            Some(_) => secrets::detector().find(&view),
            None => Vec::new(),
        };
        (Cow::Owned(view), tokens, findings)
    };
    let mut replacements: Vec<(usize, Range<usize>, &'static str)> = Vec::new();
    if let Some(allow) = work.redact {
        for finding in findings {
            let at = tokens.partition_point(|t| t.view.end <= finding.range.start);
            let Some(token) = tokens.get(at) else {
                continue;
            };
            if token.skipped || finding.range.start < token.view.start {
                continue;
            }
            let end = finding.range.end.min(token.view.end);
            let range = finding.range.start..end;
            if range.is_empty() || allow.allows(finding.kind, &view[range.clone()]) {
                continue;
            }
            replacements.push((at, range, finding.kind));
        }
    }
    if replacements.is_empty() && !tokens.iter().any(|t| t.original.is_some()) {
        return Ok(out);
    }
    let mut text = String::with_capacity(raw.len());
    let mut copied = 0;
    let mut next = replacements.iter().peekable();
    for (index, token) in tokens.iter().enumerate() {
        let mine = next.peek().is_some_and(|(at, _, _)| *at == index);
        if !mine && token.original.is_none() {
            continue;
        }
        text.push_str(&raw[copied..token.raw.start]);
        let mut found = Vec::new();
        while let Some((_, range, kind)) = next.next_if(|(at, _, _)| *at == index) {
            out.redacted.note(kind);
            found.push((
                range.start - token.view.start..range.end - token.view.start,
                *kind,
            ));
        }
        let content = match (&token.original, work.sanitize) {
            (Some((original, spans)), Some(mode)) => {
                sanitized_with_placeholders(original, spans, &found, mode)
            }
            _ => with_placeholders(&view[token.view.clone()], &found),
        };
        escape_into(&content, &mut text);
        copied = token.raw.end;
    }
    text.push_str(&raw[copied..]);
    out.text = Some(text);
    Ok(out)
}

/// `text` with each of `found` (ranges in it) replaced by its placeholder.
fn with_placeholders(text: &str, found: &[(Range<usize>, &'static str)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    for (range, kind) in found {
        out.push_str(&text[from..range.start]);
        out.push_str(&secrets::placeholder(kind));
        from = range.end;
    }
    out.push_str(&text[from..]);
    out
}

/// What the detector sees of a string with suspect characters: each escape sequence or
/// control becomes a space (a terminal shows a break there, so `\x1b[1mghp_…` after a word
/// is a token of its own), every other suspect character nothing (so a zero-width space
/// cannot split a token out of sight).
fn detection_form(original: &str, spans: &[(Range<usize>, Suspect)], out: &mut String) {
    let mut from = 0;
    for (range, what) in spans {
        out.push_str(&original[from..range.start]);
        if what.separates() {
            out.push(' ');
        }
        from = range.end;
    }
    out.push_str(&original[from..]);
}

/// `original` sanitized in `mode`, with `found` — ranges in its [`detection_form`] —
/// replaced by placeholders. A position in the detection form maps back by adding what the
/// form left out before it (at a finding's start also what it left out right there; at its
/// end not), so an escape sequence just before or after a secret stays (stripped or escaped
/// like any other) and invisible characters inside one go with it.
fn sanitized_with_placeholders(
    original: &str,
    spans: &[(Range<usize>, Suspect)],
    found: &[(Range<usize>, &'static str)],
    mode: SanitizeMode,
) -> String {
    // (where the span is in the detection form, bytes left out up to and including it)
    let mut shifts = Vec::with_capacity(spans.len());
    let mut shift = 0;
    for (range, what) in spans {
        let at = range.start - shift;
        shift += range.len() - usize::from(what.separates());
        shifts.push((at, shift));
    }
    let before = |p: usize, inclusive: bool| {
        let n = shifts.partition_point(|(at, _)| if inclusive { *at <= p } else { *at < p });
        n.checked_sub(1).map_or(0, |i| shifts[i].1)
    };
    let clean = |s: &str| sanitize(s, mode).0.into_owned();
    let mut out = String::with_capacity(original.len());
    let mut from = 0;
    for (range, kind) in found {
        let start = (range.start + before(range.start, true)).max(from);
        let end = (range.end + before(range.end, false)).max(start);
        out.push_str(&clean(&original[from..start]));
        out.push_str(&secrets::placeholder(kind));
        from = end;
    }
    out.push_str(&clean(&original[from..]));
    out
}

/// One pass over `raw`: every string token, and (when `build` is given) the view with each
/// string decoded and sanitized.
fn lex(
    raw: &str,
    skip: &dyn Skip,
    mut build: Option<(&mut String, Option<SanitizeMode>)>,
    found: &mut Sanitized,
) -> Result<Vec<Token>, Malformed> {
    let bytes = raw.as_bytes();
    let mut tokens = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let end = string_end(bytes, i + 1)?;
                let content = i + 1..end;
                let is_key = matches!(
                    stack.last(),
                    Some(Frame::Object {
                        expect_key: true,
                        ..
                    })
                );
                let skipped = if is_key {
                    frame_skip(&stack)
                } else {
                    value_skip(raw, &stack, skip)
                        || value_key(raw, &stack)
                            .is_some_and(|k| skip.skip_string_under(k, &raw[content.clone()]))
                };
                let mut original = None;
                let view = match build.as_mut() {
                    None => content.clone(),
                    Some((view, mode)) => {
                        view.push_str(&raw[copied..=i]);
                        let start = view.len();
                        let text = &raw[content.clone()];
                        if skipped {
                            view.push_str(text);
                        } else {
                            let decoded = decode(text);
                            let spans = match mode {
                                Some(_) => suspect_spans(&decoded),
                                None => Vec::new(),
                            };
                            if spans.is_empty() {
                                view.push_str(&decoded);
                            } else {
                                for (_, what) in &spans {
                                    found.note(*what);
                                }
                                detection_form(&decoded, &spans, view);
                                original = Some((decoded.into_owned(), spans));
                            }
                        }
                        copied = end;
                        start..view.len()
                    }
                };
                tokens.push(Token {
                    raw: content.clone(),
                    view,
                    skipped,
                    original,
                });
                if is_key
                    && let Some(Frame::Object {
                        expect_key, key, ..
                    }) = stack.last_mut()
                {
                    *expect_key = false;
                    *key = Some(content);
                }
                i = end + 1;
            }
            b'{' => {
                let skip = value_skip(raw, &stack, skip);
                stack.push(Frame::Object {
                    expect_key: true,
                    key: None,
                    skip,
                });
                i += 1;
            }
            b'[' => {
                let skip = value_skip(raw, &stack, skip);
                stack.push(Frame::Array { skip });
                i += 1;
            }
            b'}' | b']' => {
                stack.pop().ok_or(Malformed(i))?;
                i += 1;
            }
            b',' => {
                if let Some(Frame::Object { expect_key, .. }) = stack.last_mut() {
                    *expect_key = true;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    if !stack.is_empty() {
        return Err(Malformed(bytes.len()));
    }
    if let Some((view, _)) = build {
        view.push_str(&raw[copied..]);
    }
    Ok(tokens)
}

/// Whether the innermost container is skipped.
fn frame_skip(stack: &[Frame]) -> bool {
    match stack.last() {
        Some(Frame::Object { skip, .. } | Frame::Array { skip }) => *skip,
        None => false,
    }
}

/// The key of the object member whose value comes next, if the innermost container is an
/// object.
fn value_key<'r>(raw: &'r str, stack: &[Frame]) -> Option<&'r str> {
    match stack.last() {
        Some(Frame::Object { key: Some(k), .. }) => Some(&raw[k.clone()]),
        _ => None,
    }
}

/// Whether the value that comes next is skipped: its container is, or its key says so.
fn value_skip(raw: &str, stack: &[Frame], skip: &dyn Skip) -> bool {
    frame_skip(stack) || value_key(raw, stack).is_some_and(|k| skip.skip_value_under(k))
}

/// The index of the quote that closes the string whose content starts at `from`.
fn string_end(bytes: &[u8], from: usize) -> Result<usize, Malformed> {
    let mut j = from;
    loop {
        match memchr::memchr2(b'"', b'\\', &bytes[j..]) {
            Some(k) if bytes[j + k] == b'"' => return Ok(j + k),
            Some(k) => j += k + 2,
            None => return Err(Malformed(from)),
        }
        if j > bytes.len() {
            return Err(Malformed(from));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Skips `_meta` values and base64 `blob`s, like the content module's policy.
    struct TestSkip;

    impl Skip for TestSkip {
        fn skip_value_under(&self, key: &str) -> bool {
            key == "_meta"
        }
        fn skip_string_under(&self, key: &str, raw: &str) -> bool {
            key == "blob" && !raw.contains(' ')
        }
    }

    fn run(raw: &str) -> Rewritten {
        let allow = Allowlist::default();
        rewrite(
            raw,
            &TestSkip,
            Work {
                sanitize: Some(SanitizeMode::Strip),
                redact: Some(&allow),
            },
        )
        .unwrap_or_else(|e| panic!("{e}: {raw}"))
    }

    fn token() -> String {
        format!("{}_{}", "ghp", "Ab3dEf6hIj9kLm2oPq5sTu8wXy1zAb4dEf7h")
    }

    #[test]
    fn unchanged_text_is_not_rewritten() {
        for raw in [
            r#"{"content":[{"type":"text","text":"hello\nworld"}],"isError":false}"#,
            r#"{"a":[1,2.5,true,null,{"b":"c \"quoted\" \\ slash"}]}"#,
            r#"[]"#,
            r#""just a string""#,
        ] {
            let out = run(raw);
            assert!(out.text.is_none(), "{raw}");
            assert_eq!(out.sanitized.total(), 0);
        }
    }

    #[test]
    fn strings_are_sanitized_and_redacted_and_the_rest_kept_byte_for_byte() {
        let raw = format!(
            r#"{{ "content" : [ {{"type":"text","text":"\u001b[31mred\u001b[0m token {} here"}} ], "n": 1.50 }}"#,
            token()
        );
        let out = run(&raw);
        assert_eq!(
            out.text.as_deref(),
            Some(
                r#"{ "content" : [ {"type":"text","text":"red token [REDACTED:github-token] here"} ], "n": 1.50 }"#
            )
        );
        assert_eq!(out.sanitized.ansi, 2);
        assert_eq!(out.redacted.total(), 1);
    }

    #[test]
    fn a_key_names_the_secret_of_its_value() {
        let out = run(r#"{"structured":{"api_key":"k8Fq2Lm9Xz4Rt7Wp1Vb6Nc3Y"}}"#);
        assert_eq!(
            out.text.as_deref(),
            Some(r#"{"structured":{"api_key":"[REDACTED:generic-secret]"}}"#)
        );
    }

    #[test]
    fn escapes_and_surrogates_are_decoded_before_the_checks() {
        // A tag character written as a surrogate pair, and a zero-width space, escaped.
        let out = run(r#"{"text":"a\udb40\udc41b\u200bc"}"#);
        assert_eq!(out.text.as_deref(), Some(r#"{"text":"abc"}"#));
        assert_eq!((out.sanitized.tags, out.sanitized.zero_width), (1, 1));
        // A zero-width space splitting a token is stripped first, so the token is found.
        let t = token();
        let split = format!(r#"{{"text":"{}\u200b{}"}}"#, &t[..10], &t[10..]);
        assert_eq!(
            run(&split).text.as_deref(),
            Some(r#"{"text":"[REDACTED:github-token]"}"#)
        );
    }

    #[test]
    fn skipped_strings_are_left_alone() {
        let raw = format!(
            r#"{{"_meta":{{"note":"\u001b[1m{t}"}},"contents":[{{"uri":"x","blob":"{t}"}}]}}"#,
            t = token()
        );
        assert!(run(&raw).text.is_none(), "{raw}");
    }

    #[test]
    fn a_finding_never_crosses_into_the_next_string() {
        // A private key cut short runs "to the end of the text": it stops at its string's end.
        let raw =
            r#"{"a":"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC","b":"kept"}"#;
        let out = run(raw);
        assert_eq!(
            out.text.as_deref(),
            Some(r#"{"a":"[REDACTED:private-key]","b":"kept"}"#)
        );
    }

    #[test]
    fn controls_left_by_sanitize_off_are_escaped_again() {
        let allow = Allowlist::default();
        let raw = format!(r#"{{"t":"\u0007 {} \"q\""}}"#, token());
        let out = rewrite(
            &raw,
            &TestSkip,
            Work {
                sanitize: None,
                redact: Some(&allow),
            },
        )
        .unwrap_or_default();
        assert_eq!(
            out.text.as_deref(),
            Some(r#"{"t":"\u0007 [REDACTED:github-token] \"q\""}"#)
        );
        let parsed: serde_json::Value =
            serde_json::from_str(out.text.as_deref().unwrap_or_default()).unwrap_or_default();
        assert_eq!(parsed["t"], "\u{7} [REDACTED:github-token] \"q\"");
    }

    #[test]
    fn malformed_text_is_an_error_not_a_pass() {
        // (Texts with an escape: a text without one and without a finding is not even lexed.)
        for raw in [
            r#"{"a":"unterminated\n"#,
            r#"{"a":"\n","b":1"#,
            r#"["\n"]]"#,
        ] {
            assert!(run_result(raw).is_err(), "{raw}");
        }
    }

    fn run_result(raw: &str) -> Result<Rewritten, Malformed> {
        let allow = Allowlist::default();
        rewrite(
            raw,
            &TestSkip,
            Work {
                sanitize: Some(SanitizeMode::Strip),
                redact: Some(&allow),
            },
        )
    }
}
