//! What an upload session's `UploadObject` answers, as types (see `objects::rpc`).

use crate::objects::rpc::{routes, tuple_wire};
use batchgate_core::gemini::timestamp::format_nanos;
use batchgate_core::upload::OwnedFile;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum SessionState {
    Open,
    Done,
    Expired,
}

/// A resumable upload session, as its object keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub id: String,
    pub account: String,
    pub size: u64,
    pub mime_type: String,
    pub display_name: Option<String>,
    pub session_url: String,
    pub granularity: u64,
    pub received: u64,
    pub state: SessionState,
    pub file: Option<OwnedFile>,
    /// The account has the file in its index.
    pub recorded: bool,
    pub last_ms: u64,
    pub idle_ms: u64,
    /// A chunk is lent to a worker streaming it to Gemini until then (0: none).
    #[serde(default)]
    pub sending_until_ms: u64,
}

/// A session as the API shows it (never the Gemini session URL).
#[derive(Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    /// A chunk is still streaming (or breaking off): `received` is final once this is false.
    pub sending: bool,
    pub id: String,
    pub state: SessionState,
    pub size: u64,
    pub mime_type: String,
    pub display_name: Option<String>,
    pub received: u64,
    pub chunk_granularity: u64,
    pub max_chunk_bytes: u64,
    pub expires_at: String,
    pub file: Option<batchgate_core::upload::FileView>,
}

impl Session {
    pub fn view(&self, max_chunk: u64, now_ms: u64) -> SessionView {
        let expires_ms = self.last_ms.saturating_add(self.idle_ms);
        SessionView {
            sending: self.sending_until_ms > now_ms,
            id: self.id.clone(),
            state: self.state,
            size: self.size,
            mime_type: self.mime_type.clone(),
            display_name: self.display_name.clone(),
            received: self.received,
            chunk_granularity: self.granularity,
            max_chunk_bytes: max_chunk,
            expires_at: format_nanos(i64::try_from(expires_ms).unwrap_or(i64::MAX).saturating_mul(1_000_000)),
            file: self.file.as_ref().map(OwnedFile::view),
        }
    }
}

/// An upload refusal's details: where the session stands, to resume from.
#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(rename = "UploadReceived"))]
pub struct Where {
    pub received: u64,
}

/// Start keeping a session just opened at Gemini (a repeat changes nothing).
#[derive(Serialize, Deserialize)]
pub struct Open(pub Session);

/// May this chunk go to Gemini now? `content_range` is the chunk's
/// `Content-Range` as the user sent it (core's `ContentRange` reads it, after
/// the session's own refusals); `body_len` its `Content-Length`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "(String, Option<u64>)", into = "(String, Option<u64>)")]
pub struct Admit {
    pub content_range: String,
    pub body_len: Option<u64>,
}

tuple_wire!(Admit { content_range: String, body_len: Option<u64> });

/// What an admitted chunk is lent: where it goes at Gemini.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "(String, u64, u64, bool)", into = "(String, u64, u64, bool)")]
pub struct Lease {
    pub session_url: String,
    pub offset: u64,
    pub len: u64,
    pub last: bool,
}

tuple_wire!(Lease { session_url: String, offset: u64, len: u64, last: bool });

/// What the worker saw after streaming a lent chunk: Gemini's received count,
/// the finished file, or (neither) nothing known, which is asked of Gemini.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "(Option<u64>, Option<OwnedFile>)", into = "(Option<u64>, Option<OwnedFile>)")]
pub struct Commit {
    pub received: Option<u64>,
    pub file: Option<OwnedFile>,
}

tuple_wire!(Commit { received: Option<u64>, file: Option<OwnedFile> });

/// The two fields of a [`SessionView`] a chunk's answer depends on (the rest
/// passes to the user as the object wrote it).
#[derive(Deserialize)]
pub struct SessionProgress {
    pub state: SessionState,
    pub received: u64,
}

#[derive(Serialize, Deserialize)]
pub struct Status;

routes! {
    Open => "/open", ();
    Admit => "/admit", Lease;
    // The session after the chunk (`state` is `done` once the file is
    // finalized and recorded with the account).
    Commit => "/commit", SessionView;
    Status => "/status", SessionView;
}
