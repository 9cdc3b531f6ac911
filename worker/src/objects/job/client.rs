//! Calls to a job's `JobObject`.

use super::protocol::{Abandon, Abandoned, Created, GetPrior, Init, Prior, Watch};
use crate::objects::rpc::{self, Rpc};
use crate::platform::bindings::{self, JOBS};
use crate::platform::error::ApiError;
use worker::{Env, Response, Stub};

type Result<T> = std::result::Result<T, ApiError>;

/// A job's object, by the id users know it by.
pub struct JobRef {
    stub: Stub,
    id: String,
}

fn no_job(id: &str) -> ApiError {
    ApiError::not_found(format!("no job {id}"))
}

impl JobRef {
    /// The job a user named; any id that is not one of ours is "no job".
    pub fn named(env: &Env, id: &str) -> Result<JobRef> {
        let stub = bindings::by_id(env, JOBS, id)?.ok_or_else(|| no_job(id))?;
        Ok(JobRef { stub, id: id.to_string() })
    }

    /// The job an idempotency key (or a retry's parent) derives: the same name, the same job.
    pub fn derived(env: &Env, name: &str) -> Result<JobRef> {
        let namespace = bindings::namespace(env, JOBS)?;
        let id = namespace.id_from_name(name)?;
        Ok(JobRef { id: id.to_string(), stub: id.get_stub()? })
    }

    /// A job id never used before.
    pub fn fresh(env: &Env) -> Result<JobRef> {
        let namespace = bindings::namespace(env, JOBS)?;
        let id = namespace.unique_id()?;
        Ok(JobRef { id: id.to_string(), stub: id.get_stub()? })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Ask as `account`; the job not being that account's is "no job".
    pub async fn ask<R: Rpc>(&self, account: &str, request: &R) -> Result<R::Reply> {
        rpc::call(&self.stub, account, request).await?.ok_or_else(|| no_job(&self.id))
    }

    /// Ask as `account` and keep the reply as JSON, to pass on to the user.
    pub async fn forward<R: Rpc>(&self, account: &str, request: &R) -> Result<Vec<u8>> {
        rpc::forward(&self.stub, account, request).await?.ok_or_else(|| no_job(&self.id))
    }

    pub async fn init(&self, init: &Init) -> Result<Created> {
        self.ask(&init.account, init).await
    }

    pub async fn prior(&self, account: &str) -> Result<Prior> {
        self.ask(account, &GetPrior).await
    }

    pub async fn abandon(&self, account: &str) -> Result<Abandoned> {
        self.ask(account, &Abandon).await
    }

    /// The job's WebSocket, as the object answered (101, or a refusal).
    pub async fn watch(&self, account: &str, watch: &Watch) -> Result<Response> {
        rpc::open_socket(&self.stub, account, watch).await
    }
}
