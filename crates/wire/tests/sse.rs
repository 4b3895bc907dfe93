//! SSE: encoding, WHATWG decoding, chunking independence, bounds.

use portcullis_wire::{SseDecoder, SseError, SseEvent};

fn decode_all(stream: &[u8], max: usize) -> Result<Vec<SseEvent>, SseError> {
    SseDecoder::new(max).push(stream)
}

fn ev(id: Option<&str>, event: Option<&str>, data: &str) -> SseEvent {
    SseEvent {
        id: id.map(str::to_owned),
        event: event.map(str::to_owned),
        data: data.to_owned(),
        retry: None,
    }
}

const SAMPLE: &[u8] = b"\xEF\xBB\xBF: comment\r\nretry: 3000\nid: 1\ndata:\n\nevent: message\r\nid: 2\rdata: {\"jsonrpc\":\"2.0\",\r\ndata:  \"id\":1}\n\ndata\nfield-without-colon\nid: with\0nul\n\ndata: caf\xC3\xA9 \xE2\x98\x83\r\n\r\nevent: only-type\n\nid\n\n";

fn sample_events() -> Vec<SseEvent> {
    let mut first = ev(Some("1"), None, "");
    first.retry = Some(3000);
    vec![
        first,
        ev(
            Some("2"),
            Some("message"),
            "{\"jsonrpc\":\"2.0\",\n \"id\":1}",
        ),
        ev(None, None, ""),
        ev(None, None, "café ☃"),
        ev(Some(""), None, ""),
    ]
}

#[test]
fn sample_stream_decodes_per_whatwg() {
    let mut d = SseDecoder::new(1024);
    assert_eq!(d.push(SAMPLE).unwrap(), sample_events());
    assert_eq!(d.retry(), Some(3000));
    // The final empty `id` resets the last event id.
    assert_eq!(d.last_event_id(), None);
}

#[test]
fn decoding_is_independent_of_chunk_boundaries() {
    let expected = sample_events();
    for i in 0..=SAMPLE.len() {
        let mut d = SseDecoder::new(1024);
        let mut got = d.push(&SAMPLE[..i]).unwrap();
        got.extend(d.push(&SAMPLE[i..]).unwrap());
        assert_eq!(got, expected, "split at {i}");
    }
    for i in 0..=SAMPLE.len() {
        for j in i..=SAMPLE.len() {
            let mut d = SseDecoder::new(1024);
            let mut got = d.push(&SAMPLE[..i]).unwrap();
            got.extend(d.push(&SAMPLE[i..j]).unwrap());
            got.extend(d.push(&SAMPLE[j..]).unwrap());
            assert_eq!(got, expected, "split at {i}, {j}");
        }
    }
    let mut d = SseDecoder::new(1024);
    let mut got = Vec::new();
    for b in SAMPLE {
        got.extend(d.push(std::slice::from_ref(b)).unwrap());
    }
    assert_eq!(got, expected, "byte by byte");
}

#[test]
fn cr_at_chunk_end_followed_by_lf_is_one_line_ending() {
    let mut d = SseDecoder::new(100);
    assert_eq!(d.push(b"data: a\r").unwrap(), vec![]);
    assert_eq!(d.push(b"\n\r").unwrap(), vec![ev(None, None, "a")]);
    assert_eq!(d.push(b"\ndata: b\r\r").unwrap(), vec![ev(None, None, "b")]);
}

#[test]
fn last_event_id_tracks_ids_and_ignores_ids_with_nul() {
    let mut d = SseDecoder::new(100);
    d.push(b"id: 7\ndata: x\n\n").unwrap();
    assert_eq!(d.last_event_id(), Some("7"));
    let events = d.push(b"id: 8\0\ndata: y\n\n").unwrap();
    assert_eq!(events, vec![ev(None, None, "y")]);
    assert_eq!(d.last_event_id(), Some("7"));
    d.push(b"data: z\n\n").unwrap();
    assert_eq!(
        d.last_event_id(),
        Some("7"),
        "the id persists across events"
    );
}

#[test]
fn retry_needs_all_ascii_digits() {
    let mut d = SseDecoder::new(100);
    let events = d
        .push(b"retry: 12a\nretry: -5\nretry:\ndata: x\n\nretry: 0042\ndata: y\n\n")
        .unwrap();
    assert_eq!(events[0].retry, None);
    assert_eq!(events[1].retry, Some(42));
    assert_eq!(d.retry(), Some(42));
}

#[test]
fn only_one_leading_space_is_stripped_and_colons_in_values_survive() {
    let events = decode_all(b"data:  two spaces\ndata:none: here\nevent:x:y\n\n", 100).unwrap();
    assert_eq!(
        events,
        vec![ev(None, Some("x:y"), " two spaces\nnone: here")]
    );
}

#[test]
fn bom_is_dropped_only_at_the_start() {
    let events = decode_all(
        b"\xEF\xBB\xBFdata: a\n\n\xEF\xBB\xBFdata: b\n\ndata: c\n\n",
        100,
    )
    .unwrap();
    // The second BOM makes an unknown field name, so that line is ignored.
    assert_eq!(events, vec![ev(None, None, "a"), ev(None, None, "c")]);
    let mut d = SseDecoder::new(100);
    assert!(d.push(b"\xEF").unwrap().is_empty());
    assert!(d.push(b"\xBB").unwrap().is_empty());
    assert_eq!(
        d.push(b"\xBFdata: a\n\n").unwrap(),
        vec![ev(None, None, "a")]
    );
    // A start that only looks like a BOM is kept.
    assert_eq!(
        decode_all(b"\xEFdata: a\n\ndata: b\n\n", 100).unwrap(),
        vec![ev(None, None, "b")]
    );
}

#[test]
fn oversized_event_is_refused_and_the_decoder_stays_bounded() {
    let mut d = SseDecoder::new(64);
    let e = d.push(&[b'x'; 1000]).unwrap_err();
    assert_eq!(e, SseError::TooLarge { limit: 64 });
    assert_eq!(
        d.push(b"data: fine\n\n").unwrap_err(),
        SseError::TooLarge { limit: 64 }
    );

    // Many small data lines that add up past the bound.
    let mut d = SseDecoder::new(64);
    let mut failed = false;
    for _ in 0..100 {
        if d.push(b"data: 0123456789\n").is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed);

    // An event right at the bound is fine.
    let mut d = SseDecoder::new(64);
    let data = "d".repeat(50);
    assert_eq!(
        d.push(format!("data: {data}\n\n").as_bytes()).unwrap(),
        vec![ev(None, None, &data)]
    );
}

#[test]
fn encode_writes_fields_and_one_data_line_per_line() {
    let mut e = SseEvent::message("a\nb\r\nc\rd");
    e.id = Some("42".into());
    e.event = Some("message".into());
    e.retry = Some(500);
    assert_eq!(
        &e.encode()[..],
        b"event: message\nid: 42\nretry: 500\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
    );
    let priming = SseEvent {
        id: Some("s1-0".into()),
        ..SseEvent::default()
    };
    assert_eq!(&priming.encode()[..], b"id: s1-0\ndata:\n\n");
    assert_eq!(&SseEvent::message(" x").encode()[..], b"data:  x\n\n");
}

#[test]
fn encoded_events_decode_to_themselves() {
    let mut e = SseEvent::message("{\"a\":1}\n\n  two blank lines above\n");
    e.id = Some("id-1".into());
    e.event = Some("custom".into());
    e.retry = Some(10);
    let priming = SseEvent {
        id: Some("p".into()),
        ..SseEvent::default()
    };
    let mut stream = e.encode().to_vec();
    stream.extend_from_slice(&priming.encode());
    assert_eq!(decode_all(&stream, 1024).unwrap(), vec![e, priming]);
}

#[test]
fn ids_and_event_names_with_line_breaks_cannot_inject_fields() {
    let mut e = SseEvent::message("ok");
    e.id = Some("1\ndata: injected\n\n".into());
    e.event = Some("x\revent: y".into());
    assert_eq!(e.try_encode(), Err(SseError::InvalidField { field: "id" }));
    let wire = e.encode();
    let events = decode_all(&wire, 1024).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].data, "ok");
    assert_eq!(events[0].id.as_deref(), Some("1 data: injected  "));
    let mut nul = SseEvent::message("x");
    nul.id = Some("a\0b".into());
    assert!(nul.validate().is_err());
    assert_eq!(
        decode_all(&nul.encode(), 100).unwrap()[0].id.as_deref(),
        Some("a b")
    );
}
