//! `/v1/uploads`: resumable sessions for files up to Gemini's 2 GB, each held
//! by an `UploadObject`. A chunk's body streams straight to Gemini; the
//! session's object admits it first and records what Gemini then holds.

use super::{Ctx, Result, auth, forwarded, json};
use crate::objects::account::client as accounts;
use crate::objects::account::protocol::HoldStorage;
use crate::objects::upload::client::{self as upload_client, Upload};
use crate::objects::upload::protocol::{Admit, Commit, Session, SessionState, Where};
use crate::platform::clock::now_ms;
use crate::platform::error::ApiError;
use crate::platform::gemini::Gemini;
use crate::platform::gemini_files::{self, Received};
use batchgate_core::gemini::client::Failure;
use batchgate_core::upload::{OwnedFile, UploadError};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use worker::{Request, Response};

pub fn upstream(e: Failure) -> ApiError {
    ApiError::new(502, "upstream_failed", format!("the Gemini Files API refused: {e:?}"))
}

/// How long a media upload's hold lasts if its upload never ends or releases it
/// (Gemini keeps an upload session about a week).
pub const MEDIA_HOLD_TTL_MS: u64 = 7 * 86_400_000;

#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub(crate) struct QuotaUse {
    used_bytes: u64,
    quota_bytes: u64,
}

/// Promise `size` bytes of the account's storage quota to upload `id` (files
/// kept plus the other uploads under way must leave room) for `ttl_ms` unless
/// released sooner, or 413.
pub async fn hold_quota(cx: &Ctx<'_>, account: &str, id: &str, size: u64, ttl_ms: u64) -> Result<()> {
    let quota = cx.settings.uploads.quota_bytes;
    let hold = HoldStorage { id: id.to_string(), bytes: size, quota, ttl_ms };
    let answer = accounts::hold_storage(cx.env, account, &hold).await?;
    let used = answer.used_bytes;
    if !answer.held {
        return Err(ApiError::new(
            413,
            "storage_quota_exceeded",
            format!(
                "this account keeps {used} bytes of files; {size} more would pass its {quota}-byte quota"
            ),
        )
        .with_details(QuotaUse { used_bytes: used, quota_bytes: quota }));
    }
    Ok(())
}

/// Read a refused request's body to the end (unless it is already being
/// streamed elsewhere): answering while the client still sends breaks the
/// connection, and the client would see a network error instead of the answer.
pub async fn drain(req: &mut Request) {
    if let Ok(mut body) = req.stream() {
        while let Some(Ok(_)) = body.next().await {}
    }
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct NewSession {
    pub(crate) size: u64,
    pub(crate) mime_type: String,
    #[serde(default)]
    pub(crate) display_name: Option<String>,
}

/// `POST /v1/uploads` `{size, mimeType, displayName?}`: open a resumable session.
pub async fn open(mut req: Request, cx: &Ctx<'_>) -> Result<Response> {
    let account = auth::account(&req, cx.settings)?;
    let body: NewSession = crate::platform::body::json(
        &mut req,
        crate::platform::body::SMALL,
        "the session",
        "{size, mimeType, displayName?}",
    )
    .await?;
    let session = open_session(cx, account, body).await?;
    let resp = json(201, &session.view(cx.settings.uploads.rules.max_chunk, now_ms()))?;
    resp.headers().set("location", &crate::paths::upload(&session.id))?;
    Ok(resp)
}

/// A new resumable session for `account` (also the Gemini drop-in's uploads).
pub async fn open_session(cx: &Ctx<'_>, account: String, body: NewSession) -> Result<Session> {
    let uploads = &cx.settings.uploads;
    let mime = uploads.rules.check_file(&body.mime_type, body.size).map_err(ApiError::from)?;
    let id = upload_client::new_id(cx.env)?;
    // The session's declared size is held from now until its file is recorded or it ends.
    hold_quota(cx, &account, &id, body.size, MEDIA_HOLD_TTL_MS).await?;
    let g = Gemini::new(cx.settings);
    let display = body.display_name.clone().unwrap_or_default();
    let start = g.cfg.upload_start_typed(body.size, &mime, &display);
    let (session_url, granularity) = match gemini_files::start(&g, &start).await {
        Ok(s) => s,
        Err(e) => {
            accounts::release_storage(cx.env, &account, &id).await;
            return Err(upstream(e));
        }
    };
    let session = Session {
        id,
        account,
        size: body.size,
        mime_type: mime,
        display_name: body.display_name,
        session_url,
        granularity: granularity.unwrap_or(uploads.rules.granularity),
        received: 0,
        state: SessionState::Open,
        file: None,
        recorded: false,
        last_ms: now_ms(),
        idle_ms: uploads.idle_ms,
        sending_until_ms: 0,
    };
    if let Err(e) = upload_client::open(cx.env, &session).await {
        let _ = gemini_files::cancel(&g, &session.session_url).await;
        accounts::release_storage(cx.env, &session.account, &session.id).await;
        return Err(e);
    }
    Ok(session)
}

/// `PUT /v1/uploads/:id` with `Content-Range`: the session's object admits the
/// chunk, this worker streams it straight to Gemini, and the object records
/// the outcome. A refused chunk's body is read to the end before answering.
pub async fn chunk(mut req: Request, cx: &Ctx<'_>, id: &str) -> Result<Response> {
    let account = auth::account(&req, cx.settings)?;
    let admit = Admit {
        content_range: req.headers().get("content-range")?.unwrap_or_default(),
        body_len: req.headers().get("content-length")?.and_then(|v| v.parse().ok()),
    };
    let (view, done) = send_chunk(&mut req, cx, &account, id, &admit).await?;
    Ok(forwarded(view)?.with_status(if done { 201 } else { 200 }))
}

/// Stream `req`'s body to session `id` as the chunk `admit` says: the
/// session's view (JSON) after it, and whether the file is done.
pub async fn send_chunk(
    req: &mut Request,
    cx: &Ctx<'_>,
    account: &str,
    id: &str,
    admit: &Admit,
) -> Result<(Vec<u8>, bool)> {
    let upload = Upload::named(cx.env, id)?;
    let lease = match upload.admit(account, admit).await {
        Ok(lease) => lease,
        Err(e) => {
            drain(req).await;
            return Err(e);
        }
    };
    let Some(body) = req.inner().body() else {
        return Err(ApiError::from(UploadError::Length { range: lease.len, body: 0 }));
    };
    let g = Gemini::new(cx.settings);
    let sent =
        gemini_files::send_chunk(&g, &lease.session_url, (lease.offset, lease.len, lease.last), body.into())
            .await;
    let commit = match &sent {
        Ok(Received::Partial(n)) => Commit { received: Some(*n), file: None },
        Ok(Received::Final(f)) => Commit { received: None, file: Some(OwnedFile::from_gemini(f, now_ms())) },
        // Broken off (the client's connection, or Gemini): the object asks Gemini what it kept.
        Err(_) => Commit { received: None, file: None },
    };
    let (view, progress) = upload.commit(account, &commit).await?;
    match sent {
        Ok(_) => Ok((view, progress.state == SessionState::Done)),
        Err(e) => {
            Err(ApiError::new(502, "upstream_failed", format!("sending the chunk to Gemini failed: {e:?}"))
                .with_details(Where { received: progress.received }))
        }
    }
}

/// `GET /v1/uploads/:id`: bytes received (where to resume) and the file once done.
pub async fn status(req: &Request, cx: &Ctx<'_>, id: &str) -> Result<Response> {
    let account = auth::account(req, cx.settings)?;
    forwarded(Upload::named(cx.env, id)?.status(&account).await?)
}
