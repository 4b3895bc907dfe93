//! Ingress: every rejection, its code and message, and the bounds.

use portcullis_wire::{
    Frame, Id, IngressError, Kind, Limits, ProtocolVersion, codes, parse_frame, parse_frame_for,
    parse_message,
};

fn limits() -> Limits {
    Limits::default()
}

fn reject(s: &str) -> IngressError {
    parse_message(s.as_bytes(), &limits()).expect_err("must be rejected")
}

fn invalid_request_reason(s: &str) -> (String, Option<Id>) {
    match reject(s) {
        IngressError::InvalidRequest { reason, id } => (reason, id),
        other => panic!("expected InvalidRequest for {s}, got {other:?}"),
    }
}

/// `{"jsonrpc":"2.0","id":1,"method":"m","params":` + `depth - 1` nested objects.
fn nested_message(depth: usize) -> String {
    let inner = depth - 1; // the top-level object is depth 1
    let mut s = String::from(r#"{"jsonrpc":"2.0","id":1,"method":"m","params":"#);
    for _ in 0..inner - 1 {
        s.push_str(r#"{"a":"#);
    }
    s.push_str("{}");
    for _ in 0..inner - 1 {
        s.push('}');
    }
    s.push('}');
    s
}

#[test]
fn duplicate_key_in_nested_arguments_is_rejected() {
    let e = reject(
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write","arguments":{"path":"/tmp/ok","path":"/etc/shadow"}}}"#,
    );
    assert_eq!(
        e,
        IngressError::DuplicateKey {
            key: "path".into(),
            path: "params.arguments".into()
        }
    );
    assert_eq!(e.to_string(), r#"duplicate key "path" at params.arguments"#);
    assert_eq!(e.to_error_object().code, codes::INVALID_REQUEST);
}

#[test]
fn duplicate_key_is_detected_across_different_escapes() {
    let e = reject(r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":1,"\u0061":2}}"#);
    assert!(
        matches!(e, IngressError::DuplicateKey { ref key, ref path } if key == "a" && path == "params")
    );
    let e = reject(r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"\u00e9":1,"é":2}}"#);
    assert!(matches!(e, IngressError::DuplicateKey { .. }), "{e:?}");
}

#[test]
fn duplicate_top_level_member_is_rejected() {
    let e = reject(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}"#);
    assert_eq!(e.to_string(), r#"duplicate key "method" at the top level"#);
}

#[test]
fn duplicate_key_path_names_array_indices_and_odd_keys() {
    let e = reject(
        r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"items":[{},{"we ird":[0,{"k":1,"k":2}]}]}}"#,
    );
    assert_eq!(
        e,
        IngressError::DuplicateKey {
            key: "k".into(),
            path: r#"params.items[1]["we ird"][1]"#.into()
        }
    );
    let frame = br#"[{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","method":"b","params":{"x":1,"x":1}}]"#;
    let e = parse_frame(frame, &limits()).unwrap_err();
    assert_eq!(e.to_string(), r#"duplicate key "x" at [1].params"#);
}

#[test]
fn duplicate_detection_scales_to_large_objects() {
    // Past the small-object threshold the set switches to hashing; the duplicate is last.
    let mut s = String::from(r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"#);
    for i in 0..50_000 {
        s.push_str(&format!(r#""k{i}":{i},"#));
    }
    s.push_str(r#""k7":0}}"#);
    assert!(matches!(reject(&s), IngressError::DuplicateKey { key, .. } if key == "k7"));
    // Same-named keys in sibling objects are fine.
    let ok = r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":{"x":1},"b":{"x":1},"c":[{"x":1},{"x":1}]}}"#;
    parse_message(ok.as_bytes(), &limits()).unwrap();
}

#[test]
fn error_messages_never_echo_long_input() {
    let key = "k".repeat(10_000);
    let path_key = "p".repeat(10_000);
    let s = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"m","params":{{"{path_key}":{{"{key}":1,"{key}":2}}}}}}"#
    );
    let e = reject(&s);
    let msg = e.to_error_object().message;
    assert!(msg.len() < 160, "{} bytes: {msg}", msg.len());
    let bad_json = format!(r#"{{"jsonrpc":"2.0","{}"#, "x".repeat(5000));
    assert!(reject(&bad_json).to_string().len() < 160);
}

#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    for open in ["[", "{\"a\":"] {
        let s = open.repeat(100_000);
        assert_eq!(reject(&s), IngressError::TooDeep { limit: 64 });
        let e = parse_frame(s.as_bytes(), &limits()).unwrap_err();
        assert_eq!(e.to_string(), "JSON nesting deeper than 64 levels");
    }
    // A million levels inside a valid-looking message.
    let s = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"m","params":{}"#,
        "[".repeat(1_000_000)
    );
    assert_eq!(reject(&s), IngressError::TooDeep { limit: 64 });
}

#[test]
fn nesting_of_exactly_the_limit_is_accepted_and_one_more_is_rejected() {
    let env = parse_message(nested_message(64).as_bytes(), &limits()).unwrap();
    assert_eq!(env.kind(), Kind::Request);
    assert_eq!(
        parse_message(nested_message(65).as_bytes(), &limits()).unwrap_err(),
        IngressError::TooDeep { limit: 64 }
    );
    // Arrays count the same way: depth 64 of brackets validates (then fails the shape).
    let arrays = format!("{}{}", "[".repeat(64), "]".repeat(64));
    assert!(matches!(
        parse_frame(arrays.as_bytes(), &limits()),
        Err(IngressError::InvalidRequest { .. })
    ));
    let arrays = format!("{}{}", "[".repeat(65), "]".repeat(65));
    assert_eq!(
        parse_frame(arrays.as_bytes(), &limits()).unwrap_err(),
        IngressError::TooDeep { limit: 64 }
    );
}

#[test]
fn depth_limits_beyond_serde_json_are_clamped_to_127() {
    let deep = Limits {
        max_depth: 1000,
        ..limits()
    };
    parse_message(nested_message(127).as_bytes(), &deep).unwrap();
    assert_eq!(
        parse_message(nested_message(128).as_bytes(), &deep).unwrap_err(),
        IngressError::TooDeep { limit: 127 }
    );
    let shallow = Limits {
        max_depth: 2,
        ..limits()
    };
    parse_message(nested_message(2).as_bytes(), &shallow).unwrap();
    assert!(parse_message(nested_message(3).as_bytes(), &shallow).is_err());
}

#[test]
fn size_is_checked_before_anything_else() {
    let small = Limits {
        max_frame_bytes: 10,
        ..limits()
    };
    let e = parse_frame(b"\xff\xff\xff not even utf-8", &small).unwrap_err();
    assert_eq!(
        e,
        IngressError::TooLarge {
            limit: 10,
            actual: 18
        }
    );
    let big = IngressError::TooLarge {
        limit: 4_194_304,
        actual: 5_242_880,
    };
    assert_eq!(
        big.to_string(),
        "message is 5242880 bytes, over the 4194304-byte limit"
    );
    assert_eq!(big.to_error_object().code, codes::INVALID_REQUEST);
    assert!(parse_frame(br#"{"jsonrpc":"2.0","method":"m"}"#, &limits()).is_ok());
}

#[test]
fn invalid_utf8_is_a_parse_error_with_its_offset() {
    let e = parse_frame(b"{\"jsonrpc\":\"2.0\xc3\x28\"}", &limits()).unwrap_err();
    assert_eq!(e, IngressError::InvalidUtf8 { offset: 15 });
    assert_eq!(e.to_error_object().code, codes::PARSE_ERROR);
    assert_eq!(e.response_id(), None);
}

#[test]
fn syntax_errors_report_line_and_column() {
    let e = reject("{\n  \"jsonrpc\": \"2.0\",\n  \"id\": 1,\n  \"method\" \"m\"\n}");
    let IngressError::InvalidJson {
        line,
        column,
        reason,
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!((*line, *column), (4, 12));
    assert_eq!(reason, "expected `:`");
    assert_eq!(
        e.to_string(),
        "invalid JSON at line 4 column 12: expected `:`"
    );
    assert_eq!(e.to_error_object().code, codes::PARSE_ERROR);
}

#[test]
fn not_json_variants_are_parse_errors() {
    for bad in [
        "",
        "   ",
        "{",
        r#"{"jsonrpc":"2.0","method":"m"} {}"#,
        r#"{"jsonrpc":"2.0","method":"m",}"#,
        r#"{"jsonrpc":"2.0","method":"m","params":{"a":"\ud800"}}"#,
        "{\"jsonrpc\":\"2.0\",\"method\":\"m\x01\"}",
        "\u{feff}{\"jsonrpc\":\"2.0\",\"method\":\"m\"}",
        "{'jsonrpc':'2.0'}",
        "NaN",
    ] {
        let e = parse_frame(bad.as_bytes(), &limits()).unwrap_err();
        assert!(
            matches!(e, IngressError::InvalidJson { .. }),
            "{bad:?}: {e:?}"
        );
    }
}

#[test]
fn shape_violations_are_invalid_requests() {
    let cases = [
        (r#"{"id":1,"method":"m"}"#, "missing \"jsonrpc\""),
        (
            r#"{"jsonrpc":"1.0","id":1,"method":"m"}"#,
            "exactly \"2.0\"",
        ),
        (r#"{"jsonrpc":2.0,"id":1,"method":"m"}"#, "exactly \"2.0\""),
        (r#"{"jsonrpc":"2.0","id":1,"method":5}"#, "must be a string"),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":""}"#,
            "must not be empty",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"m","params":"x"}"#,
            "object or an array",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"m","params":null}"#,
            "object or an array",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"m","result":{}}"#,
            "must not carry",
        ),
        (
            r#"{"jsonrpc":"2.0","method":"m","error":{"code":1,"message":""}}"#,
            "must not carry",
        ),
        (
            r#"{"jsonrpc":"2.0","id":null,"method":"m"}"#,
            "must not be null",
        ),
        (r#"{"jsonrpc":"2.0","id":1}"#, "needs \"method\""),
        (
            r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":""}}"#,
            "only one",
        ),
        (r#"{"jsonrpc":"2.0","result":{}}"#, "carry the request id"),
        (
            r#"{"jsonrpc":"2.0","id":null,"result":{}}"#,
            "carry the request id",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"result":{},"params":{}}"#,
            "must not carry \"params\"",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":1.5,"message":"x"}}"#,
            "integer \"code\"",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"error":"boom"}"#,
            "integer \"code\"",
        ),
        (r#""just a string""#, "must be an object, not a string"),
        ("42", "not a number"),
        ("null", "not null"),
    ];
    for (input, needle) in cases {
        let (reason, _) = invalid_request_reason(input);
        assert!(
            reason.contains(needle),
            "{input}: {reason:?} should mention {needle:?}"
        );
        assert_eq!(reject(input).to_error_object().code, codes::INVALID_REQUEST);
    }
}

#[test]
fn invalid_request_keeps_the_id_when_it_could_be_read() {
    let e = reject(r#"{"jsonrpc":"1.0","id":"abc","method":"m"}"#);
    assert_eq!(e.response_id(), Some(Id::from("abc")));
    let resp = e.to_error_response();
    assert_eq!(resp.id, Some(Id::from("abc")));
    assert_eq!(resp.error_object().unwrap().code, codes::INVALID_REQUEST);
    assert_eq!(
        reject(r#"{"jsonrpc":"2.0","method":5}"#).response_id(),
        None
    );
}

#[test]
fn ids_that_are_not_strings_or_i64_are_invalid_ids() {
    for id in [
        "1.0",
        "1e3",
        "true",
        "{}",
        "[1]",
        "18446744073709551615",
        "-9223372036854775809",
    ] {
        let e = reject(&format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"m"}}"#));
        assert_eq!(e, IngressError::InvalidId, "{id}");
        assert_eq!(e.to_error_object().code, codes::INVALID_REQUEST);
        assert_eq!(e.response_id(), None);
    }
}

#[test]
fn batches_are_parsed_and_left_to_the_caller() {
    let frame = br#"[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"b"}]"#;
    let Frame::Batch(items) = parse_frame(frame, &limits()).unwrap() else {
        panic!()
    };
    assert_eq!(items.len(), 2);
    assert_eq!(items[1].method(), Some("b"));
    let e = parse_message(frame, &limits()).unwrap_err();
    assert_eq!(e, IngressError::BatchNotAllowed);
    assert_eq!(
        e.to_string(),
        "batches are not allowed in protocol 2025-06-18 and later"
    );
    assert!(matches!(
        parse_frame_for(frame, &limits(), ProtocolVersion::V2025_03_26),
        Ok(Frame::Batch(_))
    ));
    assert_eq!(
        parse_frame_for(frame, &limits(), ProtocolVersion::V2025_06_18).unwrap_err(),
        IngressError::BatchNotAllowed
    );
    let single = br#"{"jsonrpc":"2.0","method":"b"}"#;
    assert!(matches!(
        parse_frame(single, &limits()),
        Ok(Frame::Single(_))
    ));
}

#[test]
fn empty_batch_and_bad_batch_elements_reject_the_whole_frame() {
    assert_eq!(
        parse_frame(b" [ ] ", &limits()).unwrap_err(),
        IngressError::EmptyBatch
    );
    let e = parse_frame(
        br#"[{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","id":1}]"#,
        &limits(),
    )
    .unwrap_err();
    let IngressError::InvalidRequest { reason, id } = e else {
        panic!("{e:?}")
    };
    assert!(reason.starts_with("batch element 1: "), "{reason}");
    assert_eq!(id, None);
    for bad in [
        r#"[1]"#,
        r#"[[]]"#,
        r#"[{"jsonrpc":"2.0","method":"a"},"x"]"#,
    ] {
        let e = parse_frame(bad.as_bytes(), &limits()).unwrap_err();
        assert!(
            matches!(e, IngressError::InvalidRequest { ref reason, .. } if reason.contains("must be an object")),
            "{bad}: {e:?}"
        );
    }
    let e = parse_frame(br#"[{"jsonrpc":"2.0","id":1.5,"method":"a"}]"#, &limits()).unwrap_err();
    assert!(e.to_string().contains("batch element 0: \"id\""), "{e}");
}

#[test]
fn four_mib_result_parses_without_quadratic_work() {
    let limits = Limits {
        max_frame_bytes: 5 << 20,
        ..limits()
    };
    let mut s = String::from(r#"{"jsonrpc":"2.0","id":1,"result":{"content":["#);
    let item = r#"{"type":"text","text":"0123456789abcdef0123456789abcdef\n\u00e9","n":12.5e-3},"#;
    while s.len() < (4 << 20) - 200 {
        s.push_str(item);
    }
    s.push_str(r#"{"k":"key with \"escapes\""}],"structuredContent":{"#);
    for i in 0..10_000 {
        s.push_str(&format!(r#""f{i}":{i},"#));
    }
    s.push_str(r#""end":true}}}"#);
    let env = parse_message(s.as_bytes(), &limits).unwrap();
    assert_eq!(env.kind(), Kind::Response);
    assert_eq!(env.to_bytes(), s.as_bytes());
}
