//! What an account's `AccountObject` answers, as types (see `objects::rpc`):
//! its job history, its credit ledger and its uploaded files.

use crate::objects::rpc::{routes, tuple_wire};
use batchgate_core::lane::Lane;
use batchgate_core::ledger::{self, Refusal, Totals};
use batchgate_core::upload::OwnedFile;
use batchgate_core::view::{Cost, Counts};
use serde::{Deserialize, Serialize};

// ---- The job history ----

/// A job's current summary, reported by its JobObject on every state change
/// (and once charged).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(
    from = "(String, String, String, Option<String>, i64, i64, Option<JobFigures>)",
    into = "(String, String, String, Option<String>, i64, i64, Option<JobFigures>)"
)]
pub struct RecordJob {
    pub id: String,
    pub state: String,
    pub model: String,
    pub display_name: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// Rows recorded before figures were kept have none.
    pub figures: Option<JobFigures>,
}

tuple_wire!(RecordJob { id: String, state: String, model: String, display_name: Option<String>, created_ms: i64, updated_ms: i64, figures: Option<JobFigures> });

/// What a listed job shows beside its state: its lane, counts and money.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobFigures {
    pub lane: Lane,
    pub request_count: u64,
    pub counts: Counts,
    pub cost: Cost,
}

/// The job's id.
#[derive(Serialize, Deserialize)]
pub struct RemoveJob(pub String);

/// A page of the history, newest first: `limit` jobs created before `before`
/// (`(created_ms, id)`), in one of `states` if any are named.
#[derive(Clone, Serialize, Deserialize)]
#[serde(
    from = "(u64, Option<(i64, String)>, Vec<String>)",
    into = "(u64, Option<(i64, String)>, Vec<String>)"
)]
pub struct ListJobs {
    pub limit: u64,
    pub before: Option<(i64, String)>,
    pub states: Vec<String>,
}

tuple_wire!(ListJobs { limit: u64, before: Option<(i64, String)>, states: Vec<String> });

/// A listed job, as users see it.
#[derive(Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    pub id: String,
    pub state: String,
    pub model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    // A job's figures, spelled out (none on rows recorded before they were kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lane: Option<Lane>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
}

impl From<RecordJob> for Listed {
    fn from(j: RecordJob) -> Listed {
        let ts = |ms: i64| batchgate_core::gemini::timestamp::format_nanos(ms.saturating_mul(1_000_000));
        Listed {
            created_at: ts(j.created_ms),
            updated_at: ts(j.updated_ms),
            id: j.id,
            state: j.state,
            model: j.model,
            display_name: j.display_name,
            lane: j.figures.as_ref().map(|f| f.lane),
            request_count: j.figures.as_ref().map(|f| f.request_count),
            counts: j.figures.as_ref().map(|f| f.counts),
            cost: j.figures.map(|f| f.cost),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct JobList {
    pub jobs: Vec<Listed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

// ---- The credit ledger ----

#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "(String, i64, ledger::Limits)", into = "(String, i64, ledger::Limits)")]
pub struct Reserve {
    pub job: String,
    pub amount: i64,
    pub limits: ledger::Limits,
}

tuple_wire!(Reserve { job: String, amount: i64, limits: ledger::Limits });

/// The answer to a reservation. Externally tagged (serde's default): an
/// internally tagged enum is read through serde's `Content` buffer, code the
/// worker's wasm need not carry for an internal message.
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

#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "(String, String, i64, i64)", into = "(String, String, i64, i64)")]
pub struct Settle {
    pub job: String,
    pub event: String,
    pub charge: i64,
    pub standard: i64,
}

tuple_wire!(Settle { job: String, event: String, charge: i64, standard: i64 });

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    /// Makes the grant idempotent: the same event is granted once.
    pub event: String,
    pub amount: i64,
    #[serde(default)]
    pub note: String,
    /// `adjust` for a correction (may be negative); a grant otherwise.
    #[serde(default)]
    pub adjust: bool,
}

#[derive(Serialize, Deserialize)]
pub struct GetSummary;

/// What `GET /v1/account` shows.
#[derive(Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
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

/// The account's webhook signing secret (`whsec_…`), made on first use.
#[derive(Serialize, Deserialize)]
pub struct GetWebhookSecret;

#[derive(Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct WebhookSecret {
    pub secret: String,
}

/// `limit` ledger rows before `before` (a `seq`; none: the newest).
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "(u64, Option<i64>)", into = "(u64, Option<i64>)")]
pub struct LedgerPage {
    pub limit: u64,
    pub before: Option<i64>,
}

tuple_wire!(LedgerPage { limit: u64, before: Option<i64> });

/// A ledger row as users see it.
#[derive(Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct LedgerRow {
    pub seq: i64,
    pub at_ms: i64,
    pub kind: String,
    pub job: String,
    pub event: String,
    pub amount: i64,
    pub balance_delta: i64,
    pub held_delta: i64,
    pub note: String,
}

#[derive(Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntries {
    pub entries: Vec<LedgerRow>,
    pub next_cursor: Option<String>,
}

// ---- Uploaded files ----

/// Promise `bytes` of the storage quota to upload `id` for `ttl_ms` (or until released).
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "(String, u64, u64, u64)", into = "(String, u64, u64, u64)")]
pub struct HoldStorage {
    pub id: String,
    pub bytes: u64,
    pub quota: u64,
    pub ttl_ms: u64,
}

tuple_wire!(HoldStorage { id: String, bytes: u64, quota: u64, ttl_ms: u64 });

#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "(bool, u64)", into = "(bool, u64)")]
pub struct StorageHeld {
    pub held: bool,
    /// Files kept and other uploads' holds, in bytes.
    pub used_bytes: u64,
}

tuple_wire!(StorageHeld { held: bool, used_bytes: u64 });

/// The upload's id.
#[derive(Serialize, Deserialize)]
pub struct ReleaseStorage(pub String);

/// A file Gemini holds for the account; it replaces the hold `hold` its upload took.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "(OwnedFile, String)", into = "(OwnedFile, String)")]
pub struct RecordFile {
    pub file: OwnedFile,
    pub hold: String,
}

tuple_wire!(RecordFile { file: OwnedFile, hold: String });

#[derive(Serialize, Deserialize)]
pub struct ListFiles;

/// The file's name (`files/{id}`).
#[derive(Serialize, Deserialize)]
pub struct ForgetFile(pub String);

routes! {
    RecordJob => "/jobs/record", ();
    RemoveJob => "/jobs/remove", ();
    ListJobs => "/jobs/list", JobList;
    Reserve => "/reserve", ReserveAnswer;
    Settle => "/settle", Totals;
    Grant => "/grant", Summary;
    GetSummary => "/summary", Summary;
    GetWebhookSecret => "/webhook-secret", WebhookSecret;
    LedgerPage => "/ledger", LedgerEntries;
    HoldStorage => "/storage/hold", StorageHeld;
    ReleaseStorage => "/storage/release", ();
    RecordFile => "/files/record", ();
    ListFiles => "/files/list", Vec<OwnedFile>;
    ForgetFile => "/files/forget", ();
}
