//! The JobObject's alarm: step the job until it must wait, ends, or uses up
//! the alarm's budget; then its webhook; and, for a deleted job whose create
//! may have reached Gemini, finding and cancelling the batch no job owns.

use super::steps::{self, StepResult};
use super::store::Store;
use super::{JobObject, webhooks};
use crate::objects::account::client as accounts;
use crate::platform::clock::now_ms;
use crate::platform::gemini::Gemini;
use crate::platform::random;
use batchgate_core::job::{Action, Job, Outcome};
use batchgate_core::timeline;
use batchgate_core::view::JobView;
use worker::Result;

/// How long one alarm keeps stepping before it hands over to a fresh alarm.
const ALARM_BUDGET_MS: u64 = 20_000;

/// A batch a deleted job's last step made, still to cancel at Gemini; and the
/// display name (and until when) to look one up by, when a create was in flight.
const ORPHAN_BATCH: &str = "orphanBatch";
const ORPHAN_LOOKUP: &str = "orphanLookup";
const ORPHAN_WATCH_MS: u64 = 10 * 60_000;
pub const ORPHAN_RETRY_MS: i64 = 5_000;

/// Clears `running` however `run` ends.
struct Running<'a>(&'a std::cell::Cell<bool>);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// A deleted job's create may have reached Gemini: look for its batch by name for a while.
pub fn watch_for_orphan(store: &Store, job: &Job) -> Result<()> {
    store.put(ORPHAN_LOOKUP, &(job.gemini_display_name(), now_ms() + ORPHAN_WATCH_MS))
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

    /// Cancel a batch made by a create that a delete overtook: the one its step
    /// reported (see `run`), or the one Gemini lists under the job's unique
    /// display name, looked for until `ORPHAN_WATCH_MS` after the delete (the
    /// step itself may never finish: a deleted alarm's run can be torn down).
    async fn cancel_orphan(&self, store: &Store, gemini: &Gemini) -> Result<()> {
        let lookup: Option<(String, u64)> = store.get(ORPHAN_LOOKUP)?;
        let mut batch: Option<String> = store.get(ORPHAN_BATCH)?;
        if batch.is_none()
            && let Some((name, until_ms)) = &lookup
        {
            match steps::find_batch_named(gemini, name).await {
                Ok(Some(found)) => {
                    store.put(ORPHAN_BATCH, &found)?;
                    batch = Some(found);
                }
                Ok(None) if now_ms() >= *until_ms => store.delete(ORPHAN_LOOKUP)?,
                _ => self.state.storage().set_alarm(ORPHAN_RETRY_MS).await?,
            }
        }
        if let Some(batch) = batch {
            if steps::cancel_orphan(gemini, &batch).await {
                store.delete(ORPHAN_BATCH)?;
                store.delete(ORPHAN_LOOKUP)?;
            } else {
                self.state.storage().set_alarm(ORPHAN_RETRY_MS).await?;
            }
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
        let gemini = self.gemini();
        let started = now_ms();
        loop {
            let Some(mut job) = store.job()? else { return self.cancel_orphan(&store, &gemini).await };
            let now = now_ms();
            let action = job.next_action(now);
            match action {
                Action::Finished => return self.after_the_end(&store, &job).await,
                Action::Wait { until_ms } => return self.set_alarm_at(until_ms).await,
                _ if now.saturating_sub(started) > ALARM_BUDGET_MS => {
                    return self.state.storage().set_alarm(0).await;
                }
                _ => {}
            }
            let state_before = job.state();
            if matches!(action, Action::CreateBatch { .. }) {
                // Recorded before the call: if the answer is lost, the next try looks first.
                job.apply(Outcome::CreateSending, now, jitter(), &self.settings.policy);
                store.save_job(&job)?;
            }
            let phase_before = job.phase().clone();
            let result: StepResult =
                steps::run(&self.env, &store, &gemini, &self.settings, &job, action).await;
            // Re-read: a cancel or delete may have landed while we were waiting on I/O.
            let Some(mut fresh) = store.job()? else {
                // Deleted while this step ran: a batch it made at Gemini has no job left
                // to cancel or charge it. The tombstone keeps its name until Gemini
                // confirms the cancel (retried by the alarm).
                if let Outcome::Created { batch } | Outcome::BatchFound { batch } = &result.outcome {
                    store.put(ORPHAN_BATCH, batch)?;
                }
                return self.cancel_orphan(&store, &gemini).await;
            };
            if *fresh.phase() != phase_before {
                continue;
            }
            if let Some(slice) = &result.slice {
                store.record_slice(&slice.records, slice.shard, slice.part_number, &slice.etag)?;
            }
            let step = timeline::of_outcome(&result.outcome);
            let attempt_before = fresh.attempt();
            let done_before = fresh.is_done();
            fresh.apply(result.outcome, now_ms(), jitter(), &self.settings.policy);
            let shard = timeline::shard_change(attempt_before, &fresh);
            let state = timeline::state_change(state_before, fresh.state());
            for event in step.iter().chain(shard.iter()).chain(state.iter()) {
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
            if fresh.state() != state_before
                && let Some(account) = store.account()?
            {
                accounts::record(&self.env, &account, &fresh, store.meta()?.display_name).await;
            }
        }
    }
}
