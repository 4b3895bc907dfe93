//! Credentials recognized by where they stand rather than by a format of their own: private
//! key blocks, JWTs, passwords in URLs, `Authorization` values, and `key = value` assignments
//! whose key names a secret. These come after the provider formats (`rules.rs`), so a
//! `GITHUB_TOKEN=ghp_…` is reported as a `github-token`, not as a `generic-secret`.
//!
//! Their patterns would also match ordinary prose and code (`token: string`, `password =
//! getpass()`, `"max_tokens": 4096`, `next_page_token`), so each has a check: the key is not
//! one that names something else (a page token, a count, a file, a name), and the value looks
//! like a credential rather than a reference to one (not `$VAR`, `process.env.X`, a path, a
//! UUID; letters and digits; enough entropy).

use super::entropy::{has_digit, has_letter, is_dotted_identifier, is_uuid, shannon};
use super::rules::{Ctx, Spec};

/// Parts of a key (split at `_ - .` and lower→upper case changes) that say its value is not
/// a secret even though the key also names one (`next_page_token`, `secret_name`,
/// `token_count`, `private_key_path`).
const NOT_SECRET_PARTS: &[&str] = &[
    "alg",
    "algorithm",
    "arn",
    "continuation",
    "count",
    "csrf",
    "cursor",
    "description",
    "digest",
    "enabled",
    "endpoint",
    "example",
    "expiration",
    "expires",
    "expiry",
    "field",
    "file",
    "format",
    "hash",
    "header",
    "hint",
    "id",
    "ids",
    "kind",
    "label",
    "len",
    "length",
    "limit",
    "location",
    "max",
    "min",
    "mode",
    "name",
    "names",
    "next",
    "page",
    "param",
    "path",
    "placeholder",
    "policy",
    "prefix",
    "progress",
    "public",
    "publishable",
    "ref",
    "required",
    "scope",
    "scopes",
    "size",
    "template",
    "tokenizer",
    "ttl",
    "type",
    "uri",
    "url",
    "usage",
    "used",
    "version",
    "xsrf",
];

/// Values that stand for a password rather than being one.
const PLACEHOLDERS: &[&str] = &[
    "changeme",
    "null",
    "none",
    "nil",
    "undefined",
    "true",
    "false",
    "required",
    "optional",
    "string",
    "password",
    "passwd",
    "secret",
    "redacted",
];

/// File extensions that make a value a file name (`keys/server-2024.pem`).
const FILE_EXTENSIONS: &[&str] = &[
    "pem", "key", "crt", "cer", "der", "p12", "pfx", "json", "yaml", "yml", "toml", "txt", "env",
    "conf", "cfg", "ini", "js", "ts", "py", "rs", "go", "sh",
];

const IDENTIFIER: fn(u8) -> bool = |b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');

/// The key a match's value is assigned to: the identifier around the keyword, from before the
/// match start (`NEXT_PAGE_` in `NEXT_PAGE_TOKEN=`) to the first character that cannot be part
/// of it.
fn key<'t>(ctx: &Ctx<'t>) -> &'t str {
    let bytes = ctx.text.as_bytes();
    let mut start = ctx.whole.start;
    while start > 0 && ctx.whole.start - start < 40 && IDENTIFIER(bytes[start - 1]) {
        start -= 1;
    }
    let mut end = ctx.whole.start;
    while end < ctx.secret.start && IDENTIFIER(bytes[end]) {
        end += 1;
    }
    &ctx.text[start..end]
}

/// Whether a part of the key names something that is not the secret itself.
fn key_names_other_thing(key: &str) -> bool {
    let mut part = String::new();
    let mut previous_lower = false;
    let mut parts = Vec::new();
    for c in key.chars() {
        let split = matches!(c, '_' | '-' | '.') || (c.is_ascii_uppercase() && previous_lower);
        if split && !part.is_empty() {
            parts.push(std::mem::take(&mut part));
        }
        if c.is_ascii_alphanumeric() {
            part.push(c.to_ascii_lowercase());
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
    }
    if !part.is_empty() {
        parts.push(part);
    }
    parts
        .iter()
        .any(|p| NOT_SECRET_PARTS.contains(&p.as_str()) || p.starts_with("tokeniz"))
}

/// A value that points at a secret rather than holding it: a variable or template
/// (`$X`, `${X}`, `%X%`, `{{x}}`, `<x>`), a path, a URL, a dotted identifier, a hash label.
fn is_reference(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    value.starts_with(['$', '%', '@', '&', '*', '#', '/', '.', '~', '{', '<'])
        || value.contains("://")
        || is_dotted_identifier(value)
        || [
            "sha1:", "sha256:", "sha384:", "sha512:", "md5:", "sha256-", "sha512-",
        ]
        .iter()
        .any(|p| lower.starts_with(p))
        || lower
            .rsplit_once('.')
            .is_some_and(|(_, ext)| FILE_EXTENSIONS.contains(&ext))
}

/// A value assigned to a key that names a secret.
fn generic_value(ctx: &Ctx<'_>) -> bool {
    let value = ctx.secret();
    has_letter(value)
        && has_digit(value)
        && shannon(value) >= 3.0
        && !is_uuid(value)
        && !is_reference(value)
        && !key_names_other_thing(key(ctx))
}

/// A password: a letter and a digit or symbol; not a placeholder word or a reference.
fn password_value(ctx: &Ctx<'_>) -> bool {
    let value = ctx.secret();
    let symbol = value
        .bytes()
        .any(|b| b.is_ascii_digit() || b"!@#$%^&*+=?~|:/".contains(&b));
    has_letter(value)
        && symbol
        && !PLACEHOLDERS.contains(&value.to_ascii_lowercase().as_str())
        && !is_reference(value)
        && !key_names_other_thing(key(ctx))
}

/// A password inside a URL that is not a variable or a template.
fn url_password(ctx: &Ctx<'_>) -> bool {
    let value = ctx.secret();
    !value.starts_with(['$', '{', '<', '%', '*'])
        && !PLACEHOLDERS.contains(&value.to_ascii_lowercase().as_str())
}

/// A token-like value: letters and digits.
fn token_value(ctx: &Ctx<'_>) -> bool {
    let value = ctx.secret();
    has_letter(value) && has_digit(value)
}

/// The context rules, after the provider formats.
pub(crate) const CONTEXT: &[Spec] = &[
    Spec {
        kind: "private-key",
        keywords: &["private key"],
        // The header, optional `Name: value` header lines, then at least 16 base64
        // characters of body (so prose that only names the header is left alone), to the
        // END line or, when the text was cut, to its end — never across a `"`, which no key
        // holds: in a JSON text that is where the string ends, and a key cut short must not
        // swallow (and so hide from the other rules) the strings after it.
        pattern: r#"-----BEGIN[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----(?:[^A-Za-z0-9+/=]{1,8}[A-Za-z][A-Za-z-]{1,30}: [^\n]{0,200})*[^A-Za-z0-9+/=]{1,8}[A-Za-z0-9+/=]{16}(?:[^"]*?-----END[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----|[^"]*)"#,
        min_entropy: 0.0,
        check: None,
        anchored: false,
    },
    Spec {
        kind: "jwt",
        keywords: &["eyj"],
        // Header and payload are base64url JSON objects (`{"` is `eyJ`).
        pattern: r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
        min_entropy: 3.0,
        check: None,
        anchored: false,
    },
    Spec {
        kind: "database-url-password",
        keywords: &[
            "postgres",
            "mysql",
            "mariadb",
            "mongodb",
            "redis",
            "amqp",
            "mssql",
            "sqlserver",
            "clickhouse",
            "cockroach",
            "couchdb",
            "neo4j",
            "jdbc:",
        ],
        pattern: r#"(?i)\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|clickhouse|cockroachdb|couchdb|neo4j(?:\+s)?|jdbc:[a-z0-9]+)://[^\s:/@"'`]{0,128}:([^\s/@"'`]{1,256})@"#,
        min_entropy: 0.0,
        check: Some(url_password),
        anchored: false,
    },
    Spec {
        kind: "url-credentials",
        keywords: &["://"],
        pattern: r#"(?i)\b[a-z][a-z0-9+.-]{1,20}://[^\s:/@"'`]{1,128}:([^\s/@"'`]{3,256})@[a-z0-9.\[-]"#,
        min_entropy: 0.0,
        check: Some(url_password),
        anchored: false,
    },
    Spec {
        kind: "bearer-token",
        keywords: &["bearer"],
        pattern: r"(?i)\bbearer[ \t]+([A-Za-z0-9._~+/-]{16,}=*)",
        min_entropy: 3.0,
        check: Some(token_value),
        anchored: false,
    },
    Spec {
        kind: "basic-auth",
        keywords: &["authorization"],
        pattern: r#"(?i)\bauthorization["']?[ \t]*[:=][ \t]*["']?basic[ \t]+([A-Za-z0-9+/]{8,}={0,2})"#,
        min_entropy: 2.5,
        check: None,
        anchored: false,
    },
    Spec {
        kind: "password",
        keywords: &["pass", "pwd"],
        pattern: r#"(?i)(?:passw(?:or)?d|passphrase|pwd|pass\b)[a-z0-9_.-]{0,10}["']?[ \t]{0,8}(?::=|=>|[:=])[ \t]{0,8}(?:"([^"\s]{6,128})"|'([^'\s]{6,128})'|([^\s"'`,;()\[\]{}<>]{6,128}))"#,
        min_entropy: 0.0,
        check: Some(password_value),
        anchored: true,
    },
    Spec {
        kind: "generic-secret",
        // The keywords are where a match starts (it is anchored there).
        keywords: &[
            "secret",
            "token",
            "api",
            "access",
            "private",
            "auth",
            "signing",
            "encryption",
            "master",
            "credential",
        ],
        pattern: r#"(?i)(?:secret|token|api[_.-]?key|access[_.-]?key|private[_.-]?key|auth[_.-]?key|signing[_.-]?key|encryption[_.-]?key|master[_.-]?key|credential)s?[a-z0-9_.-]{0,20}["']?[ \t]{0,8}(?::=|=>|[:=])[ \t]{0,8}["'`]?([^\s"'`,;()\[\]{}<>\\]{12,256})"#,
        min_entropy: 0.0,
        check: Some(generic_value),
        anchored: true,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_parts() {
        for key in [
            "next_page_token",
            "nextPageToken",
            "NEXT-PAGE-TOKEN",
            "secret_name",
            "SecretArn",
            "token_count",
            "private_key_path",
            "tokenizer",
            "publishable_key",
            "token_type",
        ] {
            assert!(key_names_other_thing(key), "{key}");
        }
        for key in [
            "api_key",
            "GITHUB_TOKEN",
            "clientSecret",
            "x-api-key",
            "secret",
            "db.password",
        ] {
            assert!(!key_names_other_thing(key), "{key}");
        }
    }

    #[test]
    fn references_are_not_secrets() {
        for value in [
            "$API_TOKEN",
            "${{ secrets.TOKEN }}",
            "%APPDATA%",
            "process.env.OPENAI_API_KEY",
            "/etc/ssl/private/server.key",
            "keys/server-2024.pem",
            "https://vault.example/v1/secret",
            "sha256:0123abcd",
            "{{ vault_token }}",
            "<your-token-here>",
        ] {
            assert!(is_reference(value), "{value}");
        }
        assert!(!is_reference("kP9xQ2mZ7vR4tL8w"));
    }
}
