//! `JobObject`: one Durable Object per job. It owns the job's state (SQLite,
//! `store.rs`) and drives it with its alarm (`run.rs`): each pass asks the
//! core state machine for the next action, performs it (`steps.rs`), re-reads
//! the job, applies the outcome and stores it before the next step. Requests
//! to the object (view, cancel, delete, result lookups) re-arm a missing or
//! overdue alarm, because local workerd drops alarms that came due while it
//! was down. It holds the job's watchers' WebSockets (hibernation API).

mod answer;
pub mod client;
mod media;
pub mod protocol;
mod run;
mod steps;
mod store;
mod webhooks;

use crate::objects::account::client as accounts;
use crate::objects::rpc::{self, Incoming, Rpc};
use crate::platform::clock::now_ms;
use crate::platform::config::Settings;
use crate::platform::error::ApiError;
use crate::platform::random;
use batchgate_core::ingest::line_number;
use batchgate_core::job::Job;
use batchgate_core::timeline;
use batchgate_core::view::{JobMeta, JobView};
use batchgate_core::webhook::Delivery;
use protocol::{
    Abandon, Abandoned, Cancel, Created, Delete, Deleted, Events, GetPrior, GetReadable, GetRetryPlan,
    GetView, Init, Kick, Lines, Locate, Located, Missing, Page, Prior, Readable, RetryPlan, Submitted,
    Ticket, Timeline, Tombstone, Wake, Watch, WatchTicket, Woken,
};
use std::cell::{Cell, RefCell};
use store::Store;
use worker::{
    DurableObject, Env, Request, Response, Result, State, WebSocket, WebSocketIncomingMessage, WebSocketPair,
    durable_object,
};

/// An alarm this far in the past is considered lost and re-armed.
const OVERDUE_MS: u64 = 30_000;

/// Watch tickets are kept under this prefix with their expiry (ms), for this long.
const WATCH_TICKET: &str = "watchTicket:";
const WATCH_TICKET_MS: u64 = 60_000;

/// Where a spent id's [`Tombstone`] is kept (survives `Store::clear`).
const TOMBSTONE: &str = "tombstone";

type Answer<T> = std::result::Result<T, ApiError>;

#[durable_object]
pub struct JobObject {
    state: State,
    env: Env,
    settings: Settings,
    /// What watchers last got (in memory: after hibernation, one repeat at most).
    last_broadcast: RefCell<String>,
    /// A `run` is under way. Alarms come at least once: a second delivery (or
    /// a kick) while one runs must not step beside it, or both upload the same
    /// results part and the etag kept can belong to the upload R2 replaced.
    running: Cell<bool>,
}

fn no_job() -> ApiError {
    ApiError::not_found("no such job")
}

/// Milliseconds from now until `at_ms` (0 if past), as the alarm API takes them.
fn until(at_ms: u64) -> i64 {
    i64::try_from(at_ms.saturating_sub(now_ms())).unwrap_or(i64::MAX)
}

impl JobObject {
    fn store(&self) -> Result<Store> {
        Store::new(self.state.storage().sql())
    }

    async fn set_alarm_at(&self, at_ms: u64) -> Result<()> {
        self.state.storage().set_alarm(until(at_ms)).await
    }

    async fn ensure_alarm(&self, store: &Store, job: &Job) -> Result<()> {
        // A finished job may still owe its webhook a delivery.
        let next_at_ms = if job.is_done() {
            match store.get::<Delivery>(webhooks::DELIVERY)?.and_then(|d| d.due_at(now_ms())) {
                Some(due) => due,
                None => return Ok(()),
            }
        } else {
            job.next_at_ms()
        };
        let storage = self.state.storage();
        let due = match storage.get_alarm().await? {
            None => true,
            Some(at) => at < i64::try_from(now_ms().saturating_sub(OVERDUE_MS)).unwrap_or(i64::MAX),
        };
        if due {
            self.set_alarm_at(next_at_ms).await?;
        }
        Ok(())
    }

    /// Send the job's view to every watcher if it changed in a way users see
    /// (not just a poll), and close the sockets once the job is done.
    fn broadcast(&self, store: &Store, job: &Job) -> Result<()> {
        let sockets = self.state.get_websockets();
        if sockets.is_empty() {
            return Ok(());
        }
        let view = JobView::of(job, &store.meta()?);
        let seen = view.watched();
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

    async fn init(&self, store: &Store, init: Init) -> Result<Answer<Created>> {
        if let Some(job) = store.job()? {
            // An idempotent retry: the first submission stands.
            return Ok(Ok(Created { created: false, view: JobView::of(&job, &store.meta()?) }));
        }
        if store.get::<Tombstone>(TOMBSTONE)?.is_some() {
            return Ok(Err(ApiError::new(
                409,
                "idempotency_key_used",
                format!("job {} was deleted; its id makes no other job", init.id),
            )));
        }
        let job = Job::new(init.id, init.model, init.request_count, init.input_bytes, now_ms())
            .with_billing(init.price, init.reserved)
            .with_shards(init.shards)
            .with_first_key_only(init.uses_files);
        let job = match init.lanes.choice {
            Some(choice) => job.with_lane(choice),
            None => job,
        };
        let job = match init.lanes.fallback {
            Some(fallback) => job.with_fallback(fallback),
            None => job,
        };
        let meta = JobMeta {
            display_name: init.display_name,
            metadata: init.metadata,
            missing: 0,
            retry_of: init.retry_of,
        };
        store.insert_inputs(&init.keys)?;
        store.set_owner(&init.account, &init.input_key)?;
        store.save_meta(&meta)?;
        if let Some(url) = init.webhook_url {
            store.put(webhooks::DELIVERY, &Delivery::new(url))?;
        }
        store.save_job(&job)?;
        store.add_event(now_ms(), &timeline::submitted(&job, init.reserved, meta.retry_of.as_deref()))?;
        self.state.storage().set_alarm(0).await?;
        let view = JobView::of(&job, &meta);
        accounts::record(&self.env, &init.account, &job, &view).await;
        Ok(Ok(Created { created: true, view }))
    }

    /// What this id already is, for a submission about to claim it.
    fn prior(&self, store: &Store, account: &str) -> Result<Prior> {
        if let Some(job) = store.job()? {
            if store.account()?.as_deref() != Some(account) {
                return Ok(Prior::Taken);
            }
            return Ok(Prior::Live(Box::new(JobView::of(&job, &store.meta()?))));
        }
        Ok(match store.get::<Tombstone>(TOMBSTONE)? {
            Some(t) => Prior::Gone(t),
            None => Prior::Free,
        })
    }

    fn abandon(&self, store: &Store) -> Result<Abandoned> {
        if let Some(job) = store.job()? {
            return Ok(Abandoned::Exists(Box::new(JobView::of(&job, &store.meta()?))));
        }
        if store.get::<Tombstone>(TOMBSTONE)?.is_none() {
            store.put(TOMBSTONE, &Tombstone { reason: "not created".into(), at_ms: now_ms() })?;
        }
        Ok(Abandoned::Abandoned)
    }

    /// A verified Gemini webhook about `wake.batch`: poll now if the job waits on it.
    async fn wake(&self, store: &Store, wake: Wake) -> Result<Woken> {
        let Some(mut job) = store.job()? else { return Ok(Woken { woken: false, duplicate: false }) };
        if !store.first_sight_of_hook(&wake.webhook_id, now_ms())? {
            return Ok(Woken { woken: false, duplicate: true });
        }
        let woken = job.wake(&wake.batch, now_ms());
        store.add_event(now_ms(), &timeline::gemini_webhook(&wake.batch, &wake.kind, woken))?;
        if woken {
            store.save_job(&job)?;
            self.state.storage().set_alarm(0).await?;
        }
        Ok(Woken { woken, duplicate: false })
    }

    /// A ticket stands for the owner who asked for it: spent on first use.
    fn watch_with_ticket(&self, store: &Store, ticket: &str) -> Result<Response> {
        let key = format!("{WATCH_TICKET}{ticket}");
        let expires: Option<u64> = store.get(&key)?;
        store.delete(&key)?;
        match (expires, store.job()?) {
            (Some(at), Some(job)) if at > now_ms() => {
                self.watch(&JobView::of(&job, &store.meta()?), job.is_done())
            }
            _ => ApiError::new(401, "invalid_ticket", "unknown, used or expired").into_response(),
        }
    }

    fn watch_ticket(&self, store: &Store) -> Result<Ticket> {
        let now = now_ms();
        store.delete_prefix_below(WATCH_TICKET, now)?;
        let ticket = random::hex(32)?;
        let expires = now + WATCH_TICKET_MS;
        store.put(&format!("{WATCH_TICKET}{ticket}"), &expires)?;
        let expires_at = crate::platform::clock::rfc3339(expires);
        Ok(Ticket { ticket, expires_at })
    }

    async fn cancel(&self, store: &Store, mut job: Job) -> Result<JobView> {
        job.request_cancel(now_ms());
        store.save_job(&job)?;
        store.add_event(now_ms(), &timeline::cancel_requested())?;
        self.broadcast(store, &job)?;
        self.state.storage().set_alarm(0).await?;
        let view = JobView::of(&job, &store.meta()?);
        if let Some(account) = store.account()? {
            accounts::record(&self.env, &account, &job, &view).await;
        }
        Ok(view)
    }

    async fn delete(&self, store: &Store) -> Result<Answer<Deleted>> {
        // Realtime calls under way would be answered (and billed by Gemini)
        // after the job was settled and purged: the delete waits for them.
        if self.running.get()
            && store.job()?.is_some_and(|j| {
                j.runs().iter().any(|r| matches!(r.phase(), batchgate_core::job::Phase::Answering))
            })
        {
            return Ok(Err(ApiError::new(
                409,
                "realtime_in_progress",
                "the job's realtime calls are under way; cancel it, or delete it in a few seconds",
            )
            .with_retry_after(5)));
        }
        // From here the alarm starts no step, and a step under way leaves what
        // it made to the orphan sweep (run.rs); the job is read after that, so
        // the purge plan holds everything a step saved before.
        store.put(run::DELETING, &now_ms())?;
        let Some(job) = store.job()? else { return Ok(Err(no_job())) };
        // A job deleted before it ended still settles first (what was
        // delivered, usually nothing), or its reservation would be held forever.
        if !job.is_charged()
            && let Err(e) = steps::settle_now(&self.env, store, &job).await
        {
            store.delete(run::DELETING)?;
            return Ok(Err(ApiError::new(503, "ledger_unavailable", format!("{e:?}"))));
        }
        steps::purge(&self.env, store, &self.settings, &job).await;
        if let Some(account) = store.account()? {
            accounts::remove(&self.env, &account, job.id()).await;
        }
        store.clear(run::ORPHANS)?;
        // The id stays spent: resubmitting its Idempotency-Key answers 409.
        store.put(TOMBSTONE, &Tombstone { reason: "deleted".into(), at_ms: now_ms() })?;
        // Creates may be out: Gemini may make batches no job owns. The
        // tombstone's alarm finds them by name and cancels them.
        if run::watch_for_orphans(store, &job)? {
            self.state.storage().set_alarm(run::ORPHAN_RETRY_MS).await?;
        } else {
            let _ = self.state.storage().delete_alarm().await;
        }
        for ws in self.state.get_websockets() {
            let _ = ws.close(Some(1000), Some("the job was deleted"));
        }
        Ok(Ok(Deleted { id: job.id().to_string(), deleted: true }))
    }

    fn retry_plan(&self, store: &Store, job: &Job) -> Result<RetryPlan> {
        let meta = store.meta()?;
        // Ended (results ingested), even if Gemini's files are still being cleaned up.
        let ended = job.state().is_terminal();
        Ok(RetryPlan {
            done: ended,
            model: job.model().to_string(),
            input_key: store.input_key()?,
            display_name: meta.display_name,
            metadata: meta.metadata,
            keys: if ended { store.unsucceeded_keys()? } else { vec![] },
        })
    }

    async fn route(&self, call: Incoming) -> Result<Response> {
        let store = self.store()?;
        // Calls that do not act for the job's owner.
        match call.route() {
            Init::ROUTE => {
                let init: Init = call.read()?;
                return rpc::reply::<Init>(self.init(&store, init).await?);
            }
            GetPrior::ROUTE => return rpc::reply::<GetPrior>(Ok(self.prior(&store, call.account())?)),
            Abandon::ROUTE => return rpc::reply::<Abandon>(Ok(self.abandon(&store)?)),
            Kick::ROUTE => {
                // What a (possibly duplicate) alarm delivery does, on request.
                self.run().await?;
                let view = store.job()?.map(|job| store.meta().map(|meta| JobView::of(&job, &meta)));
                return rpc::reply::<Kick>(view.transpose()?.ok_or_else(no_job));
            }
            Wake::ROUTE => {
                let wake: Wake = call.read()?;
                return rpc::reply::<Wake>(Ok(self.wake(&store, wake).await?));
            }
            Watch::ROUTE => {
                if let Watch(Some(ticket)) = call.read()? {
                    return self.watch_with_ticket(&store, &ticket);
                }
            }
            _ => {}
        }
        let Some(job) =
            store.job()?.filter(|_| store.account().ok().flatten().as_deref() == Some(call.account()))
        else {
            return no_job().into_response();
        };
        self.ensure_alarm(&store, &job).await?;
        let view = |job: &Job| store.meta().map(|meta| JobView::of(job, &meta));
        let ready = |job: &Job| view(job).map(|v| v.results_ready);
        // Shards whose results are not stored whole yet (rows of one being read may exist).
        let unreadable = job.unreadable_shards();
        match call.route() {
            GetView::ROUTE => rpc::reply::<GetView>(Ok(view(&job)?)),
            Watch::ROUTE => self.watch(&view(&job)?, job.is_done()),
            WatchTicket::ROUTE => rpc::reply::<WatchTicket>(Ok(self.watch_ticket(&store)?)),
            Cancel::ROUTE => rpc::reply::<Cancel>(Ok(self.cancel(&store, job).await?)),
            Delete::ROUTE => rpc::reply::<Delete>(self.delete(&store).await?),
            Locate::ROUTE => {
                let Locate(key) = call.read()?;
                let line = store.by_key(&key)?;
                // A line of a shard already stored can be read before the job ends.
                let readable = line.as_ref().is_some_and(|l| !unreadable.contains(&l.shard));
                rpc::reply::<Locate>(Ok(Located { ready: ready(&job)? || readable, line }))
            }
            Page::ROUTE => {
                let p: Page = call.read()?;
                // Before the end, a page stops at the first shard not stored yet: a
                // cursor never passes lines still to come.
                let below = unreadable.iter().min().map(|s| line_number(*s, 0));
                rpc::reply::<Page>(Ok(Lines {
                    ready: ready(&job)? || p.partial,
                    lines: store.page(p.after, p.limit, p.failed, below)?,
                }))
            }
            GetReadable::ROUTE => rpc::reply::<GetReadable>(Ok(Readable {
                complete: ready(&job)?,
                shards: job.readable_shards(),
                media: batchgate_core::media::makes_media(job.model()),
            })),
            GetRetryPlan::ROUTE => rpc::reply::<GetRetryPlan>(Ok(self.retry_plan(&store, &job)?)),
            Events::ROUTE => {
                let e: Events = call.read()?;
                let events = store.events(e.after, e.limit)?;
                let next_cursor =
                    if events.len() as u64 == e.limit { events.last().map(|e| e.seq) } else { None };
                rpc::reply::<Events>(Ok(Timeline { events, next_cursor }))
            }
            Missing::ROUTE => {
                let m: Missing = call.read()?;
                rpc::reply::<Missing>(Ok(store.missing_keys(m.after, m.limit)?))
            }
            Submitted::ROUTE => {
                let m: Submitted = call.read()?;
                rpc::reply::<Submitted>(Ok(store.submitted_keys(m.after, m.limit)?))
            }
            other => rpc::unknown_route("job", other),
        }
    }
}

impl DurableObject for JobObject {
    fn new(state: State, env: Env) -> Self {
        let settings = Settings::from_env(&env);
        JobObject {
            state,
            env,
            settings,
            last_broadcast: RefCell::new(String::new()),
            running: Cell::new(false),
        }
    }

    /// Any message from a watcher asks for the current view.
    async fn websocket_message(&self, ws: WebSocket, _message: WebSocketIncomingMessage) -> Result<()> {
        let store = self.store()?;
        if let Some(job) = store.job()? {
            ws.send_with_str(serde_json::to_string(&JobView::of(&job, &store.meta()?))?)?;
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
        rpc::answer("job", self.route(Incoming::of(req).await?).await)
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
