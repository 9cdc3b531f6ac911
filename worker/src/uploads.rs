//! Media uploads for requests to reference (`fileData.fileUri`): one streamed
//! `POST /v1/files`, or resumable sessions (`/v1/uploads`) held by an
//! `UploadObject` for files up to Gemini's 2 GB. Bodies stream straight to the
//! Gemini Files API; the worker never holds a whole file. Files belong to the
//! account that uploaded them.

use crate::accounts;
use crate::config::{Settings, gemini_key};
use crate::errors::ApiError;
use crate::files_api::{self, Received};
use crate::gemini::Gemini;
use crate::internal::{self, JsonBody};
use crate::job_object::now_ms;
use crate::upload_object::{Commit, Lease, Session, SessionState};
use batchgate_core::upload::{OwnedFile, UploadError};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use worker::{Env, Method, Request, Response};

type Result<T> = std::result::Result<T, ApiError>;

fn refuse(e: UploadError) -> ApiError {
    ApiError::new(e.status(), e.code(), e.message())
}

fn upstream(e: batchgate_core::gemini::client::Failure) -> ApiError {
    ApiError::new(502, "upstream_failed", format!("the Gemini Files API refused: {e:?}"))
}

fn gemini(env: &Env, settings: &Settings) -> Gemini {
    Gemini::new(settings.gemini.clone(), gemini_key(env), settings.gemini_timeout_ms)
}

/// Refuse an upload that would take the account past its storage quota.
/// How long a hold lasts if its upload never ends or releases it (Gemini keeps
/// an upload session about a week).
const HOLD_TTL_MS: u64 = 7 * 86_400_000;

/// Promise `size` bytes of the account's storage quota to upload `id` (files
/// kept plus the other uploads under way must leave room), or 413.
async fn hold_quota(env: &Env, settings: &Settings, account: &str, id: &str, size: u64) -> Result<()> {
    let quota = settings.uploads.quota_bytes;
    let hold = accounts::HoldRequest { id: id.to_string(), bytes: size, quota, ttl_ms: HOLD_TTL_MS };
    let answer = accounts::hold_storage(env, account, &hold).await?;
    let used = answer.used_bytes;
    if !answer.held {
        return Err(ApiError::new(
            413,
            "storage_quota_exceeded",
            format!(
                "this account keeps {used} bytes of files; {size} more would pass its {quota}-byte quota"
            ),
        )
        .with_details(json!({"usedBytes": used, "quotaBytes": quota})));
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

/// `POST /v1/files`: the raw body (`Content-Type`, `Content-Length`) in one request.
pub async fn single(mut req: Request, env: &Env, account: &str) -> Result<Response> {
    let result = single_upload(&req, env, account).await;
    if result.is_err() {
        drain(&mut req).await;
    }
    result
}

async fn single_upload(req: &Request, env: &Env, account: &str) -> Result<Response> {
    let settings = Settings::from_env(env);
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let mime = header("content-type").unwrap_or_default();
    let size: u64 = header("content-length")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ApiError::new(411, "length_required", "send Content-Length with the file"))?;
    let mime = settings.uploads.rules.check_file(&mime, size).map_err(refuse)?;
    if size > settings.uploads.max_single_bytes {
        return Err(ApiError::new(
            413,
            "use_resumable_upload",
            format!("files above {} bytes go through POST /v1/uploads", settings.uploads.max_single_bytes),
        ));
    }
    let hold: String = crate::random::bytes(16)?.iter().map(|b| format!("{b:02x}")).collect();
    hold_quota(env, &settings, account, &hold, size).await?;
    let result = send_single(req, env, account, (&hold, size, &mime)).await;
    if result.is_err() {
        accounts::release_storage(env, account, &hold).await;
    }
    result
}

async fn send_single(
    req: &Request,
    env: &Env,
    account: &str,
    (hold, size, mime): (&str, u64, &str),
) -> Result<Response> {
    let settings = Settings::from_env(env);
    let display_name = crate::query::param(req, "displayName").unwrap_or_default();
    let body = req.inner().body().ok_or_else(|| refuse(UploadError::Size("the body is empty".into())))?;
    let g = gemini(env, &settings);
    let (session_url, _) = files_api::start(&g, size, mime, &display_name).await.map_err(upstream)?;
    let file = match files_api::send_chunk(&g, &session_url, 0, size, true, body.into()).await {
        Ok(Received::Final(f)) => OwnedFile::from_gemini(&f, now_ms()),
        Ok(Received::Partial(n)) => {
            let _ = files_api::cancel(&g, &session_url).await;
            return Err(refuse(UploadError::Length { range: size, body: n }));
        }
        Err(e) => {
            let _ = files_api::cancel(&g, &session_url).await;
            return Err(upstream(e));
        }
    };
    accounts::record_file(env, account, &file, hold).await?;
    Ok(Response::from_json(&file.view())?.with_status(201))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewSession {
    size: u64,
    mime_type: String,
    #[serde(default)]
    display_name: Option<String>,
}

/// `POST /v1/uploads` `{size, mimeType, displayName?}`: open a resumable session.
pub async fn open(mut req: Request, env: &Env, account: &str) -> Result<Response> {
    let settings = Settings::from_env(env);
    let body: NewSession =
        crate::body::json(&mut req, crate::body::SMALL, "the session", "{size, mimeType, displayName?}")
            .await?;
    let mime = settings.uploads.rules.check_file(&body.mime_type, body.size).map_err(refuse)?;
    let ns = env.durable_object("UPLOADS")?;
    let id = ns.unique_id()?;
    // The session's declared size is held from now until its file is recorded or it ends.
    hold_quota(env, &settings, account, &id.to_string(), body.size).await?;
    let g = gemini(env, &settings);
    let display = body.display_name.clone().unwrap_or_default();
    let (session_url, granularity) = match files_api::start(&g, body.size, &mime, &display).await {
        Ok(s) => s,
        Err(e) => {
            accounts::release_storage(env, account, &id.to_string()).await;
            return Err(upstream(e));
        }
    };
    let session = Session {
        id: id.to_string(),
        account: account.to_string(),
        size: body.size,
        mime_type: mime,
        display_name: body.display_name,
        session_url: session_url.clone(),
        granularity: granularity.unwrap_or(settings.uploads.rules.granularity),
        received: 0,
        state: SessionState::Open,
        file: None,
        recorded: false,
        last_ms: now_ms(),
        idle_ms: settings.uploads.idle_ms,
        sending_until_ms: 0,
    };
    let init = serde_json::to_string(&session).map_err(|e| ApiError::internal(e.to_string()))?;
    if let Err(e) =
        internal::call_json::<serde_json::Value>(&id.get_stub()?, Method::Post, "/init", account, Some(init))
            .await
    {
        let _ = files_api::cancel(&g, &session_url).await;
        accounts::release_storage(env, account, &id.to_string()).await;
        return Err(e);
    }
    let resp = Response::from_json(&session.view(settings.uploads.rules.max_chunk))?.with_status(201);
    resp.headers().set("location", &format!("/v1/uploads/{}", session.id))?;
    Ok(resp)
}

fn upload_stub(env: &Env, id: &str) -> Result<worker::Stub> {
    let valid = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let not_found = || ApiError::not_found(format!("no upload {id}"));
    if !valid {
        return Err(not_found());
    }
    env.durable_object("UPLOADS")?.id_from_string(id).and_then(|i| i.get_stub()).map_err(|_| not_found())
}

/// `PUT /v1/uploads/:id` with `Content-Range`: the session's object admits the
/// chunk, this worker streams it straight to Gemini, and the object records
/// the outcome. A refused chunk's body is read to the end before answering.
pub async fn chunk(mut req: Request, env: &Env, account: &str, id: &str) -> Result<Response> {
    let stub = upload_stub(env, id)?;
    let mut headers = vec![];
    for name in ["content-range", "content-length"] {
        if let Some(v) = req.headers().get(name)? {
            headers.push((name, v));
        }
    }
    let mut admitted = internal::call_stream(&stub, Method::Post, "/admit", account, &headers, None).await?;
    if admitted.status_code() != 200 {
        drain(&mut req).await;
        return Ok(admitted);
    }
    let lease: Lease = admitted.body_json().await?;
    let Some(body) = req.inner().body() else {
        return Err(refuse(UploadError::Length { range: lease.len, body: 0 }));
    };
    let settings = Settings::from_env(env);
    let sent = files_api::send_chunk(
        &gemini(env, &settings),
        &lease.session_url,
        lease.offset,
        lease.len,
        lease.last,
        body.into(),
    )
    .await;
    let commit = match &sent {
        Ok(Received::Partial(n)) => Commit { received: Some(*n), file: None },
        Ok(Received::Final(f)) => Commit { received: None, file: Some(OwnedFile::from_gemini(f, now_ms())) },
        // Broken off (the client's connection, or Gemini): the object asks Gemini what it kept.
        Err(_) => Commit { received: None, file: None },
    };
    let body = serde_json::to_string(&commit).map_err(|e| ApiError::internal(e.to_string()))?;
    let committed =
        internal::call_stream(&stub, Method::Post, "/commit", account, &[], Some(body.into())).await?;
    match sent {
        Ok(_) => Ok(committed),
        Err(e) => {
            let mut committed = committed;
            let view: serde_json::Value = committed.body_json().await.unwrap_or_default();
            Err(ApiError::new(502, "upstream_failed", format!("sending the chunk to Gemini failed: {e:?}"))
                .with_details(json!({"received": view.get("received")})))
        }
    }
}

/// `GET /v1/uploads/:id`: bytes received (where to resume) and the file once done.
pub async fn status(env: &Env, account: &str, id: &str) -> Result<Response> {
    let stub = upload_stub(env, id)?;
    Ok(internal::call_stream(&stub, Method::Get, "/status", account, &[], None).await?)
}

pub async fn list(env: &Env, account: &str) -> Result<Response> {
    let files: Vec<serde_json::Value> =
        accounts::files(env, account).await?.iter().map(OwnedFile::view).collect();
    Ok(Response::from_json(&json!({"files": files}))?)
}

async fn owned(env: &Env, account: &str, id: &str) -> Result<OwnedFile> {
    let name = format!("files/{id}");
    accounts::files(env, account)
        .await?
        .into_iter()
        .find(|f| f.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no file {name}")))
}

pub async fn get(env: &Env, account: &str, id: &str) -> Result<Response> {
    Ok(Response::from_json(&owned(env, account, id).await?.view())?)
}

/// `DELETE /v1/files/:id`: at Gemini, then from the account.
pub async fn delete(env: &Env, account: &str, id: &str) -> Result<Response> {
    let file = owned(env, account, id).await?;
    let settings = Settings::from_env(env);
    files_api::delete(&gemini(env, &settings), &file.name).await.map_err(upstream)?;
    accounts::forget_file(env, account, &file.name).await?;
    Ok(Response::from_json(&json!({"name": file.name, "deleted": true}))?)
}
