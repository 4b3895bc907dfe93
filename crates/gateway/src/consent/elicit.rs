//! The consent form a client shows its person (`elicitation/create`, form mode), and what
//! its answer means. Used as is by the elicitation channel (a 2025-06-18+ client with a
//! session) and inside an `input_required` result (a 2026-07-28 client).
//!
//! The form names the server, the tool, the caller, the arguments (rendered so nothing is
//! hidden: see [`super::render`]) and the rule, and asks for a decision, plus how long to
//! remember it where the config offers more than this call. Only what the config offers is
//! accepted back: a client answering `remember = "always"` where the rule offers `once` gets
//! `once`. Anything but a well-formed approval is a denial.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::render;
use super::request::{ConsentAnswer, ConsentRequest, Remember, Scope};
use crate::config::{ConsentSettings, RememberChoice};

/// What the form is about, beyond the request itself.
pub struct FormContext<'a> {
    pub method: &'a str,
    pub settings: &'a ConsentSettings,
    /// The call has a session (a stateless call cannot be remembered for one).
    pub has_session: bool,
    /// The client speaks 2025-11-25 or later (`mode` is part of the request there).
    pub with_mode: bool,
}

/// The remember choices offered for this call.
fn offered(cx: &FormContext<'_>) -> Vec<RememberChoice> {
    RememberChoice::ALL
        .into_iter()
        .filter(|c| cx.settings.allows(*c))
        .filter(|c| *c != RememberChoice::Session || cx.has_session)
        .collect()
}

fn kind_label(method: &str) -> &'static str {
    match method {
        crate::mcp::TOOLS_CALL => "Tool",
        crate::mcp::PROMPTS_GET => "Prompt",
        crate::mcp::COMPLETION_COMPLETE => "Completion for",
        _ => "Resource",
    }
}

/// A duration as people say it: `2m`, `1h30m`.
pub fn say(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// The text a person reads before deciding (also the terminal prompt's body).
pub fn describe(req: &ConsentRequest, method: &str, timeout: Duration) -> String {
    format!(
        "Portcullis is holding a call until a person decides.\n\nServer: {}\n{}: {}\nCaller: {}\nArguments:\n{}\n\nHeld by {}. Without an answer within {} the call is refused.",
        render::line(&req.server, 200),
        kind_label(method),
        render::line(&req.tool, 400),
        render::line(&req.principal, 400),
        render::arguments(&req.arguments, render::MAX_TOTAL_CHARS),
        render::line(&req.rule, 200),
        say(timeout),
    )
}

/// The params of the `elicitation/create` request.
pub fn form(req: &ConsentRequest, cx: &FormContext<'_>) -> Value {
    let mut properties = Map::new();
    properties.insert(
        "decision".into(),
        json!({
            "type": "string",
            "title": "Decision",
            "description": "approve: make this call; deny: refuse it",
            "enum": ["approve", "deny"],
        }),
    );
    let choices = offered(cx);
    if choices.len() > 1 {
        let ttl = say(cx.settings.always_ttl);
        properties.insert(
            "remember".into(),
            json!({
                "type": "string",
                "title": "Remember the approval",
                "description": format!("once: this call only; session: the rest of this session; always: {ttl}"),
                "enum": choices.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                "default": "once",
            }),
        );
        if cx.settings.for_tool {
            properties.insert(
                "scope".into(),
                json!({
                    "type": "string",
                    "title": "Remembered for",
                    "description": "arguments: these arguments only; tool: any arguments to this tool",
                    "enum": ["arguments", "tool"],
                    "default": "arguments",
                }),
            );
        }
    }
    let mut params = json!({
        "message": describe(req, cx.method, cx.settings.timeout),
        "requestedSchema": {
            "type": "object",
            "properties": properties,
            "required": ["decision"],
        },
    });
    if cx.with_mode {
        params["mode"] = json!("form");
    }
    params
}

/// What a client's `ElicitResult` means for the call.
pub fn answer(result: &Value, cx: &FormContext<'_>) -> ConsentAnswer {
    let deny = |reason: &str| ConsentAnswer::Deny {
        reason: reason.to_owned(),
    };
    match result.get("action").and_then(Value::as_str) {
        Some("accept") => {}
        Some("decline") => return deny("declined in the client"),
        Some("cancel") => return deny("dismissed in the client without a decision"),
        _ => return deny("the client's answer was not an elicitation result"),
    }
    let content = result.get("content").cloned().unwrap_or(Value::Null);
    let field = |name: &str| content.get(name).and_then(Value::as_str);
    match field("decision") {
        Some("approve") => {}
        Some("deny") => return deny("denied in the client"),
        _ => return deny("the form came back without a decision"),
    }
    let choice = field("remember")
        .and_then(RememberChoice::parse)
        .filter(|c| offered(cx).contains(c))
        .unwrap_or(RememberChoice::Once);
    let scope = match field("scope") {
        Some("tool") if cx.settings.for_tool => Scope::Tool,
        _ => Scope::Arguments,
    };
    ConsentAnswer::Approve {
        remember: remember(choice, cx.settings),
        scope,
    }
}

/// A remember choice as the shared type says it.
pub fn remember(choice: RememberChoice, settings: &ConsentSettings) -> Remember {
    match choice {
        RememberChoice::Once => Remember::Once,
        RememberChoice::Session => Remember::Session,
        RememberChoice::Always => Remember::Always {
            ttl: settings.always_ttl,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Instant, SystemTime};

    fn request() -> ConsentRequest {
        ConsentRequest {
            id: "r".into(),
            principal: "local:alice".into(),
            session: "s".into(),
            server: "files".into(),
            tool: "write_file".into(),
            arguments: json!({ "path": "/tmp/a\u{202E}b" }),
            arguments_digest: "sha256:x".into(),
            rule: "rule 2 (p.toml:7)".into(),
            created: SystemTime::now(),
            deadline: Instant::now(),
        }
    }

    fn settings(remember: &[RememberChoice], for_tool: bool) -> ConsentSettings {
        ConsentSettings {
            remember: remember.to_vec(),
            for_tool,
            ..ConsentSettings::default()
        }
    }

    fn cx(s: &ConsentSettings, has_session: bool) -> FormContext<'_> {
        FormContext {
            method: "tools/call",
            settings: s,
            has_session,
            with_mode: true,
        }
    }

    #[test]
    fn the_form_names_the_call_and_offers_only_what_the_config_allows() {
        let s = settings(&[RememberChoice::Once, RememberChoice::Session], false);
        let f = form(&request(), &cx(&s, true));
        let message = f["message"].as_str().unwrap_or_default();
        assert!(message.contains("Server: files"), "{message}");
        assert!(message.contains("Tool: write_file"), "{message}");
        assert!(message.contains("/tmp/a\\u{202E}b"), "{message}");
        assert!(message.contains("rule 2 (p.toml:7)"), "{message}");
        assert_eq!(f["mode"], "form");
        let props = &f["requestedSchema"]["properties"];
        assert_eq!(props["remember"]["enum"], json!(["once", "session"]));
        assert!(props.get("scope").is_none());
        // A stateless call has no session to remember for.
        let f = form(&request(), &cx(&s, false));
        assert!(f["requestedSchema"]["properties"].get("remember").is_none());
    }

    #[test]
    fn only_a_well_formed_approval_approves() {
        let s = settings(&[RememberChoice::Once, RememberChoice::Session], false);
        let c = cx(&s, true);
        let approve =
            |content: Value| answer(&json!({ "action": "accept", "content": content }), &c);
        assert_eq!(
            approve(json!({ "decision": "approve", "remember": "session" })),
            ConsentAnswer::Approve {
                remember: Remember::Session,
                scope: Scope::Arguments
            }
        );
        // Not offered: downgraded, never widened.
        assert_eq!(
            approve(json!({ "decision": "approve", "remember": "always", "scope": "tool" })),
            ConsentAnswer::Approve {
                remember: Remember::Once,
                scope: Scope::Arguments
            }
        );
        for denied in [
            json!({ "action": "decline" }),
            json!({ "action": "cancel" }),
            json!({ "action": "accept" }),
            json!({ "action": "accept", "content": { "decision": "deny" } }),
            json!({ "action": "accept", "content": { "decision": "yes" } }),
            json!("approve"),
        ] {
            assert!(
                matches!(answer(&denied, &c), ConsentAnswer::Deny { .. }),
                "{denied}"
            );
        }
    }
}
