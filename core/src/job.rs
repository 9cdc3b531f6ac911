//! The life of one job as a sans-IO state machine.
//!
//! The JobObject keeps a [`Job`] in storage. On every alarm it asks
//! [`Job::next`] what to do, does those things (Gemini calls, a slice of
//! ingestion…), feeds each result back through [`Job::apply`], stores the job,
//! and sets the next alarm at [`Job::next_at_ms`].
//!
//! A job over Gemini's limits runs as several batches ("shards", see
//! [`crate::shard`]); each is a [`Run`] with its own phase and schedule (see
//! [`run`] for how one shard goes and why a repeated step is safe). The job
//! starts shards in order, as many at once as [`Policy::max_parallel_shards`]
//! allows, one waiting for the model's quota at a time (the QuotaObject is the
//! one judge of what Gemini may hold, across all jobs); a shard's results can
//! be read as soon as it is ingested. The first shard that ends otherwise than
//! succeeded, or a cancel, stops new shards; those already at Gemini run to
//! their end and keep what they return. A job that ends is charged once, for
//! everything delivered: [`Action::Settle`] repeats until the account
//! confirms, and the account ledger ignores a repeated settle.

use crate::gemini::BatchState;
use crate::gemini::client::Failure;
use crate::ingest::Cursor;
use crate::lane::{Choice, Lane};
use crate::pricing::{Price, Tokens};
use crate::results::Tally;
use crate::schedule::{PollPolicy, RetryPolicy};
use crate::shard::ShardSpec;
pub use fallback::Fallback;
use serde::{Deserialize, Serialize};

pub use run::Run;

/// How a job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum End {
    Succeeded,
    Failed,
    Expired,
    Cancelled,
}

/// Realtime shards of one job answering at once (each sends its requests
/// several at a time; the model's RPM limit is what bounds them).
pub const REALTIME_PARALLEL_SHARDS: u32 = 2;

/// Where a shard is. Serialized into the JobObject's storage (read back by
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
    #[serde(rename_all = "camelCase")]
    Cleaning {
        end: End,
        files: Vec<String>,
        tries: u32,
    },
    Done {
        end: End,
    },
    /// The realtime lane: its requests sent as realtime calls, in one step
    /// whose results are stored whole (realtime shards are small). A step
    /// that finds its answers already stored (its outcome was lost) takes
    /// them as they are, even after a cancel: stored answers are charged.
    Answering,
}

/// The state users see.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    /// A shard not finished this long after it started is ended (Gemini
    /// expires batches at 48 h; this is the backstop for invariant 1).
    pub deadline_ms: u64,
    /// Cleanup gives up after this many failed tries (Gemini deletes files at 48 h).
    pub cleanup_tries: u32,
    /// A batch PENDING this long is cancelled and its shard submitted again.
    pub pending_limit_ms: u64,
    /// How often one shard may be submitted again (stuck or expired).
    pub max_resubmits: u32,
    /// How long a shard the quota refused waits before asking again.
    pub quota_retry_ms: u64,
    /// Shards of one job at Gemini (or on their way there) at once.
    pub max_parallel_shards: u32,
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
            max_parallel_shards: 8,
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

/// What the shards already finished (and dropped from the record) delivered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Finished {
    pub(crate) shards: u64,
    pub(crate) lines: u64,
    pub(crate) progress: Progress,
    pub(crate) tally: Tally,
    /// The part of `tally` realtime calls delivered (charged the standard price).
    pub(crate) realtime_tally: Tally,
}

/// One job: what was submitted, its shards at Gemini, and what it has
/// delivered and been charged. Its fields are core's: the worker reads it
/// through methods and changes it only through [`Job::apply`] and the few
/// requests a user can make ([`Job::request_cancel`], [`Job::wake`]).
/// Stored as a [`stored`] record.
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
    /// The batches (empty: one, the whole input).
    pub(crate) specs: Vec<ShardSpec>,
    /// Shards started so far (the next to start).
    pub(crate) next_shard: u64,
    /// Shards started and not yet finished, in shard order.
    pub(crate) runs: Vec<Run>,
    pub(crate) finished: Finished,
    /// A shard ended otherwise than succeeded: no shard starts after it and the job ends so.
    pub(crate) stop: Option<End>,
    pub(crate) error: Option<JobError>,
    pub(crate) cancel_requested: bool,
    /// Consecutive failed settles, and when the next is due.
    pub(crate) retries: u32,
    pub(crate) next_at_ms: u64,
    /// Bumped on every change users can see (the ETag).
    pub(crate) version: u64,
    /// Absent from the oldest records (read as none reserved).
    #[serde(default)]
    pub(crate) billing: Billing,
    /// Its requests use uploaded files, which belong to the deployment's first
    /// Gemini key: every shard runs on that key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) first_key_only: bool,
    /// Batch or realtime, and why (absent from records before lanes: batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) lane: Option<Choice>,
    /// It may fall back to the realtime lane (see `fallback.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) fallback: Option<Fallback>,
}

/// What deleting a job must undo, whatever it was doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurgePlan {
    /// Gemini's batches still running, each with its key's id: cancel them.
    pub cancel_batches: Vec<(String, Option<String>)>,
    /// Shards the model's quota may still hold room for: give it back.
    pub release_shards: Vec<u64>,
    /// Gemini files the job made (inputs, abandoned attempts', results being read), by key.
    pub files: Vec<(String, Option<String>)>,
    /// Shards whose results objects may exist: `0..started`.
    pub started: u64,
    /// Shards whose results multipart upload may still be open.
    pub ingesting: Vec<u64>,
}

/// The one thing to do now for a shard.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Ask the model's quota to admit the shard's tokens.
    Admit {
        tokens: u64,
    },
    /// Tell the quota the shard's batch is no longer enqueued.
    Release,
    StartUpload,
    ContinueUpload {
        session_url: String,
        offset: u64,
    },
    /// Look for a batch named [`Job::display_name`] (a create's answer was lost).
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
    /// Send the shard's requests as realtime calls and store the answers.
    Answer,
    /// Charge the account for what was delivered (batch price), releasing the
    /// rest of the reservation. `standard` is the same usage at the standard price.
    Settle {
        charge: i64,
        standard: i64,
    },
}

/// An action and whom it is for: a shard, or (`None`) the job as a whole.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    pub shard: Option<u64>,
    pub action: Action,
}

/// What the job wants now.
#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    /// These, in any order or at once (each touches only its own shard).
    Do(Vec<Task>),
    Wait {
        until_ms: u64,
    },
    Finished,
}

/// What happened when an action was carried out.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The quota admitted the shard, on this key (its id; none: the only key).
    Admitted {
        key: Option<String>,
    },
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
    /// A realtime shard's step is about to send its requests (recorded first:
    /// a step that never finishes is not sent again for ever).
    AnswerSending,
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
    /// A realtime shard's answers are stored: what they hold, and how many lines.
    Answered {
        tally: Tally,
        lines: u64,
    },
    FilesDeleted,
    Settled {
        charge: i64,
    },
    Failed(Failure),
}

impl Job {
    pub fn new(id: String, model: String, request_count: u64, input_bytes: u64, now_ms: u64) -> Job {
        let whole =
            ShardSpec { first_line: 0, requests: request_count, offset: 0, bytes: input_bytes, tokens: 0 };
        Job {
            id,
            model,
            request_count,
            input_bytes,
            created_ms: now_ms,
            updated_ms: now_ms,
            submitted_ms: None,
            finished_ms: None,
            specs: vec![],
            next_shard: 1,
            runs: vec![Run::new(0, whole, now_ms)],
            finished: Finished::default(),
            stop: None,
            error: None,
            cancel_requested: false,
            retries: 0,
            next_at_ms: now_ms,
            version: 1,
            billing: Billing::default(),
            first_key_only: false,
            lane: None,
            fallback: None,
        }
    }

    /// Run in the lane `choice` says (before any step: its first shard starts there).
    pub fn with_lane(mut self, choice: Choice) -> Job {
        let lane = choice.lane;
        self.lane = Some(choice);
        for run in &mut self.runs {
            run.enter_lane(lane);
        }
        self
    }

    pub fn lane(&self) -> Lane {
        self.lane.as_ref().map_or(Lane::Batch, |c| c.lane)
    }

    /// The lane and why it was chosen (none: a batch job from before lanes).
    pub fn lane_choice(&self) -> Option<&Choice> {
        self.lane.as_ref()
    }

    /// Run on the first Gemini key only (the requests use uploaded files).
    pub fn with_first_key_only(mut self, only: bool) -> Job {
        self.first_key_only = only;
        self
    }

    pub fn first_key_only(&self) -> bool {
        self.first_key_only
    }

    /// Run as these batches (from the submission's shard plan).
    pub fn with_shards(mut self, shards: Vec<ShardSpec>) -> Job {
        // Even a job of one batch keeps its plan's tokens: the quota counts them.
        let first = shards.first().copied();
        self.specs = if shards.len() > 1 { shards } else { vec![] };
        if let (Some(run), Some(spec)) = (self.runs.first_mut(), first) {
            run.spec = spec;
        }
        self
    }

    pub fn with_billing(mut self, price: Price, reserved: i64) -> Job {
        self.billing = Billing { price, reserved, charged: None };
        self
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

    /// Shard `shard`'s lines, bytes and tokens of the input.
    fn spec_of(&self, shard: u64) -> ShardSpec {
        let whole = ShardSpec {
            first_line: 0,
            requests: self.request_count,
            offset: 0,
            bytes: self.input_bytes,
            tokens: 0,
        };
        usize::try_from(shard).ok().and_then(|i| self.specs.get(i)).copied().unwrap_or(whole)
    }

    pub fn shard_count(&self) -> u64 {
        (self.specs.len() as u64).max(1)
    }

    /// The shards started and not yet finished.
    pub fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// Each running shard's `(shard, resubmits)` (what [`crate::timeline::shard_changes`] compares).
    pub fn attempts(&self) -> Vec<(u64, u32)> {
        self.runs.iter().map(Run::attempt).collect()
    }

    pub fn run(&self, shard: u64) -> Option<&Run> {
        self.runs.iter().find(|r| r.shard == shard)
    }

    fn run_mut(&mut self, shard: u64) -> Option<&mut Run> {
        self.runs.iter_mut().find(|r| r.shard == shard)
    }

    /// The unique display name given to a shard's Gemini batch (how a lost
    /// create is found): one per job, shard and attempt.
    pub fn display_name(&self, run: &Run) -> String {
        match run.attempt() {
            (0, 0) => format!("batchgate-{}", self.id),
            (s, r) => format!("batchgate-{}-{s}-{r}", self.id),
        }
    }

    /// A create has gone out for some shard and no batch is known for it yet:
    /// Gemini may hold one this job does not (its display name).
    pub fn creates_maybe_sent(&self) -> Vec<(String, Option<String>)> {
        self.runs
            .iter()
            .filter(|r| r.create_maybe_sent())
            .map(|r| (self.display_name(r), r.key.clone()))
            .collect()
    }

    /// The account has recorded the job's charge.
    pub fn is_charged(&self) -> bool {
        self.billing.charged.is_some()
    }

    /// What the delivered results cost: `(charge, standard)` micro-credits;
    /// the charge is half the standard price for what batches delivered, all
    /// of it for what realtime calls did.
    pub fn cost(&self) -> (i64, i64) {
        let price = &self.billing.price;
        let all = Tokens::from(&self.tally());
        let realtime = Tokens::from(&self.realtime_tally());
        let batched = all.less(&realtime);
        let charge = price.batch(&batched).saturating_add(price.standard(&realtime));
        (charge, price.standard(&all))
    }

    /// What realtime calls delivered (a part of [`Job::tally`]).
    pub fn realtime_tally(&self) -> Tally {
        let mut tally = self.finished.realtime_tally.clone();
        for run in self.runs.iter().filter(|r| r.realtime) {
            tally.merge(&run.tally);
        }
        tally
    }

    /// What the ingested result lines hold, over every shard.
    pub fn tally(&self) -> Tally {
        let mut tally = self.finished.tally.clone();
        for run in &self.runs {
            tally.merge(&run.tally);
        }
        tally
    }

    /// Gemini's counts over the whole job, as last polled.
    pub fn progress(&self) -> Progress {
        let (mut succeeded, mut failed) = (self.finished.progress.succeeded, self.finished.progress.failed);
        for run in &self.runs {
            succeeded += run.progress.succeeded;
            failed += run.progress.failed;
        }
        let pending = self.request_count.saturating_sub(succeeded.saturating_add(failed));
        Progress { succeeded, failed, pending }
    }

    /// The shards whose results are stored whole and may be read, in order.
    pub fn readable_shards(&self) -> Vec<u64> {
        (0..self.next_shard).filter(|s| self.run(*s).is_none_or(Run::results_in)).collect()
    }

    /// Shards started whose results are not stored whole yet (their index rows
    /// may be partial).
    pub fn unreadable_shards(&self) -> Vec<u64> {
        self.runs.iter().filter(|r| !r.results_in()).map(Run::shard).collect()
    }

    /// Result lines in the readable shards.
    pub fn readable_lines(&self) -> u64 {
        let current: u64 = self.runs.iter().filter(|r| r.results_in()).map(|r| r.lines).sum();
        self.finished.lines + current
    }

    /// No shard starts any more: the last has started, one stopped the job, or the user cancelled.
    fn no_more_shards(&self) -> bool {
        self.stop.is_some() || self.cancel_requested || self.next_shard >= self.shard_count()
    }

    /// How the job ended, once every shard that started has its results in.
    pub fn end(&self) -> Option<End> {
        if !self.no_more_shards() || !self.runs.iter().all(Run::results_in) {
            return None;
        }
        Some(match self.stop {
            Some(end) => end,
            None if self.next_shard < self.shard_count() => End::Cancelled,
            None => End::Succeeded,
        })
    }

    /// All results are stored (the job ended and its shards were ingested).
    pub fn results_complete(&self) -> bool {
        self.end().is_some()
    }

    pub fn state(&self) -> JobState {
        if let Some(end) = self.end() {
            return end.into();
        }
        let states: Vec<JobState> = self.runs.iter().map(Run::state).collect();
        let ingesting = |s: &JobState| *s == JobState::Ingesting || s.is_terminal();
        if self.no_more_shards() && states.iter().all(ingesting) {
            return JobState::Ingesting;
        }
        if self.finished.shards > 0 || states.iter().any(|s| *s == JobState::Running || ingesting(s)) {
            return JobState::Running;
        }
        let rank = |s: &JobState| {
            [JobState::Accepted, JobState::Uploading, JobState::Pending]
                .iter()
                .position(|r| r == s)
                .unwrap_or(0)
        };
        states.into_iter().max_by_key(rank).unwrap_or(JobState::Accepted)
    }

    /// Ended, cleaned up, charged and every quota returned: nothing left to do.
    pub fn is_done(&self) -> bool {
        self.end().is_some() && self.is_charged() && self.runs.iter().all(Run::is_finished)
    }

    /// When the next step is due (the alarm to set).
    pub fn next_at_ms(&self) -> u64 {
        let runs = self.runs.iter().filter(|r| !r.is_finished()).map(Run::next_at_ms);
        let settle = (self.end().is_some() && !self.is_charged()).then_some(self.next_at_ms);
        runs.chain(settle).min().unwrap_or(self.next_at_ms)
    }

    /// What to do now: every step that is due (at most one shard uploading and
    /// one ingesting at a time), or when to look again.
    pub fn next(&self, now_ms: u64) -> Next {
        if self.is_done() {
            return Next::Finished;
        }
        let mut tasks = vec![];
        if self.end().is_some() && !self.is_charged() && now_ms >= self.next_at_ms {
            let (charge, standard) = self.cost();
            tasks.push(Task { shard: None, action: Action::Settle { charge, standard } });
        }
        // One upload chunk and one ingest slice at a time: each holds two
        // streams open (R2 and Gemini), and a Worker has six connections.
        let (mut uploading, mut ingesting) = (false, false);
        for run in &self.runs {
            match run.next_action(now_ms) {
                Some(Action::ContinueUpload { .. }) if uploading => {}
                Some(Action::Ingest { .. }) if ingesting => {}
                Some(action) => {
                    uploading |= matches!(action, Action::ContinueUpload { .. });
                    ingesting |= matches!(action, Action::Ingest { .. });
                    tasks.push(Task { shard: Some(run.shard), action });
                }
                None => {}
            }
        }
        if tasks.is_empty() {
            // Nothing due means something is due later; were that not so, a
            // second's pause beats an alarm loop.
            Next::Wait { until_ms: self.next_at_ms().max(now_ms.saturating_add(1_000)) }
        } else {
            Next::Do(tasks)
        }
    }

    /// A user asked to cancel: no shard starts any more, and each one running
    /// is cancelled (see [`Run::request_cancel`]).
    pub fn request_cancel(&mut self, now_ms: u64) {
        if self.state().is_terminal() || self.cancel_requested {
            return;
        }
        self.cancel_requested = true;
        self.touch(now_ms);
        for run in &mut self.runs {
            run.request_cancel(now_ms);
        }
        self.after_change(now_ms, 1);
    }

    /// Gemini says `batch` changed (a webhook): poll it now rather than on
    /// the schedule. Only a batch a shard waits on wakes it.
    pub fn wake(&mut self, batch: &str, now_ms: u64) -> bool {
        self.runs.iter_mut().any(|r| r.wake(batch, now_ms))
    }

    fn touch(&mut self, now_ms: u64) {
        self.updated_ms = now_ms;
        self.version += 1;
    }

    /// What a delete must undo: the batches still running, the quota any
    /// shard may hold, every file the job made, and its stored results.
    pub fn purge_plan(&self) -> PurgePlan {
        let live = |r: &&Run| !r.results_in();
        PurgePlan {
            cancel_batches: self
                .runs
                .iter()
                .filter(live)
                .filter_map(|r| r.batch.clone().map(|b| (b, r.key.clone())))
                .collect(),
            release_shards: self
                .runs
                .iter()
                .filter(|r| r.quota_held || !r.results_in())
                .map(Run::shard)
                .collect(),
            files: self.runs.iter().flat_map(|r| r.files().into_iter().map(|f| (f, r.key.clone()))).collect(),
            started: self.next_shard,
            ingesting: self
                .runs
                .iter()
                .filter(|r| matches!(r.phase, Phase::Ingesting { .. }))
                .map(Run::shard)
                .collect(),
        }
    }

    /// Feed back what a task produced (`shard`: whose; `None`: the job's
    /// settle). `rand` spreads retries and polls.
    pub fn apply(&mut self, shard: Option<u64>, outcome: Outcome, now_ms: u64, rand: u64, policy: &Policy) {
        self.touch(now_ms);
        match shard {
            None => match outcome {
                Outcome::Settled { charge } => {
                    self.billing.charged = Some(charge);
                    self.retries = 0;
                }
                // The settle failed: it must happen, so it is retried whatever the error.
                _ => {
                    self.retries += 1;
                    self.next_at_ms = now_ms + policy.retry.delay_ms(self.retries, None, rand);
                }
            },
            Some(s) => {
                let mut outcome = outcome;
                if let Some(reason) = self.fallback_reason(s, &outcome, now_ms) {
                    match self.fall_back(s, reason, now_ms) {
                        fallback::FellBack::Yes => {
                            return self.after_change(now_ms, policy.max_parallel_shards);
                        }
                        fallback::FellBack::NotYet if matches!(outcome, Outcome::Failed(_)) => {
                            outcome = Outcome::Failed(Failure::network(
                                "Gemini refused the batch; falling back once the shards beside it are sure to have none",
                            ));
                        }
                        _ => {}
                    }
                }
                if matches!(outcome, Outcome::Created { .. } | Outcome::BatchFound { .. }) {
                    self.submitted_ms.get_or_insert(now_ms);
                }
                let released = matches!(outcome, Outcome::Released);
                let quota_full = matches!(outcome, Outcome::QuotaFull);
                if let Some(run) = self.run_mut(s) {
                    run.apply(outcome, now_ms, rand, policy);
                }
                // A shard that may fall back asks again when its wait reaches the limit.
                if let (true, Some(after)) = (quota_full, self.fallback.as_ref().map(|f| f.after_ms))
                    && let Some(run) = self.run_mut(s)
                {
                    run.next_at_ms = run.next_at_ms.min(run.started_ms.saturating_add(after)).max(now_ms);
                }
                if released {
                    // Room came back: the shard waiting at the quota asks now, not at its retry time.
                    for run in
                        self.runs.iter_mut().filter(|r| matches!(r.phase, Phase::Queued) && !r.quota_held)
                    {
                        run.next_at_ms = run.next_at_ms.min(now_ms);
                    }
                }
            }
        }
        self.after_change(now_ms, policy.max_parallel_shards);
    }

    /// After any change: a shard that ended badly stops the job, finished
    /// shards are folded into the totals, the next shards start while there is
    /// room, and a job that just ended gets its end time and settle due now.
    fn after_change(&mut self, now_ms: u64, max_parallel: u32) {
        let max_parallel = match self.lane() {
            Lane::Batch => max_parallel,
            Lane::Realtime => max_parallel.min(REALTIME_PARALLEL_SHARDS),
        };
        let limit = usize::try_from(max_parallel.max(1)).unwrap_or(usize::MAX);
        if self.stop.is_none()
            && let Some(run) = self.runs.iter().find(|r| r.end().is_some_and(|e| e != End::Succeeded))
        {
            self.stop = run.end();
            self.error = run.error.clone();
            for run in &mut self.runs {
                run.stand_down(now_ms);
            }
        }
        while let Some(i) = self.runs.iter().position(Run::is_finished) {
            let run = self.runs.remove(i);
            self.finished.shards += 1;
            self.finished.lines += run.lines;
            self.finished.progress.succeeded += run.progress.succeeded;
            self.finished.progress.failed += run.progress.failed;
            self.finished.tally.merge(&run.tally);
            if run.realtime {
                self.finished.realtime_tally.merge(&run.tally);
            }
        }
        while !self.no_more_shards()
            && !self.runs.iter().any(|r| matches!(r.phase, Phase::Queued))
            && self.runs.iter().filter(|r| r.in_flight()).count() < limit
            && self.runs.len() < limit.saturating_mul(2)
        {
            let shard = self.next_shard;
            let mut run = Run::new(shard, self.spec_of(shard), now_ms);
            run.enter_lane(self.lane());
            self.runs.push(run);
            self.next_shard += 1;
        }
        if self.end().is_some() && self.finished_ms.is_none() {
            self.finished_ms = Some(now_ms);
            self.next_at_ms = now_ms;
        }
    }
}

mod fallback;
mod phase_serde;
mod run;
pub mod stored;

#[cfg(test)]
mod tests;
