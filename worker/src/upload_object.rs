//! `UploadObject`: one Durable Object per resumable upload session. It keeps
//! the Gemini session URL and how many bytes Gemini holds, checks each chunk
//! with core's rules, and streams the chunk's body to Gemini without holding
//! it. A broken chunk is resynchronised by asking Gemini; a session is only
//! `done` once Gemini has finalized the file and the account has recorded it.
//! Idle sessions expire on the object's alarm and are cancelled upstream.

use crate::accounts;
use crate::config::{Settings, gemini_key};
use crate::errors::ApiError;
use crate::files_api::{self, Received};
use crate::gemini::Gemini;
use crate::internal;
use crate::job_object::now_ms;
use crate::uploads::drain;
use batchgate_core::gemini::timestamp::format_nanos;
use batchgate_core::upload::{ContentRange, OwnedFile, UploadError, UploadRules};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::cell::Cell;
use worker::{DurableObject, Env, Request, Response, Result, State, durable_object};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SessionState {
    Open,
    Done,
    Expired,
}

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
}

impl Session {
    /// What the API shows (never the Gemini session URL). `sending`: a chunk
    /// is still streaming (or breaking off); `received` is final once it is false.
    pub fn view(&self, max_chunk: u64, sending: bool) -> serde_json::Value {
        json!({
            "sending": sending,
            "id": self.id,
            "state": self.state,
            "size": self.size,
            "mimeType": self.mime_type,
            "displayName": self.display_name,
            "received": self.received,
            "chunkGranularity": self.granularity,
            "maxChunkBytes": max_chunk,
            "expiresAt": format_nanos(((self.last_ms + self.idle_ms) as i64).saturating_mul(1_000_000)),
            "file": self.file.as_ref().map(OwnedFile::view),
        })
    }
}

/// Refuse a chunk. Its body is read to the end first: answering while the
/// client is still sending breaks the connection under it, and the client
/// would see a network error instead of where to resume.
async fn refuse(req: &mut Request, e: ApiError, received: u64) -> Result<Response> {
    drain(req).await;
    e.with_details(json!({"received": received})).into_response()
}

fn rule(e: UploadError) -> ApiError {
    ApiError::new(e.status(), e.code(), e.message())
}

#[durable_object]
pub struct UploadObject {
    state: State,
    env: Env,
    /// A chunk is streaming to Gemini (in memory: a restarted object has none).
    busy: Cell<bool>,
}

const KEY: &str = "session";

impl UploadObject {
    async fn load(&self) -> Result<Option<Session>> {
        self.state.storage().get(KEY).await
    }

    async fn save(&self, s: &Session) -> Result<()> {
        self.state.storage().put(KEY, s).await
    }

    fn gemini(&self, settings: &Settings) -> Gemini {
        Gemini::new(settings.gemini.clone(), gemini_key(&self.env), settings.gemini_timeout_ms)
    }

    /// Record a finalized file with its account (repeated until it works).
    async fn finish(&self, s: &mut Session) -> Result<()> {
        if let (Some(file), false) = (&s.file, s.recorded) {
            if accounts::record_file(&self.env, &s.account, file).await.is_ok() {
                s.recorded = true;
                s.state = SessionState::Done;
            }
            self.save(s).await?;
        }
        Ok(())
    }

    async fn chunk(&self, req: &mut Request, mut s: Session, settings: &Settings) -> Result<Response> {
        let max_chunk = settings.uploads.rules.max_chunk;
        if s.state != SessionState::Open {
            return refuse(req, rule(UploadError::Ended), s.received).await;
        }
        if self.busy.get() {
            let e =
                ApiError::new(409, "chunk_in_progress", "another chunk of this upload is still being sent");
            return refuse(req, e, s.received).await;
        }
        let range = req.headers().get("content-range")?.unwrap_or_default();
        let body_len = req.headers().get("content-length")?.and_then(|v| v.parse().ok());
        let rules = UploadRules { granularity: s.granularity, ..settings.uploads.rules.clone() };
        let checked =
            ContentRange::parse(&range).and_then(|r| rules.check_chunk(r, body_len, s.size, s.received));
        let chunk = match checked {
            Ok(c) => c,
            Err(e) => return refuse(req, rule(e), s.received).await,
        };
        let Some(body) = req.inner().body() else {
            return refuse(req, rule(UploadError::Length { range: chunk.len, body: 0 }), s.received).await;
        };
        let gemini = self.gemini(settings);
        self.busy.set(true);
        let sent =
            files_api::send_chunk(&gemini, &s.session_url, chunk.offset, chunk.len, chunk.last, body.into())
                .await;
        let outcome = match sent {
            Ok(r) => Ok(r),
            // The chunk broke off (the client's connection, or Gemini): ask what Gemini kept.
            Err(e) => files_api::query(&gemini, &s.session_url).await.map_err(|_| e),
        };
        self.busy.set(false);
        s.last_ms = now_ms();
        match outcome {
            Ok(Received::Partial(n)) => s.received = n,
            Ok(Received::Final(file)) => {
                s.received = s.size;
                s.file = Some(OwnedFile::from_gemini(&file, now_ms()));
            }
            Err(e) => {
                self.save(&s).await?;
                return ApiError::new(
                    502,
                    "upstream_failed",
                    format!("sending the chunk to Gemini failed: {e:?}"),
                )
                .with_details(json!({"received": s.received}))
                .into_response();
            }
        }
        self.save(&s).await?;
        self.finish(&mut s).await?;
        let status = if s.state == SessionState::Done { 201 } else { 200 };
        Ok(Response::from_json(&s.view(max_chunk, false))?.with_status(status))
    }

    async fn route(&self, mut req: Request) -> Result<Response> {
        let settings = Settings::from_env(&self.env);
        let path = req.path();
        if path == "/init" {
            let s: Session = req.json().await?;
            if self.load().await?.is_none() {
                self.save(&s).await?;
                self.state.storage().set_alarm(s.idle_ms as i64).await?;
            }
            return internal::json(&json!({}));
        }
        let account = req.headers().get(internal::ACCOUNT_HEADER)?.unwrap_or_default();
        let Some(mut s) = self.load().await?.filter(|s| s.account == account) else {
            return ApiError::not_found("no such upload").into_response();
        };
        match path.as_str() {
            "/chunk" => self.chunk(&mut req, s, &settings).await,
            "/status" => {
                self.finish(&mut s).await?;
                internal::json(&s.view(settings.uploads.rules.max_chunk, self.busy.get()))
            }
            _ => ApiError::not_found(format!("no internal route {path}")).into_response(),
        }
    }
}

impl DurableObject for UploadObject {
    fn new(state: State, env: Env) -> Self {
        UploadObject { state, env, busy: Cell::new(false) }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        match self.route(req).await {
            Ok(r) => Ok(r),
            Err(e) => ApiError::internal(format!("upload object: {e}")).into_response(),
        }
    }

    /// Expire an idle session: cancel it at Gemini so nothing half-written lingers.
    async fn alarm(&self) -> Result<Response> {
        let Some(mut s) = self.load().await? else { return Response::ok("") };
        if s.state != SessionState::Open {
            return Response::ok("");
        }
        if s.file.is_some() {
            // Finalized at Gemini but not yet recorded with the account: keep trying.
            self.finish(&mut s).await?;
            if !s.recorded {
                self.state.storage().set_alarm(60_000).await?;
            }
            return Response::ok("");
        }
        let due = s.last_ms + s.idle_ms;
        let now = now_ms();
        if now < due {
            self.state.storage().set_alarm((due - now) as i64).await?;
            return Response::ok("");
        }
        let settings = Settings::from_env(&self.env);
        let _ = files_api::cancel(&self.gemini(&settings), &s.session_url).await;
        s.state = SessionState::Expired;
        self.save(&s).await?;
        Response::ok("")
    }
}
