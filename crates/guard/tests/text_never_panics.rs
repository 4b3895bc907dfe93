//! Whatever the text, sanitizing and secret detection answer, stay in bounds and never panic:
//! property tests over arbitrary strings, weighted towards what they look for (escape bytes,
//! controls, tag, bidi and zero-width characters, credential prefixes, key words).

use portcullis_guard::secrets::{self, Allowlist};
use portcullis_guard::{SanitizeMode, is_clean, sanitize, suspect_spans};
use proptest::prelude::*;

/// Pieces the scanners react to, glued together with arbitrary text.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,12}",
        prop::sample::select(vec![
            "\u{1b}",
            "\u{1b}[",
            "\u{1b}]",
            "\u{1b}P",
            "\u{1b}\\",
            "\u{7}",
            "\u{9b}",
            "\u{9c}",
            "\u{0}",
            "\r",
            "\u{7f}",
            "\u{85}",
            "\u{e0041}",
            "\u{e007f}",
            "\u{202e}",
            "\u{2066}",
            "\u{200b}",
            "\u{200d}",
            "\u{feff}",
            "ghp_",
            "github_pat_",
            "AKIA",
            "xoxb-",
            "sk-",
            "sk-ant-api03-",
            "eyJ",
            ".eyJ",
            "-----BEGIN PRIVATE KEY-----",
            "-----END",
            "postgres://",
            "://",
            "@",
            ":",
            "=",
            "\"",
            "'",
            "password",
            "secret",
            "token",
            "api_key",
            "Bearer ",
            "Authorization: Basic ",
            "\\n",
            "é",
            "日本",
            "🦀",
        ])
        .prop_map(str::to_owned),
        "[A-Za-z0-9_\\-+/=]{8,60}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..40).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn sanitize_is_total_and_stripped_text_is_clean(t in text()) {
        let (stripped, found) = sanitize(&t, SanitizeMode::Strip);
        prop_assert!(is_clean(&stripped));
        prop_assert_eq!(is_clean(&t), found.total() == 0);
        let (again, none) = sanitize(&stripped, SanitizeMode::Strip);
        prop_assert_eq!(again.as_ref(), stripped.as_ref());
        prop_assert_eq!(none.total(), 0);
        let (escaped, counted) = sanitize(&t, SanitizeMode::Escape);
        prop_assert!(is_clean(&escaped));
        prop_assert_eq!(counted, found);
        // The spans are in order, on character boundaries, and what strip removes.
        let mut kept = String::new();
        let mut from = 0;
        for (range, _) in suspect_spans(&t) {
            prop_assert!(range.start >= from && t.is_char_boundary(range.start) && t.is_char_boundary(range.end));
            kept.push_str(&t[from..range.start]);
            from = range.end;
        }
        kept.push_str(&t[from..]);
        prop_assert_eq!(kept.as_str(), stripped.as_ref());
    }

    #[test]
    fn findings_are_in_bounds_ordered_and_disjoint(t in text()) {
        let findings = secrets::detector().find(&t);
        let mut end = 0;
        for f in &findings {
            prop_assert!(f.range.start >= end && f.range.start < f.range.end && f.range.end <= t.len());
            prop_assert!(t.is_char_boundary(f.range.start) && t.is_char_boundary(f.range.end));
            prop_assert!(secrets::is_kind(f.kind));
            end = f.range.end;
        }
        let (out, redactions) = secrets::redact_text(&t, &Allowlist::default());
        prop_assert_eq!(redactions.total(), findings.len());
        for f in &findings {
            prop_assert!(out.contains(&secrets::placeholder(f.kind)));
        }
    }
}
