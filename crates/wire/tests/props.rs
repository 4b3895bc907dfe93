//! Property tests: round trips, robustness against arbitrary input, chunking independence.

use portcullis_wire::canonical::{self, Bounds, Overflow};
use portcullis_wire::{
    Envelope, ErrorObject, Frame, Id, Limits, RawValue, SseDecoder, parse_frame, parse_message,
};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::Value;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn raw(v: &Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(v).expect("a Value always serializes")
}

fn params() -> impl Strategy<Value = Option<Box<RawValue>>> {
    prop::option::of(prop_oneof![
        btree_map(any::<String>(), json_value(), 0..5)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        vec(json_value(), 0..5).prop_map(Value::Array),
    ])
    .prop_map(|p| p.as_ref().map(raw))
}

fn id() -> impl Strategy<Value = Id> {
    prop_oneof![
        any::<i64>().prop_map(Id::Num),
        any::<String>().prop_map(Id::from)
    ]
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("tools/call".to_owned()),
        Just("notifications/progress".to_owned()),
        any::<String>().prop_filter("non-empty", |s| !s.is_empty()),
    ]
}

fn envelope() -> impl Strategy<Value = Envelope> {
    prop_oneof![
        (id(), method(), params()).prop_map(|(id, m, p)| Envelope::request(id, &m, p)),
        (method(), params()).prop_map(|(m, p)| Envelope::notification(&m, p)),
        (id(), json_value()).prop_map(|(id, r)| Envelope::response(id, raw(&r))),
        (
            prop::option::of(id()),
            any::<i64>(),
            any::<String>(),
            prop::option::of(json_value())
        )
            .prop_map(|(id, code, msg, data)| {
                let mut e = ErrorObject::new(code, msg);
                if let Some(d) = data {
                    e = e.with_data(d);
                }
                Envelope::error_response(id, &e)
            }),
    ]
}

fn raw_text(r: &Option<Box<RawValue>>) -> Option<&str> {
    r.as_deref().map(RawValue::get)
}

/// Strings biased toward what canonical JSON must get right: escapes, control characters,
/// non-ASCII (two-, three- and four-byte UTF-8), and keys that sort differently by UTF-16.
fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\u{0}-\\u{1f}\"\\\\/\\u{7f}a-zA-Z0-9é\\u{2028}\\u{ff61}\\u{feff}𝄞😀]{0,8}",
    ]
}

/// Values for canonical JSON: every number kind (u64 beyond i64, floats incl. -0.0, extremes).
fn canonical_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just(-0.0),
            Just(0.1),
            Just(1e30),
            Just(5e-324),
            Just(f64::MAX)
        ]
        .prop_map(Value::from),
        tricky_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((tricky_string(), inner), 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// `value` with every object's members in key order, for `serde_json` to write.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        Value::Object(map) => {
            let mut members: Vec<_> = map.iter().collect();
            members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            Value::Object(
                members
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sorted(v)))
                    .collect(),
            )
        }
        other => other.clone(),
    }
}

/// `value` with every object's members in reverse order (same value, other insertion order).
fn reversed(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(reversed).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .rev()
                .map(|(k, v)| (k.clone(), reversed(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Bytes biased toward JSON structure, to reach deep into the parser.
fn jsonish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(&b"{"[..]),
        Just(&b"}"[..]),
        Just(&b"["[..]),
        Just(&b"]"[..]),
        Just(&b"\""[..]),
        Just(&b":"[..]),
        Just(&b","[..]),
        Just(&b"\\u0061"[..]),
        Just(&b"\\"[..]),
        Just(&b"\"jsonrpc\":\"2.0\""[..]),
        Just(&b"\"id\":"[..]),
        Just(&b"\"method\":\"m\""[..]),
        Just(&b"\"params\":"[..]),
        Just(&b"\"result\":"[..]),
        Just(&b"\"error\":{\"code\":1,\"message\":\"x\"}"[..]),
        Just(&b"1"[..]),
        Just(&b"-1.5e3"[..]),
        Just(&b"null"[..]),
        Just(&b"\n"[..]),
        Just(&b"\xff"[..]),
        Just(&b"\xc3"[..]),
    ];
    vec(token, 0..64).prop_map(|ts| ts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_envelope_round_trips_through_bytes(env in envelope()) {
        let bytes = env.to_bytes();
        prop_assert!(!bytes.contains(&b'\n'));
        let back = parse_message(&bytes, &Limits::default()).unwrap();
        prop_assert_eq!(&back.id, &env.id);
        prop_assert_eq!(back.method(), env.method());
        prop_assert_eq!(raw_text(&back.params), raw_text(&env.params));
        prop_assert_eq!(raw_text(&back.result), raw_text(&env.result));
        prop_assert_eq!(raw_text(&back.error), raw_text(&env.error));
        prop_assert_eq!(back.kind(), env.kind());
        prop_assert_eq!(back.to_bytes(), bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        let _ = parse_frame(&bytes, &Limits::default());
    }

    #[test]
    fn jsonish_bytes_never_panic_and_accepted_frames_reserialize_stably(bytes in jsonish_bytes()) {
        let limits = Limits { max_depth: 8, ..Limits::default() };
        match parse_frame(&bytes, &limits) {
            Ok(Frame::Single(env)) => {
                let out = env.to_bytes();
                let again = parse_message(&out, &Limits::default()).unwrap();
                prop_assert_eq!(again.to_bytes(), out);
            }
            Ok(Frame::Batch(items)) => prop_assert!(!items.is_empty()),
            Err(e) => {
                let obj = e.to_error_object();
                prop_assert!(obj.code == -32700 || obj.code == -32600);
                prop_assert!(obj.message.len() < 200);
            }
        }
    }

    #[test]
    fn mutated_messages_never_panic(
        edits in vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8)
    ) {
        let mut bytes = br#"{"jsonrpc":"2.0","id":"a\u0062","method":"tools/call","params":{"name":"x","arguments":{"k":[1,{"z":null}]}}}"#.to_vec();
        for (at, byte, op) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 if i < bytes.len() => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ if i < bytes.len() => { bytes.remove(i); }
                _ => {}
            }
        }
        let _ = parse_frame(&bytes, &Limits::default());
    }

    #[test]
    fn sse_decoding_is_independent_of_chunking(
        pieces in vec(prop_oneof![
            Just(&b"data: "[..]), Just(&b"data"[..]), Just(&b"id: "[..]), Just(&b"id"[..]),
            Just(&b"event: "[..]), Just(&b"retry: "[..]), Just(&b":"[..]), Just(&b" "[..]),
            Just(&b"\r"[..]), Just(&b"\n"[..]), Just(&b"\r\n"[..]), Just(&b"12"[..]),
            Just(&b"x"[..]), Just(&b"\xEF\xBB\xBF"[..]), Just(&b"\0"[..]), Just(&b"\xE2\x98\x83"[..]),
        ], 0..80),
        cuts in vec(any::<prop::sample::Index>(), 0..6),
        limit in prop_oneof![Just(16usize), Just(1 << 20)],
    ) {
        let stream = pieces.concat();
        let whole = SseDecoder::new(limit).push(&stream);

        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        points.sort_unstable();
        let mut d = SseDecoder::new(limit);
        let mut events = Vec::new();
        let mut failed = false;
        let mut prev = 0;
        for p in points.into_iter().chain([stream.len()]) {
            match d.push(&stream[prev..p]) {
                Ok(evs) => events.extend(evs),
                Err(_) => { failed = true; break; }
            }
            prev = p;
        }
        match whole {
            Ok(expected) => {
                prop_assert!(!failed);
                prop_assert_eq!(events, expected);
            }
            Err(_) => prop_assert!(failed),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Canonical JSON is what `serde_json` writes once the keys are sorted (so strings and
    /// numbers are spelled its way), whatever the insertion order.
    #[test]
    fn canonical_is_serde_json_with_sorted_keys(value in canonical_value()) {
        let text = canonical::to_string(&value);
        prop_assert_eq!(&text, &serde_json::to_string(&sorted(&value)).unwrap());
        prop_assert_eq!(&canonical::to_string(&reversed(&value)), &text);
    }

    /// The text reads back to the same value, and writing that again gives the same text.
    #[test]
    fn canonical_reparses_to_the_same_value(value in canonical_value()) {
        let text = canonical::to_string(&value);
        let back: Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(&back, &value);
        prop_assert_eq!(canonical::to_string(&back), text);
    }

    /// A bounded write gives the whole text when it fits, and stops when it does not.
    #[test]
    fn canonical_bounds(value in canonical_value(), max_bytes in 0usize..200, max_depth in 1usize..6) {
        let text = canonical::to_string(&value);
        let mut out = Vec::new();
        let bounds = Bounds { max_bytes, max_depth: usize::MAX };
        match canonical::write(&value, &mut out, bounds) {
            Ok(()) => prop_assert_eq!(&out, text.as_bytes()),
            Err(overflow) => {
                prop_assert_eq!(overflow, Overflow::Bytes);
                prop_assert!(text.len() > max_bytes);
                prop_assert!(out.len() <= max_bytes && text.as_bytes().starts_with(&out));
            }
        }
        let bounds = Bounds { max_bytes: usize::MAX, max_depth };
        let fits = depth(&value) <= max_depth;
        match canonical::write(&value, &mut std::io::sink(), bounds) {
            Ok(()) => prop_assert!(fits),
            Err(overflow) => prop_assert!(overflow == Overflow::Depth && !fits),
        }
    }
}

/// Container depth, the top-level container being 1 and a scalar 0.
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}
