//! What users see of a job (`GET /v1/jobs/:id`), built from the stored [`Job`].
//! Shared with the SDK, so both sides agree on every field.

use crate::gemini::timestamp::format_nanos;
use crate::job::{Job, JobError, JobState};
use crate::results::Usage;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub succeeded: u64,
    pub failed: u64,
    pub pending: u64,
    /// Requests Gemini returned no result for (counted as failed too).
    pub missing: u64,
}

/// A job's money, in micro-credits.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    /// Held at submit: the estimate at the batch price.
    pub reserved: i64,
    /// What the results delivered so far cost at the batch price.
    pub delivered: i64,
    /// The same at the standard price (the saving is the difference).
    pub standard: i64,
    /// Set once the job ended and its account was charged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charged: Option<i64>,
}

#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub id: String,
    pub state: JobState,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", tsify(type = "Record<string, unknown>"))]
    pub metadata: Option<Value>,
    pub request_count: u64,
    pub counts: Counts,
    pub usage: Usage,
    #[serde(default)]
    pub cost: Cost,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    pub cancel_requested: bool,
    /// The job whose failed and missing lines this job retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<String>,
    /// Results can be read (all of them, or as many as Gemini returned).
    pub results_ready: bool,
    pub version: u64,
    /// The Gemini batches the job runs as (1 unless it is over Gemini's file
    /// size or enqueued-token limits, several at once), and the first still
    /// in progress (0-based).
    #[serde(default = "one")]
    pub shards: u64,
    #[serde(default)]
    pub shard: u64,
    /// What can be read already (`GET /v1/jobs/:id/results?partial=true`).
    #[serde(default)]
    pub readable: Readable,
    /// Where it runs: `batch` (half price) or `realtime` (standard price, now).
    #[serde(default)]
    pub lane: crate::lane::Lane,
    /// Why that lane (`auto` says how it chose).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane_reason: Option<String>,
}

/// The shards whose results are stored whole, and the result lines they hold.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Readable {
    pub shards: u64,
    pub lines: u64,
}

fn one() -> u64 {
    1
}

/// Facts about a job kept beside its state machine.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobMeta {
    pub display_name: Option<String>,
    pub metadata: Option<Value>,
    pub missing: u64,
    /// The job whose failed lines this one retries.
    #[serde(default)]
    pub retry_of: Option<String>,
}

fn ts(ms: u64) -> String {
    format_nanos((ms as i64).saturating_mul(1_000_000))
}

impl JobView {
    pub fn of(job: &Job, meta: &JobMeta) -> JobView {
        let state = job.state();
        let tally = job.tally();
        let ingested = job.results_complete() && tally != Default::default();
        let counts = if ingested || state.is_terminal() {
            let failed = tally.failed + tally.malformed + meta.missing;
            let done = tally.succeeded + failed;
            Counts {
                succeeded: tally.succeeded,
                failed,
                pending: job.request_count.saturating_sub(done),
                missing: meta.missing,
            }
        } else {
            let progress = job.progress();
            Counts {
                succeeded: progress.succeeded,
                failed: progress.failed,
                pending: progress.pending,
                missing: 0,
            }
        };
        JobView {
            id: job.id.clone(),
            state,
            model: job.model.clone(),
            display_name: meta.display_name.clone(),
            metadata: meta.metadata.clone(),
            request_count: job.request_count,
            counts,
            usage: tally.usage,
            cost: {
                let (delivered, standard) = job.cost();
                Cost { reserved: job.billing.reserved, delivered, standard, charged: job.billing.charged }
            },
            created_at: ts(job.created_ms),
            updated_at: ts(job.updated_ms),
            submitted_at: job.submitted_ms.map(ts),
            finished_at: job.finished_ms.map(ts),
            error: job.error.clone(),
            cancel_requested: job.cancel_requested,
            lane: job.lane(),
            lane_reason: job.lane_choice().map(|c| c.reason.clone()),
            retry_of: meta.retry_of.clone(),
            results_ready: ingested,
            version: job.version,
            shards: job.shard_count(),
            shard: job.runs().first().map_or(job.shard_count().saturating_sub(1), |r| r.shard()),
            readable: Readable { shards: job.readable_shards().len() as u64, lines: job.readable_lines() },
        }
    }

    /// What watchers are sent a new view for: its state, counts, usage, cost,
    /// results and error (not a poll that changed nothing they see).
    pub fn watched(&self) -> String {
        let seen = (
            &self.state,
            &self.counts,
            &self.usage,
            &self.cost,
            self.results_ready,
            &self.error,
            self.readable,
        );
        serde_json::to_string(&seen).unwrap_or_default()
    }

    /// A strong ETag: the job id and its version.
    pub fn etag(&self) -> String {
        format!("\"{}-{}\"", self.id, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_job_is_accepted_with_everything_pending() {
        let job = Job::new("j".into(), "gemini-2.5-flash".into(), 3, 10, 1_765_391_221_407);
        let v = JobView::of(&job, &JobMeta::default());
        assert_eq!(v.state, JobState::Accepted);
        assert_eq!(v.counts, Counts { pending: 3, ..Counts::default() });
        assert_eq!(v.created_at, "2025-12-10T18:27:01.407000000Z");
        assert!(!v.results_ready);
        assert_eq!(v.etag(), "\"j-1\"");
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["state"], "accepted");
        assert!(json.get("error").is_none());
    }
}
