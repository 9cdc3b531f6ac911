//! `UploadObject`: one Durable Object per resumable upload session. It keeps
//! the Gemini session URL and how many bytes Gemini holds, and admits each
//! chunk with core's rules, lending the session to the worker that streams the
//! chunk's body straight to Gemini (the bytes never pass through the object)
//! and then commits the outcome. A chunk whose outcome is unknown is
//! resynchronised by asking Gemini; a session is only `done` once Gemini has
//! finalized the file and the account has recorded it. Idle sessions expire on
//! the object's alarm and are cancelled upstream.

use crate::accounts;
use crate::config::{Settings, gemini_key};
use crate::errors::ApiError;
use crate::files_api::{self, Received};
use crate::gemini::Gemini;
use crate::internal::{self, JsonBody};
use crate::job_object::now_ms;
use batchgate_core::gemini::timestamp::format_nanos;
use batchgate_core::upload::{ContentRange, OwnedFile, UploadError, UploadRules};
use serde::{Deserialize, Serialize};
use serde_json::json;
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
    /// A chunk is lent to a worker streaming it to Gemini until then (0: none).
    #[serde(default)]
    pub sending_until_ms: u64,
}

/// What `/admit` lends: where the chunk goes at Gemini.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    pub session_url: String,
    pub offset: u64,
    pub len: u64,
    pub last: bool,
}

/// What the worker reports after streaming a lent chunk.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Commit {
    pub received: Option<u64>,
    pub file: Option<OwnedFile>,
}

impl Session {
    /// What the API shows (never the Gemini session URL). `sending`: a chunk
    /// is still streaming (or breaking off); `received` is final once it is false.
    pub fn view(&self, max_chunk: u64) -> serde_json::Value {
        json!({
            "sending": self.sending_until_ms > now_ms(),
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

fn rule(e: UploadError) -> ApiError {
    ApiError::new(e.status(), e.code(), e.message())
}

#[durable_object]
pub struct UploadObject {
    state: State,
    env: Env,
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
            if accounts::record_file(&self.env, &s.account, file, &s.id).await.is_ok() {
                s.recorded = true;
                s.state = SessionState::Done;
            }
            self.save(s).await?;
        }
        Ok(())
    }

    /// May this chunk go to Gemini now? Yes: the object lends the caller the
    /// session (URL, offset) until `lease_ms`, and the caller streams the body
    /// straight to Gemini, then commits. The chunk's bytes never pass through
    /// the object.
    async fn admit(&self, req: &Request, mut s: Session, settings: &Settings) -> Result<Response> {
        let refuse =
            |e: ApiError, received: u64| e.with_details(json!({"received": received})).into_response();
        if s.state != SessionState::Open || s.file.is_some() {
            return refuse(rule(UploadError::Ended), s.received);
        }
        let now = now_ms();
        if s.sending_until_ms > now {
            let e =
                ApiError::new(409, "chunk_in_progress", "another chunk of this upload is still being sent");
            return refuse(e, s.received);
        }
        if s.sending_until_ms > 0 {
            // A lent chunk was never committed (its worker died): ask Gemini what it holds.
            self.resync(&mut s, settings).await;
        }
        let range = req.headers().get("content-range")?.unwrap_or_default();
        let body_len = req.headers().get("content-length")?.and_then(|v| v.parse().ok());
        let rules = UploadRules { granularity: s.granularity, ..settings.uploads.rules.clone() };
        let checked =
            ContentRange::parse(&range).and_then(|r| rules.check_chunk(r, body_len, s.size, s.received));
        let chunk = match checked {
            Ok(c) => c,
            Err(e) => {
                self.save(&s).await?;
                return refuse(rule(e), s.received);
            }
        };
        s.sending_until_ms = now + settings.gemini_timeout_ms + 10_000;
        s.last_ms = now;
        self.save(&s).await?;
        internal::json(&Lease {
            session_url: s.session_url.clone(),
            offset: chunk.offset,
            len: chunk.len,
            last: chunk.last,
        })
    }

    /// Ask Gemini what the session holds (after a chunk whose outcome is unknown).
    async fn resync(&self, s: &mut Session, settings: &Settings) {
        match files_api::query(&self.gemini(settings), &s.session_url).await {
            Ok(Received::Partial(n)) => s.received = n,
            Ok(Received::Final(file)) => {
                s.received = s.size;
                s.file = Some(OwnedFile::from_gemini(&file, now_ms()));
            }
            Err(_) => {}
        }
        s.sending_until_ms = 0;
    }

    /// The lent chunk's outcome: Gemini's received count or the finished file,
    /// or (`failed`) nothing known, which is asked of Gemini.
    async fn commit(&self, c: Commit, mut s: Session, settings: &Settings) -> Result<Response> {
        match (c.file, c.received) {
            (Some(file), _) => {
                s.received = s.size;
                s.file = Some(file);
                s.sending_until_ms = 0;
            }
            (None, Some(n)) => {
                s.received = n;
                s.sending_until_ms = 0;
            }
            (None, None) => self.resync(&mut s, settings).await,
        }
        s.last_ms = now_ms();
        self.save(&s).await?;
        self.finish(&mut s).await?;
        let status = if s.state == SessionState::Done { 201 } else { 200 };
        Ok(Response::from_json(&s.view(settings.uploads.rules.max_chunk))?.with_status(status))
    }

    async fn route(&self, mut req: Request) -> Result<Response> {
        let settings = Settings::from_env(&self.env);
        let path = req.path();
        if path == "/init" {
            let s: Session = req.body_json().await?;
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
            "/admit" => self.admit(&req, s, &settings).await,
            "/commit" => {
                let c: Commit = req.body_json().await?;
                self.commit(c, s, &settings).await
            }
            "/status" => {
                self.finish(&mut s).await?;
                internal::json(&s.view(settings.uploads.rules.max_chunk))
            }
            _ => ApiError::not_found(format!("no internal route {path}")).into_response(),
        }
    }
}

impl DurableObject for UploadObject {
    fn new(state: State, env: Env) -> Self {
        UploadObject { state, env }
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
        accounts::release_storage(&self.env, &s.account, &s.id).await;
        Response::ok("")
    }
}
