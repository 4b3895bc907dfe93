//! Times on the command line: RFC 3339 out (UTC, milliseconds), and in either RFC 3339, a
//! date, or an age (`30m`, `1h`, `2d`: that long before now).

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

/// `2026-11-26T10:00:00.123Z`. A time outside chrono's range (a tampered record) is shown
/// as its raw milliseconds.
pub fn format_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(
        || format!("@{ms}ms"),
        |t| t.to_rfc3339_opts(SecondsFormat::Millis, true),
    )
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Parses `--since`/`--until`: `2026-11-26T10:00:00Z` (any RFC 3339 offset),
/// `2026-11-26` (midnight UTC), or an age before `now_ms`: a number and a unit, `s`, `m`,
/// `h`, `d` (`90s`, `30m`, `1h30m`, `2d`).
pub fn parse_time(text: &str, now_ms: i64) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(midnight) = day.and_hms_opt(0, 0, 0)
    {
        return Ok(midnight.and_utc().timestamp_millis());
    }
    if let Some(age) = parse_age(text) {
        return Ok(now_ms.saturating_sub(age));
    }
    Err(format!(
        "\"{}\" is not a time: write 2026-11-26T10:00:00Z, 2026-11-26, or an age such as 30m, 1h, 2d",
        super::text::clean(text)
    ))
}

/// `1h30m` → milliseconds; `None` unless the whole text is number-unit pairs.
fn parse_age(text: &str) -> Option<i64> {
    if text.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        let unit = rest[digits..].chars().next()?;
        let ms = match unit {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(ms)?)?;
        rest = &rest[digits + unit.len_utf8()..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_600_000_000;

    #[test]
    fn times_print_as_rfc3339_utc_with_milliseconds() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ms(1_795_687_200_123), "2026-11-26T10:00:00.123Z");
        assert_eq!(format_ms(i64::MAX), format!("@{}ms", i64::MAX));
    }

    #[test]
    fn absolute_times_dates_and_ages_parse() {
        assert_eq!(
            parse_time("2026-11-26T10:00:00Z", NOW),
            Ok(1_795_687_200_000)
        );
        assert_eq!(
            parse_time("2026-11-26T11:00:00+01:00", NOW),
            Ok(1_795_687_200_000)
        );
        assert_eq!(parse_time("2026-11-26", NOW), Ok(1_795_651_200_000));
        assert_eq!(parse_time("30m", NOW), Ok(NOW - 1_800_000));
        assert_eq!(parse_time("1h", NOW), Ok(NOW - 3_600_000));
        assert_eq!(parse_time("1h30m", NOW), Ok(NOW - 5_400_000));
        assert_eq!(parse_time("2d", NOW), Ok(NOW - 172_800_000));
    }

    #[test]
    fn anything_else_is_an_error_that_shows_the_forms() {
        for bad in ["", "yesterday", "1x", "h", "10", "1h 30m", "2026-13-01"] {
            let e = parse_time(bad, NOW).expect_err(bad);
            assert!(e.contains("30m, 1h, 2d"), "{e}");
        }
    }
}
