//! Durations (`"1m30s"`) and sizes (`"4MiB"`) as people write them in the config.
//!
//! Both are strict: a unit is always required for durations (is `60` seconds or
//! milliseconds?), units must be spelled exactly, and overflow is an error rather than a
//! wrap. A limit typed wrongly must fail loudly, not quietly become something else.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// Duration units, largest first: a duration lists each at most once, in this order.
const DURATION_UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// Parses `"500ms"`, `"30s"`, `"5m"`, `"2h"`, `"1m30s"`. The message says what is wrong;
/// callers add which key it was.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration: write a number and a unit (ms, s, m, h), e.g. \"30s\"".into());
    }
    let mut rest = s;
    let mut total_ms: u64 = 0;
    let mut last_unit: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(format!(
                "expected a number at \"{rest}\"; durations look like \"500ms\", \"30s\", \"5m\", \"1h\" or \"1m30s\""
            ));
        }
        let (number, after) = rest.split_at(digits);
        let unit_len = after.len()
            - after
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let (unit, after) = after.split_at(unit_len);
        let Some(pos) = DURATION_UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(if unit.is_empty() {
                format!("missing unit after {number} (use ms, s, m or h, e.g. \"{number}s\")")
            } else {
                format!("unknown unit \"{unit}\" (use ms, s, m or h)")
            });
        };
        if last_unit.is_some_and(|last| pos <= last) {
            return Err(
                "units must go from largest to smallest, each once (e.g. \"1h30m\")".into(),
            );
        }
        last_unit = Some(pos);
        let value: u64 = number.parse().map_err(|_| "number too large".to_owned())?;
        total_ms = value
            .checked_mul(DURATION_UNITS[pos].1)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| "duration too large".to_owned())?;
        rest = after;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration the way [`parse_duration`] reads it: `"1m30s"`, `"500ms"`, `"0s"`.
pub(crate) fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in DURATION_UNITS {
        let size = u128::from(size);
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

/// Size units: binary (KiB, MiB) and decimal (KB, MB), plus plain bytes.
const SIZE_UNITS: [(&str, u64); 10] = [
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    // The shorthand of rlimits, `ulimit` and container runtimes: binary units.
    ("K", 1 << 10),
    ("M", 1 << 20),
    ("G", 1 << 30),
];

/// Parses `"4MiB"`, `"512 KiB"`, `"1MB"`, `"4096B"` or `"4096"` into bytes.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let digits = s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return Err(format!(
            "expected a number of bytes or a size such as \"4MiB\", \"512KiB\" or \"1MB\", not \"{s}\""
        ));
    }
    let (number, unit) = s.split_at(digits);
    let unit = unit.trim_start();
    let multiplier = if unit.is_empty() {
        1
    } else {
        SIZE_UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, m)| *m)
            .ok_or_else(|| format!("unknown size unit \"{unit}\" (use B, KiB, MiB, GiB, KB, MB, GB, or K, M, G for KiB, MiB, GiB)"))?
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| "size too large".to_owned())
}

/// Formats a byte count with the largest binary unit that divides it: `"4MiB"`, `"1500B"`.
pub(crate) fn format_size(bytes: u64) -> String {
    for (unit, size) in [("MiB", 1u64 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

/// A duration as written: always a string. An integer gets a pointed error here, because
/// the unit it would need is exactly what is ambiguous.
#[derive(Debug, Clone)]
pub(crate) struct RawDuration(pub(crate) String);

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = RawDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"30s\", \"5m\" or \"1m30s\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawDuration, E> {
                Ok(RawDuration(v.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawDuration, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write \"{v}s\" or \"{v}ms\", not {v}"
                )))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawDuration, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write \"{v}s\" or \"{v}ms\", not {v}"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

/// A size as written: an integer number of bytes or a string with a unit.
#[derive(Debug, Clone)]
pub(crate) enum RawSize {
    Bytes(i64),
    Text(String),
}

impl RawSize {
    /// The size in bytes, or what is wrong with it.
    pub(crate) fn bytes(&self) -> Result<u64, String> {
        match self {
            RawSize::Bytes(n) => u64::try_from(*n).map_err(|_| "a size cannot be negative".into()),
            RawSize::Text(s) => parse_size(s),
        }
    }
}

impl<'de> Deserialize<'de> for RawSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = RawSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of bytes or a size string such as \"4MiB\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawSize, E> {
                Ok(RawSize::Text(v.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawSize, E> {
                Ok(RawSize::Bytes(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawSize, E> {
                Ok(RawSize::Bytes(i64::try_from(v).unwrap_or(i64::MAX)))
            }
        }
        d.deserialize_any(V)
    }
}
