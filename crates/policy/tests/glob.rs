//! Glob syntax and matching, by example.

use std::time::{Duration, Instant};

use portcullis_policy::{Glob, GlobError, MAX_GLOB_LEN};

fn glob(p: &str) -> Glob {
    Glob::new(p).expect("valid pattern")
}

#[test]
fn star_matches_any_sequence_including_slashes_and_dots() {
    let g = glob("file:///*");
    assert!(g.matches("file:///"));
    assert!(g.matches("file:///a/b/c.txt"));
    assert!(!g.matches("file://"));
    assert!(glob("read_*").matches("read_file"));
    assert!(glob("read_*").matches("read_"));
    assert!(!glob("read_*").matches("xread_file"));
    assert!(glob("*.txt").matches("a/b.c.txt"));
    assert!(glob("a*b*c").matches("abc"));
    assert!(glob("a*b*c").matches("a-b-b-c"));
    assert!(!glob("a*b*c").matches("a-b-b-"));
}

#[test]
fn question_mark_matches_exactly_one_char_not_one_byte() {
    let g = glob("t?st");
    assert!(g.matches("test"));
    assert!(g.matches("tést"));
    assert!(g.matches("t😀st"));
    assert!(!g.matches("tst"));
    assert!(!g.matches("teest"));
}

#[test]
fn classes_ranges_and_negation() {
    assert!(glob("[abc]x").matches("bx"));
    assert!(!glob("[abc]x").matches("dx"));
    assert!(glob("v[0-9]").matches("v7"));
    assert!(!glob("v[0-9]").matches("va"));
    assert!(glob("v[!0-9]").matches("va"));
    assert!(!glob("v[!0-9]").matches("v1"));
    assert!(glob("v[^0-9]").matches("va"));
    assert!(glob("[a-cx-z]").matches("y"));
    assert!(!glob("[a-cx-z]").matches("m"));
    // `-` at either end is literal.
    assert!(glob("[-a]").matches("-"));
    assert!(glob("[a-]").matches("-"));
    // A negated class still consumes exactly one character.
    assert!(!glob("[!a]").matches(""));
    assert!(glob("[é]").matches("é"));
}

#[test]
fn backslash_escapes_metacharacters_inside_and_outside_classes() {
    assert!(glob(r"a\*b").matches("a*b"));
    assert!(!glob(r"a\*b").matches("axb"));
    assert!(glob(r"\?").matches("?"));
    assert!(!glob(r"\?").matches("x"));
    assert!(glob(r"\[x]").matches("[x]"));
    assert!(glob(r"\\").matches("\\"));
    assert!(glob(r"[\]]").matches("]"));
    assert!(glob(r"[\!a]").matches("!"));
    assert!(glob(r"[a\-z]").matches("-"));
    assert!(!glob(r"[a\-z]").matches("m"));
}

#[test]
fn resource_templates_with_braces_are_literal() {
    let g = glob("test://template/{id}/data");
    assert!(g.matches("test://template/{id}/data"));
    assert!(!g.matches("test://template/7/data"));
    assert!(glob("test://template/*/data").matches("test://template/7/data"));
}

#[test]
fn matching_is_case_sensitive() {
    assert!(!glob("read_file").matches("Read_File"));
}

#[test]
fn match_all_is_only_stars() {
    assert!(glob("*").is_match_all());
    assert!(glob("***").is_match_all());
    assert!(!glob("*a").is_match_all());
    assert!(!glob(r"\*").is_match_all());
    assert!(!glob("?*").is_match_all());
    assert!(glob("***").matches(""));
}

#[test]
fn literal_detection() {
    assert!(glob("read_file").is_literal());
    assert!(glob(r"a\*").is_literal());
    assert!(!glob("a?").is_literal());
    assert!(!glob("[a]").is_literal());
}

#[test]
fn as_str_and_display_return_the_pattern_as_written() {
    let g = glob("read_**");
    assert_eq!(g.as_str(), "read_**");
    assert_eq!(g.to_string(), "read_**");
}

#[test]
fn errors_carry_kind_and_position() {
    assert_eq!(
        Glob::new("read_[ab").unwrap_err(),
        GlobError::UnclosedClass { position: 5 }
    );
    assert_eq!(
        Glob::new(r"abc\").unwrap_err(),
        GlobError::TrailingEscape { position: 3 }
    );
    assert_eq!(
        Glob::new("x[]").unwrap_err(),
        GlobError::EmptyClass { position: 1 }
    );
    assert_eq!(
        Glob::new("[!]").unwrap_err(),
        GlobError::EmptyClass { position: 0 }
    );
    assert_eq!(
        Glob::new("ab[z-a]").unwrap_err(),
        GlobError::InvalidRange {
            position: 3,
            start: 'z',
            end: 'a'
        }
    );
    assert_eq!(
        Glob::new(r"[\]").unwrap_err(),
        GlobError::UnclosedClass { position: 0 }
    );
    assert_eq!(Glob::new("").unwrap_err(), GlobError::Empty);
}

#[test]
fn positions_count_characters_not_bytes() {
    assert_eq!(
        Glob::new("éé[").unwrap_err(),
        GlobError::UnclosedClass { position: 2 }
    );
}

#[test]
fn error_messages_are_one_based_and_say_how_to_fix() {
    let msg = Glob::new("read_[ab").unwrap_err().to_string();
    assert_eq!(
        msg,
        "unclosed `[` at character 6 (escape a literal bracket as `\\[`)"
    );
    let msg = Glob::new(r"abc\").unwrap_err().to_string();
    assert!(msg.starts_with("trailing `\\` at character 4"), "{msg}");
    assert_eq!(Glob::new("x[]").unwrap_err().position(), Some(1));
}

#[test]
fn overlong_patterns_are_refused() {
    let ok = "a".repeat(MAX_GLOB_LEN);
    assert!(Glob::new(&ok).is_ok());
    let long = "a".repeat(MAX_GLOB_LEN + 1);
    assert_eq!(
        Glob::new(&long).unwrap_err(),
        GlobError::TooLong {
            len: MAX_GLOB_LEN + 1
        }
    );
    // The limit counts characters: 1024 two-byte characters are fine.
    assert!(Glob::new(&"é".repeat(MAX_GLOB_LEN)).is_ok());
}

#[test]
fn pathological_pattern_does_not_backtrack_exponentially() {
    let g = glob("a*a*a*a*a*b");
    let input = "a".repeat(10_000);
    let start = Instant::now();
    assert!(!g.matches(&input));
    let worst = glob(&"*a".repeat(100));
    assert!(!worst.matches(&"a".repeat(99)));
    assert!(worst.matches(&"a".repeat(10_000)));
    assert!(!glob(&format!("{}b", "*a".repeat(500))).matches(&"a".repeat(10_000)));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn deserializing_goes_through_new_so_bad_patterns_are_refused() {
    use serde::Deserialize;
    use serde::de::value::{Error, StrDeserializer};
    let ok = Glob::deserialize(StrDeserializer::<Error>::new("read_*")).expect("valid");
    assert_eq!(ok.as_str(), "read_*");
    let err = Glob::deserialize(StrDeserializer::<Error>::new("read_[")).unwrap_err();
    assert!(err.to_string().contains("unclosed `[`"), "{err}");
    assert!("[".parse::<Glob>().is_err());
}
