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

#[cfg(test)]
mod tests {
    use super::*;

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
