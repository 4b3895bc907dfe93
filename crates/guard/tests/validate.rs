//! Argument validation as a caller sees it.

use portcullis_guard::{Rejected, SchemaCache, SchemaError, compile};
use serde_json::{Value, json};

fn write_file() -> Value {
    json!({
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "content": {"type": "string"}
        },
        "required": ["path", "content"],
        "additionalProperties": false
    })
}

fn invalid(schema: &Value, args: &Value) -> String {
    match SchemaCache::new(8).validate(schema, args) {
        Err(Rejected::Arguments(invalid)) => invalid.to_string(),
        other => panic!("expected invalid arguments, got {other:?}"),
    }
}

#[test]
fn valid_arguments_pass() {
    let cache = SchemaCache::default();
    let args = json!({"path": "/tmp/x", "content": "hello"});
    assert_eq!(cache.validate(&write_file(), &args), Ok(()));
}

#[test]
fn messages_name_the_failing_path() {
    let schema = json!({
        "type": "object",
        "properties": {
            "count": {"type": "integer"},
            "items": {"type": "array", "items": {"type": "string"}},
            "mode": {"enum": ["fast", "slow"]}
        },
        "required": ["mode"]
    });
    let args = json!({"count": "x", "items": ["a", 2]});
    let message = invalid(&schema, &args);
    assert!(
        message.contains(r#"arguments/count: "x" is not of type "integer""#),
        "{message}"
    );
    assert!(
        message.contains(r#"arguments/items/1: 2 is not of type "string""#),
        "{message}"
    );
    assert!(
        message.contains(r#"arguments: "mode" is a required property"#),
        "{message}"
    );
    match SchemaCache::new(1).validate(&schema, &args) {
        Err(Rejected::Arguments(invalid)) => {
            let paths: Vec<&str> = invalid.problems.iter().map(|p| p.path.as_str()).collect();
            assert!(
                paths.contains(&"/count") && paths.contains(&"/items/1") && paths.contains(&"")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn at_most_five_problems_and_short_values() {
    let schema = json!({"type": "object", "additionalProperties": {"type": "integer"}});
    let mut args = serde_json::Map::new();
    for i in 0..50 {
        args.insert(format!("k{i}"), Value::from("x".repeat(10_000)));
    }
    let Err(Rejected::Arguments(invalid)) =
        SchemaCache::new(1).validate(&schema, &Value::Object(args))
    else {
        panic!("expected invalid");
    };
    assert_eq!(invalid.problems.len(), 5);
    for problem in &invalid.problems {
        assert!(problem.message.len() < 150, "{}", problem.message);
        assert!(
            problem.message.ends_with(r#"…" is not of type "integer""#)
                || problem.message.contains('…')
        );
    }
}

#[test]
fn unexpected_keys_are_listed_briefly() {
    let mut args = json!({"path": "p", "content": "c"});
    for i in 0..100 {
        args[format!("unexpected_key_{i:03}")] = json!(1);
    }
    let message = invalid(&write_file(), &args);
    assert!(
        message.starts_with("arguments: additional properties are not allowed (\"unexpected_key_"),
        "{message}"
    );
    assert!(message.contains("more)"), "{message}");
    assert!(message.len() < 200, "{message}");
}

#[test]
fn secrets_are_not_echoed() {
    let schema =
        json!({"type": "object", "properties": {"api_key": {"type": "string", "minLength": 64}}});
    let message = invalid(&schema, &json!({"api_key": "sk-live-very-secret"}));
    assert!(!message.contains("very-secret"), "{message}");
    assert!(message.contains("[REDACTED]"), "{message}");
}

#[test]
fn absent_arguments_are_an_empty_object() {
    let cache = SchemaCache::default();
    let optional = json!({"type": "object", "properties": {"q": {"type": "string"}}});
    assert_eq!(cache.validate(&optional, &Value::Null), Ok(()));
    let message = invalid(&write_file(), &Value::Null);
    assert!(
        message.contains(r#""path" is a required property"#),
        "{message}"
    );
}

#[test]
fn arguments_must_be_an_object_whatever_the_schema() {
    for args in [json!([1]), json!("x"), json!(3), json!(true)] {
        let message = invalid(&json!({}), &args);
        assert!(message.contains(r#"is not of type "object""#), "{message}");
    }
}

#[test]
fn formats_are_annotations() {
    let schema =
        json!({"type": "object", "properties": {"email": {"type": "string", "format": "email"}}});
    assert_eq!(
        SchemaCache::new(1).validate(&schema, &json!({"email": "not an email"})),
        Ok(())
    );
}

#[test]
fn dialects() {
    let draft7 = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "definitions": {"n": {"type": "integer"}},
        "properties": {"n": {"$ref": "#/definitions/n"}, "t": {"items": [{"type": "string"}]}}
    });
    let message = invalid(&draft7, &json!({"n": "x", "t": [1]}));
    assert!(
        message.contains("arguments/n:") && message.contains("arguments/t/0:"),
        "{message}"
    );
    let draft4 = json!({"$schema": "http://json-schema.org/draft-04/schema#", "type": "object",
        "properties": {"n": {"type": "number", "maximum": 3, "exclusiveMaximum": true}}});
    assert!(invalid(&draft4, &json!({"n": 3})).contains("arguments/n:"));
    // 2020-12 by default: `prefixItems` is understood, array-form `items` is not 2020-12.
    let default =
        json!({"type": "object", "properties": {"t": {"prefixItems": [{"type": "string"}]}}});
    assert!(invalid(&default, &json!({"t": [1]})).contains("arguments/t/0:"));
    let unknown = json!({"$schema": "https://example.com/my-dialect", "type": "object"});
    assert!(matches!(
        SchemaCache::new(1).validate(&unknown, &json!({})),
        Err(Rejected::Schema(SchemaError::UnsupportedDialect { .. }))
    ));
}

#[test]
fn invalid_schemas_refuse_the_call() {
    let cache = SchemaCache::new(8);
    for schema in [
        json!({"type": "objekt"}),
        json!({"type": "object", "properties": {"p": {"pattern": "(?<=a)b"}}}),
        json!({"type": "object", "properties": {"p": {"$ref": "#/$defs/missing"}}}),
        json!(null),
        json!(true),
        json!("object"),
    ] {
        match cache.validate(&schema, &json!({})) {
            Err(Rejected::Schema(error)) => {
                assert!(
                    error
                        .to_string()
                        .starts_with("the upstream's inputSchema is invalid"),
                    "{error}"
                );
            }
            other => panic!("{schema}: {other:?}"),
        }
    }
}

#[test]
fn cache_compiles_once_per_canonical_schema() {
    let cache = SchemaCache::new(2);
    let a: Value =
        serde_json::from_str(r#"{"type":"object","properties":{"x":{"type":"string"}}}"#).unwrap();
    let b: Value =
        serde_json::from_str(r#"{"properties":{"x":{"type":"string"}},"type":"object"}"#).unwrap();
    let first = cache.compile(&a).unwrap();
    let second = cache.compile(&b).unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&first, &second),
        "key order must not matter"
    );
    assert_eq!(cache.len(), 1);
    assert!(first.digest().starts_with("sha256:"));
    // Bounded, least recently used out first.
    let c = json!({"type": "object", "title": "c"});
    let d = json!({"type": "object", "title": "d"});
    cache.compile(&c).unwrap();
    cache.compile(&a).unwrap(); // a is now the most recent
    cache.compile(&d).unwrap(); // evicts c
    assert_eq!(cache.len(), 2);
    assert!(std::sync::Arc::ptr_eq(&first, &cache.compile(&a).unwrap()));
    // Refusals are cached too.
    assert!(cache.compile(&json!({"type": 5})).is_err());
    assert_eq!(cache.len(), 2);
}

#[test]
fn compiled_schemas_are_shareable() {
    fn assert_shareable<T: Send + Sync>() {}
    assert_shareable::<SchemaCache>();
    assert_shareable::<portcullis_guard::CompiledSchema>();
    let compiled = compile(&write_file()).unwrap();
    assert!(compiled.validate(&json!({"path": 1})).is_err());
}

#[test]
fn realistic_schemas_fit_the_budget() {
    // A JSON-value type (recursive union), a recursive tree, and a discriminated union: the
    // shapes generators (zod, pydantic, schemars) emit.
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "json": {"anyOf": [
                {"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"},
                {"type": "array", "items": {"$ref": "#/$defs/json"}},
                {"type": "object", "additionalProperties": {"$ref": "#/$defs/json"}}
            ]},
            "node": {"type": "object", "properties": {
                "name": {"type": "string"},
                "left": {"$ref": "#/$defs/node"}, "right": {"$ref": "#/$defs/node"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}
            }},
            "op": {"oneOf": (0..20).map(|i| json!({
                "type": "object",
                "properties": {"kind": {"const": format!("op{i}")}, "arg": {"$ref": "#/$defs/json"}},
                "required": ["kind"]
            })).collect::<Vec<_>>()}
        },
        "properties": {
            "data": {"$ref": "#/$defs/json"},
            "tree": {"$ref": "#/$defs/node"},
            "ops": {"type": "array", "items": {"$ref": "#/$defs/op"}}
        }
    });
    let mut deep = json!(1);
    for _ in 0..29 {
        deep = json!([{"k": deep}]); // two levels each: 4 + 58 = 62 in all
    }
    let args = json!({"data": {"a": [1, "x", null, {"b": deep.clone()}]}, "tree": {"left": {"right": {}}},
        "ops": [{"kind": "op3", "arg": [1, 2]}]});
    let cache = SchemaCache::default();
    assert_eq!(cache.validate(&schema, &args), Ok(()));
    let too_deep = json!({"data": {"a": [1, "x", null, {"b": [[[deep]]]}]}});
    let message = cache.validate(&schema, &too_deep).unwrap_err().to_string();
    assert_eq!(
        message,
        "arguments: the arguments nest deeper than 64 levels"
    );
    assert!(
        cache
            .validate(&schema, &json!({"ops": [{"kind": "nope"}]}))
            .is_err()
    );
}
