//! An ordered JSON object whose member values stay raw.
//!
//! The relay must sometimes change one member of a result (drop hidden tools from `tools`,
//! rename a tool in a virtual server) while forwarding everything else exactly as the
//! upstream wrote it. [`RawObject`] parses only the top level: each member value is kept as
//! raw JSON text, and member order is preserved on the way back out.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;

#[derive(Debug, Default)]
pub struct RawObject {
    members: Vec<(String, Box<RawValue>)>,
}

impl RawObject {
    pub fn parse(raw: &RawValue) -> Result<Self, serde_json::Error> {
        serde_json::from_str(raw.get())
    }

    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.members
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| &**v)
    }

    pub fn get_str(&self, key: &str) -> Option<String> {
        self.get(key)
            .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
    }

    /// Replaces a member's value, or appends the member if it is absent.
    pub fn set(&mut self, key: &str, value: Box<RawValue>) {
        match self.members.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.members.push((key.to_owned(), value)),
        }
    }

    pub fn set_str(&mut self, key: &str, value: &str) {
        self.set(
            key,
            crate::mcp::raw(&serde_json::Value::String(value.to_owned())),
        );
    }

    pub fn remove(&mut self, key: &str) -> Option<Box<RawValue>> {
        let pos = self.members.iter().position(|(k, _)| k == key)?;
        Some(self.members.remove(pos).1)
    }

    pub fn to_raw(&self) -> Box<RawValue> {
        let text = serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned());
        RawValue::from_string(text).unwrap_or_else(|_| crate::mcp::empty_object())
    }
}

impl Serialize for RawObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.members.len()))?;
        for (k, v) in &self.members {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawObject;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<RawObject, A::Error> {
                let mut members = Vec::with_capacity(access.size_hint().unwrap_or(4));
                while let Some((k, v)) = access.next_entry::<String, Box<RawValue>>()? {
                    members.push((k, v));
                }
                Ok(RawObject { members })
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// Whether raw JSON may contain `needle` once decoded: a fast pre-check that lets the relay
/// skip parsing what cannot concern it. JSON may spell any character of a key or string as a
/// `\u` escape, so text with any escape in it always counts as a possible match — the
/// answer is never a false "no".
pub fn may_mention(raw: &str, needle: &str) -> bool {
    let bytes = raw.as_bytes();
    memchr::memmem::find(bytes, needle.as_bytes()).is_some()
        || memchr::memmem::find(bytes, b"\\u").is_some()
}

/// Parses a raw JSON array into its raw elements.
pub fn raw_array(raw: &RawValue) -> Result<Vec<Box<RawValue>>, serde_json::Error> {
    serde_json::from_str(raw.get())
}

/// Serializes raw elements back into one raw array.
pub fn to_raw_array(items: &[Box<RawValue>]) -> Box<RawValue> {
    let text = serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned());
    RawValue::from_string(text).unwrap_or_else(|_| crate::mcp::empty_object())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untouched_members_keep_their_exact_text_and_order() {
        let raw = RawValue::from_string(r#"{"z":1.50,"a":{"k" : [1,2]},"m":"x"}"#.into()).unwrap();
        let mut obj = RawObject::parse(&raw).unwrap();
        obj.set_str("m", "y");
        assert_eq!(
            obj.to_raw().get(),
            r#"{"z":1.50,"a":{"k" : [1,2]},"m":"y"}"#
        );
    }

    #[test]
    fn an_escaped_spelling_is_never_ruled_out() {
        assert!(may_mention(
            r#"{"_meta":{"progressToken":1}}"#,
            "progressToken"
        ));
        assert!(!may_mention(r#"{"name":"echo"}"#, "progressToken"));
        assert!(may_mention(
            r#"{"_meta":{"\u0070rogressToken":1}}"#,
            "progressToken"
        ));
    }

    #[test]
    fn set_appends_a_missing_member() {
        let raw = RawValue::from_string(r#"{"a":1}"#.into()).unwrap();
        let mut obj = RawObject::parse(&raw).unwrap();
        obj.set_str("b", "two");
        assert_eq!(obj.to_raw().get(), r#"{"a":1,"b":"two"}"#);
        assert_eq!(obj.get_str("b").as_deref(), Some("two"));
        assert!(obj.remove("a").is_some());
        assert_eq!(obj.to_raw().get(), r#"{"b":"two"}"#);
    }
}
