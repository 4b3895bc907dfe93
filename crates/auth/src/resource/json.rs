//! Strict parsing of the JSON objects that carry security decisions (JWT headers and claims,
//! JWKS, metadata, introspection answers).
//!
//! Duplicate member names are refused: RFC 7515 §5.2 and RFC 7519 §4 allow a parser to take
//! the last one, and two parsers that pick differently (`{"alg":"RS256","alg":"none"}`) are
//! how signature checks get bypassed. Only the top-level object is checked: that is where
//! every member this crate reads lives.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_json::{Map, Value};

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    #[error("not valid base64url")]
    Base64,
    #[error("not a JSON object without duplicate member names")]
    Json,
}

/// Parses a JSON object, refusing duplicate top-level member names and trailing data.
pub fn strict_object(bytes: &[u8]) -> Result<Map<String, Value>, JsonError> {
    let StrictObject(map) = serde_json::from_slice(bytes).map_err(|_| JsonError::Json)?;
    Ok(map)
}

/// Decodes unpadded base64url (RFC 7515 §2), the only encoding JWS compact parts use.
pub fn base64url(part: &str) -> Result<Vec<u8>, JsonError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| JsonError::Base64)
}

struct StrictObject(Map<String, Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = StrictObject;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StrictObject, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom("duplicate member name"));
            }
            let value: Value = access.next_value()?;
            map.insert(key, value);
        }
        Ok(StrictObject(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duplicated_alg_member_is_refused() {
        assert_eq!(
            strict_object(br#"{"alg":"RS256","alg":"none"}"#),
            Err(JsonError::Json)
        );
    }

    #[test]
    fn objects_parse_and_everything_else_is_refused() {
        let m = strict_object(br#"{"a":1,"b":{"c":[1,2]}}"#).unwrap();
        assert_eq!(m["a"], 1);
        for bad in [&b"[1]"[..], b"\"s\"", b"{\"a\":1} x", b"{", b"", b"null"] {
            assert_eq!(strict_object(bad), Err(JsonError::Json), "{bad:?}");
        }
    }

    #[test]
    fn base64url_refuses_padding_and_the_standard_alphabet() {
        assert_eq!(base64url("aGk").unwrap(), b"hi");
        assert_eq!(base64url("aGk="), Err(JsonError::Base64));
        assert_eq!(base64url("+/8"), Err(JsonError::Base64));
        assert_eq!(base64url("-_8").unwrap(), vec![0xfb, 0xff]);
    }
}
