//! How a [`Job`] is kept in its Durable Object's storage: a versioned record,
//! `{"recordVersion": 2, "job": {…}}`. Every older form is read through an
//! explicit migration to today's; a record from a newer batchgate is refused
//! rather than guessed at (a rollback must not run jobs it half understands).
//!
//! - Version 1 (no `recordVersion`): the job's fields flat, the shard state
//!   among them, `billing` and the shard fields absent in the oldest records.
//! - Version 2: the shard state in its own object (`sharding`).

use super::Job;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The version [`write`] produces.
pub const CURRENT: u32 = 2;

/// Version 1's shard fields, which version 2 keeps under `sharding` (with
/// the shard list renamed `specs`).
const V1_SHARD_FIELDS: [(&str, &str); 9] = [
    ("shards", "specs"),
    ("shard", "shard"),
    ("resubmits", "resubmits"),
    ("batchSinceMs", "batchSinceMs"),
    ("quotaHeld", "quotaHeld"),
    ("linesDone", "linesDone"),
    ("progressDone", "progressDone"),
    ("staleFiles", "staleFiles"),
    ("shardStartedMs", "shardStartedMs"),
];

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StoredJobRef<'a> {
    record_version: u32,
    job: &'a Job,
}

/// A record's version, read first (every other field is skipped).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Version {
    #[serde(default = "version_1")]
    record_version: u32,
}

/// A record of the current version.
#[derive(Deserialize)]
struct StoredJob {
    job: Job,
}

fn version_1() -> u32 {
    1
}

/// The record to store for `job`.
pub fn write(job: &Job) -> Result<String, serde_json::Error> {
    serde_json::to_string(&StoredJobRef { record_version: CURRENT, job })
}

/// A stored record of any version this code knows, as today's [`Job`].
/// (Read as bytes: `from_str` would compile a second copy of the job's reader
/// into the worker's wasm, for `serde_json`'s string input.)
pub fn read(text: &str) -> Result<Job, String> {
    let unreadable = |e: serde_json::Error| format!("unreadable job record: {e}");
    match serde_json::from_slice::<Version>(text.as_bytes()).map_err(unreadable)?.record_version {
        CURRENT => serde_json::from_slice::<StoredJob>(text.as_bytes()).map(|s| s.job).map_err(unreadable),
        1 => from_v1(text),
        v if v > CURRENT => Err(format!(
            "the job record is version {v}, written by a newer batchgate (this one reads up to {CURRENT})"
        )),
        v => Err(format!("the job record has version {v}, which no batchgate wrote")),
    }
}

/// Version 1 → 2: move the shard fields into `sharding`, then read the result
/// as today's record (through the same reader, so no second one is kept).
/// Fields the oldest records lack read as their defaults (`#[serde(default)]`).
fn from_v1(text: &str) -> Result<Job, String> {
    let Ok(Value::Object(mut flat)) = serde_json::from_slice::<Value>(text.as_bytes()) else {
        return Err("a version 1 job record is not a JSON object".into());
    };
    let mut sharding = Map::new();
    for (old, new) in V1_SHARD_FIELDS {
        if let Some(v) = flat.remove(old) {
            sharding.insert(new.into(), v);
        }
    }
    flat.insert("sharding".into(), Value::Object(sharding));
    let mut record = Map::new();
    record.insert("job".into(), Value::Object(flat));
    let text = Value::Object(record).to_string();
    serde_json::from_slice::<StoredJob>(text.as_bytes())
        .map(|s| s.job)
        .map_err(|e| format!("unreadable version 1 job record: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{JobState, Phase};

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn a_sharded_job_stored_mid_ingest_by_version_1_reads_back_whole() {
        let job = read(&fixture("job-v1.json")).unwrap();
        assert_eq!((job.id(), job.model()), ("big", "m"));
        assert_eq!(job.attempt(), (1, 0));
        assert_eq!(job.shard_count(), 3);
        assert_eq!(job.shard_spec().first_line, 4);
        assert!(job.sharding.quota_held);
        assert_eq!(job.sharding.lines_done, 4);
        assert_eq!(job.sharding.batch_since_ms, Some(8250));
        assert_eq!(job.sharding.shard_started_ms, Some(6620));
        assert_eq!(job.sharding.stale_files, vec!["files/stale".to_string()]);
        assert!(matches!(job.phase(), Phase::Ingesting { .. }));
        assert_eq!(job.billing.reserved, 1_000_000);
        assert_eq!(job.version, 20);
        assert_eq!(job.state(), JobState::Running);
        let plan = job.purge_plan();
        assert_eq!(plan.files, vec!["files/in".to_string(), "files/stale".into(), "files/batch-b".into()]);
        assert!(plan.release_quota);
    }

    #[test]
    fn a_done_job_and_one_from_before_shards_and_billing_read_back() {
        let done = read(&fixture("job-v1-done.json")).unwrap();
        assert_eq!(done.state(), JobState::Succeeded);
        assert!(done.is_done() && done.is_charged());
        let oldest = read(&fixture("job-v1-unsharded-oldest.json")).unwrap();
        assert_eq!(oldest.sharding, crate::job::Sharding::default());
        assert_eq!(oldest.billing, crate::job::Billing::default());
        assert_eq!(oldest.state(), JobState::Succeeded);
    }

    #[test]
    fn a_migrated_record_is_written_at_the_current_version_and_reads_back_equal() {
        for name in ["job-v1.json", "job-v1-done.json", "job-v1-unsharded-oldest.json"] {
            let job = read(&fixture(name)).unwrap();
            let text = write(&job).unwrap();
            assert!(text.starts_with(r#"{"recordVersion":2,"job":{"#), "{text}");
            assert_eq!(read(&text).unwrap(), job, "{name}");
        }
    }

    #[test]
    fn a_newer_or_broken_record_is_refused_not_guessed() {
        let job = read(&fixture("job-v1.json")).unwrap();
        let newer = write(&job).unwrap().replacen(r#""recordVersion":2"#, r#""recordVersion":3"#, 1);
        assert!(read(&newer).is_err_and(|e| e.contains("newer")));
        assert!(read("[]").is_err());
        assert!(read(r#"{"recordVersion":2}"#).is_err());
        assert!(read(r#"{"id": 5}"#).is_err(), "a version 1 record that is not a job");
    }
}
