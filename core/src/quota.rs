//! The governor of what Gemini holds for us (the QuotaObject, one for the
//! deployment), shared by every job: per Gemini key, each model's enqueued
//! tokens stay under the model's cap and the batches in flight under the
//! key's concurrent-batch limit. Gemini answers a create over either with a
//! 429; asking first keeps shards waiting here, in order, instead of
//! hammering Gemini. With several keys, a shard goes to the key with the
//! most room for its model; a key Gemini refused (401/403) is out of rotation.
//!
//! A hold is keyed by (job, shard): admitting or releasing it again changes
//! nothing (a repeat is admitted on the key it already holds), so the
//! JobObject can repeat either after a lost answer. Holds older than the job
//! deadline are dropped, in case a job vanished holding one.

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
    /// A figure per model prefix, and `default` for the rest.
    pub fn new(default: u64, models: &[(&str, u64)]) -> Caps {
        Caps { default, models: models.iter().map(|(m, n)| (m.to_string(), *n)).collect() }
    }

    /// `{"model-prefix": tokens, …, "*": default}`; unlisted models keep the built-in figures.
    pub fn from_json(text: &str) -> Result<Caps, String> {
        Caps::default().overridden("ENQUEUED_TOKEN_CAPS", text)
    }

    /// These figures with the operator's `{"model-prefix": n, …, "*": default}`
    /// (the setting `name`) over them.
    pub fn overridden(self, name: &str, text: &str) -> Result<Caps, String> {
        let map: std::collections::BTreeMap<String, u64> = serde_json::from_slice(text.as_bytes())
            .map_err(|e| format!("{name} must map model ids to numbers: {e}"))?;
        let mut caps = self;
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    pub job: String,
    pub shard: u64,
    pub model: String,
    /// The key's id (see [`crate::keys`]).
    pub key: String,
    pub tokens: u64,
    pub since_ms: u64,
}

/// What a JobObject asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmitRequest {
    pub job: String,
    pub shard: u64,
    pub model: String,
    pub tokens: u64,
    /// The model's cap, from the operator's settings.
    pub cap: u64,
    /// Batches one key may have in flight (`MAX_CONCURRENT_BATCHES`).
    pub max_batches: u64,
    /// The ids of the keys configured, in the operator's order.
    pub keys: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Admission {
    pub admitted: bool,
    /// The key the shard is to use (set when admitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Tokens held for the model on that key after this decision (for the timeline and the tests).
    pub enqueued: u64,
}

/// Tokens held for `model` on `key`.
fn enqueued(holds: &[Hold], key: &str, model: &str) -> u64 {
    holds.iter().filter(|h| h.key == key && h.model == model).map(|h| h.tokens).fold(0, u64::saturating_add)
}

/// Whether `request` may go, and on which key: the one it already holds, or
/// of the keys in rotation (configured, not `revoked`) the one with the
/// fewest tokens enqueued for the model where the shard fits under the cap
/// (or nothing is enqueued for the model on that key: a shard bigger than the
/// cap alone would otherwise wait forever; Gemini then decides) and the key
/// has a batch to spare.
pub fn admit<'a>(holds: &[Hold], revoked: &[String], request: &'a AdmitRequest) -> Admission {
    if let Some(h) = holds.iter().find(|h| h.job == request.job && h.shard == request.shard) {
        return Admission {
            admitted: true,
            key: Some(h.key.clone()),
            enqueued: enqueued(holds, &h.key, &h.model),
        };
    }
    let fits = |key: &'a String| {
        let tokens = enqueued(holds, key, &request.model);
        let batches = holds.iter().filter(|h| h.key == *key).count() as u64;
        let room = tokens.saturating_add(request.tokens) <= request.cap || tokens == 0;
        (room && batches < request.max_batches).then_some((tokens, key))
    };
    let best = request.keys.iter().filter(|k| !revoked.contains(k)).filter_map(fits).min_by_key(|(t, _)| *t);
    match best {
        Some((tokens, key)) => Admission {
            admitted: true,
            key: Some(key.clone()),
            enqueued: tokens.saturating_add(request.tokens),
        },
        None => Admission { admitted: false, key: None, enqueued: 0 },
    }
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
        Hold { job: job.into(), shard, model: "m".into(), key: "k1".into(), tokens, since_ms: 0 }
    }

    fn ask(job: &str, shard: u64, tokens: u64) -> AdmitRequest {
        AdmitRequest {
            job: job.into(),
            shard,
            model: "m".into(),
            tokens,
            cap: 1_000,
            max_batches: 100,
            keys: vec!["k1".into()],
        }
    }

    #[test]
    fn shards_fit_under_the_cap_and_wait_beyond_it() {
        let holds = vec![hold("a", 0, 600)];
        assert_eq!(admit(&holds, &[], &ask("b", 0, 400)).key.as_deref(), Some("k1"));
        assert!(!admit(&holds, &[], &ask("b", 0, 401)).admitted);
    }

    #[test]
    fn asking_again_for_a_held_shard_is_admitted_on_its_key_without_counting_twice() {
        let holds = vec![hold("a", 0, 900)];
        let again = AdmitRequest { keys: vec!["k2".into()], ..ask("a", 0, 900) };
        assert_eq!(
            admit(&holds, &[], &again),
            Admission { admitted: true, key: Some("k1".into()), enqueued: 900 }
        );
    }

    #[test]
    fn a_shard_over_the_cap_goes_alone() {
        assert!(admit(&[], &[], &ask("a", 0, 5_000)).admitted);
        assert!(!admit(&[hold("b", 0, 1)], &[], &ask("a", 0, 5_000)).admitted);
    }

    #[test]
    fn caps_are_per_model_and_batches_per_key() {
        let other_model = Hold { model: "n".into(), ..hold("b", 0, 1_000) };
        assert!(
            admit(std::slice::from_ref(&other_model), &[], &ask("a", 0, 1_000)).admitted,
            "another model's tokens do not count"
        );
        let two = AdmitRequest { max_batches: 1, ..ask("a", 0, 1) };
        assert!(!admit(&[other_model], &[], &two).admitted, "but its batch does");
    }

    #[test]
    fn shards_spread_over_keys_and_a_revoked_key_gets_none() {
        let keys = vec!["k1".to_string(), "k2".to_string()];
        let two_keys = |job: &str| AdmitRequest { keys: keys.clone(), ..ask(job, 0, 600) };
        let holds = vec![hold("a", 0, 600)];
        assert_eq!(admit(&holds, &[], &two_keys("b")).key.as_deref(), Some("k2"), "the key with room");
        assert!(!admit(&holds, &["k2".into()], &two_keys("b")).admitted, "k2 is out, k1 is full");
        assert_eq!(admit(&[], &["k1".into()], &two_keys("b")).key.as_deref(), Some("k2"));
        assert!(!admit(&[], &keys, &two_keys("b")).admitted, "no key left");
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
        /// Any order of asks and releases from many jobs, two models and two
        /// keys: on each key, what is held for a model never exceeds the cap
        /// unless a single shard is over it on its own, and no key holds more
        /// batches than allowed.
        #[test]
        fn the_caps_are_never_exceeded(ops in proptest::collection::vec((0u8..4, 0u64..3, 1u64..700, any::<bool>(), any::<bool>()), 1..200)) {
            let (cap, max_batches) = (1_000, 3);
            let keys = vec!["k1".to_string(), "k2".to_string()];
            let mut holds: Vec<Hold> = vec![];
            for (job, shard, tokens, model_n, release) in ops {
                let job = format!("j{job}");
                if release {
                    holds.retain(|h| !(h.job == job && h.shard == shard));
                    continue;
                }
                let model = if model_n { "n" } else { "m" }.to_string();
                let request = AdmitRequest { job: job.clone(), shard, model: model.clone(), tokens, cap, max_batches, keys: keys.clone() };
                let decision = admit(&holds, &[], &request);
                let known = holds.iter().any(|h| h.job == job && h.shard == shard);
                if let (true, false, Some(key)) = (decision.admitted, known, decision.key.clone()) {
                    holds.push(Hold { job, shard, model, key, tokens, since_ms: 0 });
                }
                for key in &keys {
                    prop_assert!(holds.iter().filter(|h| h.key == *key).count() as u64 <= max_batches);
                    for model in ["m", "n"] {
                        let mine: Vec<&Hold> = holds.iter().filter(|h| h.key == *key && h.model == model).collect();
                        let total: u64 = mine.iter().map(|h| h.tokens).sum();
                        prop_assert!(total <= cap || mine.len() == 1, "{} held by {} shards", total, mine.len());
                    }
                }
            }
        }
    }
}
