//! The JSON-RPC shape rules, shared by the ingress parser and `Envelope`'s `Deserialize`.
//!
//! A message is read as six optional raw members (`jsonrpc`, `id`, `method`, `params`,
//! `result`, `error`; keys compared after JSON unescaping, so `"\u006dethod"` is `method`);
//! every other member is skipped. The rules are then checked in plain code, so that the
//! ingress can report a typed error that still carries the request id when it was readable.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{Envelope, Id};
use crate::error::ErrorObject;

/// A raw member: borrowed from the input (ingress) or owned (generic serde).
pub(crate) trait RawPart {
    fn raw(&self) -> &RawValue;
    /// The member as an owned raw value with any CR/LF replaced by a space.
    fn into_single_line(self) -> Box<RawValue>;
}

impl RawPart for &RawValue {
    fn raw(&self) -> &RawValue {
        self
    }
    fn into_single_line(self) -> Box<RawValue> {
        single_line(self).unwrap_or_else(|| self.to_owned())
    }
}

impl RawPart for Box<RawValue> {
    fn raw(&self) -> &RawValue {
        self
    }
    fn into_single_line(self) -> Box<RawValue> {
        single_line(&self).unwrap_or(self)
    }
}

/// `Some(copy without CR/LF)` if `raw` contains a raw CR or LF, `None` (no work) otherwise.
///
/// In valid JSON a raw CR/LF can only be insignificant whitespace, so a space is equivalent.
fn single_line(raw: &RawValue) -> Option<Box<RawValue>> {
    let text = raw.get();
    memchr::memchr2(b'\n', b'\r', text.as_bytes())?;
    let replaced = text.replace(['\n', '\r'], " ");
    RawValue::from_string(replaced).ok()
}

/// Why a well-formed JSON value is not a valid JSON-RPC message.
#[derive(Debug)]
pub(crate) struct ShapeError {
    pub reason: Cow<'static, str>,
    /// The message's id, when it could be read.
    pub id: Option<Id>,
    /// The `id` member itself is invalid (neither a string nor an i64 integer).
    pub invalid_id: bool,
}

impl ShapeError {
    fn new(reason: impl Into<Cow<'static, str>>, id: Option<Id>) -> Self {
        ShapeError {
            reason: reason.into(),
            id,
            invalid_id: false,
        }
    }
}

/// The six members the envelope cares about, still raw.
pub(crate) struct Parts<P> {
    pub jsonrpc: Option<P>,
    pub id: Option<P>,
    pub method: Option<P>,
    pub params: Option<P>,
    pub result: Option<P>,
    pub error: Option<P>,
}

enum IdState {
    Absent,
    Null,
    Valid(Id),
}

/// The string a raw JSON value holds; `None` if it is not a string. Skips serde for the
/// common case of a string without escapes.
fn decode_string(text: &str) -> Option<String> {
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) if !inner.contains('\\') => Some(inner.to_owned()),
        _ => serde_json::from_str(text).ok(),
    }
}

/// The id a raw JSON value holds (see `Id`'s `Deserialize`), with fast paths for plain
/// integers and strings without escapes.
fn decode_id(text: &str) -> Result<Id, serde_json::Error> {
    if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"'))
        && !inner.contains('\\')
    {
        return Ok(Id::from(inner));
    }
    if text.bytes().all(|b| b.is_ascii_digit() || b == b'-')
        && let Ok(n) = text.parse::<i64>()
    {
        return Ok(Id::Num(n));
    }
    serde_json::from_str(text)
}

fn first_byte(raw: &RawValue) -> u8 {
    raw.get().as_bytes().first().copied().unwrap_or(b' ')
}

impl<P: RawPart> Parts<P> {
    /// Applies the shape rules and builds the envelope.
    pub(crate) fn into_envelope(self) -> Result<Envelope, ShapeError> {
        let id = match &self.id {
            None => IdState::Absent,
            Some(raw) if raw.raw().get() == "null" => IdState::Null,
            Some(raw) => match decode_id(raw.raw().get()) {
                Ok(id) => IdState::Valid(id),
                Err(_) => {
                    return Err(ShapeError {
                        reason: Cow::Borrowed("id must be a string or an integer"),
                        id: None,
                        invalid_id: true,
                    });
                }
            },
        };
        let known_id = match &id {
            IdState::Valid(id) => Some(id.clone()),
            _ => None,
        };
        let fail = |reason: &'static str| Err(ShapeError::new(reason, known_id.clone()));

        match &self.jsonrpc {
            None => return fail("missing \"jsonrpc\": \"2.0\""),
            Some(v) => {
                let text = v.raw().get();
                let ok = text == "\"2.0\""
                    || (text.starts_with('"')
                        && serde_json::from_str::<Cow<'_, str>>(text).is_ok_and(|s| s == "2.0"));
                if !ok {
                    return fail("\"jsonrpc\" must be exactly \"2.0\"");
                }
            }
        }

        if let Some(method) = self.method {
            let Some(name) = decode_string(method.raw().get()) else {
                return fail("\"method\" must be a string");
            };
            if name.is_empty() {
                return fail("\"method\" must not be empty");
            }
            if self.result.is_some() || self.error.is_some() {
                return fail("a request or notification must not carry \"result\" or \"error\"");
            }
            if let Some(p) = &self.params
                && !matches!(first_byte(p.raw()), b'{' | b'[')
            {
                return fail("\"params\" must be an object or an array");
            }
            let id = match id {
                IdState::Valid(id) => Some(id),
                IdState::Absent => None,
                IdState::Null => return fail("a request id must not be null"),
            };
            return Ok(Envelope {
                id,
                method: Some(name.into_boxed_str()),
                params: self.params.map(RawPart::into_single_line),
                result: None,
                error: None,
            });
        }

        if self.params.is_some() {
            return fail("a response must not carry \"params\"");
        }
        match (self.result, self.error) {
            (Some(_), Some(_)) => {
                fail("a response must carry only one of \"result\" and \"error\"")
            }
            (None, None) => {
                fail("a message needs \"method\" (request) or \"result\"/\"error\" (response)")
            }
            (Some(result), None) => match id {
                IdState::Valid(id) => Ok(Envelope {
                    id: Some(id),
                    method: None,
                    params: None,
                    result: Some(result.into_single_line()),
                    error: None,
                }),
                _ => fail("a result response must carry the request id"),
            },
            (None, Some(error)) => {
                if serde_json::from_str::<ErrorObject>(error.raw().get()).is_err() {
                    return fail(
                        "\"error\" must be an object with an integer \"code\" and a string \"message\"",
                    );
                }
                Ok(Envelope {
                    id: known_id,
                    method: None,
                    params: None,
                    result: None,
                    error: Some(error.into_single_line()),
                })
            }
        }
    }
}

/// A top-level member name, compared after unescaping.
enum Field {
    Jsonrpc,
    Id,
    Method,
    Params,
    Result,
    Error,
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                Ok(match v {
                    "jsonrpc" => Field::Jsonrpc,
                    "id" => Field::Id,
                    "method" => Field::Method,
                    "params" => Field::Params,
                    "result" => Field::Result,
                    "error" => Field::Error,
                    _ => Field::Other,
                })
            }
        }
        d.deserialize_identifier(FieldVisitor)
    }
}

impl<'de, P: Deserialize<'de>> Deserialize<'de> for Parts<P> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PartsVisitor<P>(PhantomData<P>);
        impl<'de, P: Deserialize<'de>> Visitor<'de> for PartsVisitor<P> {
            type Value = Parts<P>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC message object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parts<P>, A::Error> {
                let mut parts = Parts {
                    jsonrpc: None,
                    id: None,
                    method: None,
                    params: None,
                    result: None,
                    error: None,
                };
                while let Some(field) = map.next_key::<Field>()? {
                    let (slot, name) = match field {
                        Field::Jsonrpc => (&mut parts.jsonrpc, "jsonrpc"),
                        Field::Id => (&mut parts.id, "id"),
                        Field::Method => (&mut parts.method, "method"),
                        Field::Params => (&mut parts.params, "params"),
                        Field::Result => (&mut parts.result, "result"),
                        Field::Error => (&mut parts.error, "error"),
                        Field::Other => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    if slot.is_some() {
                        return Err(de::Error::duplicate_field(name));
                    }
                    *slot = Some(map.next_value()?);
                }
                Ok(parts)
            }
        }
        d.deserialize_map(PartsVisitor(PhantomData))
    }
}
