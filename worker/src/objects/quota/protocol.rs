//! What the `QuotaObject` answers, as types (see `objects::rpc`).

use crate::objects::rpc::{routes, tuple_wire};
use batchgate_core::quota::{Admission, AdmitRequest, Hold};
use serde::{Deserialize, Serialize};

/// Room for a shard's tokens on a key (idempotent per job and shard).
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

/// Gemini refused this key (401/403): no shard is admitted on it any more.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "(String, String)", into = "(String, String)")]
pub struct Revoke {
    pub key: String,
    pub reason: String,
}

tuple_wire!(Revoke { key: String, reason: String });

/// Put a revoked key back in rotation (the operator fixed it).
#[derive(Clone, Serialize, Deserialize)]
pub struct Reinstate(pub String);

/// Every hold (of one model, if named), for `GET /v1/admin/quota/:model`.
#[derive(Serialize, Deserialize)]
pub struct ListHolds(pub Option<String>);

#[derive(Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Holds {
    pub enqueued: u64,
    pub holds: Vec<Hold>,
}

/// What the quota knows of each key it has seen, for `GET /v1/admin/keys`.
#[derive(Serialize, Deserialize)]
pub struct ListKeys;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyUse {
    pub key: String,
    /// Batches in flight on it (held from admission to the batch's end).
    pub batches: u64,
    /// Tokens enqueued on it, per model.
    pub enqueued: std::collections::BTreeMap<String, u64>,
    /// When Gemini refused it, and what it said; none: in rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Room for one realtime request to `model` under its requests-per-minute
/// limit `rpm`, on one of `keys` (the configured key ids).
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "(String, u64, Vec<String>)", into = "(String, u64, Vec<String>)")]
pub struct AdmitRealtime {
    pub model: String,
    pub rpm: u64,
    pub keys: Vec<String>,
}

tuple_wire!(AdmitRealtime { model: String, rpm: u64, keys: Vec<String> });

/// Send it with this key now, or wait this many milliseconds.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RealtimeAdmission {
    Key(String),
    WaitMs(u64),
}

routes! {
    AdmitRealtime => "/admit-realtime", RealtimeAdmission;
    Admit => "/admit", Admission;
    Release => "/release", ();
    Revoke => "/revoke", ();
    Reinstate => "/reinstate", bool;
    ListHolds => "/holds", Holds;
    ListKeys => "/keys", Vec<KeyUse>;
}
