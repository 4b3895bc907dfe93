//! Whatever the arguments (and whatever the schema), the guards answer and never panic.

use portcullis_guard::{
    ResourceIndex, SchemaCache, check_prompt_arguments, compile, digest, redact,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Panics anywhere in this process, including those the guards catch and turn into refusals.
static PANICS: LazyLock<&'static AtomicUsize> = LazyLock::new(|| {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        COUNT.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
    &COUNT
});

fn no_panics() -> bool {
    PANICS.load(Ordering::SeqCst) == 0
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        ".{0,20}".prop_map(Value::from),
        prop::sample::select(vec!["a", "aaaa!", "/tmp/x", "fast", "2024-01-01", ""])
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "path",
            "content",
            "items",
            "mode",
            "count",
            "nested",
            "a",
            "token",
            "$ref",
            "type",
            "properties",
            "pattern",
            "anyOf",
            "items",
            "required",
            "enum",
            "$defs",
            "password",
        ])
        .prop_map(str::to_owned),
        ".{0,8}",
    ]
}

static SCHEMAS: LazyLock<Vec<Value>> = LazyLock::new(|| {
    vec![
        json!({"type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
            "required": ["path", "content"], "additionalProperties": false}),
        json!({"type": "object", "properties": {
            "mode": {"enum": ["fast", "slow"]},
            "count": {"type": "integer", "minimum": 0, "maximum": 10, "multipleOf": 2},
            "items": {"type": "array", "items": {"type": "string", "pattern": "^(a+)+$"},
                "uniqueItems": true, "maxItems": 3, "contains": {"const": "a"}},
            "nested": {"type": "object", "patternProperties": {"^[a-z]+$": {"type": "number"}},
                "propertyNames": {"maxLength": 3}, "unevaluatedProperties": false},
            "token": {"oneOf": [{"type": "string", "minLength": 3}, {"type": "null"}]}
        }, "dependentRequired": {"mode": ["count"]}}),
        json!({"$defs": {"json": {"anyOf": [{"type": ["string", "number", "boolean", "null"]},
            {"type": "array", "items": {"$ref": "#/$defs/json"}},
            {"type": "object", "additionalProperties": {"$ref": "#/$defs/json"}}]}},
            "type": "object", "additionalProperties": {"$ref": "#/$defs/json"}}),
        json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "properties": {"a": {"items": [{"type": "string"}], "additionalItems": false},
            "b": {"if": {"type": "string"}, "then": {"format": "email"}, "else": {"type": "integer"}}}}),
        json!({"type": "object", "properties": {"a": {"$ref": "#"}}, "not": {"required": ["pattern"]}}),
    ]
});

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn validation_never_panics(args in json_value(), which in 0usize..5, wrap in any::<bool>()) {
        prop_assert!(no_panics());
        let cache = SchemaCache::new(8);
        let args = if wrap { json!({"items": [args.clone()], "nested": {"x": args}}) } else { args };
        match cache.validate(&SCHEMAS[which], &args) {
            Ok(()) => prop_assert!(args.is_object() || args.is_null()),
            Err(refused) => {
                let text = refused.to_string();
                prop_assert!(text.starts_with("arguments"), "{}", text);
                prop_assert!(text.len() < 6 * 600, "{}", text.len());
            }
        }
        prop_assert!(no_panics());
    }

    #[test]
    fn arbitrary_schemas_compile_or_refuse(schema in json_value(), args in json_value()) {
        if let Ok(compiled) = compile(&schema) {
            let _ = compiled.validate(&args);
        }
        let as_object = json!({"type": "object", "properties": {"x": schema}});
        if let Ok(compiled) = compile(&as_object) {
            let _ = compiled.validate(&json!({"x": args}));
        }
        prop_assert!(no_panics());
    }

    #[test]
    fn other_guards_never_panic(value in json_value(), args in json_value(), uri in ".{0,40}", template in ".{0,40}") {
        let _ = check_prompt_arguments(&value, &args);
        let _ = check_prompt_arguments(&json!({"arguments": [{"name": "a", "required": true}]}), &args);
        let index = ResourceIndex::new([uri.clone()], [template.clone(), format!("x://{{{template}}}")]);
        prop_assert!(index.allows(&uri));
        let _ = index.allows(&template);
        prop_assert_eq!(digest(&value), digest(&value.clone()));
        let redacted = redact(&value);
        prop_assert_eq!(redact(&redacted), redacted.clone());
    }
}
