//! `prompts/get` arguments against the prompt's declared arguments.

use crate::invalid::{self, Invalid, Problem, pointer_segment, preview};
use serde_json::Value;

/// Checks `args` (the `arguments` of `prompts/get`; `Value::Null` for absent) against `prompt`,
/// the prompt's definition from `prompts/list` (`{name, arguments: [{name, required}]}`):
/// every required argument is present, no undeclared argument is given, and every value is a
/// string (MCP prompt arguments are strings). A malformed definition refuses the call.
pub fn check_prompt_arguments(prompt: &Value, args: &Value) -> Result<(), Invalid> {
    let declared = match prompt.get("arguments") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(declared)) => declared.as_slice(),
        Some(_) => {
            return Err(Invalid::one(
                "",
                "the upstream's prompt definition is invalid: its arguments are not a list",
            ));
        }
    };
    let mut names = Vec::with_capacity(declared.len());
    for argument in declared {
        let Some(name) = argument.get("name").and_then(Value::as_str) else {
            return Err(Invalid::one(
                "",
                "the upstream's prompt definition is invalid: an argument has no name",
            ));
        };
        let required = argument
            .get("required")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        names.push((name, required));
    }
    let empty = serde_json::Map::new();
    let given = match args {
        Value::Null => &empty,
        Value::Object(given) => given,
        other => {
            let message = format!("{} is not of type \"object\"", preview(other, ""));
            return Err(Invalid::one("", message));
        }
    };

    let mut problems = Vec::new();
    for &(name, required) in &names {
        if required && !given.contains_key(name) {
            problems.push(Problem::new(
                "",
                format!(
                    "{:?} is a required argument",
                    invalid::shorten(name.to_owned(), 100)
                ),
            ));
        }
    }
    for (name, value) in given {
        let path = pointer_segment(name);
        if !names.iter().any(|(declared, _)| declared == name) {
            problems.push(Problem::new(path, "is not an argument of this prompt"));
        } else if !value.is_string() {
            problems.push(Problem::new(
                &*path,
                format!("{} is not of type \"string\"", preview(value, &path)),
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    problems.truncate(invalid::MAX_PROBLEMS);
    Err(Invalid { problems })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prompt() -> Value {
        json!({"name": "review", "arguments": [
            {"name": "code", "required": true},
            {"name": "style"},
        ]})
    }

    #[test]
    fn accepts_declared_string_arguments() {
        assert_eq!(
            check_prompt_arguments(&prompt(), &json!({"code": "fn main() {}"})),
            Ok(())
        );
        assert_eq!(
            check_prompt_arguments(&prompt(), &json!({"code": "x", "style": "terse"})),
            Ok(())
        );
        assert_eq!(
            check_prompt_arguments(&json!({"name": "p"}), &Value::Null),
            Ok(())
        );
    }

    #[test]
    fn refuses_missing_undeclared_and_non_string() {
        let refused =
            check_prompt_arguments(&prompt(), &json!({"style": 3, "extra/x": "y"})).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "arguments: \"code\" is a required argument; arguments/style: 3 is not of type \"string\"; \
             arguments/extra~1x: is not an argument of this prompt"
        );
        assert!(check_prompt_arguments(&prompt(), &Value::Null).is_err());
        assert!(check_prompt_arguments(&prompt(), &json!(["code"])).is_err());
    }

    #[test]
    fn malformed_definitions_refuse() {
        assert!(check_prompt_arguments(&json!({"arguments": {"code": {}}}), &json!({})).is_err());
        assert!(
            check_prompt_arguments(&json!({"arguments": [{"required": true}]}), &json!({}))
                .is_err()
        );
    }
}
