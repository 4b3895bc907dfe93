//! Cleaning as the relay applies it, with the config's allow lists and skips.

use super::*;
use crate::config::{ContentSelector, SecretsInArguments};
use portcullis_guard::SanitizeMode;
use portcullis_guard::secrets::Allowlist;
use serde_json::{Value, json};

fn token() -> String {
    format!("{}_{}", "ghp", "Ab3dEf6hIj9kLm2oPq5sTu8wXy1zAb4dEf7h")
}

fn clean_value(config: &ContentConfig, source: Source<'_>, value: &Value) -> (Value, Report) {
    let raw = crate::mcp::raw(value);
    let (text, report) = clean(config, source, &raw).unwrap_or_else(|e| panic!("{e}"));
    let out = text.as_deref().unwrap_or(&raw).get().to_owned();
    (serde_json::from_str(&out).unwrap_or_default(), report)
}

const TOOL: Source<'static> = Source {
    server: "files",
    tool: Some("read_file"),
};

#[test]
fn a_tool_result_is_cleaned_in_text_structured_content_and_resources() {
    let config = ContentConfig::default();
    let t = token();
    let result = json!({
        "content": [
            {"type": "text", "text": format!("\u{1b}[2Jtoken: {t}\u{200b}")},
            {"type": "resource", "resource": {"uri": "file:///x", "text": format!("k={t}")}},
            {"type": "image", "data": "iVBORw0KGgo".repeat(10), "mimeType": "image/png"},
        ],
        "structuredContent": {"nested": [{"secret_note\u{202e}": format!("{t}")}]},
        "_meta": {"trace": format!("\u{1b}[1m{t}")},
        "isError": false,
    });
    let (out, report) = clean_value(&config, TOOL, &result);
    assert_eq!(out["content"][0]["text"], "token: [REDACTED:github-token]");
    assert_eq!(
        out["content"][1]["resource"]["text"],
        "k=[REDACTED:github-token]"
    );
    assert_eq!(out["content"][2]["data"], result["content"][2]["data"]);
    assert_eq!(
        out["structuredContent"],
        json!({"nested": [{"secret_note": "[REDACTED:github-token]"}]})
    );
    assert_eq!(out["_meta"], result["_meta"], "_meta is the protocol's");
    assert_eq!(report.redacted.total(), 3);
    assert_eq!(
        (
            report.sanitized.ansi,
            report.sanitized.zero_width,
            report.sanitized.bidi
        ),
        (1, 1, 1)
    );
    assert_eq!(
        report.to_string(),
        "redacted github-token 3; sanitized ansi 1, bidi 1, zero-width 1"
    );
}

#[test]
fn nothing_found_means_the_text_is_relayed_as_it_came() {
    let config = ContentConfig::default();
    let raw = crate::mcp::raw(&json!({"content": [{"type": "text", "text": "ok\nfine"}]}));
    let (text, report) = clean(&config, TOOL, &raw).unwrap_or_else(|e| panic!("{e}"));
    assert!(text.is_none());
    assert!(report.is_empty());
}

#[test]
fn escape_mode_and_off_switches() {
    let t = token();
    let value = json!({"text": format!("\u{1b}[31m{t}")});
    let escape = ContentConfig {
        sanitize: Some(SanitizeMode::Escape),
        ..ContentConfig::default()
    };
    let (out, _) = clean_value(&escape, TOOL, &value);
    assert_eq!(out["text"], "\\x1b[31m[REDACTED:github-token]");
    let no_redact = ContentConfig {
        redact: false,
        ..ContentConfig::default()
    };
    let (out, report) = clean_value(&no_redact, TOOL, &value);
    assert_eq!(out["text"], t);
    assert!(report.redacted.is_empty());
    let nothing = ContentConfig {
        sanitize: None,
        redact: false,
        ..ContentConfig::default()
    };
    assert_eq!(clean_value(&nothing, TOOL, &value).0, value);
}

fn allow_entry(
    server: Option<&str>,
    tools: &[&str],
    kinds: &[&str],
    values: &[&str],
) -> (ContentSelector, Allowlist) {
    (
        ContentSelector {
            server: server.map(str::to_owned),
            tools: tools
                .iter()
                .filter_map(|t| portcullis_policy::Glob::new(t).ok())
                .collect(),
        },
        Allowlist::new(
            kinds.iter().map(|k| (*k).to_owned()),
            values.iter().map(|v| (*v).to_owned()),
        )
        .unwrap_or_default(),
    )
}

#[test]
fn allow_lists_apply_per_server_and_per_tool() {
    let t = token();
    let value = json!({"text": format!("{t} and password=Hunter2!x")});
    let config = ContentConfig {
        allow: vec![
            allow_entry(Some("files"), &["read_*"], &["github-token"], &[]),
            allow_entry(Some("files"), &[], &[], &["Hunter2!x"]),
        ],
        ..ContentConfig::default()
    };
    // read_file of files: both allowed.
    assert_eq!(clean_value(&config, TOOL, &value).0, value);
    // Another tool of files: only the value entry (no `tools`) applies.
    let other = Source {
        server: "files",
        tool: Some("write_file"),
    };
    assert_eq!(
        clean_value(&config, other, &value).0["text"],
        "[REDACTED:github-token] and password=Hunter2!x"
    );
    // A log message of files (no tool): the same.
    let log = Source {
        server: "files",
        tool: None,
    };
    assert_eq!(
        clean_value(&config, log, &value).0["text"],
        "[REDACTED:github-token] and password=Hunter2!x"
    );
    // Another server: nothing allowed.
    let tickets = Source {
        server: "tickets",
        tool: Some("read_file"),
    };
    assert_eq!(
        clean_value(&config, tickets, &value).0["text"],
        "[REDACTED:github-token] and password=[REDACTED:password]"
    );
}

#[test]
fn open_world_arguments_with_a_credential_are_found() {
    let t = token();
    let args =
        json!({"url": "https://example.com", "headers": {"Authorization": format!("token {t}")}});
    let config = ContentConfig {
        open_world: vec![allow_entry(Some("web"), &["post_*"], &[], &["x"]).0],
        ..ContentConfig::default()
    };
    let hint = json!({"openWorldHint": true});
    let found = check_arguments(&config, "files", "fetch", Some(&hint), &args);
    let ArgumentCheck::Found { kinds, action } = &found else {
        panic!("{found:?}");
    };
    assert_eq!(kinds.to_string(), "github-token 1");
    assert_eq!(*action, SecretsInArguments::Deny);
    assert!(!found.needs_consent());
    // Not open-world: no hint (or `false`), and not listed.
    let closed = json!({"openWorldHint": false});
    assert_eq!(
        check_arguments(&config, "files", "fetch", Some(&closed), &args),
        ArgumentCheck::Clean
    );
    assert_eq!(
        check_arguments(&config, "files", "fetch", None, &args),
        ArgumentCheck::Clean
    );
    // Listed in open_world, without annotations.
    assert!(matches!(
        check_arguments(&config, "web", "post_form", None, &args),
        ArgumentCheck::Found { .. }
    ));
    // Clean arguments of an open-world tool.
    assert_eq!(
        check_arguments(
            &config,
            "files",
            "fetch",
            Some(&hint),
            &json!({"url": "https://example.com"})
        ),
        ArgumentCheck::Clean
    );
    // With consent configured, the hook says so.
    let consent = ContentConfig {
        secrets_in_arguments: SecretsInArguments::Consent,
        ..ContentConfig::default()
    };
    assert!(check_arguments(&consent, "files", "fetch", Some(&hint), &args).needs_consent());
    // An allow entry for the tool lets the known value through.
    let allowed = ContentConfig {
        allow: vec![allow_entry(
            Some("files"),
            &["fetch"],
            &["github-token"],
            &[],
        )],
        ..ContentConfig::default()
    };
    assert_eq!(
        check_arguments(&allowed, "files", "fetch", Some(&hint), &args),
        ArgumentCheck::Clean
    );
}

#[test]
fn an_upstream_error_is_cleaned_too() {
    let config = ContentConfig::default();
    let t = token();
    let error = crate::mcp::raw(&json!({"code": -32000, "message": format!("bad token {t}\u{7}")}));
    let (reply, report) =
        clean_reply(&config, TOOL, Reply::Error(error)).unwrap_or_else(|e| panic!("{}", e.message));
    let Reply::Error(raw) = reply else {
        panic!("an error stays an error");
    };
    let v: Value = serde_json::from_str(raw.get()).unwrap_or_default();
    assert_eq!(v["message"], "bad token [REDACTED:github-token]");
    assert_eq!(report.sanitized.controls, 1);
}

#[test]
fn escape_mode_finds_secrets_split_or_glued_by_invisibles_and_keeps_the_escapes_around_them() {
    let t = token();
    let value =
        json!({"text": format!("a\u{1b}[1m{}\u{200b}{}\u{1b}[0m b\u{e0041}", &t[..9], &t[9..])});
    let escape = ContentConfig {
        sanitize: Some(SanitizeMode::Escape),
        ..ContentConfig::default()
    };
    let (out, report) = clean_value(&escape, TOOL, &value);
    assert_eq!(
        out["text"],
        "a\\x1b[1m[REDACTED:github-token]\\x1b[0m b\\u{e0041}"
    );
    assert_eq!(report.redacted.total(), 1);
    assert_eq!(
        (
            report.sanitized.ansi,
            report.sanitized.zero_width,
            report.sanitized.tags
        ),
        (2, 1, 1)
    );
}

#[test]
fn protocol_members_reach_the_client_exactly_as_sent() {
    let config = ContentConfig::default();
    let t = token();
    // A progress token a generic rule would take for a credential, and an opaque cursor.
    let note = json!({"progressToken": "progress-test-1\u{200b}", "progress": 1, "message": format!("step {t}")});
    let log = Source {
        server: "files",
        tool: None,
    };
    let (out, _) = clean_value(&config, log, &note);
    assert_eq!(out["progressToken"], note["progressToken"]);
    assert_eq!(out["message"], "step [REDACTED:github-token]");
    let page = json!({"resources": [], "nextCursor": format!("{t}\u{1b}[0m")});
    assert_eq!(clean_value(&config, log, &page).0, page);
}

/// A small deterministic generator of JSON values full of what cleaning acts on.
struct Gen(u64);

impl Gen {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn string(&mut self) -> String {
        const PIECES: &[&str] = &[
            "plain words ",
            "\u{1b}[31m",
            "\u{1b}]8;;x\u{7}",
            "\u{e0041}",
            "\u{202e}",
            "\u{200b}",
            "\u{0}",
            "\r\n",
            "\t",
            "\"",
            "\\",
            "/",
            "é日🦀",
            "api_key=",
            "password: ",
            "k8Fq2Lm9Xz4Rt7Wp1Vb6Nc3Y",
            " Bearer ",
            "\\u0041",
        ];
        let mut s = String::new();
        for _ in 0..self.next(8) {
            s.push_str(PIECES[self.next(PIECES.len())]);
            if self.next(4) == 0 {
                s.push(' ');
                s.push_str(&token());
                s.push(' ');
            }
        }
        s
    }

    fn value(&mut self, depth: usize) -> Value {
        match self.next(if depth > 3 { 4 } else { 6 }) {
            0 => Value::Null,
            1 => json!(self.next(1000) as f64 / 7.0),
            2 => json!(self.next(2) == 0),
            3 => json!(self.string()),
            4 => Value::Array((0..self.next(4)).map(|_| self.value(depth + 1)).collect()),
            _ => {
                let mut map = serde_json::Map::new();
                for i in 0..self.next(4) {
                    let key = if self.next(3) == 0 {
                        format!("secret_{i}\u{200b}")
                    } else {
                        format!("k{i}")
                    };
                    map.insert(key, self.value(depth + 1));
                }
                Value::Object(map)
            }
        }
    }
}

/// Whether two values have the same shape: types, lengths, keys (cleaned), scalars equal.
fn same_shape(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_shape(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.values().zip(y.values()).all(|(x, y)| same_shape(x, y))
        }
        (Value::String(_), Value::String(_)) => true,
        _ => a == b,
    }
}

#[test]
fn any_json_comes_back_as_json_of_the_same_shape_without_hazards_or_the_token() {
    let config = ContentConfig::default();
    let mut generator = Gen(0x9e37_79b9_7f4a_7c15);
    for _ in 0..500 {
        let value = generator.value(0);
        for text in [
            value.to_string(),
            serde_json::to_string_pretty(&value).unwrap_or_default(),
        ] {
            let raw = serde_json::value::RawValue::from_string(text.clone())
                .unwrap_or_else(|e| panic!("{e}"));
            let (cleaned, _) = clean(&config, TOOL, &raw).unwrap_or_else(|e| panic!("{e}: {text}"));
            let out = cleaned.map_or(text.clone(), |c| c.get().to_owned());
            let parsed: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
            assert!(same_shape(&value, &parsed), "{text}\n{out}");
            assert!(!out.contains(&token()), "{out}");
            assert!(
                portcullis_guard::is_clean(&parsed_strings(&parsed)),
                "{out}"
            );
        }
    }
}

/// Every string of `v` (keys included), joined.
fn parsed_strings(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(parsed_strings).collect(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}{}", parsed_strings(v)))
            .collect(),
        _ => String::new(),
    }
}

/// A private key cut short (no END line) in one string does not run on into the next: a
/// token in a later string is still found and redacted.
#[test]
fn a_key_cut_short_does_not_hide_a_secret_in_the_next_string() {
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC{}",
        "A".repeat(40)
    );
    let t = token();
    let value = json!({ "content": [
        { "type": "text", "text": pem },
        { "type": "text", "text": format!("and {t}") },
    ]});
    let (out, report) = clean_value(&ContentConfig::default(), TOOL, &value);
    let text = out.to_string();
    assert!(!text.contains(&t), "{text}");
    assert!(!text.contains("MIIEvQIBADAN"), "{text}");
    assert!(text.contains("[REDACTED:github-token]"), "{text}");
    assert!(text.contains("[REDACTED:private-key]"), "{text}");
    let counts = report.redacted.to_string();
    assert!(
        counts.contains("github-token 1") && counts.contains("private-key 1"),
        "{counts}"
    );
}

/// `data` and `blob` are skipped only when they are base64; escapes that decode to
/// invisible or control characters make them text, which is cleaned.
#[test]
fn escaped_hazards_under_data_are_not_taken_for_base64() {
    let hidden = r"\u001b[2J".repeat(12) + &r"\udb40\udc41".repeat(12);
    let raw_text = format!(
        r#"{{"method":"notifications/message","params":{{"level":"info","data":"{hidden}"}}}}"#
    );
    let raw = serde_json::value::RawValue::from_string(raw_text).unwrap();
    let (text, _) = clean(&ContentConfig::default(), TOOL, &raw).unwrap();
    let out: Value = serde_json::from_str(text.as_deref().unwrap_or(&raw).get()).unwrap();
    let data = out["params"]["data"].as_str().unwrap();
    assert!(!data.contains('\u{1b}'), "{data:?}");
    assert!(!data.contains('\u{e0041}'), "{data:?}");
    // Real base64, `\/` included, is left alone.
    let b64 = format!(
        r#"{{"type":"image","mimeType":"image/png","data":"{}\/{}"}}"#,
        "QUJD".repeat(20),
        "QUJD".repeat(20)
    );
    let raw = serde_json::value::RawValue::from_string(b64).unwrap();
    let (text, _) = clean(&ContentConfig::default(), TOOL, &raw).unwrap();
    assert!(text.is_none(), "base64 relayed as it came");
}

/// Every argument of an open-world tool is searched: names that are protocol members in
/// results (`data`, `cursor`, `_meta`) are plain arguments here.
#[test]
fn open_world_arguments_named_like_protocol_members_are_searched_too() {
    let t = token();
    let hint = json!({"openWorldHint": true});
    for args in [
        json!({ "data": format!("token={t}") }),
        json!({ "cursor": t.clone() }),
        json!({ "_meta": { "note": t.clone() } }),
    ] {
        assert!(
            matches!(
                check_arguments(
                    &ContentConfig::default(),
                    "files",
                    "post",
                    Some(&hint),
                    &args
                ),
                ArgumentCheck::Found { .. }
            ),
            "{args}"
        );
    }
}
