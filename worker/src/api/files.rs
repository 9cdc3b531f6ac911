//! `/v1/files`: media for requests to reference (`fileData.fileUri`). One
//! streamed `POST /v1/files` (larger files go through `/v1/uploads`), listing,
//! reading and deleting. Bodies stream straight to the Gemini Files API; the
//! worker never holds a whole file. Files belong to the account that uploaded them.

use super::uploads::{MEDIA_HOLD_TTL_MS, drain, hold_quota, upstream};
use super::{Ctx, Result, auth, json, ok};
use crate::objects::account::client as accounts;
use crate::platform::clock::now_ms;
use crate::platform::error::ApiError;
use crate::platform::gemini::Gemini;
use crate::platform::gemini_files::{self, Received};
use crate::platform::query::Query;
use crate::platform::random;
use batchgate_core::upload::{OwnedFile, UploadError};
use serde::Serialize;
use worker::{Request, Response};

/// `POST /v1/files`: the raw body (`Content-Type`, `Content-Length`) in one request.
/// A caller who is not signed in gets no more of a hearing than the refusal.
pub async fn single(mut req: Request, cx: &Ctx<'_>) -> Result<Response> {
    let account = auth::account(&req, cx.settings)?;
    let result = single_upload(&req, cx, &account).await;
    if result.is_err() {
        drain(&mut req).await;
    }
    result
}

async fn single_upload(req: &Request, cx: &Ctx<'_>, account: &str) -> Result<Response> {
    let uploads = &cx.settings.uploads;
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let mime = header("content-type").unwrap_or_default();
    let size: u64 = header("content-length")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ApiError::new(411, "length_required", "send Content-Length with the file"))?;
    let mime = uploads.rules.check_file(&mime, size).map_err(ApiError::from)?;
    if size > uploads.max_single_bytes {
        return Err(ApiError::new(
            413,
            "use_resumable_upload",
            format!("files above {} bytes go through POST /v1/uploads", uploads.max_single_bytes),
        ));
    }
    let hold = random::hex(16)?;
    hold_quota(cx, account, &hold, size, MEDIA_HOLD_TTL_MS).await?;
    let result = send_single(req, cx, account, (&hold, size, &mime)).await;
    if result.is_err() {
        accounts::release_storage(cx.env, account, &hold).await;
    }
    result
}

async fn send_single(
    req: &Request,
    cx: &Ctx<'_>,
    account: &str,
    (hold, size, mime): (&str, u64, &str),
) -> Result<Response> {
    let display_name = Query::of(req).get("displayName").unwrap_or_default();
    let body =
        req.inner().body().ok_or_else(|| ApiError::from(UploadError::Size("the body is empty".into())))?;
    let g = Gemini::new(cx.settings);
    let start = g.cfg.upload_start_typed(size, mime, &display_name);
    let (session_url, _) = gemini_files::start(&g, &start).await.map_err(upstream)?;
    let file = match gemini_files::send_chunk(&g, &session_url, (0, size, true), body.into()).await {
        Ok(Received::Final(f)) => OwnedFile::from_gemini(&f, now_ms()),
        Ok(Received::Partial(n)) => {
            let _ = gemini_files::cancel(&g, &session_url).await;
            return Err(ApiError::from(UploadError::Length { range: size, body: n }));
        }
        Err(e) => {
            let _ = gemini_files::cancel(&g, &session_url).await;
            return Err(upstream(e));
        }
    };
    accounts::record_file(cx.env, account, &file, hold).await?;
    json(201, &file.view())
}

#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub(crate) struct Files {
    files: Vec<batchgate_core::upload::FileView>,
}

/// `GET /v1/files`: the account's files Gemini still keeps, newest first.
pub async fn list(req: &Request, cx: &Ctx<'_>) -> Result<Response> {
    let account = auth::account(req, cx.settings)?;
    let files = accounts::files(cx.env, &account).await?.iter().map(OwnedFile::view).collect();
    ok(&Files { files })
}

async fn owned(cx: &Ctx<'_>, account: &str, id: &str) -> Result<OwnedFile> {
    let name = format!("files/{id}");
    accounts::files(cx.env, account)
        .await?
        .into_iter()
        .find(|f| f.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no file {name}")))
}

/// `GET /v1/files/:id`.
pub async fn get(req: &Request, cx: &Ctx<'_>, id: &str) -> Result<Response> {
    let account = auth::account(req, cx.settings)?;
    ok(&owned(cx, &account, id).await?.view())
}

#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(rename = "FileDeleted"))]
pub(crate) struct Deleted {
    name: String,
    deleted: bool,
}

/// `DELETE /v1/files/:id`: at Gemini, then from the account.
pub async fn delete(req: &Request, cx: &Ctx<'_>, id: &str) -> Result<Response> {
    let account = auth::account(req, cx.settings)?;
    let name = delete_owned(cx, &account, id).await?;
    ok(&Deleted { name, deleted: true })
}

/// Delete `account`'s file `id` at Gemini and here: its name.
pub async fn delete_owned(cx: &Ctx<'_>, account: &str, id: &str) -> Result<String> {
    let file = owned(cx, account, id).await?;
    gemini_files::delete(&Gemini::new(cx.settings), &file.name).await.map_err(upstream)?;
    accounts::forget_file(cx.env, account, &file.name).await?;
    Ok(file.name)
}
