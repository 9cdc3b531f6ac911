//! Calls to an account's `AccountObject` (see `account_object.rs`): its job
//! history (job objects report every state change; each job object stays the
//! source of truth for its job) and its credit ledger.

use crate::errors::ApiError;
use crate::internal;
use batchgate_core::job::Job;
use batchgate_core::ledger::{self, Refusal, Totals};
use batchgate_core::upload::OwnedFile;
use batchgate_core::view::JobMeta;
use serde::{Deserialize, Serialize};
use worker::{Env, Method, Result};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSummary {
    pub id: String,
    pub state: String,
    pub model: String,
    #[serde(default)]
    pub display_name: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// A listed job, as users see it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    pub id: String,
    pub state: String,
    pub model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<JobSummary> for Listed {
    fn from(j: JobSummary) -> Listed {
        let ts = |ms: i64| batchgate_core::gemini::timestamp::format_nanos(ms.saturating_mul(1_000_000));
        Listed {
            created_at: ts(j.created_ms),
            updated_at: ts(j.updated_ms),
            id: j.id,
            state: j.state,
            model: j.model,
            display_name: j.display_name,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobList {
    pub jobs: Vec<Listed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn stub(env: &Env, account: &str) -> Result<worker::Stub> {
    env.durable_object("ACCOUNTS")?.id_from_name(account)?.get_stub()
}

/// Report a job's current summary (best effort: a failure is logged, and the
/// next state change reports again).
pub async fn record(env: &Env, account: &str, job: &Job, meta: &JobMeta) {
    let summary = JobSummary {
        id: job.id.clone(),
        state: job.state().as_str().to_string(),
        model: job.model.clone(),
        display_name: meta.display_name.clone(),
        created_ms: job.created_ms as i64,
        updated_ms: job.updated_ms as i64,
    };
    let result = async {
        let body = serde_json::to_string(&summary)?;
        internal::call(&stub(env, account)?, Method::Post, "/jobs", account, Some(body)).await
    }
    .await;
    if let Err(e) = result {
        worker::console_error!("recording job {} in its account index failed: {e}", job.id);
    }
}

pub async fn remove(env: &Env, account: &str, id: &str) {
    let result = async {
        internal::call(&stub(env, account)?, Method::Delete, &format!("/jobs/{id}"), account, None).await
    }
    .await;
    if let Err(e) = result {
        worker::console_error!("removing job {id} from its account index failed: {e}");
    }
}

pub async fn list(env: &Env, account: &str, query: &str) -> std::result::Result<JobList, ApiError> {
    let stub = stub(env, account).map_err(|e| ApiError::internal(e.to_string()))?;
    internal::call_json(&stub, Method::Get, &format!("/jobs?{query}"), account, None)
        .await?
        .ok_or_else(|| ApiError::internal("account index unavailable"))
}

// ---- The credit ledger ----

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReserveRequest {
    pub job: String,
    pub amount: i64,
    pub limits: ledger::Limits,
}

/// The AccountObject's answer to a reservation. Externally tagged (serde's
/// default): an internally tagged enum is read through serde's `Content`
/// buffer, code the worker's wasm need not carry for an internal message.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ReserveAnswer {
    Reserved {
        totals: Totals,
    },
    Insufficient {
        balance: i64,
        needed: i64,
    },
    TooManyOpenJobs {
        limit: u64,
    },
    TooManySubmits {
        limit: u64,
        retry_after_secs: u64,
    },
    /// The job id already has ledger history: it makes no second job.
    Duplicate {
        settled: bool,
    },
}

impl From<Refusal> for ReserveAnswer {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Insufficient { balance, needed } => ReserveAnswer::Insufficient { balance, needed },
            Refusal::TooManyOpenJobs { limit } => ReserveAnswer::TooManyOpenJobs { limit },
            Refusal::TooManySubmits { limit, retry_after_secs } => {
                ReserveAnswer::TooManySubmits { limit, retry_after_secs }
            }
            Refusal::Duplicate { settled } => ReserveAnswer::Duplicate { settled },
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettleRequest {
    pub job: String,
    pub event: String,
    pub charge: i64,
    pub standard: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantRequest {
    /// Makes the grant idempotent: the same event is granted once.
    pub event: String,
    pub amount: i64,
    #[serde(default)]
    pub note: String,
    /// `adjust` for a correction (may be negative); a grant otherwise.
    #[serde(default)]
    pub adjust: bool,
}

/// What `GET /v1/account` shows.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub account: String,
    /// Amounts are micro-credits (1 credit = 1,000,000).
    pub unit: String,
    pub balance: i64,
    pub reserved: i64,
    pub granted: i64,
    pub spent: i64,
    pub saved: i64,
    pub open_jobs: u64,
}

fn ledger_error(e: ApiError) -> ApiError {
    ApiError::new(503, "ledger_unavailable", format!("the account ledger did not answer: {}", e.message))
}

async fn ledger_call<T: for<'de> Deserialize<'de>>(
    env: &Env,
    account: &str,
    method: Method,
    path: &str,
    body: Option<String>,
) -> std::result::Result<T, ApiError> {
    let stub = stub(env, account).map_err(|e| ApiError::internal(e.to_string()))?;
    internal::call_json(&stub, method, path, account, body)
        .await
        .map_err(ledger_error)?
        .ok_or_else(|| ledger_error(ApiError::not_found(path.to_string())))
}

pub async fn reserve(
    env: &Env,
    account: &str,
    r: &ReserveRequest,
) -> std::result::Result<ReserveAnswer, ApiError> {
    let body = serde_json::to_string(r).map_err(|e| ApiError::internal(e.to_string()))?;
    ledger_call(env, account, Method::Post, "/reserve", Some(body)).await
}

pub async fn settle(env: &Env, account: &str, s: &SettleRequest) -> std::result::Result<Totals, ApiError> {
    let body = serde_json::to_string(s).map_err(|e| ApiError::internal(e.to_string()))?;
    ledger_call(env, account, Method::Post, "/settle", Some(body)).await
}

pub async fn grant(env: &Env, account: &str, g: &GrantRequest) -> std::result::Result<Summary, ApiError> {
    let body = serde_json::to_string(g).map_err(|e| ApiError::internal(e.to_string()))?;
    ledger_call(env, account, Method::Post, "/grant", Some(body)).await
}

pub async fn summary(env: &Env, account: &str) -> std::result::Result<Summary, ApiError> {
    ledger_call(env, account, Method::Get, "/summary", None).await
}

/// The account's webhook signing secret (`whsec_…`), made on first use.
pub async fn webhook_secret(env: &Env, account: &str) -> std::result::Result<String, ApiError> {
    #[derive(Deserialize)]
    struct Answer {
        secret: String,
    }
    ledger_call::<Answer>(env, account, Method::Get, "/webhook-secret", None).await.map(|a| a.secret)
}

pub async fn ledger_page(
    env: &Env,
    account: &str,
    query: &str,
) -> std::result::Result<serde_json::Value, ApiError> {
    ledger_call(env, account, Method::Get, &format!("/ledger?{query}"), None).await
}

// ---- Uploaded files ----

/// Record a file Gemini holds for the account; it replaces the hold `hold`
/// its upload took (the upload's id).
pub async fn record_file(
    env: &Env,
    account: &str,
    file: &OwnedFile,
    hold: &str,
) -> std::result::Result<(), ApiError> {
    let body = serde_json::to_string(file).map_err(|e| ApiError::internal(e.to_string()))?;
    // Hold ids are an upload's hex id: nothing to escape.
    let path = format!("/files?hold={hold}");
    ledger_call::<serde_json::Value>(env, account, Method::Post, &path, Some(body)).await.map(|_| ())
}

/// Promise `bytes` of the storage quota to upload `id` for `ttl_ms` (or until released).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldRequest {
    pub id: String,
    pub bytes: u64,
    pub quota: u64,
    pub ttl_ms: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldAnswer {
    pub held: bool,
    /// Files kept and other uploads' holds, in bytes.
    pub used_bytes: u64,
}

pub async fn hold_storage(
    env: &Env,
    account: &str,
    h: &HoldRequest,
) -> std::result::Result<HoldAnswer, ApiError> {
    let body = serde_json::to_string(h).map_err(|e| ApiError::internal(e.to_string()))?;
    ledger_call(env, account, Method::Post, "/storage/hold", Some(body)).await
}

pub async fn release_storage(env: &Env, account: &str, id: &str) {
    let path = format!("/storage/hold?id={id}");
    let _ = ledger_call::<serde_json::Value>(env, account, Method::Delete, &path, None).await;
}

pub async fn files(env: &Env, account: &str) -> std::result::Result<Vec<OwnedFile>, ApiError> {
    #[derive(Deserialize)]
    struct Files {
        files: Vec<OwnedFile>,
    }
    ledger_call::<Files>(env, account, Method::Get, "/files", None).await.map(|f| f.files)
}

pub async fn forget_file(env: &Env, account: &str, name: &str) -> std::result::Result<(), ApiError> {
    let path = format!("/files?name={}", name.replace('/', "%2F"));
    ledger_call::<serde_json::Value>(env, account, Method::Delete, &path, None).await.map(|_| ())
}
