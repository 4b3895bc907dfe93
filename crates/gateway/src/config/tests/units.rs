//! Durations and sizes: what parses, what is refused, and how they print.

use std::time::Duration;

use super::super::units::{format_duration, format_size, parse_duration, parse_size};

#[test]
fn durations_parse_each_unit_and_combinations() {
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
    assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
    assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
    assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
    assert_eq!(
        parse_duration("1h2m3s4ms"),
        Ok(Duration::from_millis(3_723_004))
    );
    assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    assert_eq!(parse_duration(" 10s "), Ok(Duration::from_secs(10)));
}

#[test]
fn durations_without_units_or_with_bad_units_are_refused() {
    assert!(
        parse_duration("60")
            .unwrap_err()
            .starts_with("missing unit after 60")
    );
    assert!(
        parse_duration("1d")
            .unwrap_err()
            .starts_with("unknown unit \"d\"")
    );
    assert!(
        parse_duration("1S")
            .unwrap_err()
            .starts_with("unknown unit \"S\"")
    );
    assert!(
        parse_duration("")
            .unwrap_err()
            .starts_with("empty duration")
    );
    assert!(
        parse_duration("s")
            .unwrap_err()
            .starts_with("expected a number")
    );
    assert!(
        parse_duration("-1s")
            .unwrap_err()
            .starts_with("expected a number")
    );
    assert!(parse_duration("1.5s").is_err());
    assert!(
        parse_duration("30s1m")
            .unwrap_err()
            .contains("largest to smallest")
    );
    assert!(
        parse_duration("1s1s")
            .unwrap_err()
            .contains("largest to smallest")
    );
}

#[test]
fn durations_that_overflow_are_refused_not_wrapped() {
    assert_eq!(
        parse_duration("99999999999999999999h"),
        Err("number too large".to_owned())
    );
    assert_eq!(
        parse_duration("9999999999999999h"),
        Err("duration too large".to_owned())
    );
}

#[test]
fn durations_format_back_to_what_parses() {
    for (d, s) in [
        (Duration::from_secs(90), "1m30s"),
        (Duration::from_millis(500), "500ms"),
        (Duration::from_secs(3600), "1h"),
        (Duration::ZERO, "0s"),
        (Duration::from_millis(3_723_004), "1h2m3s4ms"),
    ] {
        assert_eq!(format_duration(d), s);
        assert_eq!(parse_duration(s), Ok(d));
    }
}

#[test]
fn sizes_parse_binary_and_decimal_units() {
    assert_eq!(parse_size("4MiB"), Ok(4 << 20));
    assert_eq!(parse_size("512 KiB"), Ok(512 << 10));
    assert_eq!(parse_size("1KB"), Ok(1_000));
    assert_eq!(parse_size("2MB"), Ok(2_000_000));
    assert_eq!(parse_size("100B"), Ok(100));
    assert_eq!(parse_size("4096"), Ok(4096));
    assert_eq!(
        parse_size("512M"),
        Ok(512 << 20),
        "rlimit shorthand is binary"
    );
    assert_eq!(parse_size("2G"), Ok(2 << 30));
    assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
}

#[test]
fn sizes_with_bad_units_or_overflow_are_refused() {
    assert!(
        parse_size("4TB")
            .unwrap_err()
            .starts_with("unknown size unit \"TB\"")
    );
    assert!(
        parse_size("4mib")
            .unwrap_err()
            .starts_with("unknown size unit \"mib\"")
    );
    assert!(
        parse_size("MiB")
            .unwrap_err()
            .starts_with("expected a number")
    );
    assert!(parse_size("").is_err());
    assert!(parse_size("1.5MiB").is_err());
    assert_eq!(
        parse_size("99999999999999999MiB"),
        Err("size too large".to_owned())
    );
}

#[test]
fn sizes_format_with_the_largest_exact_binary_unit() {
    assert_eq!(format_size(4 << 20), "4MiB");
    assert_eq!(format_size(1 << 10), "1KiB");
    assert_eq!(format_size(1500), "1500B");
    assert_eq!(format_size(0), "0B");
}

#[test]
fn sizes_and_durations_reach_the_config() {
    let c = super::ok(
        "[gateway]\nmax_message_bytes = \"1MB\"\nrequest_timeout = \"1m30s\"\nsession_idle_timeout = \"2h\"\n",
    );
    assert_eq!(c.gateway.max_message_bytes, 1_000_000);
    assert_eq!(c.gateway.request_timeout, Duration::from_secs(90));
    assert_eq!(c.gateway.session_idle_timeout, Duration::from_secs(7200));
    let c = super::ok("[gateway]\nmax_message_bytes = 2048\n");
    assert_eq!(c.gateway.max_message_bytes, 2048);
}
