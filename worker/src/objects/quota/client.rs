//! Calls to a model's `QuotaObject`.

use super::protocol::{Admit, ListHolds, Release};
use crate::objects::rpc;
use crate::platform::bindings::{self, QUOTAS};
use crate::platform::error::ApiError;
use batchgate_core::quota::{Admission, AdmitRequest};
use worker::Env;

type Result<T> = std::result::Result<T, ApiError>;

/// Ask the quota of `model` (one object per model; the deployment has one Gemini key).
async fn send<R: rpc::Rpc>(env: &Env, model: &str, request: &R) -> Result<R::Reply> {
    let stub = bindings::named(env, QUOTAS, model)?;
    rpc::call(&stub, "", request).await?.ok_or_else(|| ApiError::internal("the quota object did not answer"))
}

pub async fn admit(env: &Env, model: &str, ask: AdmitRequest) -> Result<Admission> {
    send(env, model, &Admit(ask)).await
}

pub async fn release(env: &Env, model: &str, job: &str, shard: u64) -> Result<()> {
    send(env, model, &Release { job: job.to_string(), shard }).await
}

/// The holds, as JSON for the operator.
pub async fn holds(env: &Env, model: &str) -> Result<Vec<u8>> {
    let stub = bindings::named(env, QUOTAS, model)?;
    rpc::forward(&stub, "", &ListHolds)
        .await?
        .ok_or_else(|| ApiError::internal("the quota object did not answer"))
}
