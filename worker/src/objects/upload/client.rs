//! Calls to an upload session's `UploadObject`.

use super::protocol::{Admit, Commit, Lease, Open, Session, SessionProgress, Status};
use crate::objects::rpc::{self, Rpc};
use crate::platform::bindings::{self, UPLOADS};
use crate::platform::error::ApiError;
use worker::{Env, Stub};

type Result<T> = std::result::Result<T, ApiError>;

/// A session the user named by id; any id that is not one of ours, or not
/// this account's, is "no upload".
pub struct Upload {
    stub: Stub,
    id: String,
}

impl Upload {
    pub fn named(env: &Env, id: &str) -> Result<Upload> {
        bindings::by_id(env, UPLOADS, id)?
            .map(|stub| Upload { stub, id: id.to_string() })
            .ok_or_else(|| not_found(id))
    }

    async fn send<R: Rpc>(&self, account: &str, request: &R) -> Result<R::Reply> {
        rpc::call(&self.stub, account, request).await?.ok_or_else(|| not_found(&self.id))
    }

    pub async fn admit(&self, account: &str, admit: &Admit) -> Result<Lease> {
        self.send(account, admit).await
    }

    /// Record a chunk's outcome: the session's view as JSON for the user, and where it stands.
    pub async fn commit(&self, account: &str, commit: &Commit) -> Result<(Vec<u8>, SessionProgress)> {
        let json = rpc::forward(&self.stub, account, commit).await?.ok_or_else(|| not_found(&self.id))?;
        let progress = serde_json::from_slice(&json).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok((json, progress))
    }

    /// Where the session stands, as JSON for the user.
    pub async fn status(&self, account: &str) -> Result<Vec<u8>> {
        rpc::forward(&self.stub, account, &Status).await?.ok_or_else(|| not_found(&self.id))
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("no upload {id}"))
}

/// A new session's id (its object's id).
pub fn new_id(env: &Env) -> Result<String> {
    Ok(bindings::namespace(env, UPLOADS)?.unique_id()?.to_string())
}

/// Hand a session just opened at Gemini to its object.
pub async fn open(env: &Env, session: &Session) -> Result<()> {
    let upload = Upload::named(env, &session.id)?;
    upload.send(&session.account, &Open(session.clone())).await
}
