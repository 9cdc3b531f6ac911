//! `JobObject`: one Durable Object per job. It owns the job's state (SQLite) and
//! drives it with its alarm: each pass asks the core state machine for the next
//! action, performs it (`steps.rs`), re-reads the job, applies the outcome and
//! stores it before the next step. Requests to the object (view, cancel, delete,
//! result lookups) re-arm a missing or overdue alarm, because local workerd drops
//! alarms that came due while it was down.

use crate::config::{Settings, gemini_key};
use crate::errors::ApiError;
use crate::gemini::Gemini;
use crate::internal::JsonBody;
use crate::job_store::Store;
use crate::steps::{self, StepResult};
use crate::{accounts, internal, webhooks};
use batchgate_core::job::{Action, Job, Outcome};
use batchgate_core::pricing::Price;
use batchgate_core::shard::ShardSpec;
use batchgate_core::timeline::{self, Event};
use batchgate_core::view::{JobMeta, JobView};
use batchgate_core::webhook::Delivery;
use serde::Deserialize;
use std::cell::RefCell;
use worker::{
    DurableObject, Env, Request, Response, Result, State, WebSocket, WebSocketIncomingMessage, WebSocketPair,
    durable_object,
};

/// How long one alarm keeps stepping before it hands over to a fresh alarm.
const ALARM_BUDGET_MS: u64 = 20_000;
/// An alarm this far in the past is considered lost and re-armed.
const OVERDUE_MS: i64 = 30_000;

/// Watch tickets are kept under this prefix with their expiry (ms), for this long.
const WATCH_TICKET: &str = "watchTicket:";
const WATCH_TICKET_MS: u64 = 60_000;

/// A batch a deleted job's last step made, still to cancel at Gemini; and the
/// display name (and until when) to look one up by, when a create was in flight.
const ORPHAN_BATCH: &str = "orphanBatch";
const ORPHAN_LOOKUP: &str = "orphanLookup";
const ORPHAN_WATCH_MS: u64 = 10 * 60_000;
const ORPHAN_RETRY_MS: i64 = 5_000;

/// Where a spent id's [`internal::Tombstone`] is kept (survives `Store::clear`).
const TOMBSTONE: &str = "tombstone";

#[durable_object]
pub struct JobObject {
    state: State,
    env: Env,
    /// What watchers last got (in memory: after hibernation, one repeat at most).
    last_broadcast: RefCell<String>,
    /// A `run` is under way. Alarms come at least once: a second delivery (or
    /// a kick) while one runs must not step beside it, or both upload the same
    /// results part and the etag kept can belong to the upload R2 replaced.
    running: std::cell::Cell<bool>,
}

/// Clears `running` however `run` ends.
struct Running<'a>(&'a std::cell::Cell<bool>);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

pub fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

fn rand() -> u64 {
    (js_sys::Math::random() * u64::MAX as f64) as u64
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Init {
    pub id: String,
    pub account: String,
    pub model: String,
    pub request_count: u64,
    pub input_bytes: u64,
    pub input_key: String,
    pub display_name: Option<String>,
    pub metadata: Option<serde_json::Value>,
    pub keys: Vec<String>,
    pub price: Price,
    pub reserved: i64,
    #[serde(default)]
    pub retry_of: Option<String>,
    #[serde(default)]
    pub webhook_url: Option<String>,
    #[serde(default)]
    pub shards: Vec<ShardSpec>,
}

/// A Gemini webhook, verified by the worker (`gemini_hooks.rs`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Wake {
    pub webhook_id: String,
    pub batch: String,
    #[serde(default)]
    pub kind: String,
}

/// The R2 object holding shard `shard`'s results (one per Gemini batch).
pub fn results_key(id: &str, shard: u64) -> String {
    match shard {
        0 => format!("jobs/{id}/results.jsonl"),
        n => format!("jobs/{id}/results-{n}.jsonl"),
    }
}

impl JobObject {
    fn store(&self) -> Result<Store> {
        Store::new(self.state.storage().sql())
    }

    fn settings(&self) -> Settings {
        Settings::from_env(&self.env)
    }

    fn gemini(&self, s: &Settings) -> Gemini {
        Gemini::new(s.gemini.clone(), gemini_key(&self.env), s.gemini_timeout_ms)
    }

    async fn ensure_alarm(&self, store: &Store, job: &Job) -> Result<()> {
        // A finished job may still owe its webhook a delivery.
        let next_at_ms = if job.is_done() {
            match store.get::<Delivery>("webhook")?.and_then(|d| d.due_at(now_ms())) {
                Some(due) => due,
                None => return Ok(()),
            }
        } else {
            job.next_at_ms
        };
        let storage = self.state.storage();
        let due = match storage.get_alarm().await? {
            None => true,
            Some(at) => at < now_ms() as i64 - OVERDUE_MS,
        };
        if due {
            storage.set_alarm(next_at_ms.max(now_ms()) as i64 - now_ms() as i64).await?;
        }
        Ok(())
    }

    async fn view(&self, store: &Store, job: &Job) -> Result<JobView> {
        let _ = self;
        Ok(JobView::of(job, &store.meta()?))
    }

    /// Send the job's view to every watcher if it changed in a way users see
    /// (not just a poll), and close the sockets once the job is done.
    fn broadcast(&self, store: &Store, job: &Job) -> Result<()> {
        let sockets = self.state.get_websockets();
        if sockets.is_empty() {
            return Ok(());
        }
        let view = JobView::of(job, &store.meta()?);
        let seen = serde_json::json!([
            view.state,
            view.counts,
            view.usage,
            view.cost,
            view.results_ready,
            view.error
        ])
        .to_string();
        if *self.last_broadcast.borrow() != seen {
            let text = serde_json::to_string(&view)?;
            for ws in &sockets {
                let _ = ws.send_with_str(&text);
            }
            self.last_broadcast.replace(seen);
        }
        if job.is_done() {
            for ws in &sockets {
                let _ = ws.close(Some(1000), Some("the job has ended"));
            }
        }
        Ok(())
    }

    fn watch(&self, view: &JobView, done: bool) -> Result<Response> {
        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server);
        pair.server.send_with_str(serde_json::to_string(view)?)?;
        if done {
            pair.server.close(Some(1000), Some("the job has ended"))?;
        }
        Response::from_websocket(pair.client)
    }

    async fn init(&self, store: &Store, init: Init) -> Result<Response> {
        if let Some(job) = store.job()? {
            // An idempotent retry: the first submission stands.
            let view = self.view(store, &job).await?;
            return internal::json(&internal::Created { created: false, view });
        }
        if store.get::<internal::Tombstone>(TOMBSTONE)?.is_some() {
            return ApiError::new(
                409,
                "idempotency_key_used",
                format!("job {} was deleted; its id makes no other job", init.id),
            )
            .into_response();
        }
        let job =
            Job::new(init.id.clone(), init.model.clone(), init.request_count, init.input_bytes, now_ms())
                .with_billing(init.price, init.reserved)
                .with_shards(init.shards);
        let meta = JobMeta {
            display_name: init.display_name,
            metadata: init.metadata,
            missing: 0,
            retry_of: init.retry_of,
        };
        store.insert_inputs(&init.keys)?;
        store.put("account", &init.account)?;
        store.put("inputKey", &init.input_key)?;
        store.put("meta", &meta)?;
        if let Some(url) = init.webhook_url {
            store.put("webhook", &Delivery::new(url))?;
        }
        store.save_job(&job)?;
        let detail = serde_json::json!({"requests": init.request_count, "reserved": init.reserved,
                                         "retryOf": meta.retry_of, "shards": job.shard_count()});
        store.add_event(now_ms(), &Event { kind: "submitted", detail })?;
        self.state.storage().set_alarm(0).await?;
        accounts::record(&self.env, &init.account, &job, &meta).await;
        let view = JobView::of(&job, &meta);
        internal::json(&internal::Created { created: true, view })
    }

    /// What this id already is, for a submission about to claim it.
    async fn prior(&self, store: &Store, account: &str) -> Result<internal::Prior> {
        if let Some(job) = store.job()? {
            let owner: Option<String> = store.get("account")?;
            if owner.as_deref() != Some(account) {
                return Ok(internal::Prior::Taken);
            }
            return Ok(internal::Prior::Live(Box::new(self.view(store, &job).await?)));
        }
        Ok(match store.get::<internal::Tombstone>(TOMBSTONE)? {
            Some(t) => internal::Prior::Gone(t),
            None => internal::Prior::Free,
        })
    }

    /// A verified Gemini webhook about `wake.batch`: poll now if the job waits on it.
    async fn wake(&self, store: &Store, wake: Wake) -> Result<Response> {
        let Some(mut job) = store.job()? else {
            return internal::json(&serde_json::json!({"woken": false}));
        };
        if !store.first_sight_of_hook(&wake.webhook_id, now_ms())? {
            return internal::json(&serde_json::json!({"woken": false, "duplicate": true}));
        }
        let woken = job.wake(&wake.batch, now_ms());
        let detail = serde_json::json!({"batch": wake.batch, "type": wake.kind, "woken": woken});
        store.add_event(now_ms(), &Event { kind: "gemini_webhook", detail })?;
        if woken {
            store.save_job(&job)?;
            self.state.storage().set_alarm(0).await?;
        }
        internal::json(&serde_json::json!({"woken": woken, "duplicate": false}))
    }

    /// Once the job has ended and been charged: its webhook, if it has one
    /// still to deliver (the alarm comes back for retries).
    async fn after_the_end(&self, store: &Store, job: &Job) -> Result<()> {
        let Some(account) = store.get::<String>("account")? else { return Ok(()) };
        let view = self.view(store, job).await?;
        if let Some(next) = webhooks::run(&self.env, store, &account, &view, now_ms()).await? {
            self.state.storage().set_alarm(next as i64 - now_ms() as i64).await?;
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
    async fn run(&self) -> Result<()> {
        if self.running.replace(true) {
            // The run under way steps the job and sets the next alarm.
            return Ok(());
        }
        let _running = Running(&self.running);
        let store = self.store()?;
        let settings = self.settings();
        let gemini = self.gemini(&settings);
        let started = now_ms();
        loop {
            let Some(mut job) = store.job()? else { return self.cancel_orphan(&store, &gemini).await };
            let now = now_ms();
            let action = job.next_action(now);
            match action {
                Action::Finished => return self.after_the_end(&store, &job).await,
                Action::Wait { until_ms } => {
                    self.state.storage().set_alarm(until_ms as i64 - now as i64).await?;
                    return Ok(());
                }
                _ if now.saturating_sub(started) > ALARM_BUDGET_MS => {
                    self.state.storage().set_alarm(0).await?;
                    return Ok(());
                }
                _ => {}
            }
            let state_before = job.state();
            if matches!(action, Action::CreateBatch { .. }) {
                // Recorded before the call: if the answer is lost, the next try looks first.
                job.apply(Outcome::CreateSending, now, rand(), &settings.policy);
                store.save_job(&job)?;
            }
            let phase_before = job.phase.clone();
            let result: StepResult = steps::run(&self.env, &store, &gemini, &settings, &job, action).await;
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
            if fresh.phase != phase_before {
                continue;
            }
            if let Some(slice) = &result.slice {
                store.record_slice(&slice.records, slice.shard, slice.part_number, &slice.etag)?;
            }
            let step = timeline::of_outcome(&result.outcome);
            let shard_before = (fresh.shard, fresh.resubmits);
            let done_before = fresh.is_done();
            fresh.apply(result.outcome, now_ms(), rand(), &settings.policy);
            let shard = timeline::shard_change(shard_before, &fresh);
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
                store.put("meta", &meta)?;
            }
            store.save_job(&fresh)?;
            self.broadcast(&store, &fresh)?;
            if fresh.state() != state_before
                && let Some(account) = store.get::<String>("account")?
            {
                accounts::record(&self.env, &account, &fresh, &store.meta()?).await;
            }
        }
    }

    async fn owned(&self, store: &Store, req: &Request) -> Result<Option<Job>> {
        let account = req.headers().get(internal::ACCOUNT_HEADER)?.unwrap_or_default();
        let owner: Option<String> = store.get("account")?;
        if owner.as_deref() != Some(account.as_str()) {
            return Ok(None);
        }
        store.job()
    }

    async fn route(&self, mut req: Request) -> Result<Response> {
        let store = self.store()?;
        let path = req.path();
        if path == "/init" {
            let init: Init = req.body_json().await?;
            return self.init(&store, init).await;
        }
        if path == "/prior" {
            let account = req.headers().get(internal::ACCOUNT_HEADER)?.unwrap_or_default();
            return internal::json(&self.prior(&store, &account).await?);
        }
        if path == "/abandon" {
            if let Some(job) = store.job()? {
                return internal::json(&internal::Abandoned::Exists(Box::new(
                    self.view(&store, &job).await?,
                )));
            }
            if store.get::<internal::Tombstone>(TOMBSTONE)?.is_none() {
                store
                    .put(TOMBSTONE, &internal::Tombstone { reason: "not created".into(), at_ms: now_ms() })?;
            }
            return internal::json(&internal::Abandoned::Abandoned);
        }
        if path == "/kick" {
            // What a (possibly duplicate) alarm delivery does, on request.
            self.run().await?;
            let Some(job) = store.job()? else { return ApiError::not_found("no such job").into_response() };
            return internal::json(&self.view(&store, &job).await?);
        }
        if path == "/wake" {
            let wake: Wake = req.body_json().await?;
            return self.wake(&store, wake).await;
        }
        if path == "/watch"
            && let Some(ticket) = crate::query::param(&req, "ticket")
        {
            // A ticket stands for the owner who asked for it: spent on first use.
            let key = format!("{WATCH_TICKET}{ticket}");
            let expires: Option<u64> = store.get(&key)?;
            store.delete(&key)?;
            return match (expires, store.job()?) {
                (Some(at), Some(job)) if at > now_ms() => {
                    self.watch(&self.view(&store, &job).await?, job.is_done())
                }
                _ => ApiError::new(401, "invalid_ticket", "unknown, used or expired").into_response(),
            };
        }
        let Some(job) = self.owned(&store, &req).await? else {
            return ApiError::not_found("no such job").into_response();
        };
        self.ensure_alarm(&store, &job).await?;
        let query = crate::query::Query::of(&req);
        let q = |name: &str| query.get(name);
        match path.as_str() {
            "/view" => internal::json(&self.view(&store, &job).await?),
            "/watch" => self.watch(&self.view(&store, &job).await?, job.is_done()),
            "/watch-ticket" => {
                let now = now_ms();
                store.delete_prefix_below(WATCH_TICKET, now)?;
                let ticket: String = crate::random::bytes(32)?.iter().map(|b| format!("{b:02x}")).collect();
                let expires = now + WATCH_TICKET_MS;
                store.put(&format!("{WATCH_TICKET}{ticket}"), &expires)?;
                let at = batchgate_core::gemini::timestamp::format_nanos(
                    (expires as i64).saturating_mul(1_000_000),
                );
                internal::json(&serde_json::json!({"ticket": ticket, "expiresAt": at}))
            }
            "/cancel" => {
                let mut job = job;
                job.request_cancel(now_ms());
                store.save_job(&job)?;
                store.add_event(
                    now_ms(),
                    &Event { kind: "cancel_requested", detail: serde_json::json!({}) },
                )?;
                self.broadcast(&store, &job)?;
                self.state.storage().set_alarm(0).await?;
                let view = self.view(&store, &job).await?;
                if let Some(account) = store.get::<String>("account")? {
                    accounts::record(&self.env, &account, &job, &store.meta()?).await;
                }
                internal::json(&view)
            }
            "/delete" => {
                // A job deleted before it ended still settles first (what was
                // delivered, usually nothing), or its reservation would be held forever.
                if job.billing.charged.is_none()
                    && let Err(e) = steps::settle_now(&self.env, &store, &job).await
                {
                    return ApiError::new(503, "ledger_unavailable", format!("{e:?}")).into_response();
                }
                let settings = self.settings();
                steps::purge(&self.env, &store, &self.gemini(&settings), &job).await;
                if let Some(account) = store.get::<String>("account")? {
                    accounts::remove(&self.env, &account, &job.id).await;
                }
                store.clear()?;
                // The id stays spent: resubmitting its Idempotency-Key answers 409.
                store.put(TOMBSTONE, &internal::Tombstone { reason: "deleted".into(), at_ms: now_ms() })?;
                let _ = self.state.storage().delete_alarm().await;
                if job.create_maybe_sent() {
                    // A create is out: Gemini may make a batch no job owns. The
                    // tombstone's alarm finds it by name and cancels it.
                    store.put(ORPHAN_LOOKUP, &(job.gemini_display_name(), now_ms() + ORPHAN_WATCH_MS))?;
                    self.state.storage().set_alarm(ORPHAN_RETRY_MS).await?;
                }
                for ws in self.state.get_websockets() {
                    let _ = ws.close(Some(1000), Some("the job was deleted"));
                }
                internal::json(&serde_json::json!({"id": job.id, "deleted": true}))
            }
            "/locate" => {
                let key = q("key").unwrap_or_default();
                internal::json(&internal::Located {
                    ready: JobView::of(&job, &store.meta()?).results_ready,
                    line: store.by_key(&key)?,
                })
            }
            "/page" => {
                let after = q("after").and_then(|v| v.parse().ok()).unwrap_or(0);
                let limit = q("limit").and_then(|v| v.parse().ok()).unwrap_or(100).clamp(1, 1000);
                let failed = q("failed").is_some();
                internal::json(&internal::Page {
                    ready: JobView::of(&job, &store.meta()?).results_ready,
                    lines: store.page(after, limit, failed)?,
                })
            }
            "/retry-plan" => {
                let meta = store.meta()?;
                // Ended (results ingested), even if Gemini's files are still being cleaned up.
                let ended = job.state().is_terminal();
                internal::json(&internal::RetryPlan {
                    done: ended,
                    model: job.model.clone(),
                    input_key: store.get("inputKey")?,
                    display_name: meta.display_name,
                    metadata: meta.metadata,
                    keys: if ended { store.unsucceeded_keys()? } else { vec![] },
                })
            }
            "/events" => {
                let after = q("after").and_then(|v| v.parse().ok()).unwrap_or(0);
                let limit = q("limit").and_then(|v| v.parse().ok()).unwrap_or(100).clamp(1, 1000);
                let events = store.events(after, limit)?;
                let next = (events.len() as u64 == limit).then(|| events.last().map(|e| e["seq"].clone()));
                internal::json(&serde_json::json!({"events": events, "nextCursor": next.flatten()}))
            }
            "/missing" => {
                let after = q("after").and_then(|v| v.parse().ok()).unwrap_or(0);
                let limit = q("limit").and_then(|v| v.parse().ok()).unwrap_or(1000).clamp(1, 10_000);
                internal::json(&store.missing_keys(after, limit)?)
            }
            _ => ApiError::not_found(format!("no internal route {path}")).into_response(),
        }
    }
}

impl DurableObject for JobObject {
    fn new(state: State, env: Env) -> Self {
        JobObject {
            state,
            env,
            last_broadcast: RefCell::new(String::new()),
            running: std::cell::Cell::new(false),
        }
    }

    /// Any message from a watcher asks for the current view.
    async fn websocket_message(&self, ws: WebSocket, _message: WebSocketIncomingMessage) -> Result<()> {
        let store = self.store()?;
        if let Some(job) = store.job()? {
            ws.send_with_str(serde_json::to_string(&self.view(&store, &job).await?)?)?;
        }
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _clean: bool,
    ) -> Result<()> {
        let _ = ws.close(Some(1000), Some("closed"));
        Ok(())
    }

    async fn websocket_error(&self, _ws: WebSocket, _error: worker::Error) -> Result<()> {
        Ok(())
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        match self.route(req).await {
            Ok(r) => Ok(r),
            Err(e) => ApiError::internal(format!("job object: {e}")).into_response(),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        if let Err(e) = self.run().await {
            // Retry soon; the step that failed repeats (every step is idempotent).
            worker::console_error!("job alarm failed: {e}");
            self.state.storage().set_alarm(5_000).await?;
        }
        Response::ok("")
    }
}
