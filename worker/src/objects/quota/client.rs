//! Calls to the deployment's `QuotaObject`.

pub use super::protocol::KeyUse;
pub use super::protocol::RealtimeAdmission;
use super::protocol::{Admit, AdmitRealtime, ListHolds, ListKeys, Reinstate, Release, Revoke};
use crate::objects::rpc;
use crate::platform::bindings::{self, QUOTAS};
use crate::platform::error::ApiError;
use batchgate_core::quota::{Admission, AdmitRequest};
use worker::Env;

type Result<T> = std::result::Result<T, ApiError>;

/// The one quota object's name. (Before several keys, there was one per
/// model; their holds were of batches long ended by the time this one ran.)
const NAME: &str = "gemini";

async fn send<R: rpc::Rpc>(env: &Env, request: &R) -> Result<R::Reply> {
    let stub = bindings::named(env, QUOTAS, NAME)?;
    rpc::call(&stub, "", request).await?.ok_or_else(|| ApiError::internal("the quota object did not answer"))
}

pub async fn admit(env: &Env, ask: AdmitRequest) -> Result<Admission> {
    send(env, &Admit(ask)).await
}

/// A key to send one realtime request for `model` with now, or how long to wait.
pub async fn admit_realtime(
    env: &Env,
    model: &str,
    rpm: u64,
    keys: Vec<String>,
) -> Result<RealtimeAdmission> {
    send(env, &AdmitRealtime { model: model.to_string(), rpm, keys }).await
}

pub async fn release(env: &Env, job: &str, shard: u64) -> Result<()> {
    send(env, &Release { job: job.to_string(), shard }).await
}

/// Gemini refused the key with this id: out of rotation.
pub async fn revoke(env: &Env, key: &str, reason: &str) -> Result<()> {
    send(env, &Revoke { key: key.to_string(), reason: reason.to_string() }).await
}

pub async fn reinstate(env: &Env, key: &str) -> Result<bool> {
    send(env, &Reinstate(key.to_string())).await
}

pub async fn keys(env: &Env) -> Result<Vec<KeyUse>> {
    send(env, &ListKeys).await
}

/// The holds of `model`, as JSON for the operator.
pub async fn holds(env: &Env, model: &str) -> Result<Vec<u8>> {
    let stub = bindings::named(env, QUOTAS, NAME)?;
    rpc::forward(&stub, "", &ListHolds(Some(model.to_string())))
        .await?
        .ok_or_else(|| ApiError::internal("the quota object did not answer"))
}
