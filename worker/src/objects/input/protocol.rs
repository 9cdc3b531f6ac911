//! What an input's `InputObject` answers, as types (see `objects::rpc`).

use crate::objects::rpc::{routes, tuple_wire};
use batchgate_core::input::PartRange;
use serde::{Deserialize, Serialize};

/// Where an input is in its life.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum InputPhase {
    Open,
    /// A submission is making job `job` of it.
    Claimed {
        job: String,
    },
    /// It made job `job`; its parts are gone.
    Used {
        job: String,
    },
    Expired,
    Deleted,
}

/// An input as its object keeps it (its parts and keys are in SQLite).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    pub id: String,
    pub account: String,
    pub phase: InputPhase,
    pub size: Option<u64>,
    pub last_ms: u64,
    pub idle_ms: u64,
    pub max_part_bytes: u64,
    /// At most this many requests across the parts (`MAX_REQUESTS_PER_JOB`).
    #[serde(default = "unlimited")]
    pub max_requests: u64,
}

fn unlimited() -> u64 {
    u64::MAX
}

/// An input as the API shows it.
#[derive(Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct InputView {
    pub id: String,
    /// `open`, `claimed`, `used`, `expired` or `deleted`.
    pub state: String,
    pub received: u64,
    pub lines: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    pub max_part_bytes: u64,
    pub expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
}

/// Start keeping a new input (a repeat changes nothing).
#[derive(Serialize, Deserialize)]
pub struct Open(pub Input);

/// May a part with this range and body length come in?
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "(PartRange, Option<u64>)", into = "(PartRange, Option<u64>)")]
pub struct AdmitPart {
    pub range: PartRange,
    pub body_len: Option<u64>,
}

tuple_wire!(AdmitPart { range: PartRange, body_len: Option<u64> });

/// Take the part: its number, the lines before it (its lines are numbered
/// after them), and the R2 key to stream it to (one per attempt: two attempts
/// at a part never write the same object, and the first to commit wins). Or:
/// it was taken already.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PartAdmitted {
    Take { number: u64, lines_before: u64, key: String },
    Replay(Counts),
}

/// Where an input stands after a part.
#[derive(Clone, Copy, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(rename = "PartCounts"))]
pub struct Counts {
    pub received: u64,
    pub lines: u64,
}

/// The part streamed into R2 at `object` and validated: record it, with its
/// lines and keys (`(line, key)`, checked unique across every part).
#[derive(Clone, Serialize, Deserialize)]
#[serde(
    from = "(u64, PartRange, String, u64, Vec<(u64, String)>)",
    into = "(u64, PartRange, String, u64, Vec<(u64, String)>)"
)]
pub struct CommitPart {
    pub number: u64,
    pub range: PartRange,
    pub object: String,
    pub lines: u64,
    pub keys: Vec<(u64, String)>,
}

tuple_wire!(CommitPart { number: u64, range: PartRange, object: String, lines: u64, keys: Vec<(u64, String)> });

#[derive(Serialize, Deserialize)]
pub struct GetInput;

#[derive(Serialize, Deserialize)]
pub struct DeleteInput;

/// Make job `job` of the input: its parts' R2 keys in order, once every
/// declared byte has come. An input makes one job.
#[derive(Serialize, Deserialize)]
pub struct Claim(pub String);

/// The parts' R2 keys, in order, and the input's counts.
#[derive(Serialize, Deserialize)]
pub struct Parts {
    pub keys: Vec<String>,
    pub received: u64,
    pub lines: u64,
}

/// The submission of job `job` failed: the input is open again.
#[derive(Serialize, Deserialize)]
pub struct Unclaim(pub String);

/// Job `job` exists: the input is used, its parts deleted.
#[derive(Serialize, Deserialize)]
pub struct Consume(pub String);

/// The parts, without claiming (an estimate).
#[derive(Serialize, Deserialize)]
pub struct ListParts;

routes! {
    Open => "/open", InputView;
    AdmitPart => "/part/admit", PartAdmitted;
    // The counts, and whether this attempt's object is the part's (a retry
    // whose first attempt committed is answered with the counts it got).
    CommitPart => "/part/commit", (Counts, bool);
    GetInput => "/view", InputView;
    DeleteInput => "/delete", InputView;
    Claim => "/claim", Parts;
    Unclaim => "/unclaim", ();
    Consume => "/consume", ();
    ListParts => "/parts", Parts;
}
