use super::*;
use crate::pricing::Price;
use crate::results::Outcome as LineOutcome;
use crate::results::Usage;
use proptest::prelude::*;

/// A scripted Gemini and quota: answers what the job asks, counts what it was asked.
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
    /// Display names of batches Gemini fails.
    fail: Vec<String>,
    abandoned: Vec<String>,
    /// The quota: shards holding room and their tokens, the cap, and how many
    /// admissions it refuses first.
    holds: Vec<(u64, u64)>,
    cap: u64,
    quota_refusals: u32,
    admissions: Vec<u64>,
    /// Most shards holding the quota at once, and most tokens held.
    peak_holds: usize,
    peak_tokens: u64,
    /// Several shards held more than the cap at once (one alone may: Gemini then decides).
    over_cap: bool,
    /// Result lines stored, per shard.
    ingested: std::collections::BTreeMap<u64, u64>,
    /// Gemini refuses every batch create outright (no batch access).
    refuse_creates: bool,
    /// Every realtime step dies before it reports.
    answers_hang: bool,
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

/// Every call answered (no failures, nothing lost).
const ALL_OK: &[u64] = &[];

/// Run the job against the fake until done or out of steps; returns steps used
/// (`rolls` pick which calls fail or are lost).
fn drive(
    job: &mut Job,
    g: &mut FakeGemini,
    rolls: &[u64],
    cancel_at: Option<usize>,
    policy: &Policy,
) -> usize {
    drive_until(job, g, rolls, cancel_at, policy, &|_| false)
}

/// What Gemini (or the quota, or the account) answers to one task.
fn answer(
    job: &mut Job,
    g: &mut FakeGemini,
    task: &Task,
    f: Fate,
    now: u64,
    roll: u64,
    policy: &Policy,
) -> Option<Outcome> {
    let Some(shard) = task.shard else {
        let Action::Settle { charge, .. } = task.action else { unreachable!("only settles are the job's") };
        if !matches!(f, Fate::Transient) && g.charges.is_empty() {
            g.charges.push(charge);
        }
        return Some(Outcome::Settled { charge });
    };
    let run = job.run(shard)?.clone();
    let name = job.display_name(&run);
    Some(match &task.action {
        Action::Admit { tokens } => {
            let held: u64 = g.holds.iter().map(|(_, t)| t).sum();
            let mine = g.holds.iter().any(|(s, _)| *s == shard);
            if g.quota_refusals > 0 {
                g.quota_refusals -= 1;
                Outcome::QuotaFull
            } else if mine || g.holds.is_empty() || held + tokens <= g.cap {
                if !mine {
                    g.holds.push((shard, *tokens));
                    g.admissions.push(shard);
                }
                let total: u64 = g.holds.iter().map(|(_, t)| t).sum();
                g.peak_holds = g.peak_holds.max(g.holds.len());
                g.peak_tokens = g.peak_tokens.max(total);
                g.over_cap |= total > g.cap && g.holds.len() > 1;
                Outcome::Admitted { key: None }
            } else {
                Outcome::QuotaFull
            }
        }
        Action::Release => {
            g.holds.retain(|(s, _)| *s != shard);
            Outcome::Released
        }
        Action::StartUpload => Outcome::UploadStarted { session_url: "s".into() },
        Action::ContinueUpload { .. } => Outcome::Uploaded { file: format!("files/in-{shard}") },
        Action::FindBatch => match g.batches.iter().find(|b| **b == name) {
            Some(_) => Outcome::BatchFound { batch: format!("batches/{name}") },
            None => Outcome::BatchAbsent,
        },
        Action::CreateBatch { .. } => {
            // The adapter stores the attempt before it calls.
            job.apply(Some(shard), Outcome::CreateSending, now, roll, policy);
            if g.refuse_creates && !matches!(f, Fate::Transient) {
                return Some(Outcome::Failed(Failure::Permanent {
                    status: 400,
                    message: "no batch access".into(),
                }));
            }
            match f {
                Fate::Transient => transient(),
                Fate::Lost => {
                    g.batches.push(name);
                    return None;
                }
                Fate::Ok => {
                    g.batches.push(name.clone());
                    Outcome::Created { batch: format!("batches/{name}") }
                }
            }
        }
        Action::CancelBatch { batch } => {
            if matches!(run.phase, Phase::Abandoning { .. }) {
                g.abandoned.push(batch.clone());
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
            } else if g.fail.contains(&name) {
                BatchState::Failed
            } else {
                g.states.get(g.polls).cloned().unwrap_or(BatchState::Succeeded)
            };
            g.polls += 1;
            let has_results = matches!(state, BatchState::Succeeded | BatchState::Cancelled);
            Outcome::Polled {
                state,
                progress: Progress::default(),
                results_file: has_results.then(|| format!("files/batch-{shard}")),
                error: None,
            }
        }
        Action::Ingest { cursor, .. } => {
            // Three lines per slice, until the shard's lines are all in.
            let end = g.results_lines.min(run.spec.requests);
            if cursor.lines >= end {
                g.ingested.insert(shard, cursor.lines);
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
        // As the worker's step: answers a lost step stored are taken as they are
        // (never left stored unpaid); only a shard with none stored can be cancelled.
        Action::Answer if g.answers_hang => {
            job.apply(Some(shard), Outcome::AnswerSending, now, roll, policy);
            return None; // the step never reports: its alarm is torn down
        }
        Action::Answer if run.cancel_requested && !g.ingested.contains_key(&shard) => Outcome::CancelSent,
        Action::Answer => {
            let lines = run.spec.requests;
            g.ingested.insert(shard, lines);
            let mut tally = Tally::default();
            for _ in 0..lines {
                tally.add(&LineOutcome::Success(Usage { candidates: 10, total: 10, ..Usage::default() }));
            }
            Outcome::Answered { tally, lines }
        }
        Action::Settle { .. } => unreachable!("settles are the job's"),
    })
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
    for step in 0..5_000 {
        if stop(job) {
            return step;
        }
        if cancel_at == Some(step) {
            job.request_cancel(now);
        }
        let tasks = match job.next(now) {
            Next::Finished => return step,
            Next::Wait { until_ms } => {
                now = until_ms;
                continue;
            }
            Next::Do(tasks) => tasks,
        };
        // Each task's answer is applied in turn, as the worker does after running
        // them together, dropping one whose shard another answer moved on.
        let phases: Vec<Option<Phase>> =
            tasks.iter().map(|t| t.shard.and_then(|s| job.run(s)).map(|r| r.phase.clone())).collect();
        for (i, task) in tasks.iter().enumerate() {
            if task.shard.and_then(|s| job.run(s)).map(|r| r.phase.clone()) != phases[i] {
                continue;
            }
            let roll = match rolls.len() {
                0 => 2,
                n => rolls[(step + i) % n].wrapping_mul(step as u64 + 1),
            };
            let f = fate(roll);
            let Some(outcome) = answer(job, g, task, f, now, roll, policy) else { continue };
            match f {
                Fate::Ok => job.apply(task.shard, outcome, now, roll, policy),
                Fate::Transient => job.apply(task.shard, transient(), now, roll, policy),
                Fate::Lost => {} // the alarm fires again; the same step repeats
            }
        }
    }
    5_000
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
        fail: vec![],
        abandoned: vec![],
        holds: vec![],
        cap: u64::MAX,
        quota_refusals: 0,
        admissions: vec![],
        peak_holds: 0,
        peak_tokens: 0,
        over_cap: false,
        ingested: Default::default(),
        refuse_creates: false,
        answers_hang: false,
    }
}

fn one_at_a_time() -> Policy {
    Policy { max_parallel_shards: 1, ..Policy::default() }
}

fn tasks(job: &Job, now: u64) -> Vec<Task> {
    match job.next(now) {
        Next::Do(tasks) => tasks,
        other => panic!("expected tasks, got {other:?}"),
    }
}

fn task(shard: Option<u64>, action: Action) -> Task {
    Task { shard, action }
}

#[test]
fn the_happy_path_runs_every_phase_in_order() {
    let policy = Policy::default();
    let mut job = Job::new("j1".into(), "gemini-2.5-flash".into(), 7, 100, 1_000);
    assert_eq!(job.state(), JobState::Accepted);
    let mut g = fake(vec![BatchState::Pending, BatchState::Running, BatchState::Succeeded], 7);
    drive(&mut job, &mut g, ALL_OK, None, &policy);
    assert_eq!(job.state(), JobState::Succeeded);
    assert_eq!(job.tally().succeeded, 7);
    assert_eq!(job.tally().usage.total, 70);
    assert_eq!(g.batches.len(), 1);
    assert_eq!(g.deleted, 1, "input and results files deleted in one cleanup step");
    assert!(job.error.is_none());
    assert!(job.is_done() && job.runs.is_empty(), "the finished shard is folded into the totals");
}

#[test]
fn cancel_before_gemini_has_the_batch_ends_at_once() {
    let policy = Policy::default();
    let mut job = Job::new("j".into(), "m".into(), 1, 1, 0);
    job.request_cancel(5);
    assert_eq!(job.state(), JobState::Cancelled);
    // Nothing was delivered: the charge is zero, and settling it releases the
    // reservation; an admission may have been granted before the cancel: it is given back.
    assert_eq!(
        tasks(&job, 5),
        vec![task(None, Action::Settle { charge: 0, standard: 0 }), task(Some(0), Action::Release)]
    );
    job.apply(Some(0), Outcome::Released, 5, 0, &policy);
    job.apply(None, Outcome::Settled { charge: 0 }, 5, 0, &policy);
    assert!(job.is_done());
    assert_eq!(job.next(5), Next::Finished);
}

#[test]
fn a_batch_gemini_forgot_fails_the_job_and_a_refused_create_too() {
    let policy = Policy::default();
    let mut job = Job::new("j".into(), "m".into(), 1, 1, 0);
    for o in [
        Outcome::Admitted { key: None },
        Outcome::UploadStarted { session_url: "s".into() },
        Outcome::Uploaded { file: "files/a".into() },
        Outcome::CreateSending,
        Outcome::Failed(Failure::Permanent { status: 400, message: "bad".into() }),
    ] {
        job.apply(Some(0), o, 0, 0, &policy);
    }
    assert_eq!(job.state(), JobState::Failed);
    assert_eq!(job.error.as_ref().map(|e| e.code.as_str()), Some("gemini_create_refused"));
    assert_eq!(
        tasks(&job, 0),
        vec![task(None, Action::Settle { charge: 0, standard: 0 }), task(Some(0), Action::Release),]
    );
    job.apply(None, Outcome::Settled { charge: 0 }, 0, 0, &policy);
    job.apply(Some(0), Outcome::Released, 0, 0, &policy);
    assert_eq!(tasks(&job, 0), vec![task(Some(0), Action::DeleteFiles { files: vec!["files/a".into()] })]);
}

#[test]
fn the_deadline_ends_a_job_gemini_never_finishes() {
    let policy = Policy { deadline_ms: 3_600_000, ..Policy::default() };
    let mut job = Job::new("j".into(), "m".into(), 1, 1, 0);
    let mut g = fake(vec![BatchState::Pending; 10_000], 1);
    drive(&mut job, &mut g, ALL_OK, None, &policy);
    assert_eq!(job.state(), JobState::Expired);
    assert!(g.polls < 200, "polling backs off: {} polls in an hour", g.polls);
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
        let price = Price { input: 1, output: 6, cached_input: 0, ..Default::default() };
        let mut job = Job::new("job-1".into(), "gemini-2.5-flash".into(), lines, 10, 1_000_000).with_billing(price, 1_000);
        let mut g = fake(states, lines);
        let steps = drive(&mut job, &mut g, &rolls, cancel_at, &policy);
        prop_assert!(job.is_done(), "not done after {} steps: {:?}", steps, job.runs);
        // One batch per attempt: a lost create was found, never made twice.
        let attempts = 1 + policy.max_resubmits as usize;
        prop_assert!(g.batches.len() <= attempts, "{} batches created", g.batches.len());
        prop_assert!(g.batches.iter().all(|b| g.batches.iter().filter(|c| *c == b).count() == 1));
        prop_assert!(g.holds.is_empty(), "the quota was not released");
        let ingested = job.tally().succeeded;
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
    let price = Price { input: 1, output: 6, cached_input: 0, ..Default::default() };
    Job::new("big".into(), "m".into(), first_line, first_line * 10, 0)
        .with_billing(price, 1_000_000)
        .with_shards(shards)
}

/// Take shard 0 of a fresh job through admission, upload and create to `batches/a` (file `files/a`), at time 0.
fn submit_first_batch(job: &mut Job, policy: &Policy) {
    for outcome in [
        Outcome::Admitted { key: None },
        Outcome::UploadStarted { session_url: "s".into() },
        Outcome::Uploaded { file: "files/a".into() },
        Outcome::CreateSending,
        Outcome::Created { batch: "batches/a".into() },
    ] {
        job.apply(Some(0), outcome, 0, 0, policy);
    }
}

#[test]
fn a_sharded_job_runs_one_batch_at_a_time_when_told_to() {
    let policy = one_at_a_time();
    let mut job = sharded(&[4, 4, 2]);
    let mut g = fake(vec![], 1_000);
    drive(&mut job, &mut g, ALL_OK, None, &policy);
    assert_eq!(job.state(), JobState::Succeeded);
    assert_eq!(job.tally().succeeded, 10, "every shard's lines");
    assert_eq!(job.readable_lines(), 10);
    assert_eq!(g.batches, vec!["batchgate-big", "batchgate-big-1-0", "batchgate-big-2-0"]);
    assert_eq!(g.admissions, vec![0, 1, 2], "each shard admitted once, in order");
    assert_eq!(g.peak_holds, 1);
    assert_eq!(g.deleted, 3);
    assert_eq!(g.charges, vec![10 * 10 * 3], "one charge for the whole job");
}

#[test]
fn shards_run_side_by_side_as_far_as_the_quota_and_the_limit_allow() {
    let policy = Policy { max_parallel_shards: 3, ..Policy::default() };
    let mut job = sharded(&[2; 8]);
    let mut g = fake(vec![BatchState::Running; 20], 1_000);
    // Room for two shards of 200 tokens at once: the quota, not the limit of 3, decides.
    g.cap = 400;
    drive(&mut job, &mut g, ALL_OK, None, &policy);
    assert_eq!(job.state(), JobState::Succeeded);
    assert_eq!(job.tally().succeeded, 16);
    assert_eq!(g.admissions, (0..8).collect::<Vec<_>>(), "admitted in shard order");
    assert_eq!((g.peak_holds, g.peak_tokens), (2, 400), "two at once, never over the cap");
    assert_eq!(g.charges, vec![16 * 10 * 3]);

    let mut job = sharded(&[2; 8]);
    let mut g = fake(vec![BatchState::Running; 20], 1_000);
    drive(&mut job, &mut g, ALL_OK, None, &policy);
    assert_eq!(g.peak_holds, 3, "an open quota: the limit decides");
}

#[test]
fn one_shard_waits_for_the_quota_at_a_time_and_the_next_starts_once_it_is_admitted() {
    let policy = Policy::default();
    let mut job = sharded(&[1, 1, 1]);
    assert_eq!(job.runs.len(), 1, "only the first shard asks at first");
    job.apply(Some(0), Outcome::QuotaFull, 0, 0, &policy);
    assert_eq!(job.runs.len(), 1, "a refused shard keeps the others back");
    job.apply(Some(0), Outcome::Admitted { key: None }, 1, 0, &policy);
    assert_eq!(job.attempts(), vec![(0, 0), (1, 0)]);
    assert_eq!(job.state(), JobState::Accepted);
    assert!(tasks(&job, 1).contains(&task(Some(1), Action::Admit { tokens: 100 })));
}

#[test]
fn results_can_be_read_shard_by_shard_as_they_land() {
    let policy = Policy::default();
    let mut job = sharded(&[2, 3]);
    submit_first_batch(&mut job, &policy);
    // Shard 1 gets to Gemini too and finishes first.
    for o in [
        Outcome::Admitted { key: None },
        Outcome::UploadStarted { session_url: "s".into() },
        Outcome::Uploaded { file: "files/b".into() },
        Outcome::CreateSending,
        Outcome::Created { batch: "batches/b".into() },
        Outcome::Polled {
            state: BatchState::Succeeded,
            progress: Progress { succeeded: 3, failed: 0, pending: 0 },
            results_file: Some("files/rb".into()),
            error: None,
        },
    ] {
        job.apply(Some(1), o, 0, 0, &policy);
    }
    assert_eq!(job.readable_shards(), Vec::<u64>::new(), "nothing is stored whole yet");
    assert_eq!(
        job.progress(),
        Progress { succeeded: 3, failed: 0, pending: 2 },
        "counts cover the whole job"
    );
    let mut cursor = Cursor::default();
    for _ in 0..3 {
        cursor.lines += 1;
        cursor.tally.add(&LineOutcome::Success(Usage { total: 1, ..Usage::default() }));
    }
    job.apply(Some(1), Outcome::IngestProgress { cursor, size: 9 }, 0, 0, &policy);
    job.apply(Some(1), Outcome::Ingested, 0, 0, &policy);
    assert_eq!(job.readable_shards(), vec![1], "shard 1 is readable before shard 0 ends");
    assert_eq!(job.readable_lines(), 3);
    assert_eq!(job.state(), JobState::Running);
    assert!(!job.results_complete());
}

#[test]
fn a_shard_that_fails_stops_new_ones_and_those_running_keep_their_results() {
    let policy = Policy { max_parallel_shards: 2, ..Policy::default() };
    let mut job = sharded(&[2, 2, 2, 2]);
    let mut g = fake(vec![BatchState::Running; 4], 1_000);
    g.fail = vec!["batchgate-big".into()];
    drive(&mut job, &mut g, ALL_OK, None, &policy);
    assert_eq!(job.state(), JobState::Failed);
    assert_eq!(job.error.as_ref().map(|e| e.code.as_str()), Some("gemini_failed"));
    assert_eq!(g.batches, vec!["batchgate-big", "batchgate-big-1-0"], "no shard started after the failure");
    assert_eq!(g.ingested.keys().copied().collect::<Vec<_>>(), vec![1], "the shard beside it finished");
    assert_eq!(g.charges, vec![2 * 10 * 3], "and is charged");
    assert!(g.holds.is_empty());
}

#[test]
fn a_full_quota_defers_the_shard_and_never_fails_it() {
    let policy = Policy { quota_retry_ms: 60_000, ..Policy::default() };
    let mut job = sharded(&[2, 2]);
    let mut g = fake(vec![], 1_000);
    g.quota_refusals = 30;
    drive(&mut job, &mut g, ALL_OK, None, &policy);
    assert_eq!(job.state(), JobState::Succeeded);
    assert_eq!(job.tally().succeeded, 4);
    assert_eq!(g.quota_refusals, 0, "it asked again after every refusal");
    assert!(job.finished_ms.unwrap_or(0) >= 60_000, "a refusal waits the quota retry time");
}

#[test]
fn a_batch_stuck_in_pending_is_cancelled_and_submitted_again() {
    let policy = Policy { pending_limit_ms: 3_600_000, ..one_at_a_time() };
    let mut job = sharded(&[3, 3]);
    let mut g = fake(vec![], 1_000);
    g.stuck = vec!["batchgate-big-1-0".into()];
    drive(&mut job, &mut g, ALL_OK, None, &policy);
    assert_eq!(job.state(), JobState::Succeeded);
    assert_eq!(job.tally().succeeded, 6);
    assert_eq!(g.abandoned, vec!["batches/batchgate-big-1-0"]);
    assert_eq!(g.batches, vec!["batchgate-big", "batchgate-big-1-0", "batchgate-big-1-1"]);
}

#[test]
fn an_expired_batch_is_resubmitted_a_bounded_number_of_times_then_the_job_expires() {
    let policy = Policy { max_resubmits: 2, ..Policy::default() };
    let mut job = sharded(&[2, 2]);
    let mut g = fake(vec![], 1_000);
    g.expire = vec!["batchgate-big-1-0".into()];
    drive(&mut job, &mut g, ALL_OK, None, &policy);
    assert_eq!(job.state(), JobState::Succeeded, "the second attempt went through");

    let mut job = sharded(&[2, 2]);
    let mut g = fake(vec![], 1_000);
    g.expire = (0..3).map(|r| format!("batchgate-big-1-{r}")).collect();
    drive(&mut job, &mut g, ALL_OK, None, &policy);
    assert_eq!(job.state(), JobState::Expired);
    assert_eq!(g.batches.len(), 4, "the first shard, then the second three times");
    assert_eq!(job.tally().succeeded, 2, "the first shard's results are kept");
    assert_eq!(g.charges, vec![2 * 10 * 3], "and charged; nothing else");
    assert!(g.holds.is_empty());
}

#[test]
fn cancelling_between_shards_stops_before_the_next_one() {
    let policy = one_at_a_time();
    let mut job = sharded(&[1, 1, 1]);
    let mut g = fake(vec![], 1_000);
    let between = |j: &Job| j.finished.shards == 1 || j.runs.iter().any(|r| r.shard == 0 && r.results_in());
    drive_until(&mut job, &mut g, ALL_OK, None, &policy, &between);
    job.request_cancel(job.updated_ms);
    drive(&mut job, &mut g, ALL_OK, None, &policy);
    assert_eq!(job.state(), JobState::Cancelled);
    assert!(g.batches.len() <= 2, "{:?}", g.batches);
    assert_eq!(job.tally().succeeded, g.ingested.values().sum::<u64>());
}

proptest! {
    /// A sharded job under any Gemini behaviour, quota, parallelism and lost
    /// answers: it ends, its results are whole shards, it is charged once,
    /// the quota is returned and never held by more shards than allowed.
    #[test]
    fn a_sharded_job_ends_with_whole_shards_charged_once(
        sizes in proptest::collection::vec(1u64..6, 1..6),
        states in proptest::collection::vec(arb_state(), 0..30),
        rolls in proptest::collection::vec(any::<u64>(), 1..50),
        cancel_at in proptest::option::of(0usize..200),
        parallel in 1u32..4,
        cap in 100u64..1_200,
    ) {
        let policy = Policy { max_parallel_shards: parallel, ..Policy::default() };
        let mut job = sharded(&sizes);
        let mut g = fake(states, 1_000);
        g.cap = cap;
        let steps = drive(&mut job, &mut g, &rolls, cancel_at, &policy);
        prop_assert!(job.is_done(), "not done after {} steps: {:?}", steps, job.runs);
        prop_assert!(job.state().is_terminal());
        prop_assert!(g.holds.is_empty(), "the quota was not released");
        prop_assert!(g.peak_holds <= parallel as usize);
        prop_assert!(!g.over_cap, "several shards held more than the cap");
        prop_assert!(g.batches.iter().all(|b| g.batches.iter().filter(|c| *c == b).count() == 1));
        for (shard, lines) in &g.ingested {
            prop_assert_eq!(*lines, sizes[*shard as usize], "shard {} stored part of its lines", shard);
        }
        let ingested = job.tally().succeeded;
        prop_assert_eq!(ingested, g.ingested.values().sum::<u64>());
        if job.state() == JobState::Succeeded {
            prop_assert_eq!(ingested, sizes.iter().sum::<u64>());
        }
        prop_assert_eq!(&g.charges, &vec![ingested as i64 * 10 * 3]);
    }
}

fn realtime(choice: crate::lane::Choice) -> impl Fn(&[u64]) -> Job {
    move |sizes| sharded(sizes).with_lane(choice.clone())
}

proptest! {
    /// A realtime job, whatever fails, is lost or cancelled: it ends, makes
    /// no batch and asks no quota, and is charged the standard price for
    /// exactly the answers it stored (never an answer stored unpaid).
    #[test]
    fn a_realtime_job_is_charged_the_standard_price_for_every_answer_it_stored(
        sizes in proptest::collection::vec(1u64..6, 1..6),
        rolls in proptest::collection::vec(any::<u64>(), 1..50),
        cancel_at in proptest::option::of(0usize..40),
    ) {
        let choice = crate::lane::choose(crate::lane::Mode::Realtime, 1, 0);
        let mut job = realtime(choice)(&sizes);
        let mut g = fake(vec![], 1_000);
        let policy = Policy::default();
        let steps = drive(&mut job, &mut g, &rolls, cancel_at, &policy);
        prop_assert!(job.is_done(), "not done after {} steps: {:?}", steps, job.runs);
        prop_assert!(g.batches.is_empty() && g.admissions.is_empty(), "the realtime lane never makes a batch");
        let stored: u64 = g.ingested.values().sum();
        prop_assert_eq!(job.tally().succeeded, stored, "every stored answer is counted");
        if job.state() == JobState::Succeeded {
            prop_assert_eq!(stored, sizes.iter().sum::<u64>());
        }
        prop_assert_eq!(&g.charges, &vec![stored as i64 * 10 * 6], "the standard price, not half");
        let (charge, standard) = job.cost();
        prop_assert_eq!(charge, standard);
    }
}

/// `sharded(sizes)` allowed to fall back, its realtime cut in pieces of at
/// most 2 lines, cut at every batch boundary too.
fn with_fallback(sizes: &[u64], after_ms: u64) -> Job {
    let job = sharded(sizes);
    let mut pieces = vec![];
    for q in 0..job.shard_count() {
        let spec = job.spec_of(q);
        let mut line = spec.first_line;
        while line < spec.first_line + spec.requests {
            let n = 2.min(spec.first_line + spec.requests - line);
            pieces.push(ShardSpec {
                first_line: line,
                requests: n,
                offset: line * 10,
                bytes: n * 10,
                tokens: n * 100,
            });
            line += n;
        }
    }
    job.with_fallback(Fallback { after_ms, pieces })
}

proptest! {
    /// Gemini refuses every batch, or the quota never has room: a job allowed
    /// to fall back answers every request realtime, once, holds no quota at
    /// its end and is charged the standard price for exactly what it stored.
    #[test]
    fn a_job_that_falls_back_delivers_every_request_once_at_the_standard_price(
        sizes in proptest::collection::vec(1u64..6, 1..5),
        rolls in proptest::collection::vec(any::<u64>(), 1..50),
        quota_stuck in any::<bool>(),
        parallel in 1u32..4,
    ) {
        let policy = Policy { max_parallel_shards: parallel, ..Policy::default() };
        let mut job = with_fallback(&sizes, 60_000);
        let mut g = fake(vec![], 1_000);
        g.refuse_creates = true;
        if quota_stuck {
            g.quota_refusals = u32::MAX;
        }
        let steps = drive(&mut job, &mut g, &rolls, None, &policy);
        prop_assert!(job.is_done(), "not done after {} steps: {:?}", steps, job.runs);
        prop_assert_eq!(job.state(), JobState::Succeeded, "{:?}", job.error);
        prop_assert_eq!(job.lane(), crate::lane::Lane::Realtime);
        prop_assert!(job.lane_choice().unwrap().reason.contains("fell back"));
        prop_assert!(g.holds.is_empty(), "the quota was not released");
        let total: u64 = sizes.iter().sum();
        prop_assert_eq!(g.ingested.values().sum::<u64>(), total, "every request answered once: {:?}", g.ingested);
        prop_assert_eq!(job.tally().succeeded, total);
        prop_assert_eq!(&g.charges, &vec![total as i64 * 10 * 6], "the standard price for realtime answers");
    }
}

#[test]
fn a_job_without_fallback_fails_when_gemini_refuses_the_batch() {
    let mut job = sharded(&[2, 2]);
    let mut g = fake(vec![], 1_000);
    g.refuse_creates = true;
    drive(&mut job, &mut g, ALL_OK, None, &Policy::default());
    assert_eq!(job.state(), JobState::Failed);
    assert_eq!(job.lane(), crate::lane::Lane::Batch);
}

#[test]
fn a_fallback_after_one_batch_succeeded_charges_each_part_its_lane_price() {
    let policy = Policy { max_parallel_shards: 1, ..Policy::default() };
    let mut job = with_fallback(&[3, 3], 60_000);
    let mut g = fake(vec![BatchState::Succeeded], 1_000);
    // The first batch runs; then Gemini stops taking batches.
    drive_until(&mut job, &mut g, ALL_OK, None, &policy, &|j| j.run(1).is_some());
    g.refuse_creates = true;
    drive(&mut job, &mut g, ALL_OK, None, &policy);
    assert_eq!(job.state(), JobState::Succeeded);
    assert_eq!(g.batches.len(), 1);
    assert_eq!(job.realtime_tally().succeeded, 3);
    assert_eq!(g.charges, vec![3 * 30 + 3 * 60], "half price for the batch, full for the realtime calls");
}

#[test]
fn a_realtime_step_that_never_finishes_is_begun_three_times_then_fails_the_job() {
    let choice = crate::lane::choose(crate::lane::Mode::Realtime, 1, 0);
    let mut job = realtime(choice)(&[2]);
    let mut g = fake(vec![], 1_000);
    g.answers_hang = true;
    drive(&mut job, &mut g, ALL_OK, None, &Policy::default());
    assert_eq!(job.state(), JobState::Failed);
    assert_eq!(job.error.as_ref().map(|e| e.code.as_str()), Some("realtime_failed"));
    assert_eq!(g.charges, vec![0]);
}

#[test]
fn realtime_shards_answer_two_at_a_time_and_show_running() {
    let choice = crate::lane::choose(crate::lane::Mode::Auto, 6, 50);
    let job = realtime(choice)(&[2, 2, 2]);
    assert_eq!(job.lane(), crate::lane::Lane::Realtime);
    assert_eq!(job.state(), JobState::Running);
    let tasks = tasks(&job, 0);
    assert_eq!(tasks.len(), 1, "the first shard, then the next as it goes: {tasks:?}");
    assert_eq!(tasks[0].action, Action::Answer);
}

#[test]
fn a_gemini_webhook_wakes_only_the_batch_the_job_waits_on() {
    let policy = Policy::default();
    let mut job = sharded(&[1]);
    submit_first_batch(&mut job, &policy);
    assert!(job.next_at_ms() > 1_000, "the first poll is scheduled later");
    assert!(!job.wake("batches/old", 1_000));
    assert!(job.next_at_ms() > 1_000);
    assert!(job.wake("batches/a", 1_000));
    assert_eq!(tasks(&job, 1_000), vec![task(Some(0), Action::PollBatch { batch: "batches/a".into() })]);
}

#[test]
fn the_deadline_counts_per_shard_so_a_long_sharded_job_is_not_cut_short() {
    // Each shard takes 20 h at Gemini; the job as a whole takes 60 h, past a 30 h deadline.
    let policy = Policy { deadline_ms: 30 * 3_600_000, ..one_at_a_time() };
    let mut job = sharded(&[1, 1, 1]);
    let mut g = fake(vec![BatchState::Running; 10_000], 1_000);
    let mut shard_end = 0;
    for shard in 0..3 {
        let running = |j: &Job| j.run(shard).is_some_and(|r| matches!(r.phase, Phase::Submitted { .. }));
        drive_until(&mut job, &mut g, ALL_OK, None, &policy, &running);
        // Gemini answers RUNNING until the shard has run 20 h, then SUCCEEDED.
        let done_at = job.updated_ms.max(shard_end) + 20 * 3_600_000;
        g.states.truncate(g.polls);
        if let Some(run) = job.runs.iter_mut().find(|r| r.shard == shard) {
            run.next_at_ms = done_at;
        }
        let to_end = |j: &Job| j.run(shard).is_none_or(Run::results_in);
        drive_until(&mut job, &mut g, ALL_OK, None, &policy, &to_end);
        shard_end = done_at;
    }
    drive(&mut job, &mut g, ALL_OK, None, &policy);
    assert_eq!(job.state(), JobState::Succeeded, "{:?}", job.error);
    assert!(job.finished_ms.unwrap_or(0) >= 60 * 3_600_000, "{:?}", job.finished_ms);
}

#[test]
fn a_purge_undoes_what_the_job_holds_and_nothing_it_does_not() {
    let policy = Policy::default();
    let fresh = sharded(&[2, 2]);
    let plan = fresh.purge_plan();
    assert_eq!((plan.cancel_batches.len(), plan.files.len(), plan.started), (0, 0, 1));
    assert_eq!(
        plan.release_shards,
        vec![0],
        "a shard not yet ended may hold an admission whose answer was lost"
    );

    let mut running = sharded(&[2, 2]);
    submit_first_batch(&mut running, &policy);
    let plan = running.purge_plan();
    assert_eq!(
        plan.cancel_batches,
        vec![("batches/a".to_string(), None)],
        "a batch still running is cancelled"
    );
    assert_eq!(plan.files, vec![("files/a".to_string(), None)]);
    assert_eq!(plan.release_shards, vec![0, 1], "shard 1 started once shard 0 was admitted");

    let mut ended = sharded(&[2, 2]);
    let mut g = fake(vec![], 1_000);
    drive(&mut ended, &mut g, ALL_OK, None, &policy);
    let plan = ended.purge_plan();
    assert_eq!(plan.cancel_batches, vec![], "an ended batch is not cancelled");
    assert!(plan.release_shards.is_empty(), "every admission was released on the way");
    assert!(plan.files.is_empty(), "every file was deleted on the way");
    assert_eq!(plan.started, 2, "both shards' results objects go");
}

#[test]
fn a_refused_key_sends_the_shard_back_to_the_quota_for_another_and_fails_it_mid_read() {
    let policy = Policy::default();
    let mut job = sharded(&[2]);
    submit_first_batch(&mut job, &policy);
    let refused = || Outcome::Failed(Failure::Permanent { status: 403, message: "key revoked".into() });
    job.apply(Some(0), refused(), 5, 0, &policy);
    let run = &job.runs()[0];
    assert_eq!((run.phase(), run.key(), run.attempt()), (&Phase::Queued, None, (0, 1)), "a new attempt");
    assert_eq!(run.stale_files, vec!["files/a".to_string()], "the old key's file is cleaned up at the end");
    assert_eq!(
        tasks(&job, 5),
        vec![task(Some(0), Action::Release)],
        "its room on the old key goes back first"
    );
    job.apply(Some(0), Outcome::Released, 5, 0, &policy);
    assert_eq!(tasks(&job, 5), vec![task(Some(0), Action::Admit { tokens: 200 })]);
    job.apply(Some(0), Outcome::Admitted { key: Some("key-2".into()) }, 5, 0, &policy);
    assert_eq!(job.runs()[0].key(), Some("key-2"));
    assert_eq!(job.display_name(&job.runs()[0]), "batchgate-big-0-1", "found again by a name of its own");

    let mut reading = sharded(&[2]);
    submit_first_batch(&mut reading, &policy);
    let polled = Outcome::Polled {
        state: BatchState::Succeeded,
        progress: Progress::default(),
        results_file: Some("files/r".into()),
        error: None,
    };
    reading.apply(Some(0), polled, 1, 0, &policy);
    reading.apply(Some(0), refused(), 2, 0, &policy);
    assert_eq!(reading.state(), JobState::Failed);
    assert_eq!(reading.error.as_ref().map(|e| e.code.as_str()), Some("gemini_key_refused"));
}

#[test]
fn a_stopped_job_sends_no_more_shards_to_gemini_and_keeps_those_there() {
    let policy = Policy::default();
    let mut job = sharded(&[2, 2, 2]);
    submit_first_batch(&mut job, &policy);
    // Shard 1 is admitted and uploading; shard 2 waits at the quota.
    job.apply(Some(1), Outcome::Admitted { key: None }, 1, 0, &policy);
    job.apply(Some(1), Outcome::UploadStarted { session_url: "s".into() }, 1, 0, &policy);
    assert_eq!(job.attempts(), vec![(0, 0), (1, 0), (2, 0)]);
    let failed = Outcome::Polled {
        state: BatchState::Failed,
        progress: Progress::default(),
        results_file: None,
        error: Some("bad input".into()),
    };
    job.apply(Some(0), failed, 2, 0, &policy);
    let ended: Vec<Option<End>> = job.runs().iter().map(Run::end).collect();
    assert_eq!(ended, vec![Some(End::Failed), Some(End::Cancelled), Some(End::Cancelled)]);
    assert_eq!(job.state(), JobState::Failed);
    assert_eq!(job.error.as_ref().map(|e| e.code.as_str()), Some("gemini_failed"));
}

#[test]
fn a_shard_that_fails_mid_read_drops_what_it_read() {
    let policy = Policy::default();
    let mut job = sharded(&[4]);
    submit_first_batch(&mut job, &policy);
    let polled = Outcome::Polled {
        state: BatchState::Succeeded,
        progress: Progress { succeeded: 4, failed: 0, pending: 0 },
        results_file: Some("files/r".into()),
        error: None,
    };
    job.apply(Some(0), polled, 1, 0, &policy);
    let mut cursor = Cursor { lines: 2, ..Cursor::default() };
    cursor.tally.add(&LineOutcome::Success(Usage { total: 5, candidates: 5, ..Usage::default() }));
    job.apply(Some(0), Outcome::IngestProgress { cursor, size: 99 }, 2, 0, &policy);
    assert_eq!(job.tally().succeeded, 1);
    let gone = Outcome::Failed(Failure::Permanent { status: 404, message: "results file gone".into() });
    job.apply(Some(0), gone, 3, 0, &policy);
    assert_eq!(job.state(), JobState::Failed);
    assert!(job.runs()[0].results_discarded());
    assert_eq!(
        (job.tally(), job.readable_lines()),
        (Tally::default(), 0),
        "nothing of it is charged or shown"
    );
    assert_eq!(job.cost(), (0, 0));
}

#[test]
fn a_cancel_while_a_stuck_batch_is_abandoned_submits_nothing_again() {
    let policy = Policy { pending_limit_ms: 1_000, ..Policy::default() };
    let mut job = sharded(&[1]);
    submit_first_batch(&mut job, &policy);
    let pending = Outcome::Polled {
        state: BatchState::Pending,
        progress: Progress::default(),
        results_file: None,
        error: None,
    };
    job.apply(Some(0), pending, 5_000, 0, &policy);
    assert!(matches!(job.runs()[0].phase(), Phase::Abandoning { .. }));
    job.request_cancel(5_001);
    job.apply(Some(0), Outcome::CancelSent, 5_002, 0, &policy);
    assert_eq!(job.state(), JobState::Cancelled);
    assert_eq!(job.runs()[0].attempt(), (0, 0), "no second attempt");
}

#[test]
fn room_given_back_wakes_the_shard_waiting_at_the_quota() {
    let policy = Policy { quota_retry_ms: 60_000, max_parallel_shards: 2, ..Policy::default() };
    let mut job = sharded(&[1, 1, 1]);
    submit_first_batch(&mut job, &policy);
    job.apply(Some(1), Outcome::QuotaFull, 0, 0, &policy);
    assert_eq!(job.run(1).map(Run::next_at_ms), Some(60_000));
    // Shard 0's batch ends (with nothing to read) and its room goes back.
    let polled = Outcome::Polled {
        state: BatchState::Succeeded,
        progress: Progress::default(),
        results_file: None,
        error: None,
    };
    job.apply(Some(0), polled, 10, 0, &policy);
    assert!(tasks(&job, 10).contains(&task(Some(0), Action::Release)));
    assert_eq!(job.run(1).map(Run::next_at_ms), Some(60_000), "not before the room is back");
    job.apply(Some(0), Outcome::Released, 10, 0, &policy);
    assert_eq!(job.run(1).map(Run::next_at_ms), Some(10), "the waiting shard asks at once");
}
