//! The enqueued-token governor: one per Gemini model (the QuotaObject), shared
//! by every job, so the shards in flight never ask Gemini for more than the
//! model's cap. Gemini answers a create over the cap with a 429; asking first
//! keeps shards waiting here, in order, instead of hammering Gemini.
//!
//! A hold is keyed by (job, shard): admitting or releasing it again changes
//! nothing, so the JobObject can repeat either after a lost answer. Holds
//! older than the job deadline are dropped, in case a job vanished holding one.

use serde::{Deserialize, Serialize};

/// Each model's enqueued-token cap (Gemini's "batch enqueued tokens" per
/// model and tier); the longest listed prefix of a model id applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caps {
    default: u64,
    models: Vec<(String, u64)>,
}

impl Default for Caps {
    /// Tier 1's published figures (the lowest paid tier: a safe start).
    fn default() -> Self {
        Caps {
            default: 3_000_000,
            models: vec![
                ("gemini-2.5-flash".into(), 3_000_000),
                ("gemini-2.5-flash-lite".into(), 10_000_000),
                ("gemini-2.5-pro".into(), 5_000_000),
            ],
        }
    }
}

impl Caps {
    /// `{"model-prefix": tokens, …, "*": default}`; unlisted models keep the built-in figures.
    pub fn from_json(text: &str) -> Result<Caps, String> {
        let map: std::collections::BTreeMap<String, u64> = serde_json::from_slice(text.as_bytes())
            .map_err(|e| format!("ENQUEUED_TOKEN_CAPS must map model ids to token counts: {e}"))?;
        let mut caps = Caps::default();
        for (model, cap) in map {
            match model.as_str() {
                "*" => caps.default = cap,
                _ => {
                    caps.models.retain(|(m, _)| *m != model);
                    caps.models.push((model, cap));
                }
            }
        }
        Ok(caps)
    }

    pub fn of(&self, model: &str) -> u64 {
        let model = crate::model::bare(model);
        self.models
            .iter()
            .filter(|(m, _)| model.starts_with(m.as_str()))
            .max_by_key(|(m, _)| m.len())
            .map_or(self.default, |(_, cap)| *cap)
    }
}

/// One shard's claim on the quota.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    pub job: String,
    pub shard: u64,
    pub tokens: u64,
    pub since_ms: u64,
}

/// What a JobObject asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmitRequest {
    pub job: String,
    pub shard: u64,
    pub tokens: u64,
    /// The model's cap, from the operator's settings.
    pub cap: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Admission {
    pub admitted: bool,
    /// Tokens held after this decision (for the timeline and the tests).
    pub enqueued: u64,
}

/// Whether `request` may go: it already holds the quota, or it fits under the
/// cap beside `holds`, or nothing else is enqueued (a shard bigger than the
/// cap alone would otherwise wait forever; Gemini then decides).
pub fn admit(holds: &[Hold], request: &AdmitRequest) -> Admission {
    let enqueued: u64 = holds.iter().map(|h| h.tokens).sum();
    let mine = holds.iter().any(|h| h.job == request.job && h.shard == request.shard);
    let admitted = mine || enqueued.saturating_add(request.tokens) <= request.cap || holds.is_empty();
    let after = if admitted && !mine { enqueued.saturating_add(request.tokens) } else { enqueued };
    Admission { admitted, enqueued: after }
}

/// Holds to drop as abandoned: older than `max_age_ms`.
pub fn stale(holds: &[Hold], now_ms: u64, max_age_ms: u64) -> Vec<(String, u64)> {
    holds
        .iter()
        .filter(|h| now_ms.saturating_sub(h.since_ms) > max_age_ms)
        .map(|h| (h.job.clone(), h.shard))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hold(job: &str, shard: u64, tokens: u64) -> Hold {
        Hold { job: job.into(), shard, tokens, since_ms: 0 }
    }

    fn ask(job: &str, shard: u64, tokens: u64) -> AdmitRequest {
        AdmitRequest { job: job.into(), shard, tokens, cap: 1_000 }
    }

    #[test]
    fn shards_fit_under_the_cap_and_wait_beyond_it() {
        let holds = vec![hold("a", 0, 600)];
        assert!(admit(&holds, &ask("b", 0, 400)).admitted);
        assert!(!admit(&holds, &ask("b", 0, 401)).admitted);
        assert_eq!(admit(&holds, &ask("b", 0, 401)).enqueued, 600);
    }

    #[test]
    fn asking_again_for_a_held_shard_is_admitted_without_counting_twice() {
        let holds = vec![hold("a", 0, 900)];
        assert_eq!(admit(&holds, &ask("a", 0, 900)), Admission { admitted: true, enqueued: 900 });
    }

    #[test]
    fn a_shard_over_the_cap_goes_alone() {
        assert!(admit(&[], &ask("a", 0, 5_000)).admitted);
        assert!(!admit(&[hold("b", 0, 1)], &ask("a", 0, 5_000)).admitted);
    }

    #[test]
    fn caps_go_by_the_longest_model_prefix() {
        let caps = Caps::default();
        assert_eq!(caps.of("gemini-2.5-flash"), 3_000_000);
        assert_eq!(caps.of("models/gemini-2.5-flash-lite-preview"), 10_000_000);
        assert_eq!(caps.of("gemini-3-pro"), 3_000_000);
        let caps = Caps::from_json(r#"{"*": 7, "gemini-2.5-flash": 300000}"#).unwrap();
        assert_eq!(
            (caps.of("gemini-2.5-flash"), caps.of("gemini-2.5-pro"), caps.of("x")),
            (300_000, 5_000_000, 7)
        );
        assert!(Caps::from_json(r#"{"m": "lots"}"#).unwrap_err().contains("ENQUEUED_TOKEN_CAPS"));
    }

    #[test]
    fn only_old_holds_are_stale() {
        let holds = vec![Hold { since_ms: 10, ..hold("a", 0, 1) }, Hold { since_ms: 500, ..hold("b", 2, 1) }];
        assert_eq!(stale(&holds, 600, 200), vec![("a".to_string(), 0)]);
    }

    proptest! {
        /// Any order of asks and releases from many jobs: what is held never
        /// exceeds the cap unless a single shard is over it on its own.
        #[test]
        fn the_cap_is_never_exceeded(ops in proptest::collection::vec((0u8..4, 0u64..3, 1u64..700, any::<bool>()), 1..200)) {
            let cap = 1_000;
            let mut holds: Vec<Hold> = vec![];
            for (job, shard, tokens, release) in ops {
                let job = format!("j{job}");
                if release {
                    holds.retain(|h| !(h.job == job && h.shard == shard));
                    continue;
                }
                let request = AdmitRequest { job: job.clone(), shard, tokens, cap };
                let decision = admit(&holds, &request);
                let known = holds.iter().any(|h| h.job == job && h.shard == shard);
                if decision.admitted && !known {
                    holds.push(Hold { job, shard, tokens, since_ms: 0 });
                }
                let total: u64 = holds.iter().map(|h| h.tokens).sum();
                prop_assert_eq!(decision.enqueued, total);
                prop_assert!(total <= cap || holds.len() == 1, "{} held by {} shards", total, holds.len());
            }
        }
    }
}
