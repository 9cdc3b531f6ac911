//! What a model's `QuotaObject` answers, as types (see `objects::rpc`).

use crate::objects::rpc::{routes, tuple_wire};
use batchgate_core::quota::{Admission, AdmitRequest, Hold};
use serde::{Deserialize, Serialize};

/// Room for a shard's tokens (idempotent per job and shard).
#[derive(Serialize, Deserialize)]
pub struct Admit(pub AdmitRequest);

/// The shard's batch has ended: its room goes back.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "(String, u64)", into = "(String, u64)")]
pub struct Release {
    pub job: String,
    pub shard: u64,
}

tuple_wire!(Release { job: String, shard: u64 });

/// Every hold, for `GET /v1/admin/quota/:model`.
#[derive(Serialize, Deserialize)]
pub struct ListHolds;

#[derive(Serialize, Deserialize)]
pub struct Holds {
    pub enqueued: u64,
    pub holds: Vec<Hold>,
}

routes! {
    Admit => "/admit", Admission;
    Release => "/release", ();
    ListHolds => "/holds", Holds;
}
