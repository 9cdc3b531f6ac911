//! The JobObject's alarm: step the job until it must wait, ends, or uses up
//! the alarm's budget (each pass runs every task due at once: one per shard,
//! so shards side by side wait on Gemini together); then its webhook; and,
//! for a deleted job whose creates may have reached Gemini, finding and
//! cancelling the batches no job owns.

use super::steps::{self, StepResult};
use super::store::Store;
use super::{JobObject, webhooks};
use crate::objects::account::client as accounts;
use crate::objects::quota::client as quota;
use crate::platform::clock::now_ms;
use crate::platform::gemini::Gemini;
use crate::platform::random;
use batchgate_core::gemini::client::Failure;
use batchgate_core::job::{Action, Job, Next, Outcome, Phase, Task};
use batchgate_core::timeline;
use batchgate_core::view::JobView;
use worker::Result;

/// How long one alarm keeps stepping before it hands over to a fresh alarm.
const ALARM_BUDGET_MS: u64 = 20_000;

/// Batches a deleted job's last steps made, still to cancel at Gemini; and
/// the display names (and until when) to look them up by, when creates were
/// in flight. Each with the id of the key it belongs to.
const ORPHAN_BATCHES: &str = "orphanBatches";
const ORPHAN_LOOKUPS: &str = "orphanLookups";
/// What a delete keeps (see `Store::clear`).
pub const ORPHANS: &[&str] = &[ORPHAN_BATCHES, ORPHAN_LOOKUPS];
/// Set by a delete before its first wait (to the time it began): the alarm
/// starts no more steps. A delete torn down midway leaves it; after
/// `DELETE_PATIENCE_MS` the job steps again (a new delete sets it afresh).
pub const DELETING: &str = "deleting";
const DELETE_PATIENCE_MS: u64 = 10 * 60_000;

/// A delete is under way.
fn deleting(store: &Store) -> bool {
    // An unreadable marker is no delete under way: the job goes on stepping.
    let since: Option<u64> = store.get(DELETING).unwrap_or(None);
    since.is_some_and(|at| now_ms().saturating_sub(at) < DELETE_PATIENCE_MS)
}
const ORPHAN_WATCH_MS: u64 = 10 * 60_000;
pub const ORPHAN_RETRY_MS: i64 = 5_000;

/// Clears `running` however `run` ends.
struct Running<'a>(&'a std::cell::Cell<bool>);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// `(batch or display name, key id)`.
type Keyed = Vec<(String, Option<String>)>;

/// A deleted job's creates may have reached Gemini: look for their batches by
/// name for a while (beside any a step under way already reported). True if
/// there is anything to sweep.
pub fn watch_for_orphans(store: &Store, job: &Job) -> Result<bool> {
    let (mut lookups, _): (Keyed, u64) = store.get(ORPHAN_LOOKUPS)?.unwrap_or_default();
    lookups.extend(job.creates_maybe_sent());
    store.put(ORPHAN_LOOKUPS, &(&lookups, now_ms() + ORPHAN_WATCH_MS))?;
    let batches: Keyed = store.get(ORPHAN_BATCHES)?.unwrap_or_default();
    Ok(!lookups.is_empty() || !batches.is_empty())
}

/// The scheduler's jitter (0 if the runtime's randomness failed: the schedule still holds).
fn jitter() -> u64 {
    random::u64().unwrap_or_default()
}

impl JobObject {
    /// Once the job has ended and been charged: its webhook, if it has one
    /// still to deliver (the alarm comes back for retries).
    async fn after_the_end(&self, store: &Store, job: &Job) -> Result<()> {
        let Some(account) = store.account()? else { return Ok(()) };
        let view = JobView::of(job, &store.meta()?);
        if let Some(next) = webhooks::run(&self.env, &self.settings, store, &account, &view, now_ms()).await?
        {
            self.set_alarm_at(next).await?;
        }
        Ok(())
    }

    /// Cancel batches made by creates that a delete overtook: those the steps
    /// reported (see `run`), or those Gemini lists under the job's unique
    /// display names, looked for until `ORPHAN_WATCH_MS` after the delete (the
    /// step itself may never finish: a deleted alarm's run can be torn down).
    async fn cancel_orphans(&self, store: &Store) -> Result<()> {
        let (mut lookups, until_ms): (Keyed, u64) = store.get(ORPHAN_LOOKUPS)?.unwrap_or_default();
        let mut batches: Keyed = store.get(ORPHAN_BATCHES)?.unwrap_or_default();
        let mut again = false;
        let mut still_looking = vec![];
        for (name, key) in lookups.drain(..) {
            let found = match Gemini::with_key(&self.settings, key.as_deref()) {
                Ok(gemini) => steps::find_batch_named(&gemini, &name).await,
                Err(f) => Err(f),
            };
            match found {
                Ok(Some(batch)) => batches.push((batch, key)),
                Ok(None) if now_ms() >= until_ms => {}
                _ => {
                    again = true;
                    still_looking.push((name, key));
                }
            }
        }
        let mut left = vec![];
        for (batch, key) in batches {
            let cancelled = match Gemini::with_key(&self.settings, key.as_deref()) {
                Ok(gemini) => steps::cancel_orphan(&gemini, &batch).await,
                Err(_) => true, // the key is gone: nothing can reach the batch any more
            };
            if !cancelled {
                again = true;
                left.push((batch, key));
            }
        }
        store.put(ORPHAN_LOOKUPS, &(still_looking, until_ms))?;
        store.put(ORPHAN_BATCHES, &left)?;
        if again {
            self.state.storage().set_alarm(ORPHAN_RETRY_MS).await?;
        }
        Ok(())
    }

    /// Step the job until it must wait, ends, or uses up this alarm's budget.
    pub(super) async fn run(&self) -> Result<()> {
        if self.running.replace(true) {
            // The run under way steps the job and sets the next alarm.
            return Ok(());
        }
        let _running = Running(&self.running);
        let store = self.store()?;
        let started = now_ms();
        loop {
            if deleting(&store) {
                return Ok(()); // the delete under way sweeps up
            }
            let Some(mut job) = store.job()? else { return self.cancel_orphans(&store).await };
            let now = now_ms();
            let tasks = match job.next(now) {
                Next::Finished => return self.after_the_end(&store, &job).await,
                Next::Wait { until_ms } => return self.set_alarm_at(until_ms).await,
                Next::Do(_) if now.saturating_sub(started) > ALARM_BUDGET_MS => {
                    return self.state.storage().set_alarm(0).await;
                }
                Next::Do(tasks) => tasks,
            };
            let state_before = job.state();
            let charged_before = job.is_charged();
            let lane_before = job.lane();
            // Recorded before the calls: a create whose answer is lost is looked
            // for first; realtime steps that never finish are bounded.
            let sending: Vec<(Option<u64>, Outcome)> = tasks
                .iter()
                .filter_map(|t| match t.action {
                    Action::CreateBatch { .. } => Some((t.shard, Outcome::CreateSending)),
                    Action::Answer => Some((t.shard, Outcome::AnswerSending)),
                    _ => None,
                })
                .collect();
            if !sending.is_empty() {
                for (shard, outcome) in sending {
                    job.apply(shard, outcome, now, jitter(), &self.settings.policy);
                }
                store.save_job(&job)?;
            }
            // A realtime step the bound just ended is not run.
            let mut tasks = tasks;
            tasks.retain(|t| {
                !matches!(t.action, Action::Answer)
                    || t.shard.and_then(|s| job.run(s)).is_some_and(|r| matches!(r.phase(), Phase::Answering))
            });
            let before: Vec<Option<Phase>> =
                tasks.iter().map(|t| t.shard.and_then(|s| job.run(s)).map(|r| r.phase().clone())).collect();
            let steps = tasks.iter().map(|t| steps::run(&self.env, &store, &self.settings, &job, t));
            let results: Vec<StepResult> = futures_util::future::join_all(steps).await;
            self.revoke_refused_keys(&job, &tasks, &results).await;
            // Re-read: a cancel or delete may have landed while we were waiting on I/O.
            let being_deleted = deleting(&store);
            let Some(mut fresh) = store.job()?.filter(|_| !being_deleted) else {
                return self.sweep_after_delete(&store, &job, &tasks, &results).await;
            };
            let attempts_before = fresh.attempts();
            let done_before = fresh.is_done();
            let many = fresh.shard_count() > 1;
            let mut events = vec![];
            for ((task, result), phase_before) in tasks.into_iter().zip(results).zip(before) {
                // A step overtaken by a cancel (its shard moved on) is dropped; it repeats if still due.
                let current = task.shard.and_then(|s| fresh.run(s)).map(|r| r.phase().clone());
                if (task.shard.is_some() && current != phase_before)
                    || (task.shard.is_none() && fresh.is_charged())
                {
                    continue;
                }
                if let Some(slice) = &result.slice {
                    let part = slice.part.as_ref().map(|(n, etag)| (*n, etag.as_str()));
                    store.record_slice(&slice.records, slice.shard, part)?;
                }
                events.extend(timeline::of_outcome(task.shard.filter(|_| many), &result.outcome));
                fresh.apply(task.shard, result.outcome, now_ms(), jitter(), &self.settings.policy);
                // A shard that failed while its results were read: the rows stored so
                // far go with the part of the file they indexed (core dropped their tally).
                let run = task.shard.and_then(|s| fresh.run(s));
                if matches!(phase_before, Some(Phase::Ingesting { .. }))
                    && let Some(run) = run.filter(|r| r.results_discarded())
                {
                    store.discard_shard(run.shard())?;
                }
            }
            events.extend(timeline::shard_changes(&attempts_before, &fresh));
            events.extend(timeline::lane_change(lane_before, &fresh));
            events.extend(timeline::state_change(state_before, fresh.state()));
            for event in &events {
                store.add_event(now_ms(), event)?;
            }
            // Requests Gemini returned nothing for, counted once results are in:
            // when the state ends, and again when the job is done (its cleanup
            // may finish in a later step than its state).
            let ended_now = fresh.state().is_terminal() && fresh.state() != state_before;
            if ended_now || (fresh.is_done() && !done_before) {
                let mut meta = store.meta()?;
                meta.missing = store.missing_count()?;
                store.save_meta(&meta)?;
            }
            store.save_job(&fresh)?;
            self.broadcast(&store, &fresh)?;
            // The account's listing shows state, counts and the charge.
            if (fresh.state() != state_before || fresh.is_charged() != charged_before)
                && let Some(account) = store.account()?
            {
                accounts::record(&self.env, &account, &fresh, &JobView::of(&fresh, &store.meta()?)).await;
            }
        }
    }

    /// Deleted while these steps ran: a batch they made at Gemini has no job
    /// left to cancel or charge it, and room the quota gave has no shard to
    /// use it. The batches go to the orphan sweep (the tombstone keeps their
    /// names until Gemini confirms the cancel); the room goes back now.
    async fn sweep_after_delete(
        &self,
        store: &Store,
        job: &Job,
        tasks: &[Task],
        results: &[StepResult],
    ) -> Result<()> {
        let mut made: Keyed = store.get(ORPHAN_BATCHES)?.unwrap_or_default();
        for (task, result) in tasks.iter().zip(results) {
            let run = task.shard.and_then(|s| job.run(s));
            match &result.outcome {
                Outcome::Created { batch } | Outcome::BatchFound { batch } => {
                    made.push((batch.clone(), run.and_then(|r| r.key().map(str::to_string))));
                }
                Outcome::Admitted { .. } => {
                    if let Some(s) = task.shard {
                        let _ = quota::release(&self.env, job.id(), s).await;
                    }
                }
                _ => {}
            }
        }
        store.put(ORPHAN_BATCHES, &made)?;
        if store.job()?.is_none() {
            return self.cancel_orphans(store).await;
        }
        Ok(()) // the delete still under way sets the sweep's alarm
    }

    /// Gemini refused a shard's key (401/403): out of rotation for every job,
    /// before the shard asks the quota for another.
    async fn revoke_refused_keys(&self, job: &Job, tasks: &[Task], results: &[StepResult]) {
        for (task, result) in tasks.iter().zip(results) {
            let Outcome::Failed(Failure::Permanent { status: 401 | 403, message }) = &result.outcome else {
                continue;
            };
            let key = task.shard.and_then(|s| job.run(s)).and_then(|r| r.key().map(str::to_string));
            let id = key.or_else(|| self.settings.secrets.gemini_keys.ids().into_iter().next());
            if let Some(id) = id {
                let _ = quota::revoke(&self.env, &id, message).await;
            }
        }
    }
}
