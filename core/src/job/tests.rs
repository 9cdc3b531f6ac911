use super::*;
use crate::pricing::Price;
use crate::results::Outcome as LineOutcome;
use proptest::prelude::*;

/// A scripted Gemini: answers what the job asks, counts what it was asked.
struct FakeGemini {
    states: Vec<BatchState>,
    polls: usize,
    batches: Vec<String>,
    cancelled: bool,
    results_lines: u64,
    deleted: u32,
    /// Charges the account recorded (a repeat of a recorded settle is ignored there).
    charges: Vec<i64>,
    /// Display names of batches that stay PENDING whatever happens.
    stuck: Vec<String>,
    /// Display names of batches that expire without results.
    expire: Vec<String>,
    abandoned: Vec<String>,
    /// The quota: the shard holding it, and how many admissions it refuses first.
    quota_holder: Option<u64>,
    quota_refusals: u32,
    admissions: Vec<u64>,
}

#[derive(Clone, Copy, Debug)]
enum Fate {
    Ok,
    /// The call failed transiently (nothing happened at Gemini).
    Transient,
    /// The call happened at Gemini but the alarm died before storing its result.
    Lost,
}

fn fate(r: u64) -> Fate {
    match r % 10 {
        0 => Fate::Transient,
        1 => Fate::Lost,
        _ => Fate::Ok,
    }
}

fn transient() -> Outcome {
    Outcome::Failed(Failure::network("boom"))
}

/// Run the job against the fake until done or out of steps; returns steps used.
fn drive(
    job: &mut Job,
    g: &mut FakeGemini,
    rolls: &[u64],
    cancel_at: Option<usize>,
    policy: &Policy,
) -> usize {
    drive_until(job, g, rolls, cancel_at, policy, &|_| false)
}

/// [`drive`], stopping early once `stop` holds.
fn drive_until(
    job: &mut Job,
    g: &mut FakeGemini,
    rolls: &[u64],
    cancel_at: Option<usize>,
    policy: &Policy,
    stop: &dyn Fn(&Job) -> bool,
) -> usize {
    let mut now = job.created_ms;
    for step in 0..2_000 {
        if stop(job) {
            return step;
        }
        if cancel_at == Some(step) {
            job.request_cancel(now);
        }
        let roll = rolls[step % rolls.len()].wrapping_mul(step as u64 + 1);
        let action = job.next_action(now);
        let f = fate(roll);
        let outcome = match action {
            Action::Finished => return step,
            Action::Wait { until_ms } => {
                now = until_ms;
                continue;
            }
            Action::Admit { .. } => {
                if g.quota_refusals > 0 {
                    g.quota_refusals -= 1;
                    Outcome::QuotaFull
                } else {
                    // Idempotent per shard, as the QuotaObject is.
                    assert!(
                        g.quota_holder.is_none_or(|s| s == job.sharding.shard),
                        "two shards hold the quota"
                    );
                    if g.quota_holder.is_none() {
                        g.admissions.push(job.sharding.shard);
                    }
                    g.quota_holder = Some(job.sharding.shard);
                    Outcome::Admitted
                }
            }
            Action::Release => {
                g.quota_holder = None;
                Outcome::Released
            }
            Action::StartUpload => Outcome::UploadStarted { session_url: "s".into() },
            Action::ContinueUpload { .. } => Outcome::Uploaded { file: "files/in".into() },
            Action::FindBatch => {
                let name = job.gemini_display_name();
                match g.batches.iter().find(|b| **b == name) {
                    Some(_) => Outcome::BatchFound { batch: format!("batches/{name}") },
                    None => Outcome::BatchAbsent,
                }
            }
            Action::CreateBatch { .. } => {
                // The adapter stores the attempt before it calls.
                job.apply(Outcome::CreateSending, now, roll, policy);
                match f {
                    Fate::Transient => transient(),
                    Fate::Lost => {
                        g.batches.push(job.gemini_display_name());
                        continue;
                    }
                    Fate::Ok => {
                        g.batches.push(job.gemini_display_name());
                        Outcome::Created { batch: format!("batches/{}", job.gemini_display_name()) }
                    }
                }
            }
            Action::CancelBatch { batch } => {
                if matches!(job.phase, Phase::Abandoning { .. }) {
                    g.abandoned.push(batch);
                } else {
                    g.cancelled = true;
                }
                Outcome::CancelSent
            }
            Action::PollBatch { batch } => {
                let name = batch.trim_start_matches("batches/").to_string();
                let state = if g.cancelled {
                    BatchState::Cancelled
                } else if g.stuck.contains(&name) {
                    BatchState::Pending
                } else if g.expire.contains(&name) {
                    BatchState::Expired
                } else {
                    g.states.get(g.polls).cloned().unwrap_or(BatchState::Succeeded)
                };
                g.polls += 1;
                let has_results = matches!(state, BatchState::Succeeded | BatchState::Cancelled);
                Outcome::Polled {
                    state,
                    progress: Progress::default(),
                    results_file: has_results.then(|| "files/batch-b".into()),
                    error: None,
                }
            }
            Action::Ingest { cursor, .. } => {
                // Three lines per slice, until the shard's lines are all in.
                let end = job.sharding.lines_done + g.results_lines.min(job.shard_spec().requests);
                if cursor.lines >= end {
                    Outcome::Ingested
                } else {
                    let mut next = cursor.clone();
                    for _ in 0..3.min(end - cursor.lines) {
                        next.lines += 1;
                        next.tally.add(&LineOutcome::Success(Usage {
                            candidates: 10,
                            total: 10,
                            ..Usage::default()
                        }));
                    }
                    next.parts_done += 1;
                    Outcome::IngestProgress { cursor: next, size: 100 }
                }
            }
            Action::DeleteFiles { .. } => {
                g.deleted += 1;
                Outcome::FilesDeleted
            }
            Action::Settle { charge, .. } => {
                if !matches!(f, Fate::Transient) && g.charges.is_empty() {
                    g.charges.push(charge);
                }
                Outcome::Settled { charge }
            }
        };
        match f {
            Fate::Ok => job.apply(outcome, now, roll, policy),
            Fate::Transient => job.apply(transient(), now, roll, policy),
            Fate::Lost => {} // the alarm fires again; the same step repeats
        }
    }
    2_000
}

fn fake(states: Vec<BatchState>, lines: u64) -> FakeGemini {
    FakeGemini {
        states,
        polls: 0,
        batches: vec![],
        cancelled: false,
        results_lines: lines,
        deleted: 0,
        charges: vec![],
        stuck: vec![],
        expire: vec![],
        abandoned: vec![],
        quota_holder: None,
        quota_refusals: 0,
        admissions: vec![],
    }
}

#[test]
fn the_happy_path_runs_every_phase_in_order() {
    let policy = Policy::default();
    let mut job = Job::new("j1".into(), "gemini-2.5-flash".into(), 7, 100, 1_000);
    assert_eq!(job.state(), JobState::Accepted);
    let mut g = fake(vec![BatchState::Pending, BatchState::Running, BatchState::Succeeded], 7);
    let rolls = [2]; // always Fate::Ok
    drive(&mut job, &mut g, &rolls, None, &policy);
    assert_eq!(job.state(), JobState::Succeeded);
    assert_eq!(job.tally.succeeded, 7);
    assert_eq!(job.tally.usage.total, 70);
    assert_eq!(g.batches.len(), 1);
    assert_eq!(g.deleted, 1, "input and results files deleted in one cleanup step");
    assert!(job.error.is_none());
}

#[test]
fn cancel_before_gemini_has_the_batch_ends_at_once() {
    let policy = Policy::default();
    let mut job = Job::new("j".into(), "m".into(), 1, 1, 0);
    job.request_cancel(5);
    assert_eq!(job.state(), JobState::Cancelled);
    // An admission may have been granted before the cancel: it is given back.
    assert_eq!(job.next_action(5), Action::Release);
    job.apply(Outcome::Released, 5, 0, &policy);
    // Nothing was delivered: the charge is zero, and settling it releases the reservation.
    assert_eq!(job.next_action(5), Action::Settle { charge: 0, standard: 0 });
    job.apply(Outcome::Settled { charge: 0 }, 5, 0, &policy);
    assert!(job.is_done());
    assert_eq!(job.next_action(5), Action::Finished);
}

#[test]
fn a_batch_gemini_forgot_fails_the_job_and_a_refused_create_too() {
    let policy = Policy::default();
    let mut job = Job::new("j".into(), "m".into(), 1, 1, 0);
    job.apply(Outcome::UploadStarted { session_url: "s".into() }, 0, 0, &policy);
    job.apply(Outcome::Uploaded { file: "files/a".into() }, 0, 0, &policy);
    job.apply(Outcome::CreateSending, 0, 0, &policy);
    job.apply(Outcome::Failed(Failure::Permanent { status: 400, message: "bad".into() }), 0, 0, &policy);
    assert_eq!(job.state(), JobState::Failed);
    assert_eq!(job.error.as_ref().map(|e| e.code.as_str()), Some("gemini_create_refused"));
    assert_eq!(job.next_action(0), Action::Settle { charge: 0, standard: 0 });
    job.apply(Outcome::Settled { charge: 0 }, 0, 0, &policy);
    assert_eq!(job.next_action(0), Action::DeleteFiles { files: vec!["files/a".into()] });
}

#[test]
fn the_deadline_ends_a_job_gemini_never_finishes() {
    let policy = Policy { deadline_ms: 3_600_000, ..Policy::default() };
    let mut job = Job::new("j".into(), "m".into(), 1, 1, 0);
    let mut g = fake(vec![BatchState::Pending; 10_000], 1);
    drive(&mut job, &mut g, &[2], None, &policy);
    assert_eq!(job.state(), JobState::Expired);
    assert!(job.polls < 200, "polling backs off: {} polls in an hour", job.polls);
}

fn arb_state() -> impl Strategy<Value = BatchState> {
    prop_oneof![
        4 => Just(BatchState::Pending),
        4 => Just(BatchState::Running),
        1 => Just(BatchState::Succeeded),
        1 => Just(BatchState::Failed),
        1 => Just(BatchState::Expired),
        1 => Just(BatchState::Unknown("BATCH_STATE_NEW".into())),
    ]
}

proptest! {
    /// Whatever Gemini answers, whichever calls fail or are cut off, and
    /// whenever the user cancels: the job ends, Gemini got at most one batch,
    /// and a job that ingested results counted each line exactly once.
    #[test]
    fn every_job_ends_with_one_batch_and_results_counted_once(
        states in proptest::collection::vec(arb_state(), 0..30),
        rolls in proptest::collection::vec(any::<u64>(), 1..50),
        lines in 0u64..20,
        cancel_at in proptest::option::of(0usize..80),
    ) {
        let policy = Policy::default();
        let price = Price { input: 1, output: 6, cached_input: 0 };
        let mut job = Job::new("job-1".into(), "gemini-2.5-flash".into(), lines, 10, 1_000_000).with_billing(price, 1_000);
        let mut g = fake(states, lines);
        let steps = drive(&mut job, &mut g, &rolls, cancel_at, &policy);
        prop_assert!(job.is_done(), "not done after {} steps: {:?}", steps, job.phase);
        // One batch per attempt: a lost create was found, never made twice.
        let attempts = 1 + policy.max_resubmits as usize;
        prop_assert!(g.batches.len() <= attempts, "{} batches created", g.batches.len());
        prop_assert!(g.batches.iter().all(|b| g.batches.iter().filter(|c| *c == b).count() == 1));
        prop_assert!(g.quota_holder.is_none() && !job.sharding.quota_held, "the quota was not released");
        let ingested = job.tally.succeeded;
        prop_assert!(ingested == 0 || ingested == lines, "ingested {} of {}", ingested, lines);
        if job.state() == JobState::Succeeded {
            prop_assert_eq!(ingested, lines);
            prop_assert!(!job.cancel_requested || !g.batches.is_empty());
        }
        prop_assert!(job.state().is_terminal());
        // Charged once, for exactly the delivered usage (10 output tokens a line).
        prop_assert_eq!(&g.charges, &vec![ingested as i64 * 10 * 3]);
        prop_assert_eq!(job.billing.charged, Some(ingested as i64 * 10 * 3));
    }
}

fn sharded(requests: &[u64]) -> Job {
    let mut first_line = 0;
    let shards = requests
        .iter()
        .map(|&r| {
            let spec = ShardSpec {
                first_line,
                requests: r,
                offset: first_line * 10,
                bytes: r * 10,
                tokens: r * 100,
            };
            first_line += r;
            spec
        })
        .collect();
    let price = Price { input: 1, output: 6, cached_input: 0 };
    Job::new("big".into(), "m".into(), first_line, first_line * 10, 0)
        .with_billing(price, 1_000_000)
        .with_shards(shards)
}

/// Take a fresh job through admission, upload and create to `batches/a` (file `files/a`), at time 0.
fn submit_first_batch(job: &mut Job, policy: &Policy) {
    for outcome in [
        Outcome::Admitted,
        Outcome::UploadStarted { session_url: "s".into() },
        Outcome::Uploaded { file: "files/a".into() },
        Outcome::CreateSending,
        Outcome::Created { batch: "batches/a".into() },
    ] {
        job.apply(outcome, 0, 0, policy);
    }
}

#[test]
fn a_sharded_job_runs_its_batches_one_after_another() {
    let policy = Policy::default();
    let mut job = sharded(&[4, 4, 2]);
    let mut g = fake(vec![], 1_000);
    drive(&mut job, &mut g, &[2], None, &policy);
    assert_eq!(job.state(), JobState::Succeeded);
    assert_eq!(job.tally.succeeded, 10, "every shard's lines, numbered on from the last");
    assert_eq!(job.sharding.lines_done, 10);
    assert_eq!(g.batches, vec!["batchgate-big", "batchgate-big-1-0", "batchgate-big-2-0"]);
    assert_eq!(g.admissions, vec![0, 1, 2], "each shard admitted once, in order");
    assert_eq!(g.deleted, 3, "each shard's files deleted before the next starts");
    assert_eq!(g.charges, vec![10 * 10 * 3], "one charge for the whole job");
}

#[test]
fn between_shards_the_job_is_running_and_its_results_not_ready() {
    let policy = Policy::default();
    let mut job = sharded(&[1, 1]);
    submit_first_batch(&mut job, &policy);
    let polled = Outcome::Polled {
        state: BatchState::Succeeded,
        progress: Progress { succeeded: 1, failed: 0, pending: 0 },
        results_file: None,
        error: None,
    };
    job.apply(polled, 0, 0, &policy);
    assert_eq!(job.state(), JobState::Running);
    assert_eq!(job.progress, Progress { succeeded: 1, failed: 0, pending: 1 }, "counts cover the whole job");
    assert!(!job.results_complete());
    assert_eq!(job.next_action(0), Action::Release, "the finished batch gives its quota back first");
    job.apply(Outcome::Released, 0, 0, &policy);
    assert_eq!(job.next_action(0), Action::DeleteFiles { files: vec!["files/a".into()] });
    job.apply(Outcome::FilesDeleted, 0, 0, &policy);
    assert_eq!((job.sharding.shard, job.phase.clone()), (1, Phase::Queued));
    assert_eq!(job.next_action(0), Action::Admit { tokens: 100 });
}

#[test]
fn a_full_quota_defers_the_shard_and_never_fails_it() {
    let policy = Policy { quota_retry_ms: 60_000, ..Policy::default() };
    let mut job = sharded(&[2, 2]);
    let mut g = fake(vec![], 1_000);
    g.quota_refusals = 30;
    drive(&mut job, &mut g, &[2], None, &policy);
    assert_eq!(job.state(), JobState::Succeeded);
    assert_eq!(job.tally.succeeded, 4);
    assert_eq!(g.quota_refusals, 0, "it asked again after every refusal");
    assert!(job.finished_ms.unwrap_or(0) >= 60_000, "a refusal waits the quota retry time");
}

#[test]
fn a_batch_stuck_in_pending_is_cancelled_and_submitted_again() {
    let policy = Policy { pending_limit_ms: 3_600_000, ..Policy::default() };
    let mut job = sharded(&[3, 3]);
    let mut g = fake(vec![], 1_000);
    g.stuck = vec!["batchgate-big-1-0".into()];
    drive(&mut job, &mut g, &[2], None, &policy);
    assert_eq!(job.state(), JobState::Succeeded);
    assert_eq!(job.tally.succeeded, 6);
    assert_eq!(g.abandoned, vec!["batches/batchgate-big-1-0"]);
    assert_eq!(g.batches, vec!["batchgate-big", "batchgate-big-1-0", "batchgate-big-1-1"]);
    // The abandoned attempt's input file went to the final cleanup.
    assert!(job.sharding.stale_files.is_empty());
}

#[test]
fn an_expired_batch_is_resubmitted_a_bounded_number_of_times_then_the_job_expires() {
    let policy = Policy { max_resubmits: 2, ..Policy::default() };
    let mut job = sharded(&[2, 2]);
    let mut g = fake(vec![], 1_000);
    g.expire = vec!["batchgate-big-1-0".into()];
    drive(&mut job, &mut g, &[2], None, &policy);
    assert_eq!(job.state(), JobState::Succeeded, "the second attempt went through");

    let mut job = sharded(&[2, 2]);
    let mut g = fake(vec![], 1_000);
    g.expire = (0..3).map(|r| format!("batchgate-big-1-{r}")).collect();
    drive(&mut job, &mut g, &[2], None, &policy);
    assert_eq!(job.state(), JobState::Expired);
    assert_eq!(g.batches.len(), 4, "the first shard, then the second three times");
    assert_eq!(job.tally.succeeded, 2, "the first shard's results are kept");
    assert_eq!(g.charges, vec![2 * 10 * 3], "and charged; nothing else");
    assert!(!job.sharding.quota_held && g.quota_holder.is_none());
}

#[test]
fn cancelling_between_shards_stops_before_the_next_one() {
    let policy = Policy::default();
    let mut job = sharded(&[1, 1, 1]);
    let mut g = fake(vec![], 1_000);
    let between = |j: &Job| matches!(j.phase, Phase::Cleaning { next_shard: Some(1), .. });
    drive_until(&mut job, &mut g, &[2], None, &policy, &between);
    assert!(between(&job));
    job.request_cancel(job.updated_ms);
    drive(&mut job, &mut g, &[2], None, &policy);
    assert_eq!(job.state(), JobState::Cancelled);
    assert_eq!(g.batches.len(), 1);
    assert_eq!(job.tally.succeeded, 1);
}

proptest! {
    /// A sharded job under any Gemini behaviour and lost answers: it ends,
    /// results are whole shards in order, charged once, the quota returned.
    #[test]
    fn a_sharded_job_ends_with_whole_shards_charged_once(
        sizes in proptest::collection::vec(1u64..6, 1..5),
        states in proptest::collection::vec(arb_state(), 0..30),
        rolls in proptest::collection::vec(any::<u64>(), 1..50),
        cancel_at in proptest::option::of(0usize..200),
    ) {
        let policy = Policy::default();
        let mut job = sharded(&sizes);
        let mut g = fake(states, 1_000);
        let steps = drive(&mut job, &mut g, &rolls, cancel_at, &policy);
        prop_assert!(job.is_done(), "not done after {} steps: {:?}", steps, job.phase);
        prop_assert!(job.state().is_terminal());
        prop_assert!(g.quota_holder.is_none() && !job.sharding.quota_held, "the quota was not released");
        prop_assert!(g.batches.iter().all(|b| g.batches.iter().filter(|c| *c == b).count() == 1));
        let ingested = job.tally.succeeded;
        let whole_shards: Vec<u64> = sizes.iter().scan(0, |sum, s| { *sum += s; Some(*sum) }).collect();
        prop_assert!(ingested == 0 || whole_shards.contains(&ingested), "{} is not a prefix of {:?}", ingested, sizes);
        if job.state() == JobState::Succeeded {
            prop_assert_eq!(ingested, sizes.iter().sum::<u64>());
        }
        prop_assert_eq!(&g.charges, &vec![ingested as i64 * 10 * 3]);
    }
}

#[test]
fn a_gemini_webhook_wakes_only_the_batch_the_job_waits_on() {
    let policy = Policy::default();
    let mut job = sharded(&[1]);
    submit_first_batch(&mut job, &policy);
    assert!(job.next_at_ms > 1_000, "the first poll is scheduled later");
    assert!(!job.wake("batches/old", 1_000));
    assert!(job.next_at_ms > 1_000);
    assert!(job.wake("batches/a", 1_000));
    assert_eq!(job.next_action(1_000), Action::PollBatch { batch: "batches/a".into() });
}

#[test]
fn the_deadline_counts_per_shard_so_a_long_sharded_job_is_not_cut_short() {
    // Each shard takes 20 h at Gemini; the job as a whole takes 60 h, past a 30 h deadline.
    let policy = Policy { deadline_ms: 30 * 3_600_000, ..Policy::default() };
    let mut job = sharded(&[1, 1, 1]);
    let mut g = fake(vec![BatchState::Running; 10_000], 1_000);
    let mut shard_end = 0;
    for _ in 0..3 {
        let shard = job.sharding.shard;
        let running = |j: &Job| matches!(j.phase, Phase::Submitted { .. }) && j.sharding.shard == shard;
        drive_until(&mut job, &mut g, &[2], None, &policy, &running);
        // Gemini answers RUNNING until the shard has run 20 h, then SUCCEEDED.
        let done_at = job.updated_ms.max(shard_end) + 20 * 3_600_000;
        g.states.truncate(g.polls);
        job.next_at_ms = done_at;
        let to_end = |j: &Job| j.sharding.shard != shard || j.state().is_terminal();
        drive_until(&mut job, &mut g, &[2], None, &policy, &to_end);
        shard_end = done_at;
    }
    drive(&mut job, &mut g, &[2], None, &policy);
    assert_eq!(job.state(), JobState::Succeeded, "{:?}", job.error);
    assert!(job.finished_ms.unwrap_or(0) > 60 * 3_600_000);
}

#[test]
fn a_purge_undoes_what_the_job_holds_and_nothing_it_does_not() {
    let policy = Policy::default();
    let fresh = sharded(&[2, 2]);
    let plan = fresh.purge_plan();
    assert_eq!((plan.cancel_batch, plan.files.len(), plan.last_shard), (None, 0, 0));
    assert!(plan.release_quota, "a job not yet ended may hold an admission whose answer was lost");

    let mut running = sharded(&[2, 2]);
    submit_first_batch(&mut running, &policy);
    let plan = running.purge_plan();
    assert_eq!(plan.cancel_batch.as_deref(), Some("batches/a"), "a batch still running is cancelled");
    assert_eq!(plan.files, vec!["files/a".to_string()]);
    assert!(plan.release_quota);

    let mut ended = sharded(&[2, 2]);
    let mut g = fake(vec![], 1_000);
    drive(&mut ended, &mut g, &[2], None, &policy);
    let plan = ended.purge_plan();
    assert_eq!(plan.cancel_batch, None, "an ended batch is not cancelled");
    assert!(!plan.release_quota, "every admission was released on the way");
    assert_eq!(
        plan.files,
        ended.input_file.iter().cloned().collect::<Vec<_>>(),
        "only its last input file, already deleted on the way (a repeat is answered 404: done)"
    );
    assert_eq!(plan.last_shard, 1, "both shards' results objects go");
}
