//! The envelope: shapes, ids, serialization, typed views.

use portcullis_wire::{Envelope, ErrorObject, Id, Kind, Limits, RawValue, codes, parse_message};
use serde_json::json;

fn parse(s: &str) -> Envelope {
    parse_message(s.as_bytes(), &Limits::default()).expect("test message must parse")
}

fn raw(s: &str) -> Box<RawValue> {
    RawValue::from_string(s.to_owned()).expect("test raw JSON must be valid")
}

#[test]
fn raw_parts_are_forwarded_byte_for_byte() {
    // Number spellings, key order, escapes and inner spacing that a decode/re-encode would
    // change all survive.
    let params = r#"{"z":1.0e3, "a":[1,2 ,3],"s":"caf\u00e9 \"q\"","n":-0.0,"big":123456789012345678901234567890}"#;
    let input = format!(r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{params}}}"#);
    let env = parse(&input);
    assert_eq!(env.params.as_ref().unwrap().get(), params);
    assert_eq!(env.to_bytes(), input.as_bytes());
}

#[test]
fn pretty_printed_input_serializes_to_a_single_ndjson_line() {
    let pretty = serde_json::to_string_pretty(&json!({
        "jsonrpc": "2.0",
        "id": "abc",
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "line1\nline2", "list": [1, 2]}}
    }))
    .unwrap()
    .replace('\n', "\r\n");
    assert!(pretty.contains('\n'));
    let env = parse(&pretty);
    let params = env.params.as_ref().unwrap().get();
    assert!(!params.contains('\n') && !params.contains('\r'), "{params}");
    let out = env.to_bytes();
    assert!(!out.contains(&b'\n') && !out.contains(&b'\r'));
    // Same value, and the escaped newline inside the string is untouched.
    let a: serde_json::Value = serde_json::from_str(&pretty).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(a, b);
    assert_eq!(b["params"]["arguments"]["text"], "line1\nline2");
}

#[test]
fn hand_built_raw_parts_with_newlines_still_serialize_to_one_line() {
    let env = Envelope::response(Id::Num(1), raw("{\n  \"a\": 1\n}"));
    let out = env.to_bytes();
    assert!(!out.contains(&b'\n'));
    assert_eq!(out, br#"{"jsonrpc":"2.0","id":1,"result":{   "a": 1 }}"#);
}

#[test]
fn unknown_top_level_members_are_dropped() {
    let env =
        parse(r#"{"jsonrpc":"2.0","x-smuggled":{"a":1},"id":1,"method":"ping","extra":true}"#);
    assert_eq!(
        env.to_bytes(),
        br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#
    );
}

#[test]
fn escaped_member_names_are_the_members_they_spell() {
    let env = parse(r#"{"\u006asonrpc":"2\u002e0","\u0069d":1,"\u006dethod":"tools/\u006cist"}"#);
    assert_eq!(env.kind(), Kind::Request);
    assert_eq!(env.method(), Some("tools/list"));
    assert_eq!(env.id, Some(Id::Num(1)));
}

#[test]
fn kind_follows_the_shape() {
    let cases = [
        (r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, Kind::Request),
        (
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            Kind::Notification,
        ),
        (r#"{"jsonrpc":"2.0","id":"a","result":{}}"#, Kind::Response),
        (
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"m"}}"#,
            Kind::ErrorResponse,
        ),
        (
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-1,"message":"m"}}"#,
            Kind::ErrorResponse,
        ),
        (
            r#"{"jsonrpc":"2.0","error":{"code":-1,"message":"m"}}"#,
            Kind::ErrorResponse,
        ),
    ];
    for (input, kind) in cases {
        assert_eq!(parse(input).kind(), kind, "{input}");
    }
    assert_eq!(
        parse(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-1,"message":"m"}}"#).id,
        None
    );
}

#[test]
fn ids_are_strings_or_i64_integers() {
    let ok = [
        ("1", Id::Num(1)),
        ("-1", Id::Num(-1)),
        ("9223372036854775807", Id::Num(i64::MAX)),
        ("-9223372036854775808", Id::Num(i64::MIN)),
        (r#""abc""#, Id::from("abc")),
        (r#""""#, Id::from("")),
        (r#""\u00e9""#, Id::from("é")),
    ];
    for (text, id) in ok {
        assert_eq!(serde_json::from_str::<Id>(text).unwrap(), id, "{text}");
    }
    for bad in [
        "1.0",
        "1e3",
        "0.5",
        "true",
        "null",
        "{}",
        "[]",
        "9223372036854775808",
        "-9223372036854775809",
        "1e400",
    ] {
        assert!(
            serde_json::from_str::<Id>(bad).is_err(),
            "{bad} must be refused"
        );
    }
}

#[test]
fn ids_display_plainly_and_serialize_as_json() {
    assert_eq!(Id::Num(-5).to_string(), "-5");
    assert_eq!(Id::from("a b").to_string(), "a b");
    assert_eq!(serde_json::to_string(&Id::Num(3)).unwrap(), "3");
    assert_eq!(
        serde_json::to_string(&Id::from("x\"y")).unwrap(),
        r#""x\"y""#
    );
}

#[test]
fn constructors_serialize_compactly_in_a_fixed_order() {
    let p = Some(raw(r#"{"name":"echo"}"#));
    assert_eq!(
        Envelope::request(Id::from("r1"), "tools/call", p.clone()).to_bytes(),
        br#"{"jsonrpc":"2.0","id":"r1","method":"tools/call","params":{"name":"echo"}}"#
    );
    assert_eq!(
        Envelope::notification("notifications/progress", p).to_bytes(),
        br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"name":"echo"}}"#
    );
    assert_eq!(
        Envelope::response(Id::Num(-9), raw("[]")).to_bytes(),
        br#"{"jsonrpc":"2.0","id":-9,"result":[]}"#
    );
    let err = ErrorObject::new(codes::METHOD_NOT_FOUND, "no \"such\"\nmethod");
    assert_eq!(
        Envelope::error_response(Some(Id::Num(2)), &err).to_bytes(),
        br#"{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"no \"such\"\nmethod"}}"#
    );
}

#[test]
fn error_response_without_id_omits_the_id_member() {
    let err = ErrorObject::new(codes::PARSE_ERROR, "bad");
    let env = Envelope::error_response(None, &err);
    assert_eq!(env.kind(), Kind::ErrorResponse);
    assert_eq!(
        env.to_bytes(),
        br#"{"jsonrpc":"2.0","error":{"code":-32700,"message":"bad"}}"#
    );
    // And it parses back.
    assert_eq!(
        parse(std::str::from_utf8(&env.to_bytes()).unwrap()).kind(),
        Kind::ErrorResponse
    );
}

#[test]
fn error_data_is_carried_raw() {
    let err = ErrorObject::new(codes::UNSUPPORTED_PROTOCOL_VERSION, "unsupported")
        .with_data(json!({"supported": ["2026-07-28"], "requested": "1999-01-01"}));
    let env = Envelope::error_response(Some(Id::Num(1)), &err);
    let back = env.error_object().unwrap();
    assert_eq!(back.code, -32022);
    assert_eq!(back.message, "unsupported");
    let data: serde_json::Value = serde_json::from_str(back.data.unwrap().get()).unwrap();
    assert_eq!(
        data,
        json!({"supported": ["2026-07-28"], "requested": "1999-01-01"})
    );
}

#[test]
fn typed_views_decode_only_on_demand() {
    #[derive(serde::Deserialize)]
    struct Call {
        name: String,
    }
    let env = parse(
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#,
    );
    assert_eq!(env.params_as::<Call>().unwrap().unwrap().name, "echo");
    assert!(env.result_as::<serde_json::Value>().unwrap().is_none());
    assert!(env.params_as::<Vec<u8>>().is_err());
    assert!(env.error_object().is_none());

    let malformed = Envelope {
        error: Some(raw(r#"{"code":"x"}"#)),
        ..Envelope::notification("x", None)
    };
    assert!(malformed.error_object().is_none());
}

#[test]
fn write_to_appends_and_matches_to_bytes() {
    let env = Envelope::request(Id::Num(1), "ping", None);
    let mut buf = b"prefix".to_vec();
    env.write_to(&mut buf);
    assert_eq!(&buf[..6], b"prefix");
    assert_eq!(&buf[6..], &env.to_bytes()[..]);
}

#[test]
fn serde_impls_agree_with_the_wire_form() {
    let text = r#"{"jsonrpc":"2.0","id":"q","method":"tools/call","params":{"b":1,"a":2}}"#;
    let env: Envelope = serde_json::from_str(text).unwrap();
    assert_eq!(serde_json::to_vec(&env).unwrap(), env.to_bytes());
    assert_eq!(env.to_bytes(), text.as_bytes());
    // Deserialize enforces the shape too.
    let err = serde_json::from_str::<Envelope>(r#"{"jsonrpc":"2.0","id":1}"#).unwrap_err();
    assert!(err.to_string().contains("\"method\""), "{err}");
    assert!(serde_json::from_str::<Envelope>(r#"{"jsonrpc":"1.0","id":1,"method":"m"}"#).is_err());
}
