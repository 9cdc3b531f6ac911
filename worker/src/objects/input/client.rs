//! Calls to an input's `InputObject`.

use super::protocol::{
    AdmitPart, Claim, CommitPart, Consume, Counts, Input, ListParts, Open, PartAdmitted, Parts, Unclaim,
};
use crate::objects::rpc::ObjectRef;
use crate::platform::bindings::{self, INPUTS};
use crate::platform::error::ApiError;
use worker::Env;

type Result<T> = std::result::Result<T, ApiError>;

/// An input the user named by id; any id that is not one of ours, or not
/// this account's, is "no input" (`ask` and `forward` are [`ObjectRef`]'s).
pub struct InputRef(ObjectRef);

impl std::ops::Deref for InputRef {
    type Target = ObjectRef;

    fn deref(&self) -> &ObjectRef {
        &self.0
    }
}

impl InputRef {
    pub fn named(env: &Env, id: &str) -> Result<InputRef> {
        ObjectRef::named(env, INPUTS, "input", id).map(InputRef)
    }

    pub async fn admit(&self, account: &str, ask: &AdmitPart) -> Result<PartAdmitted> {
        self.ask(account, ask).await
    }

    pub async fn commit(&self, account: &str, part: &CommitPart) -> Result<(Counts, bool)> {
        self.ask(account, part).await
    }

    pub async fn claim(&self, account: &str, job: &str) -> Result<Parts> {
        self.ask(account, &Claim(job.to_string())).await
    }

    pub async fn unclaim(&self, account: &str, job: &str) {
        let _ = self.ask(account, &Unclaim(job.to_string())).await;
    }

    pub async fn consume(&self, account: &str, job: &str) {
        let _ = self.ask(account, &Consume(job.to_string())).await;
    }

    pub async fn parts(&self, account: &str) -> Result<Parts> {
        self.ask(account, &ListParts).await
    }
}

/// A new input's id (its object's id).
pub fn new_id(env: &Env) -> Result<String> {
    Ok(bindings::namespace(env, INPUTS)?.unique_id()?.to_string())
}

/// Hand a new input to its object; its view as JSON for the user.
pub async fn open(env: &Env, input: &Input) -> Result<Vec<u8>> {
    InputRef::named(env, &input.id)?.forward(&input.account, &Open(input.clone())).await
}
