//! What a tool schema may cost, decided before it is compiled.
//!
//! The JSON Schema validator evaluates every subschema that applies at a value: `allOf`,
//! `anyOf`, `oneOf`, `not`, `if`/`then`/`else`, dependent schemas and references apply in
//! place, `properties`, `items` and their kin one level down. A schema whose references fan
//! out (`a: anyOf[b, b]`, `b: anyOf[c, c]`, …) therefore costs 2ⁿ evaluations on one value
//! although it is a few hundred bytes; with the `jsonschema` crate, 22 such levels take 20 s.
//! This module bounds that cost statically: for each depth of the arguments (up to
//! [`MAX_ARGUMENT_DEPTH`]) it computes an upper bound on the subschema evaluations one value
//! at that depth can trigger, following references, and refuses the schema beyond
//! [`MAX_EVALUATIONS`]. A reference cycle that does not descend into the value is cut (the
//! validator detects it too); one that does is bounded by the depth.
//!
//! The same walk counts references and patterns and refuses references outside the document:
//! Portcullis never fetches a schema, and refusing here means the validator's retriever is
//! never even asked.

use super::SchemaError;
use crate::invalid::shorten;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// The deepest arguments accepted (containers; the arguments object is depth 1), as
/// `portcullis-wire` bounds whole messages.
pub const MAX_ARGUMENT_DEPTH: usize = 64;
/// The most subschema evaluations one argument value may trigger.
pub const MAX_EVALUATIONS: u64 = 10_000;
/// The most subschema evaluations the arguments of one call may trigger: about 150 ms of
/// validation in the worst case measured (release). A typical schema costs one to a few
/// evaluations per argument value, so only arguments of 100 000 values and more, or a schema
/// that multiplies evaluations, come near it.
pub const MAX_CALL_EVALUATIONS: u64 = 250_000;
/// The most `$ref`, `$dynamicRef` and `$recursiveRef` in one schema.
pub const MAX_REFERENCES: usize = 256;
/// The most regular expressions (`pattern`, `patternProperties` keys) in one schema.
pub const MAX_PATTERNS: usize = 256;
/// Bounds on the analysis itself: nested calls, and subschemas visited.
const MAX_FRAMES: usize = 1024;
const MAX_STEPS: usize = 500_000;

const REFERENCES: &[&str] = &["$ref", "$dynamicRef", "$recursiveRef"];
/// Keywords whose values are data, never schemas.
const DATA: &[&str] = &["enum", "const", "default", "examples"];
/// Keywords whose values map names to schemas.
const MAPS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
    "dependencies",
];
const IN_PLACE_LISTS: &[&str] = &["allOf", "anyOf", "oneOf"];
const IN_PLACE: &[&str] = &["not", "if", "then", "else"];
const IN_PLACE_MAPS: &[&str] = &["dependentSchemas", "dependencies"];
const EACH_PROPERTY: &[&str] = &[
    "additionalProperties",
    "unevaluatedProperties",
    "propertyNames",
];
const EACH_ITEM: &[&str] = &["additionalItems", "contains", "unevaluatedItems"];

/// Checks `schema` (already bounded in size and depth) against the limits above, and returns
/// the bound on evaluations per argument value at each depth (index 0: the arguments object),
/// from which [`call_cost`] bounds a whole call.
pub(crate) fn check(schema: &Value) -> Result<Vec<u64>, SchemaError> {
    let index = Index::build(schema)?;
    let mut cost = Cost {
        index: &index,
        memo: HashMap::new(),
        active: HashSet::new(),
        frames: 0,
        steps: 0,
    };
    // Ascending depth, so that each level finds the one below it memoized.
    (0..=MAX_ARGUMENT_DEPTH)
        .map(|depth| cost.at(schema, schema, depth).map(Bound::max))
        .collect()
}

/// Why a call's arguments are not validated at all.
pub(crate) enum TooCostly {
    Deep,
    Large,
}

/// Bounds the evaluations validating `args` can cost, from the per-depth bounds of [`check`]:
/// refused beyond [`MAX_ARGUMENT_DEPTH`] levels or [`MAX_CALL_EVALUATIONS`] evaluations. One
/// walk of the arguments, without recursion.
pub(crate) fn call_cost(args: &Value, per_depth: &[u64]) -> Result<u64, TooCostly> {
    let mut total = 0u64;
    let mut stack = vec![(args, 0usize)];
    while let Some((value, depth)) = stack.pop() {
        // Index 0 is the arguments object, a container at depth 1.
        if depth >= MAX_ARGUMENT_DEPTH && (value.is_array() || value.is_object()) {
            return Err(TooCostly::Deep);
        }
        total = total.saturating_add(per_depth.get(depth).copied().unwrap_or(0));
        if total > MAX_CALL_EVALUATIONS {
            return Err(TooCostly::Large);
        }
        match value {
            Value::Array(items) => stack.extend(items.iter().map(|item| (item, depth + 1))),
            Value::Object(map) => stack.extend(map.values().map(|item| (item, depth + 1))),
            _ => {}
        }
    }
    Ok(total)
}

/// A subschema and the resource (the nearest enclosing `$id`, or the document) it is in.
type Located<'a> = (&'a Value, &'a Value);

/// Identifiers, anchors and counts of one schema document.
#[derive(Default)]
struct Index<'a> {
    ids: HashMap<&'a str, &'a Value>,
    anchors: HashMap<&'a str, Vec<Located<'a>>>,
    recursive_anchors: Vec<Located<'a>>,
}

impl<'a> Index<'a> {
    fn build(schema: &'a Value) -> Result<Self, SchemaError> {
        let mut index = Index::default();
        let (mut references, mut patterns) = (Vec::new(), 0usize);
        let mut stack = vec![(schema, schema)];
        while let Some((node, resource)) = stack.pop() {
            let Value::Object(map) = node else { continue };
            let resource = if has_id(map) { node } else { resource };
            for (keyword, value) in map {
                match (keyword.as_str(), value) {
                    (k, Value::String(r)) if REFERENCES.contains(&k) => references.push(r),
                    ("$id" | "id", Value::String(id)) => match id.strip_prefix('#') {
                        Some(anchor) if !anchor.is_empty() => index.anchor(anchor, node, resource),
                        _ => {
                            index.ids.insert(id.trim_end_matches('#'), node);
                        }
                    },
                    ("$anchor" | "$dynamicAnchor", Value::String(anchor)) => {
                        index.anchor(anchor, node, resource)
                    }
                    ("$recursiveAnchor", Value::Bool(true)) => {
                        index.recursive_anchors.push((node, resource));
                    }
                    ("pattern", Value::String(_)) => patterns += 1,
                    _ => {}
                }
                if keyword == "patternProperties" {
                    patterns += value.as_object().map_or(0, Map::len);
                }
                match value {
                    _ if DATA.contains(&keyword.as_str()) => {}
                    Value::Object(children) if MAPS.contains(&keyword.as_str()) => {
                        stack.extend(children.values().map(|child| (child, resource)));
                    }
                    Value::Object(_) => stack.push((value, resource)),
                    Value::Array(items) => {
                        stack.extend(
                            items
                                .iter()
                                .filter(|i| i.is_object())
                                .map(|i| (i, resource)),
                        );
                    }
                    _ => {}
                }
            }
        }
        if references.len() > MAX_REFERENCES {
            return Err(SchemaError::TooManyReferences {
                limit: MAX_REFERENCES,
            });
        }
        if patterns > MAX_PATTERNS {
            return Err(SchemaError::TooManyPatterns {
                limit: MAX_PATTERNS,
            });
        }
        for reference in references {
            let uri = reference
                .split_once('#')
                .map_or(reference.as_str(), |(uri, _)| uri);
            if !uri.is_empty() && !index.ids.contains_key(uri) {
                return Err(SchemaError::ExternalReference {
                    reference: shorten(reference.clone(), crate::invalid::MAX_ECHO),
                });
            }
        }
        Ok(index)
    }

    fn anchor(&mut self, name: &'a str, node: &'a Value, resource: &'a Value) {
        self.anchors.entry(name).or_default().push((node, resource));
    }

    /// Where `reference` may lead from the resource `base` (every candidate: an upper bound).
    fn targets(&self, keyword: &str, reference: &str, base: &'a Value) -> Vec<Located<'a>> {
        let (uri, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        let resource = if uri.is_empty() {
            Some(base)
        } else {
            self.ids.get(uri).copied()
        };
        let mut out = Vec::new();
        if let Some(resource) = resource {
            if fragment.is_empty() {
                out.push((resource, resource));
            } else if fragment.starts_with('/') {
                if let Some(target) = resource.pointer(&percent_decode(fragment)) {
                    out.push((target, resource));
                }
            } else if let Some(nodes) = self.anchors.get(fragment) {
                out.extend(nodes.iter().copied());
            }
        }
        if keyword == "$recursiveRef" {
            out.extend(self.recursive_anchors.iter().copied());
        }
        out
    }
}

/// Upper bounds on evaluations at one depth, by the kind of the value applied to: a value is an
/// object or an array, so `properties` and `items` never both lead further.
#[derive(Debug, Clone, Copy, Default)]
struct Bound {
    object: u64,
    array: u64,
}

impl Bound {
    fn both(count: u64) -> Self {
        Bound {
            object: count,
            array: count,
        }
    }

    fn max(self) -> u64 {
        self.object.max(self.array)
    }

    fn add(&mut self, other: Bound) {
        self.object = self.object.saturating_add(other.object);
        self.array = self.array.saturating_add(other.array);
    }
}

/// Upper bounds on evaluations, memoized by (subschema, depth below it).
struct Cost<'i, 'a> {
    index: &'i Index<'a>,
    memo: HashMap<(usize, usize), Bound>,
    active: HashSet<(usize, usize)>,
    frames: usize,
    steps: usize,
}

impl<'a> Cost<'_, 'a> {
    /// Evaluations that `node` triggers on one value `depth` levels below the value it is
    /// applied to, by the kind of that value.
    fn at(&mut self, node: &'a Value, base: &'a Value, depth: usize) -> Result<Bound, SchemaError> {
        let Value::Object(map) = node else {
            return Ok(Bound::both(u64::from(depth == 0)));
        };
        let key = (std::ptr::from_ref(node) as usize, depth);
        if let Some(&known) = self.memo.get(&key) {
            return Ok(known);
        }
        if !self.active.insert(key) {
            return Ok(Bound::default());
        }
        self.frames += 1;
        self.steps += 1;
        if self.frames > MAX_FRAMES || self.steps > MAX_STEPS {
            return Err(SchemaError::TooComplex);
        }
        let base = if has_id(map) { node } else { base };
        let mut total = Bound::both(u64::from(depth == 0));
        let lists = IN_PLACE_LISTS
            .iter()
            .filter_map(|k| map.get(*k)?.as_array());
        let maps = IN_PLACE_MAPS
            .iter()
            .filter_map(|k| map.get(*k)?.as_object());
        let singles = IN_PLACE.iter().filter_map(|k| map.get(*k));
        let in_place: Vec<&Value> = lists
            .flatten()
            .chain(maps.flat_map(Map::values))
            .chain(singles)
            .collect();
        for sub in in_place {
            total.add(self.at(sub, base, depth)?);
        }
        for keyword in REFERENCES {
            if let Some(Value::String(reference)) = map.get(*keyword) {
                for (target, target_base) in self.index.targets(keyword, reference, base) {
                    total.add(self.at(target, target_base, depth)?);
                }
            }
        }
        if let Some(below) = depth.checked_sub(1) {
            total.add(self.below(map, base, below)?);
        }
        self.active.remove(&key);
        self.frames -= 1;
        if total.max() > MAX_EVALUATIONS {
            return Err(SchemaError::TooExpensive {
                limit: MAX_EVALUATIONS,
            });
        }
        self.memo.insert(key, total);
        Ok(total)
    }

    /// Evaluations on one member (property value or item) of the value, `depth` levels below
    /// that member: through the object keywords if the value is an object, the array keywords
    /// if it is an array.
    fn below(
        &mut self,
        map: &'a Map<String, Value>,
        base: &'a Value,
        depth: usize,
    ) -> Result<Bound, SchemaError> {
        let mut member = |sub: &'a Value| self.at(sub, base, depth).map(Bound::max);
        let schemas = |keyword: &str| {
            map.get(keyword)
                .and_then(Value::as_object)
                .into_iter()
                .flat_map(Map::values)
        };
        // One `properties` entry applies to a given member; every pattern may.
        let mut object = 0u64;
        for sub in schemas("properties") {
            object = object.max(member(sub)?);
        }
        let patterns = schemas("patternProperties");
        for sub in patterns.chain(EACH_PROPERTY.iter().filter_map(|k| map.get(*k))) {
            object = object.saturating_add(member(sub)?);
        }
        // One positional schema applies to a given item; the others to every item.
        let mut array = 0u64;
        let positional = ["prefixItems", "items"].map(|k| map.get(k).and_then(Value::as_array));
        for sub in positional.into_iter().flatten().flatten() {
            array = array.max(member(sub)?);
        }
        let every = map
            .get("items")
            .filter(|items| !items.is_array())
            .into_iter();
        for sub in every.chain(EACH_ITEM.iter().filter_map(|k| map.get(*k))) {
            array = array.saturating_add(member(sub)?);
        }
        Ok(Bound { object, array })
    }
}

fn has_id(map: &Map<String, Value>) -> bool {
    ["$id", "id"].iter().any(|k| {
        map.get(*k)
            .and_then(Value::as_str)
            .is_some_and(|id| !id.starts_with('#'))
    })
}

/// `%XX` escapes of a URI fragment decoded (invalid escapes kept as they are).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
        let hex = hex.and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(byte) if bytes[i] == b'%' => {
                out.push(byte);
                i += 3;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_schemas_cost_one_evaluation_per_value() {
        let schema = json!({"type": "object", "properties": {
            "path": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}}
        }});
        let per_depth = check(&schema).unwrap();
        assert_eq!(&per_depth[..4], &[1, 1, 1, 0]);
        let args = json!({"path": "p", "tags": ["a", "b"]});
        assert_eq!(call_cost(&args, &per_depth).ok(), Some(5));
    }

    #[test]
    fn a_recursive_union_stays_linear() {
        // anyOf[string, array of self, object of self]: an object value never meets `items`.
        let schema = json!({"$defs": {"v": {"anyOf": [
            {"type": "string"},
            {"type": "array", "items": {"$ref": "#/$defs/v"}},
            {"type": "object", "additionalProperties": {"$ref": "#/$defs/v"}}
        ]}}, "$ref": "#/$defs/v"});
        let per_depth = check(&schema).unwrap();
        assert!(per_depth.iter().all(|&cost| cost <= 10), "{per_depth:?}");
    }

    #[test]
    fn references_resolve_by_pointer_anchor_and_id() {
        let schema = json!({
            "$defs": {
                "a b": {"$anchor": "named", "properties": {"x": {"$ref": "#/$defs/a%20b"}}},
                "embedded": {"$id": "inner.json", "$defs": {"y": true}, "$ref": "#/$defs/y"}
            },
            "allOf": [{"$ref": "#named"}, {"$ref": "inner.json#/$defs/y"}, {"$ref": "inner.json"}]
        });
        let per_depth = check(&schema).unwrap();
        // Root, allOf's three wrappers, `a b`, `y` twice, `embedded`: 8 at the top; below it,
        // `x` and `a b` again at every depth.
        assert_eq!(per_depth[0], 8);
        assert_eq!(per_depth[5], 2);
        assert!(matches!(
            check(&json!({"$ref": "other.json"})),
            Err(SchemaError::ExternalReference { .. })
        ));
    }

    #[test]
    fn call_cost_stops_at_depth() {
        let per_depth = vec![1; MAX_ARGUMENT_DEPTH + 1];
        let mut deep = json!(1);
        for _ in 0..MAX_ARGUMENT_DEPTH {
            deep = json!([deep]);
        }
        assert!(call_cost(&deep, &per_depth).is_ok());
        assert!(matches!(
            call_cost(&json!([deep]), &per_depth),
            Err(TooCostly::Deep)
        ));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/$defs/a%20b%2"), "/$defs/a b%2");
        assert_eq!(percent_decode("%+1x%41"), "%+1xA");
    }
}
