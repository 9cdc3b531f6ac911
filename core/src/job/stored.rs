//! How a [`Job`] is kept in its Durable Object's storage: a versioned record,
//! `{"recordVersion": 3, "job": {…}}`. Every older form is read through an
//! explicit migration to today's; a record from a newer batchgate is refused
//! rather than guessed at (a rollback must not run jobs it half understands).
//!
//! - Version 1 (no `recordVersion`): the job's fields flat, the shard state
//!   among them, `billing` and the shard fields absent in the oldest records.
//! - Version 2: the shard state in its own object (`sharding`); one shard at
//!   a time, its phase and Gemini facts on the job.
//! - Version 3: shards run side by side, each a [`super::Run`] in `runs`;
//!   shards already finished are folded into `finished`.

use super::Job;
use crate::results::Tally;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The version [`write`] produces.
pub const CURRENT: u32 = 3;

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

/// Version 2's fields about the shard in progress, which version 3 keeps on its run.
const V2_RUN_FIELDS: [&str; 8] =
    ["phase", "geminiState", "batch", "inputFile", "cancelRequested", "cancelSent", "retries", "polls"];

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
    let version = serde_json::from_slice::<Version>(text.as_bytes()).map_err(unreadable)?.record_version;
    if version == CURRENT {
        return serde_json::from_slice::<StoredJob>(text.as_bytes()).map(|s| s.job).map_err(unreadable);
    }
    if version > CURRENT {
        return Err(format!(
            "the job record is version {version}, written by a newer batchgate (this one reads up to {CURRENT})"
        ));
    }
    let record = serde_json::from_slice::<Value>(text.as_bytes()).map_err(unreadable)?;
    let job = match (version, record) {
        (1, Value::Object(flat)) => from_v2(from_v1(flat))?,
        (2, Value::Object(mut record)) => match record.remove("job") {
            Some(Value::Object(job)) => from_v2(job)?,
            _ => return Err("a version 2 job record has no job".into()),
        },
        (1 | 2, _) => return Err(format!("a version {version} job record is not a JSON object")),
        (v, _) => return Err(format!("the job record has version {v}, which no batchgate wrote")),
    };
    // Read through the same reader as today's records, so no second one is kept.
    let text = json!({"job": job}).to_string();
    serde_json::from_slice::<StoredJob>(text.as_bytes())
        .map(|s| s.job)
        .map_err(|e| format!("unreadable version {version} job record: {e}"))
}

/// Version 1 → 2: move the shard fields into `sharding`. Fields the oldest
/// records lack read as their defaults.
fn from_v1(mut flat: Map<String, Value>) -> Map<String, Value> {
    let mut sharding = Map::new();
    for (old, new) in V1_SHARD_FIELDS {
        if let Some(v) = flat.remove(old) {
            sharding.insert(new.into(), v);
        }
    }
    flat.insert("sharding".into(), Value::Object(sharding));
    flat
}

/// Version 2 → 3: the shard in progress becomes the one run; the shards
/// before it are finished. While a shard was being ingested, its cursor
/// (line numbers and tally) carried on from the shards before, so the run
/// keeps the whole tally and the finished shards none; otherwise the job's
/// tally and lines are the finished shards'.
fn from_v2(mut job: Map<String, Value>) -> Result<Map<String, Value>, String> {
    let mut sharding = match job.remove("sharding") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let num = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    let shard = num(sharding.get("shard"));
    let specs = sharding.remove("specs").unwrap_or_else(|| json!([]));
    let whole = json!({"firstLine": 0, "requests": num(job.get("requestCount")), "offset": 0,
                       "bytes": num(job.get("inputBytes")), "tokens": 0});
    let spec = usize::try_from(shard).ok().and_then(|i| specs.get(i)).cloned().unwrap_or(whole);
    let mut run = Map::new();
    for field in V2_RUN_FIELDS {
        run.insert(field.into(), job.remove(field).unwrap_or(Value::Null));
    }
    let Some(Value::Object(phase)) = run.get_mut("phase") else {
        return Err("a version 2 job record has no phase".into());
    };
    phase.remove("nextShard");
    let kind = phase.get("phase").and_then(Value::as_str).unwrap_or_default().to_string();
    let end = phase.get("end").cloned().filter(|_| kind == "cleaning" || kind == "done");
    let zero = serde_json::to_value(Tally::default()).map_err(|e| e.to_string())?;
    let tally = job.remove("tally").filter(|t| !t.is_null()).unwrap_or_else(|| zero.clone());
    let ingesting = kind == "ingesting";
    let (run_tally, done_tally) = if ingesting { (tally, zero) } else { (zero, tally) };
    let lines_done = if ingesting { 0 } else { num(sharding.get("linesDone")) };
    let progress = job.remove("progress").unwrap_or(Value::Null);
    let before = sharding.remove("progressDone").unwrap_or(Value::Null);
    let count = |v: &Value, k: &str| num(v.get(k));
    let (succeeded, failed) = (
        count(&progress, "succeeded").saturating_sub(count(&before, "succeeded")),
        count(&progress, "failed").saturating_sub(count(&before, "failed")),
    );
    let requests = count(&spec, "requests");
    let started = sharding.get("shardStartedMs").filter(|v| !v.is_null()).or(job.get("createdMs")).cloned();
    for (k, v) in [
        ("shard", json!(shard)),
        ("spec", spec),
        ("resubmits", json!(num(sharding.get("resubmits")))),
        ("batchSinceMs", sharding.remove("batchSinceMs").unwrap_or(Value::Null)),
        ("startedMs", started.unwrap_or(json!(0))),
        ("quotaHeld", json!(sharding.get("quotaHeld").and_then(Value::as_bool).unwrap_or(false))),
        ("nextAtMs", job.get("nextAtMs").cloned().unwrap_or(json!(0))),
        (
            "progress",
            json!({"succeeded": succeeded, "failed": failed,
                            "pending": requests.saturating_sub(succeeded + failed)}),
        ),
        ("tally", run_tally),
        ("lines", json!(0)),
        ("staleFiles", sharding.remove("staleFiles").unwrap_or_else(|| json!([]))),
        ("error", job.get("error").cloned().unwrap_or(Value::Null)),
    ] {
        run.insert(k.into(), v);
    }
    for flag in ["cancelRequested", "cancelSent"] {
        if run.get(flag).is_none_or(Value::is_null) {
            run.insert(flag.into(), json!(false));
        }
    }
    for counter in ["retries", "polls"] {
        if run.get(counter).is_none_or(Value::is_null) {
            run.insert(counter.into(), json!(0));
        }
    }
    job.insert("cancelRequested".into(), run.get("cancelRequested").cloned().unwrap_or(json!(false)));
    job.insert("retries".into(), run.get("retries").cloned().unwrap_or(json!(0)));
    job.insert("specs".into(), specs);
    job.insert("nextShard".into(), json!(shard + 1));
    job.insert("runs".into(), json!([Value::Object(run)]));
    let before =
        json!({"succeeded": count(&before, "succeeded"), "failed": count(&before, "failed"), "pending": 0});
    job.insert(
        "finished".into(),
        json!({"shards": shard, "lines": lines_done, "progress": before, "tally": done_tally}),
    );
    job.insert("stop".into(), end.filter(|e| e != "succeeded").unwrap_or(Value::Null));
    Ok(job)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{End, JobState, Phase};

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn a_sharded_job_stored_mid_ingest_by_version_1_reads_back_whole() {
        let job = read(&fixture("job-v1.json")).unwrap();
        assert_eq!((job.id(), job.model()), ("big", "m"));
        assert_eq!(job.attempts(), vec![(1, 0)]);
        assert_eq!(job.shard_count(), 3);
        let run = &job.runs()[0];
        assert_eq!(run.spec().first_line, 4);
        assert!(run.quota_held);
        assert_eq!(run.batch_since_ms, Some(8250));
        assert_eq!(run.started_ms, 6620);
        assert_eq!(run.stale_files, vec!["files/stale".to_string()]);
        assert!(matches!(run.phase(), Phase::Ingesting { .. }));
        assert_eq!((job.finished.shards, job.next_shard), (1, 2));
        assert_eq!(job.billing.reserved, 1_000_000);
        assert_eq!(job.version, 20);
        assert_eq!(job.state(), JobState::Running);
        let plan = job.purge_plan();
        let files: Vec<&str> = plan.files.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(files, ["files/in", "files/stale", "files/batch-b"]);
        assert_eq!(plan.release_shards, vec![1]);
    }

    #[test]
    fn a_done_job_and_one_from_before_shards_and_billing_read_back() {
        let done = read(&fixture("job-v1-done.json")).unwrap();
        assert_eq!(done.state(), JobState::Succeeded);
        assert!(done.is_done() && done.is_charged());
        let oldest = read(&fixture("job-v1-unsharded-oldest.json")).unwrap();
        assert_eq!(oldest.shard_count(), 1);
        assert_eq!(oldest.billing, crate::job::Billing::default());
        assert_eq!(oldest.state(), JobState::Succeeded);
    }

    /// Version 2 jobs, caught mid-flight by the upgrade, carry on to the same
    /// totals: the tally and line count of the shards before, plus the current one's.
    #[test]
    fn sharded_jobs_stored_by_version_2_carry_on_where_they_were() {
        let ingesting = read(&fixture("job-v2-ingesting.json")).unwrap();
        assert_eq!(ingesting.attempts(), vec![(1, 0)]);
        assert_eq!(ingesting.tally().succeeded, 7, "4 from shard 0, 3 of shard 1 so far");
        assert!(matches!(ingesting.runs()[0].phase(), Phase::Ingesting { .. }));
        assert_eq!(ingesting.readable_shards(), vec![0]);
        assert_eq!(ingesting.state(), JobState::Running);

        let between = read(&fixture("job-v2-between.json")).unwrap();
        assert_eq!(between.tally().succeeded, 8);
        assert_eq!(between.readable_lines(), 8);
        assert_eq!(between.readable_shards(), vec![0, 1]);
        assert!(matches!(between.runs()[0].phase(), Phase::Cleaning { end: End::Succeeded, .. }));
        assert_eq!(between.next_shard, 2, "shard 2 starts next");

        let submitted = read(&fixture("job-v2-submitted.json")).unwrap();
        assert_eq!(submitted.attempts(), vec![(2, 0)]);
        assert_eq!(submitted.runs()[0].batch.as_deref(), Some("batches/batchgate-big-2-0"));
        assert_eq!(submitted.display_name(&submitted.runs()[0]), "batchgate-big-2-0");
        assert_eq!((submitted.tally().succeeded, submitted.readable_lines()), (8, 8));
        assert_eq!(submitted.end(), None);
    }

    #[test]
    fn a_migrated_record_is_written_at_the_current_version_and_reads_back_equal() {
        for name in [
            "job-v1.json",
            "job-v1-done.json",
            "job-v1-unsharded-oldest.json",
            "job-v2-ingesting.json",
            "job-v2-between.json",
            "job-v2-submitted.json",
        ] {
            let job = read(&fixture(name)).unwrap();
            let text = write(&job).unwrap();
            assert!(text.starts_with(r#"{"recordVersion":3,"job":{"#), "{text}");
            assert_eq!(read(&text).unwrap(), job, "{name}");
        }
    }

    #[test]
    fn a_newer_or_broken_record_is_refused_not_guessed() {
        let job = read(&fixture("job-v1.json")).unwrap();
        let newer = write(&job).unwrap().replacen(r#""recordVersion":3"#, r#""recordVersion":4"#, 1);
        assert!(read(&newer).is_err_and(|e| e.contains("newer")));
        assert!(read("[]").is_err());
        assert!(read(r#"{"recordVersion":3}"#).is_err());
        assert!(read(r#"{"recordVersion":2}"#).is_err());
        assert!(read(r#"{"recordVersion":0, "job": {}}"#).is_err_and(|e| e.contains("no batchgate")));
        assert!(read(r#"{"id": 5}"#).is_err(), "a version 1 record that is not a job");
    }
}
