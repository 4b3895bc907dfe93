//! Secret redaction, first cut: values under keys that name secrets, and strings that contain
//! well-known credential formats. A later issue replaces the detection with a full detector
//! (keyword prefilter, more formats, entropy); the interface ([`redact`], [`is_secret_key`],
//! [`looks_like_secret`]) stays.

use regex::Regex;
use serde_json::{Map, Value};
use std::sync::LazyLock;

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// Values nested deeper than this are replaced whole rather than inspected.
const MAX_DEPTH: usize = 128;

/// Words that make a key secret when they occur in it, after lowercasing and removing `_`, `-`,
/// `.` and spaces (so `GITHUB_TOKEN`, `x-api-key`, `client.secret` all match).
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "authorization",
    "cookie",
    "credential",
    "session",
    "bearer",
];

/// Keys that are secret only when they are the whole (normalized) key.
const SECRET_KEYS: &[&str] = &["auth", "pwd", "pass", "pin", "otp"];

/// Keys that name a secret word but count things (`max_tokens`): their numbers are kept.
const COUNT_WORDS: &[&str] = &["tokens", "maxtoken", "tokencount", "tokenlimit", "numtoken"];

/// Well-known credential formats; each match is replaced, the text around it kept.
static SECRET_VALUES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        // GitHub personal, OAuth, user-to-server, server-to-server and refresh tokens
        r"(?-u:\b)(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}",
        r"|(?-u:\b)github_pat_[A-Za-z0-9_]{22,255}",
        // AWS access key ids
        r"|(?-u:\b)(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?-u:\b)",
        // Slack tokens
        r"|(?-u:\b)xox[abposr]-[A-Za-z0-9-]{10,}",
        // PEM private key blocks (to the END line, or to the end of the text when cut)
        r"|-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----(?s:.*?)",
        r"(?:-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|\z)",
        // JWTs (header and payload are base64url JSON objects)
        r"|(?-u:\b)eyJ[A-Za-z0-9_-]{2,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*",
        // bearer credentials in header-like text
        r"|(?i:bearer)\s+[A-Za-z0-9._~+/-]{16,}=*",
        // OpenAI / Anthropic style keys, Google API keys, Stripe live keys
        r"|(?-u:\b)sk-[A-Za-z0-9_-]{20,}",
        r"|(?-u:\b)AIza[0-9A-Za-z_-]{35}",
        r"|(?-u:\b)[rs]k_live_[0-9A-Za-z]{16,}",
    ))
    .expect("the secret patterns compile")
});

/// A copy of `value` with secrets replaced by [`REDACTED`]:
/// - the value under a key for which [`is_secret_key`] holds (whole, whatever its type; `null`
///   and booleans are kept, and numbers under counting keys such as `max_tokens`);
/// - inside every string, each credential that [`looks_like_secret`] would find.
#[must_use]
pub fn redact(value: &Value) -> Value {
    redact_at(value, 0)
}

/// Whether `key` names a secret (case-insensitive, also as a part: `github_token`, `X-Api-Key`).
#[must_use]
pub fn is_secret_key(key: &str) -> bool {
    let key = normalize(key);
    SECRET_WORDS.iter().any(|word| key.contains(word)) || SECRET_KEYS.contains(&key.as_str())
}

/// Whether `text` contains a credential of a well-known format (GitHub, AWS, Slack, PEM private
/// key, JWT, bearer, OpenAI/Anthropic, Google, Stripe).
#[must_use]
pub fn looks_like_secret(text: &str) -> bool {
    SECRET_VALUES.is_match(text)
}

/// Whether [`redact`] would hide `value` found at JSON pointer `path` because of a key on it.
pub(crate) fn path_names_secret(path: &str, value: &Value) -> bool {
    let mut segments = path.split('/').skip(1).peekable();
    while let Some(segment) = segments.next() {
        if is_secret_key(segment) {
            let last = segments.peek().is_none();
            return !(last && kept_under_secret_key(segment, value));
        }
    }
    false
}

fn redact_at(value: &Value, depth: usize) -> Value {
    match value {
        Value::String(text) => match SECRET_VALUES.replace_all(text, REDACTED) {
            std::borrow::Cow::Borrowed(_) => value.clone(),
            std::borrow::Cow::Owned(replaced) => Value::String(replaced),
        },
        Value::Array(_) | Value::Object(_) if depth >= MAX_DEPTH => Value::from(REDACTED),
        Value::Array(items) => items
            .iter()
            .map(|item| redact_at(item, depth + 1))
            .collect(),
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (key, item) in map {
                let item = if is_secret_key(key) && !kept_under_secret_key(key, item) {
                    Value::from(REDACTED)
                } else {
                    redact_at(item, depth + 1)
                };
                out.insert(key.clone(), item);
            }
            Value::Object(out)
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => value.clone(),
    }
}

fn kept_under_secret_key(key: &str, value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(_) => true,
        Value::Number(_) => {
            let key = normalize(key);
            COUNT_WORDS.iter().any(|word| key.contains(word))
        }
        _ => false,
    }
}

fn normalize(key: &str) -> String {
    key.chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_keys() {
        for key in [
            "password",
            "Passwd",
            "client_secret",
            "GITHUB_TOKEN",
            "api_key",
            "apiKey",
            "X-Api-Key",
            "aws_access_key_id",
            "private_key",
            "Authorization",
            "Cookie",
            "credentials",
            "session_id",
            "auth",
            "refresh-token",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in [
            "path",
            "content",
            "author",
            "name",
            "query",
            "passage_count",
            "pinned",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn redacts_values_under_secret_keys() {
        let args = json!({
            "user": "me",
            "password": "hunter2",
            "nested": {"api_key": 12345, "list": [{"github_token": "abc"}]},
            "credentials": {"user": "u", "pass": "p"},
            "use_token": true,
            "session": null,
            "max_tokens": 1000,
        });
        assert_eq!(
            redact(&args),
            json!({
                "user": "me",
                "password": REDACTED,
                "nested": {"api_key": REDACTED, "list": [{"github_token": REDACTED}]},
                "credentials": REDACTED,
                "use_token": true,
                "session": null,
                "max_tokens": 1000,
            })
        );
    }

    #[test]
    fn redacts_token_formats_inside_strings() {
        let ghp = format!("ghp_{}", "A1b2".repeat(9));
        let pat = format!("github_pat_{}", "x".repeat(40));
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----";
        let cases = [
            (
                format!("token {ghp} here"),
                format!("token {REDACTED} here"),
            ),
            (pat.clone(), REDACTED.to_owned()),
            ("AKIAIOSFODNN7EXAMPLE".to_owned(), REDACTED.to_owned()),
            ("xoxb-1234567890-abcdef".to_owned(), REDACTED.to_owned()),
            (
                format!("key:\n{pem}\nend"),
                format!("key:\n{REDACTED}\nend"),
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nMIIB (cut)".to_owned(),
                REDACTED.to_owned(),
            ),
            (format!("jwt={jwt}"), format!("jwt={REDACTED}")),
            (
                "Authorization: Bearer abcdef0123456789".to_owned(),
                format!("Authorization: {REDACTED}"),
            ),
            (format!("sk-ant-{}", "z".repeat(30)), REDACTED.to_owned()),
        ];
        for (input, expected) in cases {
            assert!(looks_like_secret(&input), "{input}");
            assert_eq!(redact(&json!({"note": input})), json!({"note": expected}));
        }
        for harmless in [
            "hello world",
            "ghp_short",
            "AKIA",
            "the bearer of news",
            "eyJhbGciOi",
        ] {
            assert!(!looks_like_secret(harmless), "{harmless}");
        }
    }

    #[test]
    fn path_rules_follow_redact() {
        assert!(path_names_secret("/password", &json!("x")));
        assert!(path_names_secret("/credentials/user", &json!("x")));
        assert!(!path_names_secret("/max_tokens", &json!(5)));
        assert!(!path_names_secret("/path", &json!("x")));
    }
}
