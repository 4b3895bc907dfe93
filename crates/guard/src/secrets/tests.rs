//! Unit tests of the rule set itself; the labelled corpus is `tests/secrets_corpus.rs`.

use super::*;

#[test]
fn every_rule_compiles_and_there_are_at_least_forty_kinds() {
    assert!(Detector::new(SPECS).is_ok());
    let kinds = kinds();
    assert!(kinds.len() >= 40, "{} kinds: {kinds:?}", kinds.len());
    for kind in &kinds {
        assert!(
            kind.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{kind}"
        );
        assert!(is_kind(kind));
    }
    assert!(!is_kind("github"));
}

#[test]
fn keywords_are_lowercase_and_every_rule_has_one() {
    for spec in SPECS.iter().flat_map(|s| s.iter()) {
        assert!(!spec.keywords.is_empty(), "{}", spec.kind);
        for k in spec.keywords {
            assert_eq!(*k, k.to_ascii_lowercase(), "{}", spec.kind);
        }
    }
}

/// A GitHub-format token built at run time (never a literal in the source).
fn github_token() -> String {
    format!(
        "{}_{}",
        ["gh", "p"].concat(),
        "Ab3dEf6hIj9kLm2oPq5sTu8wXy1zAb4dEf7h"
    )
}

#[test]
fn placeholders_are_typed_and_the_text_around_stays() {
    let token = github_token();
    let text = format!("export GITHUB_TOKEN={token}\necho done");
    let (out, found) = redact_text(&text, &Allowlist::default());
    assert_eq!(
        out,
        "export GITHUB_TOKEN=[REDACTED:github-token]\necho done"
    );
    assert_eq!(found.iter().collect::<Vec<_>>(), [("github-token", 1)]);
    assert_eq!(found.to_string(), "github-token 1");
    assert_eq!(placeholder("jwt"), "[REDACTED:jwt]");
    // The placeholder itself is not found again.
    let (again, none) = redact_text(&out, &Allowlist::default());
    assert_eq!(again, out);
    assert!(none.is_empty());
}

#[test]
fn specific_rules_win_over_generic_ones_on_the_same_text() {
    let token = github_token();
    let findings = detector().find(&format!("api_token = \"{token}\""));
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].kind, "github-token");
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlMTIz";
    let findings = detector().find(&format!("Authorization: Bearer {jwt}"));
    assert_eq!(findings.iter().map(|f| f.kind).collect::<Vec<_>>(), ["jwt"]);
}

#[test]
fn only_the_secret_part_is_replaced() {
    let (out, _) = redact_text(
        "postgres://app:S3cr3t-pw@db.internal:5432/app",
        &Allowlist::default(),
    );
    assert_eq!(
        out,
        "postgres://app:[REDACTED:database-url-password]@db.internal:5432/app"
    );
    let (out, _) = redact_text("password = \"hunter22\"", &Allowlist::default());
    assert_eq!(out, "password = \"[REDACTED:password]\"");
}

#[test]
fn an_allowlist_keeps_kinds_and_exact_values() {
    let token = github_token();
    let text = format!("{token} and password=hunter22!");
    let by_kind = Allowlist::new(["github-token".to_owned()], []).unwrap_or_default();
    let (out, found) = redact_text(&text, &by_kind);
    assert_eq!(out, format!("{token} and password=[REDACTED:password]"));
    assert_eq!(found.total(), 1);
    let by_value = Allowlist::new([], ["hunter22!".to_owned()]).unwrap_or_default();
    let (out, _) = redact_text(&text, &by_value);
    assert_eq!(out, "[REDACTED:github-token] and password=hunter22!");
    let err = Allowlist::new(["githib-token".to_owned()], []).unwrap_err();
    assert!(err.to_string().contains("\"githib-token\""), "{err}");
    let mut both = by_kind.clone();
    both.extend(&by_value);
    assert_eq!(redact_text(&text, &both).0, text);
}

#[test]
fn short_and_keywordless_text_is_left_alone_cheaply() {
    for text in ["", "ok", "hello world, nothing here", "ghp_short"] {
        assert!(detector().find(text).is_empty(), "{text}");
        assert!(matches!(
            redact_text(text, &Allowlist::default()).0,
            Cow::Borrowed(_)
        ));
    }
}

#[test]
fn a_specific_match_is_not_stretched_by_a_generic_one_starting_with_it() {
    let token = github_token();
    let text = format!("https://x-access-token:{token}@github.com/acme/repo.git");
    let (out, found) = redact_text(&text, &Allowlist::default());
    assert_eq!(
        out,
        "https://x-access-token:[REDACTED:github-token]@github.com/acme/repo.git"
    );
    assert_eq!(found.total(), 1);
}

#[test]
fn overlapping_matches_from_different_starts_are_merged_so_nothing_leaks() {
    let found = super::detector::tests_support::resolve_ranges(&[(0..10, 1), (5..20, 0)]);
    assert_eq!(found, vec![0..20]);
    let found = super::detector::tests_support::resolve_ranges(&[(0..10, 1), (0..20, 0)]);
    assert_eq!(found, vec![0..20]);
    // The same-start loser is dropped whole, even where it would have touched a later one.
    let found =
        super::detector::tests_support::resolve_ranges(&[(0..30, 1), (0..20, 0), (25..40, 2)]);
    assert_eq!(found, [0..20, 25..40]);
}

#[test]
fn anchored_rules_find_the_longest_values_and_every_occurrence() {
    // A 256-character value (the longest an assignment takes), after the longest key part.
    let value: String = "aB3dE5fG7hJ9kL2mN4pQ6rS8tU0vW1x".repeat(9)[..256].to_owned();
    let text = format!("encryption_key_for_the_backups2 \t= \"{value}\"");
    let found = detector().find(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(&text[found[0].range.clone()], value);
    // Every assignment in a text is tried, wherever its keyword is.
    let text = (0..50)
        .map(|i| format!("line {i}: API_TOKEN=k8Fq2Lm9Xz4Rt7Wp{i:04}\n"))
        .collect::<String>();
    assert_eq!(detector().find(&text).len(), 50);
}

#[test]
fn a_github_token_glued_to_the_text_around_it_is_still_found() {
    let token = github_token();
    let text = format!("k8Fq2Lm9{token}api");
    let found = detector().find(&text);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].kind, "github-token");
    assert!(found[0].range.start == 8 && found[0].range.end >= 8 + token.len());
}
