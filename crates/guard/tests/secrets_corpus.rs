//! The secret detector measured on a labelled corpus (`tests/corpus/`): every kind has
//! positives (fake credentials in their real format, in the contexts they turn up in: env
//! files, JSON, code, URLs, headers, command lines), and the negatives are what must never be
//! redacted (UUIDs, git SHAs, sha256 and sha512 digests, base64 images and data URLs, prose and
//! code that talk about secrets without holding one, placeholders).
//!
//! Required: recall ≥ 95 % over all positives, and no finding at all on a negative. The
//! per-kind table is printed (`cargo test -p portcullis-guard --test secrets_corpus --
//! --nocapture`).

mod corpus;

use std::collections::BTreeMap;
use std::ops::Range;

use corpus::{Rng, fake, generated_negatives, kind_of};
use portcullis_guard::secrets::{self, Allowlist};

const POSITIVES: &str = include_str!("corpus/positives.tsv");
const NEGATIVES: &str = include_str!("corpus/negatives.txt");

/// One positive: the row it came from, the text, and where the fake secret is in it.
struct Positive {
    row: String,
    text: String,
    secret: Range<usize>,
}

fn positives() -> Vec<Positive> {
    let mut rng = Rng::new(0x5eed_0fc0_ffee);
    let mut out = Vec::new();
    for line in POSITIVES.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((row, context)) = line.split_once('\t') else {
            panic!("positives.tsv: no tab in {line:?}");
        };
        let context = context.replace("\\n", "\n");
        assert_eq!(context.matches("{}").count(), 1, "{line:?}");
        let secret = fake(&mut rng, row);
        let at = context.find("{}").unwrap_or_default();
        out.push(Positive {
            row: row.to_owned(),
            text: context.replacen("{}", &secret, 1),
            secret: at..at + secret.len(),
        });
    }
    out
}

fn negatives() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = NEGATIVES
        .split("\n%%\n")
        .map(|sample| {
            let sample = sample
                .lines()
                .skip_while(|l| l.starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n");
            match sample.strip_prefix("@ ") {
                Some(rest) => {
                    let (label, body) = rest.split_once('\n').unwrap_or((rest, ""));
                    (label.to_owned(), body.to_owned())
                }
                None => ("unlabelled".to_owned(), sample),
            }
        })
        .collect();
    let mut rng = Rng::new(0xbad_5eed);
    out.extend(
        generated_negatives(&mut rng)
            .into_iter()
            .map(|(label, text)| (label.to_owned(), text)),
    );
    out
}

#[derive(Default)]
struct Tally {
    samples: usize,
    found: usize,
}

#[test]
fn recall_is_at_least_95_percent_and_every_kind_is_in_the_corpus() {
    let mut by_kind: BTreeMap<String, Tally> = BTreeMap::new();
    let mut missed = Vec::new();
    for p in positives() {
        let kind = kind_of(&p.row).to_owned();
        let findings = secrets::detector().find(&p.text);
        let hit = findings.iter().any(|f| {
            f.kind == kind && f.range.start <= p.secret.start && f.range.end >= p.secret.end
        });
        let tally = by_kind.entry(kind).or_default();
        tally.samples += 1;
        if hit {
            tally.found += 1;
            // Redacted, the secret is gone and the placeholder names its kind.
            let (out, _) = secrets::redact_text(&p.text, &Allowlist::default());
            assert!(!out.contains(&p.text[p.secret.clone()]), "{}", p.row);
        } else {
            let seen: Vec<_> = findings.iter().map(|f| f.kind).collect();
            missed.push(format!("{}: found {seen:?} in {:?}", p.row, p.text));
        }
    }
    let samples: usize = by_kind.values().map(|t| t.samples).sum();
    let found: usize = by_kind.values().map(|t| t.found).sum();
    println!(
        "{:<32} {:>7} {:>5} {:>7}",
        "kind", "samples", "found", "recall"
    );
    for (kind, t) in &by_kind {
        println!(
            "{kind:<32} {:>7} {:>5} {:>6.0}%",
            t.samples,
            t.found,
            100.0 * t.found as f64 / t.samples as f64
        );
    }
    let recall = found as f64 / samples as f64;
    println!(
        "{:<32} {samples:>7} {found:>5} {:>6.1}%  ({} kinds)",
        "all",
        100.0 * recall,
        by_kind.len()
    );
    for m in &missed {
        println!("missed {m}");
    }
    let absent: Vec<_> = secrets::kinds()
        .into_iter()
        .filter(|k| !by_kind.contains_key(*k))
        .collect();
    assert!(absent.is_empty(), "kinds without positives: {absent:?}");
    assert!(by_kind.len() >= 40, "{} kinds", by_kind.len());
    assert!(recall >= 0.95, "recall {:.1}%: {missed:#?}", 100.0 * recall);
}

#[test]
fn no_false_positive_on_the_negatives() {
    let mut by_label: BTreeMap<String, usize> = BTreeMap::new();
    let mut false_positives = Vec::new();
    for (label, text) in negatives() {
        *by_label.entry(label.clone()).or_default() += 1;
        for f in secrets::detector().find(&text) {
            false_positives.push(format!(
                "{label}: {} on {:?}",
                f.kind,
                &text[f.range.clone()]
            ));
        }
        let (out, redactions) = secrets::redact_text(&text, &Allowlist::default());
        assert_eq!(out, text);
        assert!(redactions.is_empty());
    }
    println!("{:<20} {:>7}", "negatives", "samples");
    for (label, n) in &by_label {
        println!("{label:<20} {n:>7}");
    }
    assert!(by_label.values().sum::<usize>() >= 600);
    assert!(
        false_positives.is_empty(),
        "false positives: {false_positives:#?}"
    );
}

#[test]
fn positives_survive_surrounding_noise_and_placement() {
    // The same fakes inside a larger document, several per text, at the very start and end:
    // each is found once, and nothing else is.
    let all = positives();
    let mut doc = String::new();
    let mut expected = 0;
    for p in all.iter().filter(|p| !p.row.starts_with("private-key")) {
        doc.push_str("lorem ipsum dolor sit amet; ");
        doc.push_str(&p.text);
        doc.push('\n');
        expected += 1;
    }
    let findings = secrets::detector().find(&doc);
    assert!(
        findings.len() as f64 >= 0.95 * expected as f64,
        "{} of {expected}",
        findings.len()
    );
    // A secret that is the whole text: found, from its first byte to its last.
    let first = &all[0];
    let alone = &first.text[first.secret.clone()];
    let found = secrets::detector().find(alone);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].range, 0..alone.len());
}
