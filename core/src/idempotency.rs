//! The `Idempotency-Key` rule, for job submissions and credit grants alike: a
//! key makes a retried request count once. An empty key is no key; a longer
//! one than [`MAX_KEY_LEN`] is refused, never cut (two long keys sharing a
//! prefix would otherwise collide).

pub const MAX_KEY_LEN: usize = 255;

/// The key a request carries, if any; `Err` names what is wrong with it.
pub fn key(raw: Option<String>) -> Result<Option<String>, String> {
    match raw.filter(|k| !k.is_empty()) {
        Some(k) if k.len() > MAX_KEY_LEN => {
            Err(format!("the idempotency key is longer than {MAX_KEY_LEN} characters"))
        }
        k => Ok(k),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_none_long_is_refused_and_the_rest_is_kept_as_sent() {
        assert_eq!(key(None), Ok(None));
        assert_eq!(key(Some(String::new())), Ok(None));
        assert_eq!(key(Some(" a b ".into())), Ok(Some(" a b ".into())));
        assert_eq!(key(Some("k".repeat(MAX_KEY_LEN))), Ok(Some("k".repeat(MAX_KEY_LEN))));
        assert!(key(Some("k".repeat(MAX_KEY_LEN + 1))).is_err_and(|e| e.contains("255")));
    }
}
