//! A job's timeline (`GET /v1/jobs/:id/events`): each step the JobObject took
//! and each change users can see, in their terms. Built from the state
//! machine's outcomes, so the worker only stores what this returns. Nothing
//! private to the worker appears (upload session URLs are capabilities).

use crate::gemini::client::Failure;
use crate::job::{Job, JobState, Outcome};
use serde::Serialize;
use serde_json::{Value, json};

/// One timeline entry: `kind` names it, `detail` says the rest.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    pub kind: &'static str,
    pub detail: Value,
}

fn event(kind: &'static str, detail: Value) -> Option<Event> {
    Some(Event { kind, detail })
}

/// URLs in a message become `<url>` (they may carry an upload session id).
fn redact(message: &str) -> String {
    let words: Vec<&str> = message.split(' ').map(|w| if w.contains("://") { "<url>" } else { w }).collect();
    let text = words.join(" ");
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", text.get(..cut).unwrap_or_default()),
        None => text,
    }
}

/// A job accepted: its requests, the credits reserved, the job it retries
/// and how many Gemini batches it runs as.
pub fn submitted(job: &Job, reserved: i64, retry_of: Option<&str>) -> Event {
    let detail = json!({"requests": job.request_count, "reserved": reserved,
                        "retryOf": retry_of, "shards": job.shard_count()});
    Event { kind: "submitted", detail }
}

/// A Gemini webhook about `batch` arrived (`woken`: the job polls at once).
pub fn gemini_webhook(batch: &str, kind: &str, woken: bool) -> Event {
    Event { kind: "gemini_webhook", detail: json!({"batch": batch, "type": kind, "woken": woken}) }
}

/// The user asked to cancel.
pub fn cancel_requested() -> Event {
    Event { kind: "cancel_requested", detail: json!({}) }
}

/// The entry for a step's outcome (none for bookkeeping users never see),
/// naming the shard it was for when the job has several.
pub fn of_outcome(shard: Option<u64>, outcome: &Outcome) -> Option<Event> {
    let mut e = outcome_event(outcome)?;
    if let (Some(s), Value::Object(detail)) = (shard, &mut e.detail) {
        detail.insert("shard".into(), json!(s));
    }
    Some(e)
}

fn outcome_event(outcome: &Outcome) -> Option<Event> {
    match outcome {
        // Which key (an internal id) is the operator's business (`GET /v1/admin/keys`).
        Outcome::Admitted { .. } => event("quota_admitted", json!({})),
        Outcome::QuotaFull => event("quota_waiting", json!({})),
        Outcome::Released => event("quota_released", json!({})),
        Outcome::UploadStarted { .. } => event("upload_started", json!({})),
        Outcome::UploadProgress { offset } => event("upload_progress", json!({"bytes": offset})),
        Outcome::Uploaded { file } => event("uploaded", json!({"file": file})),
        Outcome::CreateSending | Outcome::AnswerSending => None,
        Outcome::BatchFound { batch } => event("batch_found", json!({"batch": batch})),
        Outcome::BatchAbsent => event("batch_absent", json!({})),
        Outcome::Created { batch } => event("batch_created", json!({"batch": batch})),
        Outcome::CancelSent => event("cancel_sent", json!({})),
        Outcome::Polled { state, progress, error, .. } => event(
            "polled",
            json!({"geminiState": state, "succeeded": progress.succeeded, "failed": progress.failed,
                   "pending": progress.pending, "error": error.as_deref().map(redact)}),
        ),
        Outcome::IngestProgress { cursor, size } => event(
            "ingest_progress",
            json!({"lines": cursor.lines, "bytes": cursor.scan_offset, "size": size}),
        ),
        Outcome::Ingested => event("ingested", json!({})),
        Outcome::Answered { tally, lines } => event(
            "answered",
            json!({"lines": lines, "succeeded": tally.succeeded, "failed": tally.failed + tally.malformed}),
        ),
        Outcome::FilesDeleted => event("files_deleted", json!({})),
        Outcome::Settled { charge } => event("charged", json!({"amount": charge})),
        Outcome::Failed(Failure::Transient { message, retry_after_ms }) => {
            event("step_retried", json!({"message": redact(message), "retryAfterMs": retry_after_ms}))
        }
        Outcome::Failed(Failure::Permanent { status, message }) => {
            event("step_failed", json!({"status": status, "message": redact(message)}))
        }
    }
}

/// The entries for shards started (a job over Gemini's limits runs as
/// several batches) or submitted again after a stuck or expired batch, given
/// each shard's `(shard, resubmits)` before the step ([`Job::attempts`]).
pub fn shard_changes(before: &[(u64, u32)], after: &Job) -> Vec<Event> {
    after
        .runs()
        .iter()
        .filter_map(|run| {
            let (shard, resubmits) = run.attempt();
            let spec = run.spec();
            let detail = json!({"shard": shard, "of": after.shard_count(), "requests": spec.requests,
                                "tokens": spec.tokens, "attempt": resubmits + 1});
            match before.iter().find(|(s, _)| *s == shard) {
                None => event("shard_started", detail),
                Some((_, r)) if *r != resubmits => event("shard_resubmitted", detail),
                Some(_) => None,
            }
        })
        .collect()
}

/// The entry for a visible state change.
/// The job fell back to the realtime lane (it was in `before`).
pub fn lane_change(before: crate::lane::Lane, after: &Job) -> Option<Event> {
    let choice = after.lane_choice().filter(|c| c.lane != before)?;
    event("fallback_realtime", json!({"reason": redact(&choice.reason)}))
}

pub fn state_change(before: JobState, after: JobState) -> Option<Event> {
    (before != after).then(|| Event { kind: "state", detail: json!({"from": before, "to": after}) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemini::BatchState;
    use crate::job::Progress;

    #[test]
    fn polls_charges_and_state_changes_read_as_users_expect() {
        let polled = Outcome::Polled {
            state: BatchState::Running,
            progress: Progress { succeeded: 3, failed: 1, pending: 6 },
            results_file: None,
            error: None,
        };
        let e = of_outcome(None, &polled).unwrap_or_else(|| panic!("a poll is an event"));
        assert_eq!(e.kind, "polled");
        assert_eq!(e.detail["succeeded"], 3);
        assert_eq!(e.detail["geminiState"], "BATCH_STATE_RUNNING");
        assert_eq!(
            of_outcome(None, &Outcome::Settled { charge: 42 }).map(|e| e.detail["amount"].clone()),
            Some(json!(42))
        );
        assert_eq!(of_outcome(None, &Outcome::CreateSending), None);
        let s = state_change(JobState::Pending, JobState::Running).unwrap_or_else(|| panic!("a change"));
        assert_eq!(s.detail, json!({"from": "pending", "to": "running"}));
        assert_eq!(state_change(JobState::Running, JobState::Running), None);
    }

    #[test]
    fn upload_session_urls_never_appear() {
        let started = Outcome::UploadStarted { session_url: "https://x/upload?upload_id=SECRET".into() };
        let failed = Outcome::Failed(Failure::Transient {
            message: "error sending request for url (https://x/upload?upload_id=SECRET): reset".into(),
            retry_after_ms: None,
        });
        for o in [started, failed] {
            let e = of_outcome(None, &o).unwrap_or_else(|| panic!("an event"));
            assert!(!e.detail.to_string().contains("SECRET"), "{}", e.detail);
        }
    }

    #[test]
    fn a_new_shard_and_a_resubmission_are_told_apart() {
        use crate::job::Policy;
        use crate::shard::ShardSpec;
        let spec =
            |first_line| ShardSpec { first_line, requests: 1, offset: first_line, bytes: 1, tokens: 5 };
        let mut job = Job::new("j".into(), "m".into(), 2, 2, 0).with_shards(vec![spec(0), spec(1)]);
        let before = job.attempts();
        assert_eq!(shard_changes(&before, &job), vec![]);
        // Shard 0 admitted: shard 1 starts beside it.
        job.apply(Some(0), Outcome::Admitted { key: None }, 1, 0, &Policy::default());
        let started = shard_changes(&before, &job);
        assert_eq!(started.len(), 1);
        assert_eq!(
            (started[0].kind, started[0].detail["shard"].clone(), started[0].detail["tokens"].clone()),
            ("shard_started", json!(1), json!(5))
        );
        assert_eq!(of_outcome(Some(1), &Outcome::QuotaFull).map(|e| e.detail), Some(json!({"shard": 1})));
        // A resubmission: the run for shard 0 counts one more attempt.
        let before = job.attempts();
        let mut later = job.clone();
        later.runs[0].resubmits = 1;
        assert_eq!(
            shard_changes(&before, &later).into_iter().map(|e| e.kind).collect::<Vec<_>>(),
            ["shard_resubmitted"]
        );
    }
}
