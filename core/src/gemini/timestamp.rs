//! RFC 3339 timestamps as the API writes them: UTC, `Z`, nanoseconds.

use chrono::{DateTime, SecondsFormat, Utc};

/// Format milliseconds or nanoseconds since the epoch the way Gemini does.
pub fn format_nanos(nanos_since_epoch: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(nanos_since_epoch).to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Parse any RFC 3339 timestamp (0, 3, 6 or 9 fractional digits) to ms since the epoch.
pub fn parse_millis(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_millis())
}

/// Decimal seconds (`"30"`, `"1.5"`, `"0.250"`: a protobuf `Duration` without
/// its `s`, or a setting) to whole milliseconds, truncating digits past the
/// third. Exact decimal arithmetic, not `f64` parsing, whose code would be a
/// sizeable part of the worker's wasm for two call sites.
pub fn seconds_to_ms(secs: &str) -> Option<u64> {
    let (whole, frac) = secs.split_once('.').unwrap_or((secs, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) {
        return None;
    }
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let ms = frac.bytes().chain(std::iter::repeat(b'0')).take(3).fold(0, |n, b| n * 10 + u64::from(b - b'0'));
    whole.checked_mul(1000)?.checked_add(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decimal_seconds_to_ms() {
        for (s, ms) in
            [("30", 30_000), ("1.5", 1_500), ("0.250", 250), (".2", 200), ("2.", 2_000), ("0.0019", 1)]
        {
            assert_eq!(seconds_to_ms(s), Some(ms), "{s}");
        }
        for bad in ["", ".", "-1", "1e3", "1.5s", " 1", "1.2.3", "NaN", "99999999999999999999"] {
            assert_eq!(seconds_to_ms(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn agrees_with_float_parsing_to_the_millisecond(ms in 0u64..10_000_000_000, extra in 0u32..10) {
            let text = format!("{}.{:03}{}", ms / 1000, ms % 1000, extra);
            prop_assert_eq!(seconds_to_ms(&text), Some(ms));
            let via_float = (text.parse::<f64>().unwrap_or(-1.0) * 1000.0).round() as u64;
            prop_assert!(via_float.abs_diff(ms) <= 1);
        }
    }

    #[test]
    fn formats_with_nine_fractional_digits_and_z() {
        assert_eq!(format_nanos(1_765_391_221_407_650_525), "2025-12-10T18:27:01.407650525Z");
    }

    #[test]
    fn parses_the_fraction_widths_the_api_uses() {
        for s in ["2026-01-06T08:17:49Z", "2026-01-06T08:17:49.426Z", "2026-01-06T08:17:49.426944Z"] {
            assert_eq!(parse_millis(s).map(|m| m / 1000), Some(1_767_687_469));
        }
        assert_eq!(parse_millis("yesterday"), None);
    }
}
