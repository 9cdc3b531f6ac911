//! When to ask Gemini again. Batch jobs take minutes to a day, so the poll
//! interval grows with the job's age (a fixed fraction of it, between a floor
//! and a cap): detection delay stays a small share of the job's duration while
//! the number of calls grows only logarithmically. Transient errors back off
//! separately and exponentially. Jitter comes from the caller (`rand`), so the
//! schedule is a pure function and tests are deterministic.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollPolicy {
    /// The first check after the batch is created.
    pub first_ms: u64,
    /// Interval as thousandths of the time since creation (20 = 2 %).
    pub growth_permille: u64,
    pub min_ms: u64,
    pub max_ms: u64,
    /// ± this many thousandths of the interval, spread by `rand`.
    pub jitter_permille: u64,
}

/// The defaults were chosen with `cargo xtask bench` ("Polling efficiency"):
/// over jobs of 1 minute to 24 hours (log-uniform), a tenth of the calls of
/// polling every 15 s, with the median success seen within 2 % of the job's
/// duration. A quick first look catches batches that fail at once.
impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            first_ms: 5_000,
            growth_permille: 30,
            min_ms: 30_000,
            max_ms: 1_800_000,
            jitter_permille: 100,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    pub base_ms: u64,
    pub max_ms: u64,
    pub jitter_permille: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { base_ms: 2_000, max_ms: 300_000, jitter_permille: 200 }
    }
}

/// Spread `ms` by ±`permille`/1000 using `rand`.
fn jitter(ms: u64, permille: u64, rand: u64) -> u64 {
    let span = ms.saturating_mul(permille) / 1000;
    if span == 0 {
        return ms;
    }
    let offset = rand % (2 * span + 1);
    (ms + offset).saturating_sub(span)
}

impl PollPolicy {
    /// Delay before the next poll of a batch created `age_ms` ago.
    pub fn next_delay_ms(&self, age_ms: u64, rand: u64) -> u64 {
        if age_ms == 0 {
            return self.first_ms;
        }
        let base = (age_ms.saturating_mul(self.growth_permille) / 1000)
            .clamp(self.min_ms, self.max_ms.max(self.min_ms));
        jitter(base, self.jitter_permille, rand).max(1)
    }
}

impl RetryPolicy {
    /// Delay before retry number `attempt` (1 = the first retry); a server's
    /// `RetryInfo` wins when it asks for longer.
    pub fn delay_ms(&self, attempt: u32, server_hint_ms: Option<u64>, rand: u64) -> u64 {
        let exp = self.base_ms.saturating_mul(1u64 << attempt.saturating_sub(1).min(30));
        let d = jitter(exp.min(self.max_ms), self.jitter_permille, rand);
        d.max(server_hint_ms.unwrap_or(0)).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn polls_start_fast_and_back_off_to_the_cap() {
        let p = PollPolicy { jitter_permille: 0, ..PollPolicy::default() };
        assert_eq!(p.next_delay_ms(0, 0), 5_000);
        assert_eq!(p.next_delay_ms(60_000, 0), 30_000, "floor");
        assert_eq!(p.next_delay_ms(3_600_000, 0), 108_000, "3 % of an hour");
        assert_eq!(p.next_delay_ms(86_400_000, 0), 1_800_000, "cap");
    }

    #[test]
    fn retries_double_up_to_the_cap_and_honour_retry_info() {
        let r = RetryPolicy { jitter_permille: 0, ..RetryPolicy::default() };
        let ds: Vec<u64> = (1..=10).map(|a| r.delay_ms(a, None, 0)).collect();
        assert_eq!(&ds[..4], &[2_000, 4_000, 8_000, 16_000]);
        assert_eq!(ds[9], 300_000);
        assert_eq!(r.delay_ms(1, Some(30_000), 0), 30_000);
    }

    proptest! {
        #[test]
        fn jitter_stays_within_its_band(age in 0u64..200_000_000, rand: u64) {
            let p = PollPolicy::default();
            let plain = PollPolicy { jitter_permille: 0, ..p.clone() }.next_delay_ms(age, 0);
            let d = p.next_delay_ms(age, rand);
            prop_assert!(d * 1000 >= plain * 900 && d * 1000 <= plain * 1100);
        }

        /// Over a job of any length, polls number at most ~log-many and the
        /// success is seen within 3 % of the job's age (or the floor).
        #[test]
        fn detection_delay_is_bounded_by_the_growth(duration_ms in 60_000u64..86_400_000, rand: u64) {
            let p = PollPolicy { max_ms: u64::MAX, jitter_permille: 0, ..PollPolicy::default() };
            let (mut t, mut polls) = (0u64, 0u32);
            while t < duration_ms {
                t += p.next_delay_ms(t, rand);
                polls += 1;
            }
            let delay = t - duration_ms;
            prop_assert!(delay <= (duration_ms * 3 / 100).max(p.min_ms) + p.min_ms);
            prop_assert!(polls < 600);
        }
    }
}
