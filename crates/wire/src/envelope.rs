//! The JSON-RPC envelope: the one parsed form of every MCP message.
//!
//! The gateway reads a message once into an [`Envelope`]: `jsonrpc`, `id` and `method` are
//! decoded, while `params`, `result` and `error` stay raw JSON ([`RawValue`]). Guards decode
//! only the parts they need ([`Envelope::params_as`], …); whatever no guard replaced is
//! written back byte-for-byte by [`Envelope::to_bytes`]. This keeps forwarding cheap and
//! avoids the subtle changes a decode/re-encode round trip makes (number formatting, key
//! order, escapes) to content the gateway has no business touching.
//!
//! What is *not* preserved: top-level members other than the six JSON-RPC ones are dropped
//! (JSON-RPC defines no others, and forwarding unknown members would let a peer smuggle data
//! past the gateway's view of the message), the envelope's own whitespace is normalized, and
//! CR/LF bytes inside raw parts (insignificant whitespace, the only place JSON allows them)
//! become spaces so that every serialized message is a single NDJSON line.

pub(crate) mod json;
pub(crate) mod shape;

use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::ErrorObject;

/// A JSON-RPC request id: a string or an integer.
///
/// MCP forbids `null` request ids and fractional numbers; integers are limited to the `i64`
/// range (which covers every id the SDKs generate) so that an id always has one canonical
/// form and compares exactly.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Id {
    /// An integer id.
    Num(i64),
    /// A string id.
    Str(Arc<str>),
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Num(n) => write!(f, "{n}"),
            Id::Str(s) => f.write_str(s),
        }
    }
}

impl From<i64> for Id {
    fn from(n: i64) -> Self {
        Id::Num(n)
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Self {
        Id::Str(Arc::from(s))
    }
}

impl From<String> for Id {
    fn from(s: String) -> Self {
        Id::Str(Arc::from(s))
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Id::Num(n) => s.serialize_i64(*n),
            Id::Str(v) => s.serialize_str(v),
        }
    }
}

impl<'de> Deserialize<'de> for Id {
    /// Accepts a JSON string or an integer within `i64`; rejects floats (even `1.0`, `1e3`),
    /// booleans, null, objects, arrays and integers out of range.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an integer within the signed 64-bit range")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Id, E> {
                Ok(Id::Num(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id, E> {
                i64::try_from(v)
                    .map(Id::Num)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
                Ok(Id::from(v))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Id, E> {
                Ok(Id::from(v))
            }
        }
        d.deserialize_any(IdVisitor)
    }
}

/// What a message is, by its shape.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `method` and `id`: expects a response.
    Request,
    /// `method`, no `id`: expects nothing.
    Notification,
    /// `id` and `result`.
    Response,
    /// `error`, with the request's `id` when it was known.
    ErrorResponse,
}

/// A JSON-RPC 2.0 message with its payload kept raw.
///
/// Envelopes produced by the parsers in this crate ([`crate::parse_message`],
/// [`crate::parse_frame`], `Deserialize`) always have a valid shape:
/// - request: `method` + `id` (+ `params`, an object or array);
/// - notification: `method`, no `id` (+ `params`);
/// - response: `id` + `result`;
/// - error response: `error` (+ `id` when known).
///
/// The fields are public so that guards can replace a part (for example a filtered
/// `result`); keep the shape valid when doing so.
#[derive(Clone, Debug)]
pub struct Envelope {
    /// The request id (requests, responses; error responses when known).
    pub id: Option<Id>,
    /// The method name (requests and notifications).
    pub method: Option<Box<str>>,
    /// Raw parameters: an object or an array.
    pub params: Option<Box<RawValue>>,
    /// Raw result of a successful response.
    pub result: Option<Box<RawValue>>,
    /// Raw error object of an error response.
    pub error: Option<Box<RawValue>>,
}

impl Envelope {
    /// The message kind. Total: for an envelope whose fields were set by hand, a `method`
    /// makes it a request (with `id`) or notification, else an `error` makes it an error
    /// response, else it is a response.
    pub fn kind(&self) -> Kind {
        match (&self.method, &self.id, &self.error) {
            (Some(_), Some(_), _) => Kind::Request,
            (Some(_), None, _) => Kind::Notification,
            (None, _, Some(_)) => Kind::ErrorResponse,
            (None, _, None) => Kind::Response,
        }
    }

    /// A request.
    pub fn request(id: Id, method: &str, params: Option<Box<RawValue>>) -> Self {
        Envelope {
            id: Some(id),
            method: Some(method.into()),
            params,
            result: None,
            error: None,
        }
    }

    /// A notification.
    pub fn notification(method: &str, params: Option<Box<RawValue>>) -> Self {
        Envelope {
            id: None,
            method: Some(method.into()),
            params,
            result: None,
            error: None,
        }
    }

    /// A successful response.
    pub fn response(id: Id, result: Box<RawValue>) -> Self {
        Envelope {
            id: Some(id),
            method: None,
            params: None,
            result: Some(result),
            error: None,
        }
    }

    /// An error response. With `id: None` (the request id could not be read) the `id` member
    /// is omitted, as the MCP schema (2025-11-25 and later) has it.
    pub fn error_response(id: Option<Id>, err: &ErrorObject) -> Self {
        Envelope {
            id,
            method: None,
            params: None,
            result: None,
            error: Some(err.to_raw()),
        }
    }

    /// The method name, for requests and notifications.
    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// Decodes `params` into `T`; `Ok(None)` when there are no params.
    pub fn params_as<T: DeserializeOwned>(&self) -> Result<Option<T>, serde_json::Error> {
        decode(self.params.as_deref())
    }

    /// Decodes `result` into `T`; `Ok(None)` when there is no result.
    pub fn result_as<T: DeserializeOwned>(&self) -> Result<Option<T>, serde_json::Error> {
        decode(self.result.as_deref())
    }

    /// The error object of an error response; `None` if absent or malformed.
    pub fn error_object(&self) -> Option<ErrorObject> {
        decode(self.error.as_deref()).ok().flatten()
    }

    /// The message as compact JSON: `{"jsonrpc":"2.0","id":…,"method":…,"params":…}` (or
    /// `result`/`error`), raw parts verbatim. Never contains a `\n` byte, so it is always one
    /// valid NDJSON line.
    pub fn to_bytes(&self) -> Vec<u8> {
        let raw_len = |r: &Option<Box<RawValue>>| r.as_ref().map_or(0, |r| r.get().len() + 10);
        let cap = 48
            + self.method.as_ref().map_or(0, |m| m.len() + 12)
            + raw_len(&self.params)
            + raw_len(&self.result)
            + raw_len(&self.error);
        let mut out = Vec::with_capacity(cap);
        self.write_to(&mut out);
        out
    }

    /// Appends [`to_bytes`](Self::to_bytes)'s output to `out` (to reuse buffers).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"jsonrpc\":\"2.0\"");
        if let Some(id) = &self.id {
            out.extend_from_slice(b",\"id\":");
            match id {
                Id::Num(n) => write_i64(out, *n),
                Id::Str(s) => json::write_str_literal(out, s),
            }
        }
        if let Some(m) = &self.method {
            out.extend_from_slice(b",\"method\":");
            json::write_str_literal(out, m);
        }
        for (name, part) in [
            (&b",\"params\":"[..], &self.params),
            (b",\"result\":", &self.result),
            (b",\"error\":", &self.error),
        ] {
            if let Some(raw) = part {
                out.extend_from_slice(name);
                json::extend_single_line(out, raw.get().as_bytes());
            }
        }
        out.push(b'}');
    }
}

fn decode<T: DeserializeOwned>(raw: Option<&RawValue>) -> Result<Option<T>, serde_json::Error> {
    raw.map(|r| serde_json::from_str(r.get())).transpose()
}

fn write_i64(out: &mut Vec<u8>, n: i64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut m = n.unsigned_abs();
    loop {
        i -= 1;
        // `m % 10` is below 10, so the cast cannot truncate.
        buf[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[i..]);
}

/// Serializes like [`Envelope::to_bytes`] (raw parts embedded verbatim).
impl Serialize for Envelope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("jsonrpc", "2.0")?;
        if let Some(id) = &self.id {
            map.serialize_entry("id", id)?;
        }
        if let Some(m) = &self.method {
            map.serialize_entry("method", m)?;
        }
        for (name, part) in [
            ("params", &self.params),
            ("result", &self.result),
            ("error", &self.error),
        ] {
            if let Some(raw) = part {
                map.serialize_entry(name, raw)?;
            }
        }
        map.end()
    }
}

/// Deserializes with the same shape rules as the ingress parser, but without its duplicate
/// key, depth and size checks: use [`crate::parse_message`] for anything from outside.
/// Raw parts need serde_json's own deserializer (`from_str`, `from_slice`, `from_reader`);
/// `serde_json::from_value` cannot produce them.
impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        shape::Parts::<Box<RawValue>>::deserialize(d)?
            .into_envelope()
            .map_err(|e| de::Error::custom(e.reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_written_like_serde_json_writes_them() {
        for n in [0, 1, -1, 9, 10, -10, 12345, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            write_i64(&mut out, n);
            assert_eq!(out, serde_json::to_vec(&n).unwrap());
        }
    }
}
