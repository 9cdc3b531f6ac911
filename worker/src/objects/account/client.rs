//! Calls to an account's `AccountObject`: its job history (job objects report
//! every state change; each job object stays the source of truth for its job),
//! its credit ledger and its files.

use super::protocol::{
    ForgetFile, GetSummary, GetWebhookSecret, HoldStorage, JobFigures, JobList, ListFiles, ListJobs,
    RecordFile, RecordJob, ReleaseStorage, RemoveJob, Reserve, ReserveAnswer, Settle, StorageHeld, Summary,
};
use crate::objects::rpc::{self, Rpc};
use crate::platform::bindings::{self, ACCOUNTS};
use crate::platform::error::ApiError;
use batchgate_core::job::Job;
use batchgate_core::ledger::Totals;
use batchgate_core::upload::OwnedFile;
use batchgate_core::view::JobView;
use worker::Env;

type Result<T> = std::result::Result<T, ApiError>;

fn unavailable(why: impl std::fmt::Display) -> ApiError {
    ApiError::new(503, "ledger_unavailable", format!("the account ledger did not answer: {why}"))
}

/// Ask `account`'s object; every failure is the ledger being unavailable
/// (503), except a refusal the object made itself (an invalid grant).
async fn send<R: Rpc>(env: &Env, account: &str, request: &R) -> Result<R::Reply> {
    let raw = exchange(env, account, R::ROUTE, rpc::encode(request)?).await;
    rpc::decode::<R>(raw)?.ok_or_else(|| unavailable(format!("{} found nothing", R::ROUTE)))
}

/// A page of `account`'s jobs, read (the Gemini drop-in shows them its own way).
pub async fn jobs(env: &Env, account: &str, page: &ListJobs) -> Result<JobList> {
    send(env, account, page).await
}

/// Ask `account`'s object and keep the reply as JSON, to pass on to the user.
pub async fn forward<R: Rpc>(env: &Env, account: &str, request: &R) -> Result<Vec<u8>> {
    exchange(env, account, R::ROUTE, rpc::encode(request)?)
        .await?
        .ok_or_else(|| unavailable(format!("{} found nothing", R::ROUTE)))
}

async fn exchange(env: &Env, account: &str, route: &'static str, json: String) -> rpc::Raw {
    let stub = bindings::named(env, ACCOUNTS, account).map_err(unavailable)?;
    match rpc::exchange(&stub, account, route, json).await {
        Err(e) if e.status >= 500 => Err(unavailable(e.message)),
        other => other,
    }
}

/// Report a job's current summary (best effort: a failure is logged, and the
/// next state change reports again).
pub async fn record(env: &Env, account: &str, job: &Job, view: &JobView) {
    let summary = RecordJob {
        id: job.id().to_string(),
        state: job.state().as_str().to_string(),
        model: job.model().to_string(),
        display_name: view.display_name.clone(),
        created_ms: i64::try_from(job.created_ms()).unwrap_or(i64::MAX),
        updated_ms: i64::try_from(job.updated_ms()).unwrap_or(i64::MAX),
        figures: Some(JobFigures {
            lane: view.lane,
            request_count: view.request_count,
            counts: view.counts,
            cost: view.cost,
        }),
    };
    if let Err(e) = send(env, account, &summary).await {
        worker::console_error!("recording job {} in its account index failed: {}", job.id(), e.message);
    }
}

pub async fn remove(env: &Env, account: &str, id: &str) {
    if let Err(e) = send(env, account, &RemoveJob(id.to_string())).await {
        worker::console_error!("removing job {id} from its account index failed: {}", e.message);
    }
}

pub async fn reserve(env: &Env, account: &str, r: &Reserve) -> Result<ReserveAnswer> {
    send(env, account, r).await
}

pub async fn settle(env: &Env, account: &str, s: &Settle) -> Result<Totals> {
    send(env, account, s).await
}

pub async fn summary(env: &Env, account: &str) -> Result<Summary> {
    send(env, account, &GetSummary).await
}

/// The account's webhook signing secret (`whsec_…`), made on first use.
pub async fn webhook_secret(env: &Env, account: &str) -> Result<String> {
    send(env, account, &GetWebhookSecret).await.map(|s| s.secret)
}

/// Record a file Gemini holds for the account; it replaces the hold `hold`
/// its upload took (the upload's id).
pub async fn record_file(env: &Env, account: &str, file: &OwnedFile, hold: &str) -> Result<()> {
    send(env, account, &RecordFile { file: file.clone(), hold: hold.to_string() }).await
}

pub async fn hold_storage(env: &Env, account: &str, h: &HoldStorage) -> Result<StorageHeld> {
    send(env, account, h).await
}

pub async fn release_storage(env: &Env, account: &str, id: &str) {
    let _ = send(env, account, &ReleaseStorage(id.to_string())).await;
}

pub async fn files(env: &Env, account: &str) -> Result<Vec<OwnedFile>> {
    send(env, account, &ListFiles).await
}

pub async fn forget_file(env: &Env, account: &str, name: &str) -> Result<()> {
    send(env, account, &ForgetFile(name.to_string())).await
}
