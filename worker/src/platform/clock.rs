//! The one clock: the runtime's `Date.now()` (frozen during a request's
//! synchronous run in Workers, which is what makes writes in one run agree).

pub fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}
