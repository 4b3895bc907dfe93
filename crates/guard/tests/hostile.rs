//! Hostile tool schemas: each must be refused or validated promptly, never hang, never fetch.
//! Every case runs on a thread with a 2 MiB stack (a tokio worker's) under a deadline, so a
//! regression fails the test instead of hanging CI.

use portcullis_guard::{Rejected, SchemaCache, SchemaError, compile};
use serde_json::{Map, Value, json};
use std::io::ErrorKind;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(10);

/// Runs `work` on its own 2 MiB thread and fails unless it finishes within [`DEADLINE`].
fn promptly<T: Send + 'static>(name: &str, work: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = mpsc::channel();
    let started = Instant::now();
    std::thread::Builder::new()
        .name(name.to_owned())
        .stack_size(2 << 20)
        .spawn(move || {
            let _ = done.send(work());
        })
        .expect("spawn");
    let value = result
        .recv_timeout(DEADLINE)
        .unwrap_or_else(|e| panic!("{name}: no answer within {DEADLINE:?} ({e})"));
    eprintln!("{name}: {:?}", started.elapsed());
    value
}

fn validate(name: &str, schema: Value, args: Value) -> Result<(), Rejected> {
    promptly(name, move || SchemaCache::new(4).validate(&schema, &args))
}

fn schema_error(name: &str, schema: Value) -> SchemaError {
    match validate(name, schema, json!({})) {
        Err(Rejected::Schema(error)) => error,
        other => panic!("{name}: expected a schema error, got {other:?}"),
    }
}

/// `$defs` a0 … a{n} where each a{i} applies a{i+1} twice through `keyword`.
fn fan_out(keyword: &str, levels: usize, leaf: Value, wrap: impl Fn(Value) -> Value) -> Value {
    let mut defs = Map::new();
    for i in 0..levels {
        let next = wrap(json!({"$ref": format!("#/$defs/a{}", i + 1)}));
        defs.insert(format!("a{i}"), json!({ keyword: [next.clone(), next] }));
    }
    defs.insert(format!("a{levels}"), leaf);
    json!({"type": "object", "$defs": defs, "$ref": "#/$defs/a0"})
}

#[test]
fn catastrophic_regex_is_linear() {
    let schema =
        json!({"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}}});
    let evil = format!("{}!", "a".repeat(50));
    let result = validate("^(a+)+$", schema.clone(), json!({"s": evil}));
    let Err(Rejected::Arguments(invalid)) = result else {
        panic!("{result:?}")
    };
    assert_eq!(invalid.problems[0].path, "/s");
    // 100 KB of it, still prompt.
    let evil = format!("{}!", "a".repeat(100_000));
    assert!(validate("^(a+)+$ on 100 KB", schema, json!({"s": evil})).is_err());
}

#[test]
fn backtracking_only_patterns_are_refused() {
    // Look-around and back-references need a backtracking engine: the schema is refused.
    // (With the crate's default engine, the second costs 20 ms per value before its backtrack
    // limit gives up.)
    for pattern in ["^(?=(a+)+$)", r"^(a|a)*\1$"] {
        let schema = json!({"type": "object", "properties": {"s": {"pattern": pattern}}});
        assert!(matches!(
            schema_error(pattern, schema),
            SchemaError::Invalid { .. }
        ));
    }
}

#[test]
fn huge_regex_programs_are_refused() {
    // Anchored, so that the crate cannot collapse them into a search for one repetition.
    for pattern in [
        "^a{1000}{1000}$",
        r"^(?:\p{L}\p{N}){1,100}$",
        "^(.{1,4096})x$",
    ] {
        let schema = json!({"type": "object", "properties": {"s": {"pattern": pattern}}});
        assert!(matches!(
            schema_error(pattern, schema),
            SchemaError::Invalid { .. }
        ));
    }
}

#[test]
fn reference_loops_terminate() {
    let args = json!({"a": {"b": [1, 2, {"c": null}]}});
    assert_eq!(
        validate("self $ref", json!({"$ref": "#"}), args.clone()),
        Ok(())
    );
    assert_eq!(
        validate(
            "typed self $ref",
            json!({"type": "object", "$ref": "#"}),
            args.clone()
        ),
        Ok(())
    );
    let mutual = json!({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"});
    assert_eq!(validate("mutual $defs", mutual, args.clone()), Ok(()));
    let ring = json!({"$defs": {
        "a": {"allOf": [{"$ref": "#/$defs/b"}, {"$ref": "#/$defs/c"}]},
        "b": {"anyOf": [{"$ref": "#/$defs/c"}, {"$ref": "#/$defs/a"}]},
        "c": {"oneOf": [{"$ref": "#/$defs/a"}, {"type": "object"}]}
    }, "$ref": "#/$defs/a"});
    let _ = validate("ring through allOf/anyOf/oneOf", ring, args.clone());
    let dynamic = json!({"$dynamicAnchor": "m", "type": "object",
        "properties": {"a": {"$dynamicRef": "#m"}}, "$defs": {"x": {"$dynamicRef": "#m"}}});
    assert_eq!(validate("$dynamicRef loop", dynamic, args.clone()), Ok(()));
    let recursive = json!({"$schema": "https://json-schema.org/draft/2019-09/schema",
        "$recursiveAnchor": true, "type": "object", "additionalProperties": {"$recursiveRef": "#"}});
    assert!(validate("$recursiveRef", recursive, args).is_err());
}

#[test]
fn recursion_through_the_arguments_is_bounded_by_their_depth() {
    let schema = json!({"type": "object", "properties": {"a": {"$ref": "#"}}});
    let mut deep = json!({});
    for _ in 0..1_000 {
        deep = json!({ "a": deep });
    }
    let result = validate("1000-deep arguments", schema, deep);
    let Err(Rejected::Arguments(invalid)) = result else {
        panic!("{result:?}")
    };
    assert!(invalid.problems[0].message.contains("deeper than 64"));
}

#[test]
fn exponential_fan_out_is_refused_before_compiling() {
    // Unchecked, 22 levels of anyOf take the validator ~20 s in release; 40 would take days.
    let in_place = fan_out("anyOf", 40, json!({"type": "string"}), |r| r);
    assert!(matches!(
        schema_error("anyOf x2 x40", in_place),
        SchemaError::TooExpensive { .. }
    ));
    let all_of = fan_out("allOf", 40, json!(true), |r| r);
    assert!(matches!(
        schema_error("allOf x2 x40", all_of),
        SchemaError::TooExpensive { .. }
    ));
    // The same doubling spread over the depth of the arguments.
    let descending = fan_out(
        "anyOf",
        40,
        json!({"type": "string"}),
        |r| json!({"properties": {"x": r}}),
    );
    assert!(matches!(
        schema_error("anyOf x2 per level", descending),
        SchemaError::TooExpensive { .. }
    ));
    let recursive = json!({"type": "object",
        "properties": {"a": {"$ref": "#"}}, "patternProperties": {"^a$": {"$ref": "#"}}});
    assert!(matches!(
        schema_error("two refs per level", recursive),
        SchemaError::TooExpensive { .. }
    ));
    // Small fan-out stays usable.
    let small = fan_out("anyOf", 6, json!({"type": "object"}), |r| r);
    assert_eq!(validate("anyOf x2 x6", small, json!({})), Ok(()));
}

#[test]
fn a_costly_schema_is_not_multiplied_by_many_arguments() {
    // About 8 000 evaluations per item: accepted, but not for a thousand items.
    let items = json!({"type": "array", "items": {"$ref": "#/$defs/a0"}});
    let mut schema = fan_out("anyOf", 11, json!({"type": "string"}), |r| r);
    schema["properties"] = json!({ "xs": items });
    let few = json!({"xs": ["a", "b", 1]});
    let result = validate("3 costly items", schema.clone(), few);
    let Err(Rejected::Arguments(invalid)) = result else {
        panic!("{result:?}")
    };
    assert_eq!(invalid.problems[0].path, "/xs/2");
    let many = json!({"xs": vec![1; 1000]});
    let result = validate("1000 costly items", schema, many);
    let Err(Rejected::Arguments(invalid)) = result else {
        panic!("{result:?}")
    };
    assert!(
        invalid.problems[0]
            .message
            .contains("too large to validate"),
        "{invalid}"
    );
}

#[test]
fn long_reference_chains_are_bounded() {
    let chain = |n: usize| {
        let mut defs = Map::new();
        for i in 0..n {
            defs.insert(
                format!("a{i}"),
                json!({"$ref": format!("#/$defs/a{}", i + 1)}),
            );
        }
        defs.insert(format!("a{n}"), json!({"type": "object"}));
        json!({"$defs": defs, "$ref": "#/$defs/a0"})
    };
    assert_eq!(validate("chain of 250 refs", chain(250), json!({})), Ok(()));
    assert!(matches!(
        schema_error("chain of 5000 refs", chain(5_000)),
        SchemaError::TooManyReferences { .. }
    ));
}

#[test]
fn size_depth_and_pattern_count_are_bounded() {
    let big = json!({"type": "object", "description": "x".repeat(300 * 1024)});
    assert!(matches!(
        schema_error("300 KiB", big),
        SchemaError::TooLarge { .. }
    ));
    let mut deep = json!({"type": "string"});
    for _ in 0..70 {
        deep = json!({"type": "object", "properties": {"a": deep}});
    }
    assert!(matches!(
        schema_error("70 levels", deep),
        SchemaError::TooDeep { .. }
    ));
    let properties: Map<String, Value> = (0..300)
        .map(|i| {
            (
                format!("p{i}"),
                json!({"type": "string", "pattern": format!("^x{i}$")}),
            )
        })
        .collect();
    let many = json!({"type": "object", "properties": properties});
    assert!(matches!(
        schema_error("300 patterns", many),
        SchemaError::TooManyPatterns { .. }
    ));
}

/// A listener nobody should ever connect to, and the check that nobody did.
struct Trap(TcpListener);

impl Trap {
    fn open() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        Trap(listener)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.0.local_addr().expect("addr"))
    }

    fn assert_untouched(&self) {
        std::thread::sleep(Duration::from_millis(100));
        match self.0.accept() {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Ok((_, peer)) => panic!("the validator connected to the trap from {peer}"),
            Err(e) => panic!("accept: {e}"),
        }
    }
}

#[test]
fn remote_and_file_references_are_never_fetched() {
    let trap = Trap::open();
    let remote = json!({"type": "object", "properties": {"a": {"$ref": trap.url("a.json")}}});
    assert!(matches!(
        schema_error("remote $ref", remote),
        SchemaError::ExternalReference { .. }
    ));
    let relative = json!({"$id": trap.url("root.json"), "type": "object", "$ref": "other.json"});
    assert!(matches!(
        schema_error("relative to a remote $id", relative),
        SchemaError::ExternalReference { .. }
    ));
    let file = json!({"$ref": "file:///etc/passwd"});
    assert!(matches!(
        schema_error("file $ref", file),
        SchemaError::ExternalReference { .. }
    ));
    let dialect = json!({"$schema": trap.url("meta.json"), "type": "object"});
    assert!(matches!(
        schema_error("remote $schema", dialect),
        SchemaError::UnsupportedDialect { .. }
    ));
    // Past the first line of defence: "sub.json" names an embedded resource, so the reference
    // is let through, but from the other resource it resolves to a different, remote URI. The
    // validator's retriever is asked, refuses, and compilation fails.
    let resolves_remote = json!({
        "$id": trap.url("a/root.json"),
        "type": "object",
        "$defs": {
            "embedded": {"$id": "sub.json", "type": "string"},
            "other": {"$id": trap.url("b/other.json"), "$ref": "sub.json"}
        },
        "properties": {"x": {"$ref": trap.url("b/other.json")}}
    });
    let error = schema_error("retriever", resolves_remote);
    assert!(error.to_string().contains("does not fetch"), "{error}");
    trap.assert_untouched();
}

#[test]
fn compile_is_bounded_in_time_for_the_largest_accepted_schemas() {
    // Near the size limit, many properties and patterns: compiles, once, promptly.
    let properties: Map<String, Value> = (0..250)
        .map(|i| {
            (
                format!("p{i}"),
                json!({"type": "string", "pattern": format!("^[a-z]{{1,{}}}$", i + 1),
            "description": "d".repeat(600)}),
            )
        })
        .collect();
    let schema = json!({"type": "object", "properties": properties});
    assert!(schema.to_string().len() > 150 * 1024);
    let compiled = promptly("large schema", move || compile(&schema).map(|_| ()));
    assert_eq!(compiled, Ok(()));
}
