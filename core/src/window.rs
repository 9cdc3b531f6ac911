//! The sliding one-minute window every per-minute limit counts in (an
//! account's submits and generate calls, a model's realtime requests): at
//! most `limit` events in any 60 seconds, exactly, not a bucket's average.

pub const MINUTE_MS: u64 = 60_000;

/// May one more event happen at `now_ms`, given the times of earlier ones (any
/// order; those older than a minute are ignored)? `Err` carries how many
/// milliseconds until the oldest event that still counts leaves the window.
pub fn admit(times_ms: &[u64], now_ms: u64, limit: u64) -> Result<(), u64> {
    let start = now_ms.saturating_sub(MINUTE_MS);
    let mut recent: Vec<u64> = times_ms.iter().copied().filter(|t| *t > start).collect();
    if (recent.len() as u64) < limit {
        return Ok(());
    }
    recent.sort_unstable();
    // Enough must leave for one more to fit: the (excess)th oldest's exit frees the slot.
    let excess = recent.len() + 1 - limit as usize;
    let frees_at = recent.get(excess.saturating_sub(1)).map_or(now_ms, |t| t + MINUTE_MS);
    Err(frees_at.saturating_sub(now_ms).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_limit_holds_and_the_wait_ends_when_the_oldest_leaves() {
        assert_eq!(admit(&[], 0, 1), Ok(()));
        assert_eq!(admit(&[1_000, 2_000], 10_000, 3), Ok(()));
        assert_eq!(admit(&[2_000, 1_000, 3_000], 10_000, 3), Err(51_000));
        assert_eq!(admit(&[1_000], 61_000, 1), Ok(()), "an event exactly a minute old no longer counts");
        assert_eq!(admit(&[5], 5, 0), Err(1), "a zero limit admits nothing, and says so");
    }

    proptest! {
        /// Admitting whenever `admit` allows never puts more than `limit`
        /// events in any minute, and waiting as told is always enough.
        #[test]
        fn admitted_events_respect_the_limit(limit in 1u64..6, gaps in prop::collection::vec(0u64..40_000, 1..60)) {
            let mut times = vec![];
            let mut now = 0u64;
            for gap in gaps {
                now += gap;
                match admit(&times, now, limit) {
                    Ok(()) => times.push(now),
                    Err(wait) => prop_assert_eq!(admit(&times, now + wait, limit), Ok(())),
                }
            }
            for (i, t) in times.iter().enumerate() {
                let in_minute = times[i..].iter().take_while(|u| **u < t + MINUTE_MS).count() as u64;
                prop_assert!(in_minute <= limit);
            }
        }
    }
}
