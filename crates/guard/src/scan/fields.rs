//! Which strings of a tool definition reach the model, each with its JSON pointer.

use serde_json::Value;

use super::{MAX_SCHEMA_DEPTH, MAX_STRINGS};

/// How a string is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// An identifier (a tool or property name): any invisible character in it is suspect,
    /// and it is not read as prose.
    Name,
    /// Text the model reads: descriptions, titles, enum values, instructions.
    Prose,
}

/// One string to scan.
pub(super) struct Field<'a> {
    pub pointer: String,
    pub text: &'a str,
    pub kind: Kind,
}

/// Schema members whose string values the model reads.
const TEXT_KEYS: &[&str] = &["description", "title", "$comment", "const", "default"];
/// Schema members whose arrays of strings the model reads.
const TEXT_LISTS: &[&str] = &["enum", "examples"];
/// Schema members that map names (which the model reads) to subschemas.
const NAMED_SCHEMAS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];

/// The strings of a tool definition, in document order, at most [`MAX_STRINGS`].
pub(super) fn tool_strings<'a>(tool: &'a Value) -> Vec<Field<'a>> {
    let mut out = Vec::new();
    let mut push = |pointer: &str, v: Option<&'a Value>, kind| {
        if let Some(text) = v.and_then(Value::as_str) {
            out.push(Field {
                pointer: pointer.to_owned(),
                text,
                kind,
            });
        }
    };
    push("/name", tool.get("name"), Kind::Name);
    push("/title", tool.get("title"), Kind::Prose);
    push("/description", tool.get("description"), Kind::Prose);
    push(
        "/annotations/title",
        tool.get("annotations").and_then(|a| a.get("title")),
        Kind::Prose,
    );
    for key in ["inputSchema", "outputSchema"] {
        if let Some(schema) = tool.get(key) {
            schema_strings(schema, &format!("/{key}"), 0, &mut out);
        }
    }
    out.truncate(MAX_STRINGS);
    out
}

fn schema_strings<'a>(value: &'a Value, pointer: &str, depth: usize, out: &mut Vec<Field<'a>>) {
    if depth > MAX_SCHEMA_DEPTH || out.len() >= MAX_STRINGS {
        return;
    }
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let here = format!("{pointer}/{}", token(key));
                if TEXT_KEYS.contains(&key.as_str())
                    && let Some(text) = v.as_str()
                {
                    out.push(Field {
                        pointer: here,
                        text,
                        kind: Kind::Prose,
                    });
                    continue;
                }
                if TEXT_LISTS.contains(&key.as_str())
                    && let Some(items) = v.as_array()
                {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(text) = item.as_str() {
                            out.push(Field {
                                pointer: format!("{here}/{i}"),
                                text,
                                kind: Kind::Prose,
                            });
                        }
                    }
                    continue;
                }
                if NAMED_SCHEMAS.contains(&key.as_str())
                    && let Some(named) = v.as_object()
                {
                    for (name, sub) in named {
                        let at = format!("{here}/{}", token(name));
                        out.push(Field {
                            pointer: at.clone(),
                            text: name,
                            kind: Kind::Name,
                        });
                        schema_strings(sub, &at, depth + 1, out);
                    }
                    continue;
                }
                if v.is_object() || v.is_array() {
                    schema_strings(v, &here, depth + 1, out);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                schema_strings(item, &format!("{pointer}/{i}"), depth + 1, out);
            }
        }
        _ => {}
    }
}

/// A JSON pointer reference token (RFC 6901): `~` as `~0`, `/` as `~1`.
fn token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_string_the_model_reads_is_found_with_its_pointer() {
        let tool = json!({
            "name": "t",
            "title": "T",
            "description": "d",
            "annotations": { "title": "a", "readOnlyHint": true },
            "inputSchema": {
                "type": "object",
                "properties": {
                    "a/b": { "type": "string", "description": "p", "enum": ["x", 1, "y"] },
                    "n": { "type": "array", "items": { "title": "i", "default": "z" } }
                },
                "$defs": { "d": { "const": "c" } }
            },
            "outputSchema": { "description": "o" }
        });
        let found: Vec<(String, &str)> = tool_strings(&tool)
            .into_iter()
            .map(|f| (f.pointer, f.text))
            .collect();
        let expect = [
            ("/name", "t"),
            ("/title", "T"),
            ("/description", "d"),
            ("/annotations/title", "a"),
            ("/inputSchema/properties/a~1b", "a/b"),
            ("/inputSchema/properties/a~1b/description", "p"),
            ("/inputSchema/properties/a~1b/enum/0", "x"),
            ("/inputSchema/properties/a~1b/enum/2", "y"),
            ("/inputSchema/properties/n", "n"),
            ("/inputSchema/properties/n/items/title", "i"),
            ("/inputSchema/properties/n/items/default", "z"),
            ("/inputSchema/$defs/d", "d"),
            ("/inputSchema/$defs/d/const", "c"),
            ("/outputSchema/description", "o"),
        ];
        let expect: Vec<(String, &str)> = expect.iter().map(|(p, t)| (p.to_string(), *t)).collect();
        assert_eq!(found, expect);
    }

    #[test]
    fn deep_and_wide_schemas_are_bounded() {
        let mut deep = json!({ "description": "bottom" });
        for _ in 0..200 {
            deep = json!({ "items": deep });
        }
        let tool = json!({ "name": "t", "inputSchema": deep });
        assert!(tool_strings(&tool).iter().all(|f| f.text != "bottom"));

        let wide: Vec<Value> = (0..10_000).map(|i| json!(format!("v{i}"))).collect();
        let tool = json!({ "name": "t", "inputSchema": { "enum": wide } });
        assert_eq!(tool_strings(&tool).len(), MAX_STRINGS);
    }
}
