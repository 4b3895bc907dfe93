//! The validation walk: one pass over the JSON text that rejects duplicate object keys at any
//! depth and nesting deeper than the limit, and reports syntax errors with line and column.
//!
//! It is a serde `DeserializeSeed` driven by `serde_json::Deserializer::from_str`, so syntax
//! (including lone surrogates and trailing characters) is exactly serde_json's. The walk
//! checks the depth *before* descending, so it stops at `max_depth + 1` levels whatever the
//! input: a megabyte of `[` costs a few dozen stack frames, not a stack overflow, and our
//! check fires before serde_json's own recursion limit (128) for every depth up to 126.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::IngressError;

/// serde_json refuses the 128th level of nesting; deeper limits are clamped to this.
const SERDE_JSON_MAX_DEPTH: usize = 127;
/// Objects with more keys than this switch from a linear scan to a hash set.
const SMALL_OBJECT: usize = 16;
/// The longest key echoed in an error message.
const MAX_KEY_ECHO: usize = 48;
/// The longest path echoed in an error message.
const MAX_PATH_ECHO: usize = 64;

/// Validates `text` (see the module documentation).
pub(super) fn validate(text: &str, max_depth: usize) -> Result<(), IngressError> {
    let max_depth = max_depth.min(SERDE_JSON_MAX_DEPTH);
    let mut state = State {
        max_depth,
        key_sets: Vec::new(),
        error: None,
        path: Vec::new(),
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let walked = Walk {
        state: &mut state,
        depth: 0,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match walked {
        Ok(()) => Ok(()),
        Err(e) => Err(match state.error.take() {
            Some(IngressError::DuplicateKey { key, .. }) => IngressError::DuplicateKey {
                key,
                path: format_path(&state.path),
            },
            Some(err) => err,
            None if e.to_string().starts_with("recursion limit exceeded") => {
                IngressError::TooDeep { limit: max_depth }
            }
            None => invalid_json(&e),
        }),
    }
}

/// Maps a serde_json error to `InvalidJson`, without the position suffix in the reason.
pub(super) fn invalid_json(e: &serde_json::Error) -> IngressError {
    let msg = e.to_string();
    let reason = msg.rfind(" at line ").map_or(msg.as_str(), |i| &msg[..i]);
    IngressError::InvalidJson {
        line: e.line(),
        column: e.column(),
        reason: truncate(reason, 100).into_owned(),
    }
}

/// `s` cut to at most `max` bytes on a char boundary, with an ellipsis when cut.
pub(super) fn truncate(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &s[..end]))
}

enum Segment {
    Key(String),
    Index(usize),
}

/// `params.arguments`, `[2].params["odd key"]`; empty for the top level.
fn format_path(rev: &[Segment]) -> String {
    let mut out = String::new();
    for seg in rev.iter().rev() {
        match seg {
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
            Segment::Key(k) => {
                let plain = !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-$@/:".contains(c));
                if plain {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                } else {
                    out.push_str(&format!("[{k:?}]"));
                }
            }
        }
    }
    truncate(&out, MAX_PATH_ECHO).into_owned()
}

struct State<'de> {
    max_depth: usize,
    /// One reusable key set per depth, so sibling objects do not allocate.
    key_sets: Vec<KeySet<'de>>,
    /// The typed reason behind a custom serde error raised by the walk.
    error: Option<IngressError>,
    /// For a duplicate key: the path to its object, innermost segment first.
    path: Vec<Segment>,
}

impl State<'_> {
    fn fail<E: de::Error>(&mut self, err: IngressError) -> E {
        self.error = Some(err);
        E::custom("rejected by the ingress validation")
    }

    fn track<E>(&mut self, seg: impl FnOnce() -> Segment, err: E) -> E {
        if matches!(self.error, Some(IngressError::DuplicateKey { .. })) {
            self.path.push(seg());
        }
        err
    }
}

/// The keys of one object, compared after unescaping (`"a"` and `"\u0061"` are one key).
/// Small objects use a linear scan; past [`SMALL_OBJECT`] keys a hash set takes over, so a
/// hostile object with a million keys costs linear, not quadratic, time.
#[derive(Default)]
struct KeySet<'de> {
    small: Vec<Cow<'de, str>>,
    big: Option<HashSet<Cow<'de, str>>>,
}

impl<'de> KeySet<'de> {
    fn clear(&mut self) {
        self.small.clear();
        if let Some(big) = &mut self.big {
            big.clear();
        }
    }

    /// `false` if the key was already there.
    fn insert(&mut self, key: Cow<'de, str>) -> bool {
        match &mut self.big {
            Some(big) if !big.is_empty() => big.insert(key),
            big => {
                if self.small.contains(&key) {
                    return false;
                }
                if self.small.len() < SMALL_OBJECT {
                    self.small.push(key);
                    return true;
                }
                let set = big.get_or_insert_with(HashSet::new);
                set.extend(self.small.drain(..));
                set.insert(key)
            }
        }
    }
}

/// A decoded object key, borrowed from the input unless it contained escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Walks one value whose parent container is at `depth` (0 for the top-level value).
struct Walk<'s, 'de> {
    state: &'s mut State<'de>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Walk<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth = self.depth + 1;
        let state = self.state;
        if depth > state.max_depth {
            let limit = state.max_depth;
            return Err(state.fail(IngressError::TooDeep { limit }));
        }
        let mut index = 0;
        loop {
            match seq.next_element_seed(Walk {
                state: &mut *state,
                depth,
            }) {
                Ok(Some(())) => index += 1,
                Ok(None) => return Ok(()),
                Err(e) => return Err(state.track(|| Segment::Index(index), e)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let depth = self.depth + 1;
        let state = self.state;
        if depth > state.max_depth {
            let limit = state.max_depth;
            return Err(state.fail(IngressError::TooDeep { limit }));
        }
        while state.key_sets.len() <= depth {
            state.key_sets.push(KeySet::default());
        }
        let mut keys = std::mem::take(&mut state.key_sets[depth]);
        keys.clear();
        let walked = walk_members(&mut map, state, &mut keys, depth);
        state.key_sets[depth] = keys;
        walked
    }
}

fn walk_members<'de, A: MapAccess<'de>>(
    map: &mut A,
    state: &mut State<'de>,
    keys: &mut KeySet<'de>,
    depth: usize,
) -> Result<(), A::Error> {
    while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
        if !keys.insert(key.clone()) {
            let key = truncate(&key, MAX_KEY_ECHO).into_owned();
            return Err(state.fail(IngressError::DuplicateKey {
                key,
                path: String::new(),
            }));
        }
        let walk = Walk {
            state: &mut *state,
            depth,
        };
        if let Err(e) = map.next_value_seed(walk) {
            return Err(state.track(
                || Segment::Key(truncate(&key, MAX_KEY_ECHO).into_owned()),
                e,
            ));
        }
    }
    Ok(())
}
