//! Calls to a job's `JobObject`.

use super::protocol::{Abandon, Abandoned, Created, GetPrior, Init, Prior, Watch};
use crate::objects::rpc::ObjectRef;
use crate::platform::bindings::JOBS;
use crate::platform::error::ApiError;
use worker::{Env, Response};

type Result<T> = std::result::Result<T, ApiError>;

/// A job's object, by the id users know it by (`ask`, `forward` and `id` are
/// [`ObjectRef`]'s).
pub struct JobRef(ObjectRef);

impl std::ops::Deref for JobRef {
    type Target = ObjectRef;

    fn deref(&self) -> &ObjectRef {
        &self.0
    }
}

impl JobRef {
    /// The job a user named; any id that is not one of ours is "no job".
    pub fn named(env: &Env, id: &str) -> Result<JobRef> {
        ObjectRef::named(env, JOBS, "job", id).map(JobRef)
    }

    /// The job an idempotency key (or a retry's parent) derives: the same name, the same job.
    pub fn derived(env: &Env, name: &str) -> Result<JobRef> {
        ObjectRef::derived(env, JOBS, "job", name).map(JobRef)
    }

    /// A job id never used before.
    pub fn fresh(env: &Env) -> Result<JobRef> {
        ObjectRef::fresh(env, JOBS, "job").map(JobRef)
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
        self.socket(account, watch).await
    }
}
