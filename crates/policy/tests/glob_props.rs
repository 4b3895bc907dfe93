//! Properties of glob matching that must hold for every input.

use portcullis_policy::Glob;
use proptest::prelude::*;

/// Strings with no glob metacharacter, including non-ASCII and URI punctuation.
fn plain() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_./:{}é😀-]{1,24}"
}

/// A reference matcher: plain recursion over `*`, `?` and literal characters.
fn reference(p: &[char], s: &[char]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (None, Some(_)) => false,
        (Some('*'), _) => reference(&p[1..], s) || (!s.is_empty() && reference(p, &s[1..])),
        (Some('?'), Some(_)) => reference(&p[1..], &s[1..]),
        (Some(c), Some(d)) if c == d => reference(&p[1..], &s[1..]),
        _ => false,
    }
}

proptest! {
    #[test]
    fn matching_agrees_with_a_reference_matcher(p in "[ab*?]{1,8}", s in "[ab]{0,10}") {
        let g = Glob::new(&p).expect("valid pattern");
        let (pc, sc): (Vec<char>, Vec<char>) = (p.chars().collect(), s.chars().collect());
        prop_assert_eq!(g.matches(&s), reference(&pc, &sc), "{} vs {}", p, s);
    }

    #[test]
    fn a_glob_without_metacharacters_matches_exactly_itself(p in plain(), other in any::<String>()) {
        let g = Glob::new(&p).expect("plain pattern");
        prop_assert!(g.matches(&p));
        prop_assert_eq!(g.matches(&other), other == p);
        let longer = format!("{p}x");
        prop_assert!(!g.matches(&longer));
    }

    #[test]
    fn star_matches_everything(s in any::<String>()) {
        prop_assert!(Glob::new("*").expect("star").matches(&s));
    }

    #[test]
    fn escaping_any_string_matches_exactly_that_string(s in ".{1,40}", other in any::<String>()) {
        let g = Glob::new(&Glob::escape(&s)).expect("escaped pattern is valid");
        prop_assert!(g.matches(&s));
        prop_assert_eq!(g.matches(&other), other == s);
        prop_assert!(g.is_literal());
    }

    #[test]
    fn prefix_star_equals_starts_with(prefix in plain(), s in any::<String>()) {
        let g = Glob::new(&format!("{prefix}*")).expect("prefix pattern");
        prop_assert_eq!(g.matches(&s), s.starts_with(&prefix));
        let with_prefix = format!("{prefix}{s}");
        prop_assert!(g.matches(&with_prefix));
    }

    #[test]
    fn parsing_never_panics(p in any::<String>(), s in any::<String>()) {
        if let Ok(g) = Glob::new(&p) {
            let _ = g.matches(&s);
        }
    }

    #[test]
    fn question_marks_match_strings_of_that_many_chars(n in 1usize..10, s in ".{0,12}") {
        let g = Glob::new(&"?".repeat(n)).expect("question marks");
        prop_assert_eq!(g.matches(&s), s.chars().count() == n);
    }
}
