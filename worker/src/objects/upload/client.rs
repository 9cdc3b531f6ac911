//! Calls to an upload session's `UploadObject`.

use super::protocol::{Admit, Commit, Lease, Open, Session, SessionProgress, Status};
use crate::objects::rpc::ObjectRef;
use crate::platform::bindings::{self, UPLOADS};
use crate::platform::error::ApiError;
use worker::Env;

type Result<T> = std::result::Result<T, ApiError>;

/// A session the user named by id; any id that is not one of ours, or not
/// this account's, is "no upload".
pub struct Upload(ObjectRef);

impl Upload {
    pub fn named(env: &Env, id: &str) -> Result<Upload> {
        ObjectRef::named(env, UPLOADS, "upload", id).map(Upload)
    }

    pub async fn admit(&self, account: &str, admit: &Admit) -> Result<Lease> {
        self.0.ask(account, admit).await
    }

    /// Record a chunk's outcome: the session's view as JSON for the user, and where it stands.
    pub async fn commit(&self, account: &str, commit: &Commit) -> Result<(Vec<u8>, SessionProgress)> {
        let json = self.0.forward(account, commit).await?;
        let progress = serde_json::from_slice(&json).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok((json, progress))
    }

    /// Where the session stands, as JSON for the user.
    pub async fn status(&self, account: &str) -> Result<Vec<u8>> {
        self.0.forward(account, &Status).await
    }
}

/// A new session's id (its object's id).
pub fn new_id(env: &Env) -> Result<String> {
    Ok(bindings::namespace(env, UPLOADS)?.unique_id()?.to_string())
}

/// Hand a session just opened at Gemini to its object.
pub async fn open(env: &Env, session: &Session) -> Result<()> {
    Upload::named(env, &session.id)?.0.ask(&session.account, &Open(session.clone())).await
}
