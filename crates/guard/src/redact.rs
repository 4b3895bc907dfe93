//! Secret redaction for values the gateway logs (audit records with `audit.include_args`,
//! argument previews in validation errors): values under keys that name secrets, and inside
//! every string the credentials the detector of [`crate::secrets`] finds, each replaced by its
//! typed placeholder (`[REDACTED:github-token]`).

use serde_json::{Map, Value};

use crate::secrets::{self, Allowlist};

/// What replaces the value under a key that names a secret (its kind is unknown).
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
    // The key forms the detector's `generic-secret` rule knows (secrets/context.rs): a value
    // a call is refused for must not reach the audit log under them either.
    "authkey",
    "signingkey",
    "encryptionkey",
    "masterkey",
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

/// A copy of `value` with secrets replaced by [`REDACTED`]:
/// - the value under a key for which [`is_secret_key`] holds (whole, whatever its type; `null`
///   and booleans are kept, and numbers under counting keys such as `max_tokens`);
/// - inside every string, each credential that [`looks_like_secret`] would find, as
///   `[REDACTED:<kind>]`.
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

/// Whether `text` contains a credential the detector knows ([`crate::secrets::kinds`]).
#[must_use]
pub fn looks_like_secret(text: &str) -> bool {
    secrets::detector().is_match(text)
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
        Value::String(text) => match secrets::redact_text(text, &Allowlist::default()).0 {
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
            "signing_key",
            "master_key",
            "encryption_key",
            "auth_key",
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
    fn redacts_token_formats_inside_strings_with_typed_placeholders() {
        // Built from parts at run time: never a credential-shaped literal in the source.
        let ghp = format!(
            "{}_{}",
            "ghp",
            "A1b2C3d4".repeat(5).get(..36).unwrap_or_default()
        );
        let aws = ["AKIA", "IOSFODNN7EXAMPLE"].concat();
        let slack = [
            "xoxb",
            "-1234567890-9876543210-",
            "AbCdEfGhIjKlMnOpQrStUvWx",
        ]
        .concat();
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlLXZhbHVl";
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\n-----END RSA PRIVATE KEY-----";
        let ant = format!("sk-ant-api03-{}", "Zq8xW2vN5mK7pL3rT9sB4cJ6".repeat(3));
        let cases = [
            (
                format!("token {ghp} here"),
                "token [REDACTED:github-token] here".to_owned(),
            ),
            (aws, "[REDACTED:aws-access-key-id]".to_owned()),
            (slack, "[REDACTED:slack-token]".to_owned()),
            (
                format!("key:\n{pem}\nend"),
                "key:\n[REDACTED:private-key]\nend".to_owned(),
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC (cut)".to_owned(),
                "[REDACTED:private-key]".to_owned(),
            ),
            (format!("jwt={jwt}"), "jwt=[REDACTED:jwt]".to_owned()),
            (
                "Authorization: Bearer abcdef0123456789xyz".to_owned(),
                "Authorization: Bearer [REDACTED:bearer-token]".to_owned(),
            ),
            (ant, "[REDACTED:anthropic-api-key]".to_owned()),
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
            "see -----BEGIN PRIVATE KEY----- in the file",
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
