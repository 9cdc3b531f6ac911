//! What a job's `JobObject` answers, as types (see `objects::rpc`). Calls other
//! than `Init`, `Prior`, `Abandon`, `Wake` and a ticketed `Watch` act only for
//! the job's own account: another account gets "no such job".

use crate::objects::rpc::{routes, tuple_wire};
use batchgate_core::job::Fallback;
use batchgate_core::lane::Choice;
use batchgate_core::pricing::Price;
use batchgate_core::shard::ShardSpec;
use batchgate_core::view::JobView;
use serde::{Deserialize, Serialize};

/// Create the job from a stored, validated and reserved submission.
#[derive(Clone, Serialize, Deserialize)]
#[serde(
    from = "(String, String, String, u64, u64, String, Option<String>, Option<serde_json::Value>, Vec<String>, Price, i64, Option<String>, Option<String>, Vec<ShardSpec>, bool, Lanes)",
    into = "(String, String, String, u64, u64, String, Option<String>, Option<serde_json::Value>, Vec<String>, Price, i64, Option<String>, Option<String>, Vec<ShardSpec>, bool, Lanes)"
)]
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
    pub retry_of: Option<String>,
    pub webhook_url: Option<String>,
    pub shards: Vec<ShardSpec>,
    /// The requests use uploaded files (which belong to the first Gemini key).
    pub uses_files: bool,
    pub lanes: Lanes,
}

/// The lane and why (none: batch, as asked by default), and the realtime
/// fallback it may take.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Lanes {
    pub choice: Option<Choice>,
    pub fallback: Option<Fallback>,
}

tuple_wire!(Init { id: String, account: String, model: String, request_count: u64, input_bytes: u64, input_key: String, display_name: Option<String>, metadata: Option<serde_json::Value>, keys: Vec<String>, price: Price, reserved: i64, retry_of: Option<String>, webhook_url: Option<String>, shards: Vec<ShardSpec>, uses_files: bool, lanes: Lanes });

/// `created: false`: the job already existed (an idempotent retry); its view either way.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "(bool, JobView)", into = "(bool, JobView)")]
pub struct Created {
    pub created: bool,
    pub view: JobView,
}

tuple_wire!(Created { created: bool, view: JobView });

/// What the id already is, asked before a submission claims it.
#[derive(Serialize, Deserialize)]
pub struct GetPrior;

/// Externally tagged: serde reads it without buffering.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Prior {
    Free,
    Live(Box<JobView>),
    /// Another account's job (an id collision): never shown.
    Taken,
    Gone(Tombstone),
}

/// Why a job id can make no job any more: its job was deleted, or a submission
/// that reserved it never created it. An id makes one job, once.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tombstone {
    pub reason: String,
    pub at_ms: u64,
}

/// After an `Init` whose answer was lost: the job, if it exists; if not, the
/// id is tombstoned first, so a late `Init` can never create the job after its
/// reservation is released.
#[derive(Serialize, Deserialize)]
pub struct Abandon;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Abandoned {
    Abandoned,
    Exists(Box<JobView>),
}

/// Step the job now, as its alarm would (admin; tests deliver it twice at once).
#[derive(Serialize, Deserialize)]
pub struct Kick;

/// A verified Gemini webhook about `batch`: poll now if the job waits on it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "(String, String, String)", into = "(String, String, String)")]
pub struct Wake {
    pub webhook_id: String,
    pub batch: String,
    pub kind: String,
}

tuple_wire!(Wake { webhook_id: String, batch: String, kind: String });

#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "(bool, bool)", into = "(bool, bool)")]
pub struct Woken {
    pub woken: bool,
    /// The webhook id was seen before: acknowledged, not acted on.
    pub duplicate: bool,
}

tuple_wire!(Woken { woken: bool, duplicate: bool });

/// Open a WebSocket that gets the view now and on every change; as the owner,
/// or with a single-use ticket from `WatchTicket`.
/// The ticket, if any.
#[derive(Serialize, Deserialize)]
pub struct Watch(pub Option<String>);

#[derive(Serialize, Deserialize)]
pub struct GetView;

/// A single-use ticket for `Watch`, valid 60 s.
#[derive(Serialize, Deserialize)]
pub struct WatchTicket;

#[derive(Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    pub ticket: String,
    pub expires_at: String,
}

#[derive(Serialize, Deserialize)]
pub struct Cancel;

/// Delete the job, its files and results; its id stays spent.
#[derive(Serialize, Deserialize)]
pub struct Delete;

#[derive(Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(rename = "JobDeleted"))]
pub struct Deleted {
    pub id: String,
    pub deleted: bool,
}

/// Where the result line of the key is.
#[derive(Serialize, Deserialize)]
pub struct Locate(pub String);

/// Where one result line is in the stored objects.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(from = "(u64, u64, u64, u64)", into = "(u64, u64, u64, u64)")]
pub struct LineAt {
    /// Which shard's results object holds it.
    pub shard: u64,
    pub number: u64,
    pub pos: u64,
    pub len: u64,
}

tuple_wire!(LineAt { shard: u64, number: u64, pos: u64, len: u64 });

#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "(bool, Option<LineAt>)", into = "(bool, Option<LineAt>)")]
pub struct Located {
    /// The line's shard is stored, or all results are (otherwise it may yet come).
    pub ready: bool,
    pub line: Option<LineAt>,
}

tuple_wire!(Located { ready: bool, line: Option<LineAt> });

/// `limit` result lines after line `after`, in file order (`failed`: only
/// errors and malformed lines; `partial`: of the shards stored so far, before the job ends).
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "(u64, u64, bool, bool)", into = "(u64, u64, bool, bool)")]
pub struct Page {
    pub after: u64,
    pub limit: u64,
    pub failed: bool,
    pub partial: bool,
}

tuple_wire!(Page { after: u64, limit: u64, failed: bool, partial: bool });

/// The shards whose results objects can be read, in order, and whether that is all of them.
#[derive(Serialize, Deserialize)]
pub struct GetReadable;

#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "(bool, Vec<u64>, bool)", into = "(bool, Vec<u64>, bool)")]
pub struct Readable {
    pub complete: bool,
    pub shards: Vec<u64>,
    /// The model answers with media (see core's `media`).
    pub media: bool,
}

tuple_wire!(Readable { complete: bool, shards: Vec<u64>, media: bool });

#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "(bool, Vec<LineAt>)", into = "(bool, Vec<LineAt>)")]
pub struct Lines {
    pub ready: bool,
    pub lines: Vec<LineAt>,
}

tuple_wire!(Lines { ready: bool, lines: Vec<LineAt> });

/// What `POST /v1/jobs/:id/retry` needs from the parent.
#[derive(Serialize, Deserialize)]
pub struct GetRetryPlan;

#[derive(Clone, Serialize, Deserialize)]
#[serde(
    from = "(bool, String, Option<String>, Option<String>, Option<serde_json::Value>, Vec<String>)",
    into = "(bool, String, Option<String>, Option<String>, Option<serde_json::Value>, Vec<String>)"
)]
pub struct RetryPlan {
    pub done: bool,
    pub model: String,
    pub input_key: Option<String>,
    pub display_name: Option<String>,
    pub metadata: Option<serde_json::Value>,
    /// Input keys without a successful result, in input order.
    pub keys: Vec<String>,
}

tuple_wire!(RetryPlan { done: bool, model: String, input_key: Option<String>, display_name: Option<String>, metadata: Option<serde_json::Value>, keys: Vec<String> });

/// `limit` timeline entries after `after` (a `seq`).
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "(u64, u64)", into = "(u64, u64)")]
pub struct Events {
    pub after: u64,
    pub limit: u64,
}

tuple_wire!(Events { after: u64, limit: u64 });

/// One timeline entry as users see it.
#[derive(Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(rename = "TimelineEntry"))]
pub struct Entry {
    pub seq: u64,
    pub at: String,
    pub kind: String,
    pub detail: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    pub events: Vec<Entry>,
    pub next_cursor: Option<u64>,
}

/// `limit` submitted keys without any result line, after input line `after`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "(u64, u64)", into = "(u64, u64)")]
pub struct Missing {
    pub after: u64,
    pub limit: u64,
}

tuple_wire!(Missing { after: u64, limit: u64 });

/// `limit` submitted keys in input order, after input line `after`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "(u64, u64)", into = "(u64, u64)")]
pub struct Submitted {
    pub after: u64,
    pub limit: u64,
}

tuple_wire!(Submitted { after: u64, limit: u64 });

routes! {
    Init => "/init", Created;
    GetPrior => "/prior", Prior;
    Abandon => "/abandon", Abandoned;
    Kick => "/kick", JobView;
    Wake => "/wake", Woken;
    // Answered with the socket (101), not JSON.
    Watch => "/watch", ();
    GetView => "/view", JobView;
    WatchTicket => "/watch-ticket", Ticket;
    Cancel => "/cancel", JobView;
    Delete => "/delete", Deleted;
    Locate => "/locate", Located;
    Page => "/page", Lines;
    GetReadable => "/readable", Readable;
    GetRetryPlan => "/retry-plan", RetryPlan;
    Events => "/events", Timeline;
    // `(input line, key)`.
    Missing => "/missing", Vec<(u64, String)>;
    // `(input line, key)`.
    Submitted => "/submitted", Vec<(u64, String)>;
}
