//! The life of one job as a sans-IO state machine.
//!
//! The JobObject keeps a [`Job`] in storage. On every alarm it asks
//! [`Job::next_action`] what to do, does that one thing (a Gemini call, a slice of
//! ingestion…), feeds the result back through [`Job::apply`], stores the job, and
//! sets the next alarm at [`Job::next_at_ms`]. Because the phase alone says what
//! comes next, an alarm that was cut off or delivered twice simply repeats a step:
//! - creating a batch is the one step Gemini cannot repeat safely (a second create
//!   is a second, paid job), so the attempt is recorded *before* the call and a
//!   retry first looks for a batch the lost attempt may have made;
//! - ingestion advances by slices whose cursor is stored with their results;
//! - a job that ends is charged once: [`Action::Settle`] repeats until the
//!   account confirms, and the account ledger ignores a repeated settle.
//!
//! A job over Gemini's limits runs as several batches, one shard at a time
//! (see [`crate::shard`]): each shard is admitted against the model's
//! enqueued-token quota ([`Action::Admit`]), uploaded, created, polled and
//! ingested, its Gemini files deleted, and the next shard starts. The quota is
//! held from admission until the shard's batch has ended and released by its
//! own step ([`Action::Release`]), so a lost release is repeated, not leaked.
//! A shard stuck in PENDING past [`Policy::pending_limit_ms`] is cancelled and
//! submitted again, and an EXPIRED one without results is submitted again,
//! both at most [`Policy::max_resubmits`] times.

use crate::gemini::BatchState;
use crate::gemini::client::Failure;
use crate::ingest::Cursor;
use crate::pricing::{Price, Tokens};
use crate::results::{Tally, Usage};
use crate::schedule::{PollPolicy, RetryPolicy};
use crate::shard::ShardSpec;
use serde::{Deserialize, Serialize};

/// How a job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum End {
    Succeeded,
    Failed,
    Expired,
    Cancelled,
}

/// Where a job is. Serialized into the JobObject's storage (read back by
/// `phase_serde`, in the same format).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "phase", rename_all = "camelCase")]
pub enum Phase {
    /// Waiting for the model's enqueued-token quota to admit the shard.
    Queued,
    /// Sending the input JSONL to the Files API (resumable).
    #[serde(rename_all = "camelCase")]
    Uploading {
        session_url: Option<String>,
        offset: u64,
    },
    /// Creating the batch. `attempts` counts creates sent; after a lost answer
    /// (`attempts > 0`) the next step looks for the batch before creating again.
    #[serde(rename_all = "camelCase")]
    Creating {
        file: String,
        attempts: u32,
        verified_absent: bool,
    },
    /// Waiting for Gemini, polling on the schedule.
    #[serde(rename_all = "camelCase")]
    Submitted {
        batch: String,
    },
    /// Cancelling a batch stuck in PENDING, to submit the shard again.
    #[serde(rename_all = "camelCase")]
    Abandoning {
        batch: String,
    },
    /// Copying the results file into R2.
    #[serde(rename_all = "camelCase")]
    Ingesting {
        batch: String,
        results: String,
        end: End,
        cursor: Cursor,
        size: Option<u64>,
    },
    /// Deleting the Gemini files we made; `tries` bounds it (they expire anyway).
    /// With `next_shard`, a shard is done and that one starts after.
    #[serde(rename_all = "camelCase")]
    Cleaning {
        end: End,
        files: Vec<String>,
        tries: u32,
        next_shard: Option<u64>,
    },
    Done {
        end: End,
    },
}

/// The state users see.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum JobState {
    Accepted,
    Uploading,
    Pending,
    Running,
    Ingesting,
    Succeeded,
    Failed,
    Expired,
    Cancelled,
}

impl JobState {
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed | JobState::Expired | JobState::Cancelled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Accepted => "accepted",
            JobState::Uploading => "uploading",
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Ingesting => "ingesting",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Expired => "expired",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        [
            JobState::Accepted,
            JobState::Uploading,
            JobState::Pending,
            JobState::Running,
            JobState::Ingesting,
            JobState::Succeeded,
            JobState::Failed,
            JobState::Expired,
            JobState::Cancelled,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

impl From<End> for JobState {
    fn from(e: End) -> JobState {
        match e {
            End::Succeeded => JobState::Succeeded,
            End::Failed => JobState::Failed,
            End::Expired => JobState::Expired,
            End::Cancelled => JobState::Cancelled,
        }
    }
}

#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobError {
    pub code: String,
    pub message: String,
}

/// Gemini's own counters, as last polled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub succeeded: u64,
    pub failed: u64,
    pub pending: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub poll: PollPolicy,
    pub retry: RetryPolicy,
    /// A job (or, for a sharded job, a shard) not finished this long after it
    /// started is ended (Gemini expires batches at 48 h; this is the backstop
    /// for invariant 1).
    pub deadline_ms: u64,
    /// Cleanup gives up after this many failed tries (Gemini deletes files at 48 h).
    pub cleanup_tries: u32,
    /// A batch PENDING this long is cancelled and its shard submitted again.
    pub pending_limit_ms: u64,
    /// How often one shard may be submitted again (stuck or expired).
    pub max_resubmits: u32,
    /// How long a shard the quota refused waits before asking again.
    pub quota_retry_ms: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            poll: PollPolicy::default(),
            retry: RetryPolicy::default(),
            deadline_ms: 72 * 3_600_000,
            cleanup_tries: 5,
            pending_limit_ms: 24 * 3_600_000,
            max_resubmits: 2,
            quota_retry_ms: 60_000,
        }
    }
}

/// What a job costs: the price it was quoted at (kept, so a price change
/// mid-job changes nothing), what was reserved, and the charge once it ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Billing {
    pub price: Price,
    pub reserved: i64,
    /// Set once the account has recorded the charge.
    pub charged: Option<i64>,
}

/// One job: what was submitted, where it stands at Gemini, and what it has
/// delivered and been charged. Its fields are core's: the worker reads it
/// through methods and changes it only through [`Job::apply`] and the few
/// requests a user can make ([`Job::request_cancel`], [`Job::wake`]).
/// Stored as a [`stored::StoredJob`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub(crate) id: String,
    pub(crate) model: String,
    pub(crate) request_count: u64,
    pub(crate) input_bytes: u64,
    pub(crate) created_ms: u64,
    pub(crate) updated_ms: u64,
    pub(crate) submitted_ms: Option<u64>,
    pub(crate) finished_ms: Option<u64>,
    pub(crate) phase: Phase,
    pub(crate) gemini_state: Option<BatchState>,
    pub(crate) batch: Option<String>,
    pub(crate) input_file: Option<String>,
    pub(crate) progress: Progress,
    pub(crate) tally: Tally,
    pub(crate) error: Option<JobError>,
    pub(crate) cancel_requested: bool,
    pub(crate) cancel_sent: bool,
    /// Consecutive transient failures (reset by any success).
    pub(crate) retries: u32,
    pub(crate) polls: u32,
    pub(crate) next_at_ms: u64,
    /// Bumped on every change users can see (the ETag).
    pub(crate) version: u64,
    /// Absent from the oldest records (read as none reserved).
    #[serde(default)]
    pub(crate) billing: Billing,
    #[serde(default)]
    pub(crate) sharding: Sharding,
}

/// Where a job is among the Gemini batches it runs as. Each field absent
/// from a record (one from before shards) reads as a single-batch job's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Sharding {
    /// The batches (empty: one, the whole input).
    pub(crate) specs: Vec<ShardSpec>,
    /// The shard in progress (0-based).
    pub(crate) shard: u64,
    /// Times the current shard was submitted again.
    pub(crate) resubmits: u32,
    /// When the current shard's batch was created (its age drives polling).
    pub(crate) batch_since_ms: Option<u64>,
    /// The quota admitted the current shard and has not been told it ended.
    pub(crate) quota_held: bool,
    /// Result lines and Gemini's counts of the shards already done.
    pub(crate) lines_done: u64,
    pub(crate) progress_done: Progress,
    /// Files of abandoned attempts, deleted with the rest at the end.
    pub(crate) stale_files: Vec<String>,
    /// When the current shard started (queued for the quota); the deadline counts from here.
    pub(crate) shard_started_ms: Option<u64>,
}

/// What deleting a job must undo, whatever it was doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurgePlan {
    /// Gemini's batch, still running: cancel it.
    pub cancel_batch: Option<String>,
    /// The model's quota may still hold room for the current shard: give it back.
    pub release_quota: bool,
    /// Gemini files the job made (its input, abandoned attempts', the results being read).
    pub files: Vec<String>,
    /// The shards whose results objects may exist: `0..=last_shard` (the
    /// last one's may still be an unfinished multipart upload).
    pub last_shard: u64,
}

/// The one thing to do now.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Wait {
        until_ms: u64,
    },
    /// Ask the model's quota to admit the current shard's tokens.
    Admit {
        tokens: u64,
    },
    /// Tell the quota the current shard's batch is no longer enqueued.
    Release,
    StartUpload,
    ContinueUpload {
        session_url: String,
        offset: u64,
    },
    /// Look for a batch named [`Job::gemini_display_name`] (a create's answer was lost).
    FindBatch,
    CreateBatch {
        file: String,
    },
    CancelBatch {
        batch: String,
    },
    PollBatch {
        batch: String,
    },
    Ingest {
        results: String,
        cursor: Cursor,
        size: Option<u64>,
    },
    DeleteFiles {
        files: Vec<String>,
    },
    /// Charge the account for what was delivered (batch price), releasing the
    /// rest of the reservation. `standard` is the same usage at the standard price.
    Settle {
        charge: i64,
        standard: i64,
    },
    Finished,
}

/// What happened when an action was carried out.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Admitted,
    /// The quota is full: ask again later.
    QuotaFull,
    Released,
    UploadStarted {
        session_url: String,
    },
    UploadProgress {
        offset: u64,
    },
    Uploaded {
        file: String,
    },
    /// Sent before the create call, and stored: the create may now have happened.
    CreateSending,
    BatchFound {
        batch: String,
    },
    BatchAbsent,
    Created {
        batch: String,
    },
    CancelSent,
    Polled {
        state: BatchState,
        progress: Progress,
        results_file: Option<String>,
        error: Option<String>,
    },
    IngestProgress {
        cursor: Cursor,
        size: u64,
    },
    Ingested,
    FilesDeleted,
    Settled {
        charge: i64,
    },
    Failed(Failure),
}

impl Job {
    pub fn new(id: String, model: String, request_count: u64, input_bytes: u64, now_ms: u64) -> Job {
        Job {
            id,
            model,
            request_count,
            input_bytes,
            created_ms: now_ms,
            updated_ms: now_ms,
            submitted_ms: None,
            finished_ms: None,
            phase: Phase::Queued,
            gemini_state: None,
            batch: None,
            input_file: None,
            progress: Progress { pending: request_count, ..Progress::default() },
            tally: Tally::default(),
            error: None,
            cancel_requested: false,
            cancel_sent: false,
            retries: 0,
            polls: 0,
            next_at_ms: now_ms,
            version: 1,
            billing: Billing::default(),
            sharding: Sharding::default(),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    pub fn created_ms(&self) -> u64 {
        self.created_ms
    }

    pub fn updated_ms(&self) -> u64 {
        self.updated_ms
    }

    /// When the next step is due (the alarm to set).
    pub fn next_at_ms(&self) -> u64 {
        self.next_at_ms
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The shard in progress (0-based) and how many times it was submitted again.
    pub fn attempt(&self) -> (u64, u32) {
        (self.sharding.shard, self.sharding.resubmits)
    }

    /// The last step failed transiently (an upload resumes by asking where it stands).
    pub fn after_a_failure(&self) -> bool {
        self.retries > 0
    }

    /// The account has recorded the job's charge.
    pub fn is_charged(&self) -> bool {
        self.billing.charged.is_some()
    }

    /// What a delete must undo: the batch if it still runs, the quota if it
    /// may hold room, every file the job made, and its stored results.
    pub fn purge_plan(&self) -> PurgePlan {
        let ended = self.state().is_terminal();
        let mut files: Vec<String> =
            self.input_file.iter().chain(&self.sharding.stale_files).cloned().collect();
        if let Phase::Ingesting { results, .. } = &self.phase {
            files.push(results.clone());
        }
        PurgePlan {
            cancel_batch: self.batch.clone().filter(|_| !ended),
            release_quota: self.sharding.quota_held || !ended,
            files,
            last_shard: self.sharding.shard,
        }
    }

    /// Run as these batches (from the submission's shard plan).
    pub fn with_shards(mut self, shards: Vec<ShardSpec>) -> Job {
        self.sharding.specs = if shards.len() > 1 { shards } else { vec![] };
        self
    }

    /// The shard in progress: its lines, bytes and tokens of the input.
    pub fn shard_spec(&self) -> ShardSpec {
        let whole = ShardSpec {
            first_line: 0,
            requests: self.request_count,
            offset: 0,
            bytes: self.input_bytes,
            tokens: 0,
        };
        usize::try_from(self.sharding.shard)
            .ok()
            .and_then(|i| self.sharding.specs.get(i))
            .copied()
            .unwrap_or(whole)
    }

    pub fn shard_count(&self) -> u64 {
        (self.sharding.specs.len() as u64).max(1)
    }

    /// All results are stored (the job ended and its last shard was ingested).
    pub fn results_complete(&self) -> bool {
        matches!(self.phase, Phase::Cleaning { next_shard: None, .. } | Phase::Done { .. })
    }

    pub fn with_billing(mut self, price: Price, reserved: i64) -> Job {
        self.billing = Billing { price, reserved, charged: None };
        self
    }

    /// What the delivered results cost: `(batch, standard)` micro-credits.
    pub fn cost(&self) -> (i64, i64) {
        let tokens = Tokens::from(&self.tally.usage);
        (self.billing.price.batch(&tokens), self.billing.price.standard(&tokens))
    }

    fn settled(&self) -> bool {
        self.billing.charged.is_some()
    }

    /// The unique display name given to the Gemini batch (how a lost create
    /// is found): one per job, shard and attempt.
    /// A create has gone out for the current shard and no batch is known yet:
    /// Gemini may hold one this job does not.
    pub fn create_maybe_sent(&self) -> bool {
        matches!(self.phase, Phase::Creating { attempts, .. } if attempts > 0)
    }

    pub fn gemini_display_name(&self) -> String {
        match (self.sharding.shard, self.sharding.resubmits) {
            (0, 0) => format!("batchgate-{}", self.id),
            (s, r) => format!("batchgate-{}-{s}-{r}", self.id),
        }
    }

    pub fn state(&self) -> JobState {
        let later_shard = self.sharding.shard > 0;
        match &self.phase {
            // Later shards: the job as a whole is running.
            Phase::Cleaning { next_shard: Some(_), .. } => JobState::Running,
            _ if later_shard && !self.results_complete() => JobState::Running,
            Phase::Queued | Phase::Uploading { session_url: None, offset: 0 } => JobState::Accepted,
            Phase::Uploading { .. } | Phase::Creating { .. } => JobState::Uploading,
            Phase::Submitted { .. } => match self.gemini_state {
                Some(BatchState::Running) => JobState::Running,
                _ => JobState::Pending,
            },
            Phase::Abandoning { .. } => JobState::Pending,
            Phase::Ingesting { .. } if self.sharding.shard + 1 < self.shard_count() => JobState::Running,
            Phase::Ingesting { .. } => JobState::Ingesting,
            Phase::Cleaning { end, .. } | Phase::Done { end } => JobState::from(*end),
        }
    }

    /// Ended, cleaned up, charged and its quota returned: nothing left to do.
    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done { .. }) && self.settled() && !self.sharding.quota_held
    }

    /// Whether the current shard counts against the quota: from admission until its batch ended.
    fn needs_quota(&self) -> bool {
        matches!(
            self.phase,
            Phase::Uploading { .. }
                | Phase::Creating { .. }
                | Phase::Submitted { .. }
                | Phase::Abandoning { .. }
        )
    }

    /// Usage delivered so far (what a charge is based on).
    pub fn delivered_usage(&self) -> Usage {
        self.tally.usage
    }

    pub fn next_action(&self, now_ms: u64) -> Action {
        if self.is_done() {
            return Action::Finished;
        }
        if now_ms < self.next_at_ms {
            return Action::Wait { until_ms: self.next_at_ms };
        }
        if self.sharding.quota_held && !self.needs_quota() {
            return Action::Release;
        }
        if self.state().is_terminal() && !self.settled() {
            let (charge, standard) = self.cost();
            return Action::Settle { charge, standard };
        }
        match &self.phase {
            Phase::Queued => Action::Admit { tokens: self.shard_spec().tokens },
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
            Phase::Done { .. } => Action::Finished,
        }
    }

    /// A user asked to cancel. Before Gemini has a batch this ends the job at
    /// once; afterwards the next step tells Gemini and polling carries on until
    /// Gemini reports the end (keeping whatever results it returns).
    pub fn request_cancel(&mut self, now_ms: u64) {
        if self.state().is_terminal() || self.cancel_requested {
            return;
        }
        self.cancel_requested = true;
        self.touch(now_ms);
        match &mut self.phase {
            Phase::Queued | Phase::Uploading { .. } | Phase::Creating { attempts: 0, .. } => {
                let files = self.input_file.iter().cloned().collect();
                self.finish(End::Cancelled, files, now_ms);
            }
            // Between shards: the next one never starts.
            Phase::Cleaning { end, next_shard: next @ Some(_), .. } => {
                *end = End::Cancelled;
                *next = None;
                self.finished_ms.get_or_insert(now_ms);
                self.next_at_ms = now_ms;
            }
            _ => self.next_at_ms = now_ms,
        }
    }

    /// Gemini says `batch` changed (a webhook): poll it now rather than on
    /// the schedule. Only the current batch of a job waiting on Gemini wakes it.
    pub fn wake(&mut self, batch: &str, now_ms: u64) -> bool {
        let waiting = matches!(&self.phase, Phase::Submitted { batch: b } if b == batch);
        if waiting && self.next_at_ms > now_ms {
            self.next_at_ms = now_ms;
        }
        waiting
    }

    fn touch(&mut self, now_ms: u64) {
        self.updated_ms = now_ms;
        self.version += 1;
    }

    fn finish(&mut self, end: End, mut files: Vec<String>, now_ms: u64) {
        self.finished_ms.get_or_insert(now_ms);
        // Ending while queued: an admission whose answer was lost may be held.
        // Releasing what is not held is a no-op, leaking it is not.
        if matches!(self.phase, Phase::Queued) {
            self.sharding.quota_held = true;
        }
        files.append(&mut self.sharding.stale_files);
        self.phase = if files.is_empty() {
            Phase::Done { end }
        } else {
            Phase::Cleaning { end, files, tries: 0, next_shard: None }
        };
        self.next_at_ms = now_ms;
    }

    /// The current shard's results are in: the next shard starts once its
    /// files are deleted, unless this was the last or the user cancelled.
    fn shard_done(&mut self, end: End, files: Vec<String>, now_ms: u64) {
        let next = self.sharding.shard + 1;
        if end != End::Succeeded || next >= self.shard_count() || self.cancel_requested {
            let end = if end == End::Succeeded && self.cancel_requested && next < self.shard_count() {
                End::Cancelled
            } else {
                end
            };
            return self.finish(end, files, now_ms);
        }
        self.sharding.progress_done = self.progress;
        self.phase = Phase::Cleaning { end, files, tries: 0, next_shard: Some(next) };
        self.next_at_ms = now_ms;
    }

    fn start_shard(&mut self, shard: u64, now_ms: u64) {
        self.sharding.shard = shard;
        self.sharding.shard_started_ms = Some(now_ms);
        self.sharding.resubmits = 0;
        self.batch = None;
        self.input_file = None;
        self.gemini_state = None;
        self.sharding.batch_since_ms = None;
        self.phase = Phase::Queued;
        self.next_at_ms = now_ms;
    }

    /// Submit the current shard again from its upload (its Gemini file may
    /// have expired with the batch); the old file is deleted at the end.
    fn resubmit(&mut self, now_ms: u64) {
        self.sharding.resubmits += 1;
        self.sharding.stale_files.extend(self.input_file.take());
        self.batch = None;
        self.gemini_state = None;
        self.sharding.batch_since_ms = None;
        self.phase = Phase::Uploading { session_url: None, offset: 0 };
        self.next_at_ms = now_ms;
    }

    /// The cleanup step is over (done, or given up): the next shard or the end.
    fn cleaned(&mut self, now_ms: u64) {
        if let Phase::Cleaning { end, next_shard, .. } = self.phase {
            match next_shard {
                Some(next) => self.start_shard(next, now_ms),
                None => self.phase = Phase::Done { end },
            }
        }
    }

    fn fail(&mut self, code: &str, message: String, now_ms: u64) {
        self.error = Some(JobError { code: code.into(), message });
        let mut files: Vec<String> = self.input_file.iter().cloned().collect();
        if let Phase::Ingesting { results, .. } = &self.phase {
            files.push(results.clone());
        }
        self.finish(End::Failed, files, now_ms);
    }

    /// Feed back what an action produced. `rand` spreads retries and polls.
    pub fn apply(&mut self, outcome: Outcome, now_ms: u64, rand: u64, policy: &Policy) {
        self.touch(now_ms);
        if !matches!(outcome, Outcome::Failed(_)) {
            self.retries = 0;
        }
        match outcome {
            Outcome::Admitted => {
                self.sharding.quota_held = true;
                if matches!(self.phase, Phase::Queued) {
                    self.phase = Phase::Uploading { session_url: None, offset: 0 };
                }
                self.next_at_ms = now_ms;
            }
            Outcome::QuotaFull => self.next_at_ms = now_ms + policy.quota_retry_ms,
            Outcome::Released => {
                self.sharding.quota_held = false;
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
                self.submitted_ms.get_or_insert(now_ms);
                self.sharding.batch_since_ms = Some(now_ms);
                self.gemini_state = Some(BatchState::Pending);
                self.phase = Phase::Submitted { batch };
                self.next_at_ms = now_ms + policy.poll.next_delay_ms(0, rand);
                if self.cancel_requested {
                    self.next_at_ms = now_ms;
                }
            }
            Outcome::CancelSent if matches!(self.phase, Phase::Abandoning { .. }) => self.resubmit(now_ms),
            Outcome::CancelSent => {
                self.cancel_sent = true;
                self.next_at_ms = now_ms + policy.poll.first_ms;
            }
            Outcome::Polled { state, progress, results_file, error } => {
                self.polls += 1;
                let done = self.sharding.progress_done;
                let (succeeded, failed) =
                    (done.succeeded + progress.succeeded, done.failed + progress.failed);
                let pending = self.request_count.saturating_sub(succeeded + failed);
                self.progress = Progress { succeeded, failed, pending };
                self.gemini_state = Some(state.clone());
                self.on_polled(state, results_file, error, now_ms, rand, policy);
            }
            Outcome::IngestProgress { cursor, size } => {
                if let Phase::Ingesting { cursor: c, size: s, .. } = &mut self.phase {
                    self.tally = cursor.tally;
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
                    self.sharding.lines_done = cursor.lines;
                    self.shard_done(end, files, now_ms);
                }
            }
            Outcome::FilesDeleted => self.cleaned(now_ms),
            Outcome::Settled { charge } => {
                self.billing.charged = Some(charge);
                self.next_at_ms = now_ms;
            }
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
        let age = now_ms.saturating_sub(self.sharding.batch_since_ms.or(self.submitted_ms).unwrap_or(now_ms));
        let may_resubmit = self.sharding.resubmits < policy.max_resubmits && !self.cancel_requested;
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
                // Line numbers and totals carry on from the shards before.
                let cursor =
                    Cursor { lines: self.sharding.lines_done, tally: self.tally, ..Cursor::default() };
                self.phase = Phase::Ingesting { batch, results, end, cursor, size: None };
                self.next_at_ms = now_ms;
            }
            None => {
                let files = self.input_file.iter().cloned().collect();
                self.shard_done(end, files, now_ms);
            }
        }
    }

    fn on_failure(&mut self, f: Failure, now_ms: u64, rand: u64, policy: &Policy) {
        if self.state().is_terminal() && !self.settled() {
            // The settle step failed: it must happen, so it is retried whatever the error.
            self.retries += 1;
            self.next_at_ms = now_ms + policy.retry.delay_ms(self.retries, None, rand);
            return;
        }
        match f {
            Failure::Transient { retry_after_ms, .. } => {
                self.retries += 1;
                self.next_at_ms = now_ms + policy.retry.delay_ms(self.retries, retry_after_ms, rand);
                if let Phase::Cleaning { tries, .. } = &mut self.phase {
                    *tries += 1;
                    if *tries >= policy.cleanup_tries {
                        self.cleaned(now_ms);
                    }
                }
            }
            Failure::Permanent { status, message } => match &self.phase {
                // A file we made is already gone: nothing left to clean.
                Phase::Cleaning { .. } => self.cleaned(now_ms),
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
                Phase::Done { .. } => {}
            },
        }
    }

    /// Invariant 1's backstop: past the deadline, a job ends even if Gemini
    /// never answered (as expired once Gemini had it, failed before).
    fn enforce_deadline(&mut self, now_ms: u64, policy: &Policy) {
        // Per shard: a job of 100 shards may rightly run for days, each of them may not.
        let since = self.sharding.shard_started_ms.unwrap_or(self.created_ms);
        if now_ms < since.saturating_add(policy.deadline_ms) {
            return;
        }
        match &self.phase {
            Phase::Queued | Phase::Uploading { .. } | Phase::Creating { .. } if self.sharding.shard == 0 => {
                self.fail("deadline", "Gemini did not take the job before its deadline".into(), now_ms)
            }
            // Gemini has (or had) part of the job: it ends with what came back.
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

mod phase_serde;
pub mod stored;

#[cfg(test)]
mod tests;
