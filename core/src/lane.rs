//! Which lane a job runs in: Gemini's Batch API (half price, results within
//! 24 h) or realtime calls (standard price, results now). The user asks with
//! `mode`; `auto` picks realtime for small jobs, as the systems batchgate
//! replaces do by hand (batch only above a threshold).

use serde::{Deserialize, Serialize};

/// What the user asked for.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Batch,
    Realtime,
    Auto,
}

/// Where the job runs.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    #[default]
    Batch,
    Realtime,
}

/// The lane chosen and why, as the job's view shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Choice {
    pub lane: Lane,
    pub reason: String,
}

/// The lane for a job of `requests` requests: `auto` runs realtime at most
/// `auto_max` requests (the operator's `AUTO_REALTIME_MAX_REQUESTS`).
pub fn choose(mode: Mode, requests: u64, auto_max: u64) -> Choice {
    match mode {
        Mode::Batch => Choice { lane: Lane::Batch, reason: "mode batch".into() },
        Mode::Realtime => Choice { lane: Lane::Realtime, reason: "mode realtime".into() },
        Mode::Auto if requests <= auto_max => Choice {
            lane: Lane::Realtime,
            reason: format!("auto: {requests} requests, at most {auto_max} run realtime"),
        },
        Mode::Auto => Choice {
            lane: Lane::Batch,
            reason: format!("auto: {requests} requests, more than {auto_max} run as a batch"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_runs_small_jobs_realtime_and_says_why() {
        assert_eq!(choose(Mode::Auto, 50, 50).lane, Lane::Realtime);
        assert_eq!(choose(Mode::Auto, 51, 50).lane, Lane::Batch);
        assert!(choose(Mode::Auto, 51, 50).reason.contains("more than 50"));
        assert_eq!(choose(Mode::Batch, 1, 50).lane, Lane::Batch, "an explicit mode is kept");
        assert_eq!(choose(Mode::Realtime, 1_000, 50).lane, Lane::Realtime);
        assert_eq!(serde_json::from_str::<Mode>("\"auto\"").unwrap(), Mode::Auto);
        assert!(serde_json::from_str::<Mode>("\"fast\"").is_err(), "an unknown mode is refused");
    }
}
