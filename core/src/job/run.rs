//! One shard's life at Gemini: admitted by the quota, uploaded, created,
//! polled, ingested and cleaned up. A [`Job`](super::Job) runs one `Run` per
//! shard, several at once; each steps on its own schedule and the job only
//! decides when to start the next and how the whole ends.
//!
//! Because the phase alone says what comes next, a step that was cut off or
//! delivered twice simply repeats:
//! - creating a batch is the one step Gemini cannot repeat safely (a second
//!   create is a second, paid job), so the attempt is recorded *before* the
//!   call and a retry first looks for a batch the lost attempt may have made;
//! - ingestion advances by slices whose cursor is stored with their results;
//! - the quota is held from admission until the batch has ended and released
//!   by its own step ([`Action::Release`]), so a lost release is repeated.
//!
//! A batch stuck in PENDING past [`Policy::pending_limit_ms`] is cancelled and
//! submitted again, and an EXPIRED one without results is submitted again,
//! both at most [`Policy::max_resubmits`] times.

use super::{Action, End, JobError, JobState, Outcome, Phase, Policy, Progress};
use crate::gemini::BatchState;
use crate::gemini::client::Failure;
use crate::ingest::Cursor;
use crate::results::Tally;
use crate::shard::ShardSpec;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub(crate) shard: u64,
    /// Its lines, bytes and tokens of the job's input.
    pub(crate) spec: ShardSpec,
    pub(crate) phase: Phase,
    /// Times this shard was submitted again.
    pub(crate) resubmits: u32,
    /// The Gemini key (its id, never the key) the quota gave this shard: its
    /// batch is created, polled, read and cancelled with that key only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) key: Option<String>,
    pub(crate) gemini_state: Option<BatchState>,
    pub(crate) batch: Option<String>,
    pub(crate) input_file: Option<String>,
    /// When the current batch was created (its age drives polling).
    pub(crate) batch_since_ms: Option<u64>,
    /// When the shard started (queued for the quota); the deadline counts from here.
    pub(crate) started_ms: u64,
    /// The quota admitted this shard and has not been told its batch ended.
    pub(crate) quota_held: bool,
    pub(crate) cancel_requested: bool,
    pub(crate) cancel_sent: bool,
    /// Consecutive transient failures (reset by any success).
    pub(crate) retries: u32,
    pub(crate) polls: u32,
    pub(crate) next_at_ms: u64,
    /// Gemini's counts for this shard's batch, as last polled.
    pub(crate) progress: Progress,
    /// What its ingested result lines hold, and how many there are.
    pub(crate) tally: Tally,
    pub(crate) lines: u64,
    /// Files of abandoned attempts, deleted with the rest.
    pub(crate) stale_files: Vec<String>,
    pub(crate) error: Option<JobError>,
    /// Its results were being read when it failed: the lines read so far are
    /// dropped (not charged, their index rows deleted), its requests missing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) results_discarded: bool,
    /// It runs in the realtime lane (its results are charged the standard price).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) realtime: bool,
    /// Realtime steps begun in a row that never reported (their alarm was torn
    /// down): each may have had Gemini answer, so they are bounded.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) answer_attempts: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Realtime steps of one shard begun before it fails (each may have made calls Gemini bills).
pub const MAX_ANSWER_ATTEMPTS: u32 = 3;

impl Run {
    pub(crate) fn new(shard: u64, spec: ShardSpec, now_ms: u64) -> Run {
        Run {
            shard,
            spec,
            phase: Phase::Queued,
            resubmits: 0,
            key: None,
            gemini_state: None,
            batch: None,
            input_file: None,
            batch_since_ms: None,
            started_ms: now_ms,
            quota_held: false,
            cancel_requested: false,
            cancel_sent: false,
            retries: 0,
            polls: 0,
            next_at_ms: now_ms,
            progress: Progress { pending: spec.requests, ..Progress::default() },
            tally: Tally::default(),
            lines: 0,
            stale_files: vec![],
            error: None,
            results_discarded: false,
            realtime: false,
            answer_attempts: 0,
        }
    }

    pub fn shard(&self) -> u64 {
        self.shard
    }

    pub fn spec(&self) -> ShardSpec {
        self.spec
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The Gemini key's id this shard's batch belongs to (none before admission).
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// `(shard, resubmits)`: which attempt at Gemini this is.
    pub fn attempt(&self) -> (u64, u32) {
        (self.shard, self.resubmits)
    }

    /// The user cancelled (or the job stopped) while it was under way.
    pub fn cancel_requested(&self) -> bool {
        self.cancel_requested
    }

    /// The last step failed transiently (an upload resumes by asking where it stands).
    pub fn after_a_failure(&self) -> bool {
        self.retries > 0
    }

    /// A create has gone out and no batch is known yet: Gemini may hold one this shard does not.
    pub fn create_maybe_sent(&self) -> bool {
        matches!(self.phase, Phase::Creating { attempts, .. } if attempts > 0)
    }

    /// How it ended, once its results are in (ingested, or there were none).
    pub fn end(&self) -> Option<End> {
        match self.phase {
            Phase::Cleaning { end, .. } | Phase::Done { end } => Some(end),
            _ => None,
        }
    }

    /// Its results are stored whole (or it has none): they may be read.
    pub fn results_in(&self) -> bool {
        self.end().is_some()
    }

    /// It failed while its results were being read: the lines stored so far
    /// are not its results (see [`Run::results_discarded`]'s field).
    pub fn results_discarded(&self) -> bool {
        self.results_discarded
    }

    /// The job stopped (another shard failed or expired): a shard that has
    /// not reached Gemini ends here, cancelled, rather than start a batch the
    /// job will not wait for. One at Gemini runs to its end.
    pub(crate) fn stand_down(&mut self, now_ms: u64) {
        if self.before_gemini() {
            let files = self.input_file.iter().cloned().collect();
            self.finish(End::Cancelled, files, now_ms);
        } else if matches!(self.phase, Phase::Answering) {
            // Its step may be answering right now: it ends at its next step, never under one.
            self.cancel_requested = true;
            self.next_at_ms = now_ms;
        }
    }

    /// A realtime job's shards answer with realtime calls; they need no quota and make no batch.
    pub(crate) fn enter_lane(&mut self, lane: crate::lane::Lane) {
        if lane == crate::lane::Lane::Realtime && matches!(self.phase, Phase::Queued) {
            self.phase = Phase::Answering;
            self.realtime = true;
        }
    }

    /// It has not reached Gemini: no batch exists or may exist for it.
    pub(crate) fn before_gemini(&self) -> bool {
        matches!(
            self.phase,
            Phase::Queued
                | Phase::Uploading { .. }
                | Phase::Creating { attempts: 0, .. }
                | Phase::Creating { verified_absent: true, .. }
        )
    }

    /// The job fell back to the realtime lane: answer `spec` with realtime
    /// calls. Room it holds at the quota is released first and a Gemini file
    /// it uploaded is deleted at its end, as its batch's would have been.
    pub(crate) fn answer_realtime(&mut self, spec: ShardSpec, now_ms: u64) {
        // Waiting at the quota, an admission whose answer was lost may be held: release it.
        if matches!(self.phase, Phase::Queued) {
            self.quota_held = true;
        }
        self.stale_files.extend(self.input_file.take());
        self.spec = spec;
        self.phase = Phase::Answering;
        self.realtime = true;
        self.progress = Progress { pending: spec.requests, ..Progress::default() };
        self.retries = 0;
        self.next_at_ms = now_ms;
    }

    /// Nothing left to do: cleaned up and its quota returned.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Done { .. }) && !self.quota_held
    }

    /// It takes a place at Gemini (or waits for one): queued, uploading, created or abandoning.
    pub(crate) fn in_flight(&self) -> bool {
        matches!(self.phase, Phase::Queued | Phase::Answering) || self.needs_quota()
    }

    /// Whether it counts against the quota: from admission until its batch ended.
    fn needs_quota(&self) -> bool {
        matches!(
            self.phase,
            Phase::Uploading { .. }
                | Phase::Creating { .. }
                | Phase::Submitted { .. }
                | Phase::Abandoning { .. }
        )
    }

    /// Its state as a job of one shard would show it.
    pub(crate) fn state(&self) -> JobState {
        match &self.phase {
            Phase::Queued | Phase::Uploading { session_url: None, offset: 0 } => JobState::Accepted,
            Phase::Uploading { .. } | Phase::Creating { .. } => JobState::Uploading,
            Phase::Submitted { .. } => match self.gemini_state {
                Some(BatchState::Running) => JobState::Running,
                _ => JobState::Pending,
            },
            Phase::Abandoning { .. } => JobState::Pending,
            Phase::Ingesting { .. } => JobState::Ingesting,
            Phase::Answering => JobState::Running,
            Phase::Cleaning { end, .. } | Phase::Done { end } => JobState::from(*end),
        }
    }

    /// The step due now, if any (none: it waits until [`Run::next_at_ms`], or is finished).
    pub(crate) fn next_action(&self, now_ms: u64) -> Option<Action> {
        if self.is_finished() || now_ms < self.next_at_ms {
            return None;
        }
        if self.quota_held && !self.needs_quota() {
            return Some(Action::Release);
        }
        Some(match &self.phase {
            Phase::Queued => Action::Admit { tokens: self.spec.tokens },
            Phase::Uploading { session_url: None, .. } => Action::StartUpload,
            Phase::Uploading { session_url: Some(u), offset } => {
                Action::ContinueUpload { session_url: u.clone(), offset: *offset }
            }
            Phase::Creating { attempts, verified_absent: false, .. } if *attempts > 0 => Action::FindBatch,
            Phase::Creating { file, .. } => Action::CreateBatch { file: file.clone() },
            Phase::Submitted { batch } if self.cancel_requested && !self.cancel_sent => {
                Action::CancelBatch { batch: batch.clone() }
            }
            Phase::Submitted { batch } => Action::PollBatch { batch: batch.clone() },
            Phase::Abandoning { batch } => Action::CancelBatch { batch: batch.clone() },
            Phase::Ingesting { results, cursor, size, .. } => {
                Action::Ingest { results: results.clone(), cursor: cursor.clone(), size: *size }
            }
            Phase::Cleaning { files, .. } => Action::DeleteFiles { files: files.clone() },
            // A cancel is carried out by the step too (see `stand_down`).
            Phase::Answering => Action::Answer,
            Phase::Done { .. } => return None,
        })
    }

    pub fn next_at_ms(&self) -> u64 {
        self.next_at_ms
    }

    /// The user cancelled the job. Before Gemini has a batch this ends the
    /// shard at once; afterwards the next step tells Gemini and polling
    /// carries on until Gemini reports the end (keeping whatever it returns).
    pub(crate) fn request_cancel(&mut self, now_ms: u64) {
        if self.results_in() || self.cancel_requested {
            return;
        }
        self.cancel_requested = true;
        match &self.phase {
            Phase::Queued
            | Phase::Uploading { .. }
            | Phase::Creating { attempts: 0, .. }
            | Phase::Creating { verified_absent: true, .. } => {
                let files = self.input_file.iter().cloned().collect();
                self.finish(End::Cancelled, files, now_ms);
            }
            _ => self.next_at_ms = now_ms,
        }
    }

    /// Gemini says `batch` changed (a webhook): poll it now rather than on the schedule.
    pub(crate) fn wake(&mut self, batch: &str, now_ms: u64) -> bool {
        let waiting = matches!(&self.phase, Phase::Submitted { batch: b } if b == batch);
        if waiting && self.next_at_ms > now_ms {
            self.next_at_ms = now_ms;
        }
        waiting
    }

    /// The files a purge must delete: its input, abandoned attempts', the results being read.
    pub(crate) fn files(&self) -> Vec<String> {
        let mut files: Vec<String> = self.input_file.iter().chain(&self.stale_files).cloned().collect();
        if let Phase::Ingesting { results, .. } = &self.phase {
            files.push(results.clone());
        }
        files
    }

    /// Its results are in: clean up its Gemini files (if any), then it is done.
    fn finish(&mut self, end: End, mut files: Vec<String>, now_ms: u64) {
        // Ending while queued: an admission whose answer was lost may be held.
        // Releasing what is not held is a no-op, leaking it is not.
        if matches!(self.phase, Phase::Queued) {
            self.quota_held = true;
        }
        files.append(&mut self.stale_files);
        self.phase =
            if files.is_empty() { Phase::Done { end } } else { Phase::Cleaning { end, files, tries: 0 } };
        self.next_at_ms = now_ms;
    }

    /// Submit the shard again from its upload (its Gemini file may have
    /// expired with the batch); the old file is deleted at the end.
    fn resubmit(&mut self, now_ms: u64) {
        self.resubmits += 1;
        self.stale_files.extend(self.input_file.take());
        self.batch = None;
        self.gemini_state = None;
        self.batch_since_ms = None;
        self.phase = Phase::Uploading { session_url: None, offset: 0 };
        self.next_at_ms = now_ms;
    }

    /// The cleanup step is over (done, or given up).
    fn cleaned(&mut self) {
        if let Phase::Cleaning { end, .. } = self.phase {
            self.phase = Phase::Done { end };
        }
    }

    fn fail(&mut self, code: &str, message: String, now_ms: u64) {
        self.error = Some(JobError { code: code.into(), message });
        if matches!(self.phase, Phase::Ingesting { .. }) {
            // Part of a results file is no result: nothing of it is charged or shown.
            self.tally = Tally::default();
            self.lines = 0;
            self.results_discarded = true;
        }
        let files = self.files();
        self.finish(End::Failed, files, now_ms);
    }

    /// Feed back what its action produced. `rand` spreads retries and polls.
    pub(crate) fn apply(&mut self, outcome: Outcome, now_ms: u64, rand: u64, policy: &Policy) {
        if !matches!(outcome, Outcome::Failed(_)) {
            self.retries = 0;
        }
        // A step that reported, success or failure, is no longer one that vanished.
        if matches!(self.phase, Phase::Answering) && !matches!(outcome, Outcome::AnswerSending) {
            self.answer_attempts = 0;
        }
        match outcome {
            Outcome::Admitted { key } => {
                self.quota_held = true;
                if matches!(self.phase, Phase::Queued) {
                    self.key = key;
                    self.phase = Phase::Uploading { session_url: None, offset: 0 };
                }
                self.next_at_ms = now_ms;
            }
            Outcome::QuotaFull => self.next_at_ms = now_ms + policy.quota_retry_ms,
            Outcome::Released => {
                self.quota_held = false;
                self.next_at_ms = now_ms;
            }
            Outcome::UploadStarted { session_url } => {
                self.phase = Phase::Uploading { session_url: Some(session_url), offset: 0 };
                self.next_at_ms = now_ms;
            }
            Outcome::UploadProgress { offset } => {
                if let Phase::Uploading { offset: o, .. } = &mut self.phase {
                    *o = offset;
                }
                self.next_at_ms = now_ms;
            }
            Outcome::Uploaded { file } => {
                self.input_file = Some(file.clone());
                self.phase = Phase::Creating { file, attempts: 0, verified_absent: false };
                self.next_at_ms = now_ms;
            }
            Outcome::AnswerSending if matches!(self.phase, Phase::Answering) => {
                self.answer_attempts += 1;
                if self.answer_attempts > MAX_ANSWER_ATTEMPTS {
                    let message =
                        format!("its realtime step began {MAX_ANSWER_ATTEMPTS} times and never finished");
                    self.fail("realtime_failed", message, now_ms);
                }
            }
            Outcome::AnswerSending => {}
            Outcome::CreateSending => {
                if let Phase::Creating { attempts, verified_absent, .. } = &mut self.phase {
                    *attempts += 1;
                    *verified_absent = false;
                }
            }
            Outcome::BatchAbsent => {
                if let Phase::Creating { verified_absent, .. } = &mut self.phase {
                    *verified_absent = true;
                }
                if self.cancel_requested {
                    let files = self.input_file.iter().cloned().collect();
                    self.finish(End::Cancelled, files, now_ms);
                }
                self.next_at_ms = now_ms;
            }
            Outcome::BatchFound { batch } | Outcome::Created { batch } => {
                self.batch = Some(batch.clone());
                self.batch_since_ms = Some(now_ms);
                self.gemini_state = Some(BatchState::Pending);
                self.phase = Phase::Submitted { batch };
                self.next_at_ms = now_ms + policy.poll.next_delay_ms(0, rand);
                if self.cancel_requested {
                    self.next_at_ms = now_ms;
                }
            }
            Outcome::CancelSent if matches!(self.phase, Phase::Answering) => {
                self.finish(End::Cancelled, vec![], now_ms);
            }
            Outcome::Answered { tally, lines } => {
                if matches!(self.phase, Phase::Answering) {
                    self.progress = Progress {
                        succeeded: tally.succeeded,
                        failed: tally.failed + tally.malformed,
                        pending: 0,
                    };
                    self.tally = tally;
                    self.lines = lines;
                    self.finish(End::Succeeded, vec![], now_ms);
                }
            }
            // A stuck batch cancelled after the user cancelled the job: nothing goes again.
            Outcome::CancelSent
                if matches!(self.phase, Phase::Abandoning { .. }) && self.cancel_requested =>
            {
                let files = self.input_file.iter().cloned().collect();
                self.finish(End::Cancelled, files, now_ms);
            }
            Outcome::CancelSent if matches!(self.phase, Phase::Abandoning { .. }) => self.resubmit(now_ms),
            Outcome::CancelSent => {
                self.cancel_sent = true;
                self.next_at_ms = now_ms + policy.poll.first_ms;
            }
            Outcome::Polled { state, progress, results_file, error } => {
                self.polls += 1;
                self.progress = progress;
                self.gemini_state = Some(state.clone());
                self.on_polled(state, results_file, error, now_ms, rand, policy);
            }
            Outcome::IngestProgress { cursor, size } => {
                if let Phase::Ingesting { cursor: c, size: s, .. } = &mut self.phase {
                    self.tally = cursor.tally.clone();
                    *c = cursor;
                    *s = Some(size);
                }
                self.next_at_ms = now_ms;
            }
            Outcome::Ingested => {
                if let Phase::Ingesting { results, end, cursor, .. } = &self.phase {
                    let mut files: Vec<String> = self.input_file.iter().cloned().collect();
                    files.push(results.clone());
                    let end = *end;
                    self.lines = cursor.lines;
                    self.finish(end, files, now_ms);
                }
            }
            Outcome::FilesDeleted => self.cleaned(),
            // The job's own outcome: not this shard's.
            Outcome::Settled { .. } => {}
            Outcome::Failed(f) => self.on_failure(f, now_ms, rand, policy),
        }
        self.enforce_deadline(now_ms, policy);
    }

    fn on_polled(
        &mut self,
        state: BatchState,
        results_file: Option<String>,
        error: Option<String>,
        now_ms: u64,
        rand: u64,
        policy: &Policy,
    ) {
        let Phase::Submitted { batch } = &self.phase else { return };
        let batch = batch.clone();
        let age = now_ms.saturating_sub(self.batch_since_ms.unwrap_or(now_ms));
        let may_resubmit = self.resubmits < policy.max_resubmits && !self.cancel_requested;
        let end = match state {
            BatchState::Succeeded => End::Succeeded,
            BatchState::Failed => End::Failed,
            BatchState::Expired if may_resubmit && results_file.is_none() => return self.resubmit(now_ms),
            BatchState::Expired => End::Expired,
            BatchState::Cancelled => End::Cancelled,
            BatchState::Pending if may_resubmit && age >= policy.pending_limit_ms => {
                self.phase = Phase::Abandoning { batch };
                self.next_at_ms = now_ms;
                return;
            }
            _ => {
                self.next_at_ms = now_ms + policy.poll.next_delay_ms(age.max(1), rand);
                return;
            }
        };
        if end != End::Succeeded {
            let message = error.unwrap_or_else(|| format!("Gemini ended the batch as {}", state.as_wire()));
            self.error = Some(JobError { code: format!("gemini_{}", JobState::from(end).as_str()), message });
        }
        match results_file {
            Some(results) => {
                // A migrated record's cursor may carry on from earlier shards (see `stored`).
                let cursor = Cursor { lines: self.lines, tally: self.tally.clone(), ..Cursor::default() };
                self.phase = Phase::Ingesting { batch, results, end, cursor, size: None };
                self.next_at_ms = now_ms;
            }
            None => {
                let files = self.input_file.iter().cloned().collect();
                self.finish(end, files, now_ms);
            }
        }
    }

    fn on_failure(&mut self, f: Failure, now_ms: u64, rand: u64, policy: &Policy) {
        match f {
            Failure::Transient { retry_after_ms, .. } => {
                self.retries += 1;
                self.next_at_ms = now_ms + policy.retry.delay_ms(self.retries, retry_after_ms, rand);
                if let Phase::Cleaning { tries, .. } = &mut self.phase {
                    *tries += 1;
                    if *tries >= policy.cleanup_tries {
                        self.cleaned();
                    }
                }
            }
            Failure::Permanent { status: 401 | 403, message } => self.key_refused(message, now_ms, policy),
            Failure::Permanent { status, message } => match &self.phase {
                // A file we made is already gone: nothing left to clean.
                Phase::Cleaning { .. } => self.cleaned(),
                // Our own quota object does not refuse; whatever this was, ask again.
                Phase::Queued | Phase::Abandoning { .. } => {
                    self.retries += 1;
                    self.next_at_ms = now_ms + policy.retry.delay_ms(self.retries, None, rand);
                }
                Phase::Uploading { .. } => self.fail("gemini_upload_refused", message, now_ms),
                Phase::Creating { .. } => self.fail("gemini_create_refused", message, now_ms),
                Phase::Submitted { .. } if status == 404 => self.fail(
                    "gemini_batch_lost",
                    format!("Gemini no longer knows the batch: {message}"),
                    now_ms,
                ),
                Phase::Submitted { .. } => {
                    self.retries += 1;
                    self.next_at_ms = now_ms + policy.retry.delay_ms(self.retries, None, rand);
                }
                Phase::Ingesting { .. } => self.fail("results_unavailable", message, now_ms),
                Phase::Answering => self.fail("realtime_failed", message, now_ms),
                Phase::Done { .. } => {
                    // A release the quota refused: ask again.
                    self.retries += 1;
                    self.next_at_ms = now_ms + policy.retry.delay_ms(self.retries, None, rand);
                }
            },
        }
    }

    /// Gemini refused the shard's key (401/403: revoked, or its project
    /// disabled; the worker takes it out of rotation). Its batch, if it has
    /// one, can no longer be polled or read: before results, the shard goes
    /// back to the quota for another key (a batch that may exist counts as a
    /// resubmission); with results half read, or no resubmission left, it fails.
    fn key_refused(&mut self, message: String, now_ms: u64, policy: &Policy) {
        let batch_may_exist = matches!(self.phase, Phase::Submitted { .. } | Phase::Abandoning { .. })
            || matches!(self.phase, Phase::Creating { attempts, verified_absent: false, .. } if attempts > 0);
        match &self.phase {
            Phase::Queued | Phase::Done { .. } => {
                self.retries += 1;
                self.next_at_ms = now_ms + policy.retry.delay_ms(self.retries, None, 0);
            }
            Phase::Cleaning { .. } => self.cleaned(),
            Phase::Ingesting { .. } => self.fail("gemini_key_refused", message, now_ms),
            _ if batch_may_exist && (self.resubmits >= policy.max_resubmits || self.cancel_requested) => {
                self.fail("gemini_key_refused", message, now_ms)
            }
            _ => {
                if batch_may_exist {
                    self.resubmits += 1;
                }
                self.stale_files.extend(self.input_file.take());
                self.key = None;
                self.batch = None;
                self.gemini_state = None;
                self.batch_since_ms = None;
                self.phase = Phase::Queued;
                self.next_at_ms = now_ms;
            }
        }
    }

    /// Invariant 1's backstop: past the deadline (counted from the shard's
    /// start, so a job of 100 shards may rightly run for days), the shard ends
    /// even if Gemini never answered: failed if the job's first shard never
    /// reached Gemini, expired otherwise (it ends with what came back).
    fn enforce_deadline(&mut self, now_ms: u64, policy: &Policy) {
        if now_ms < self.started_ms.saturating_add(policy.deadline_ms) {
            return;
        }
        match &self.phase {
            Phase::Queued | Phase::Uploading { .. } | Phase::Creating { .. } if self.shard == 0 => {
                self.fail("deadline", "Gemini did not take the job before its deadline".into(), now_ms)
            }
            // A realtime step under way is not overtaken: it reports, or the attempt bound ends it.
            Phase::Answering if self.answer_attempts == 0 => {
                self.fail("deadline", "the realtime calls did not finish before the deadline".into(), now_ms)
            }
            Phase::Queued
            | Phase::Uploading { .. }
            | Phase::Creating { .. }
            | Phase::Submitted { .. }
            | Phase::Abandoning { .. } => {
                self.error = Some(JobError {
                    code: "deadline".into(),
                    message: "the job's deadline passed before Gemini finished it".into(),
                });
                let files = self.input_file.iter().cloned().collect();
                self.finish(End::Expired, files, now_ms);
            }
            _ => {}
        }
    }
}
