use super::*;
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
    let mut now = job.created_ms;
    for step in 0..2_000 {
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
            Action::StartUpload => Outcome::UploadStarted { session_url: "s".into() },
            Action::ContinueUpload { .. } => Outcome::Uploaded { file: "files/in".into() },
            Action::FindBatch => {
                let name = job.gemini_display_name();
                match g.batches.iter().find(|b| **b == name) {
                    Some(_) => Outcome::BatchFound { batch: "batches/b".into() },
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
                        Outcome::Created { batch: "batches/b".into() }
                    }
                }
            }
            Action::CancelBatch { .. } => {
                g.cancelled = true;
                Outcome::CancelSent
            }
            Action::PollBatch { .. } => {
                let state = if g.cancelled {
                    BatchState::Cancelled
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
                // Three lines per slice, until all lines are in.
                if cursor.lines >= g.results_lines {
                    Outcome::Ingested
                } else {
                    let mut next = cursor.clone();
                    for _ in 0..3.min(g.results_lines - cursor.lines) {
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
        prop_assert!(g.batches.len() <= 1, "{} batches created", g.batches.len());
        let ingested = job.tally.succeeded;
        prop_assert!(ingested == 0 || ingested == lines, "ingested {} of {}", ingested, lines);
        if job.state() == JobState::Succeeded {
            prop_assert_eq!(ingested, lines);
            prop_assert!(!job.cancel_requested || g.batches.len() == 1);
        }
        prop_assert!(job.state().is_terminal());
        // Charged once, for exactly the delivered usage (10 output tokens a line).
        prop_assert_eq!(&g.charges, &vec![ingested as i64 * 10 * 3]);
        prop_assert_eq!(job.billing.charged, Some(ingested as i64 * 10 * 3));
    }
}
