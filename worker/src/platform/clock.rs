//! The one clock: the runtime's `Date.now()` (frozen during a request's
//! synchronous run in Workers, which is what makes writes in one run agree).

pub fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

/// A time in ms as RFC 3339 (what every time in the API looks like).
pub fn rfc3339(ms: u64) -> String {
    batchgate_core::gemini::timestamp::format_nanos(
        i64::try_from(ms).unwrap_or(i64::MAX).saturating_mul(1_000_000),
    )
}
