//! `files.upload` through the Gemini drop-in: Google's resumable protocol
//! (`X-Goog-Upload-*`, core's `dropin::upload`). A media file goes through
//! batchgate's upload sessions to Gemini's Files API, like `/v1/uploads`; a
//! JSONL file of batch requests is kept in R2 (`bindings::gemini_input_prefix`)
//! until a batch is made from it. The upload URL carries a random secret
//! (Python's SDK sends no key with the chunks): the session's state in R2
//! under that secret names the account.

use crate::api::uploads::{self, NewSession, drain};
use crate::api::{Ctx, Result};
use crate::objects::upload::protocol::{Admit, SessionView};
use crate::platform::bindings::{self, gemini_input_prefix, gemini_upload_key};
use crate::platform::clock::now_ms;
use crate::platform::error::ApiError;
use crate::platform::{query, random};
use batchgate_core::dropin::{self, upload};
use batchgate_core::gemini::File;
use serde::{Deserialize, Serialize};
use worker::{Request, Response};

/// An upload under way, kept in R2 under its secret.
#[derive(Serialize, Deserialize)]
struct Session {
    account: String,
    size: u64,
    mime_type: String,
    display_name: Option<String>,
    received: u64,
    /// The batchgate upload session of a media file, or…
    upload: Option<String>,
    /// …the id of a batch input file kept here.
    input: Option<String>,
}

/// The `{"file": File}` a finished upload answers.
#[derive(Serialize)]
struct Finished {
    file: File,
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// An empty answer with the upload's status (the SDKs retry a chunk whose
/// answer has none).
fn status(state: &str) -> Result<Response> {
    let resp = Response::empty()?;
    resp.headers().set("x-goog-upload-status", state)?;
    Ok(resp)
}

fn finished(file: File) -> Result<Response> {
    let resp = crate::api::ok(&Finished { file })?;
    resp.headers().set("x-goog-upload-status", "final")?;
    Ok(resp)
}

async fn save(cx: &Ctx<'_>, secret: &str, session: &Session) -> Result<()> {
    let json = serde_json::to_vec(session).map_err(|e| ApiError::internal(e.to_string()))?;
    bindings::bucket(cx.env)?.put(gemini_upload_key(secret), json).execute().await?;
    Ok(())
}

/// `POST upload/{version}/files` with `X-Goog-Upload-Command: start`.
pub async fn start(mut req: Request, cx: &Ctx<'_>, account: String, version: &str) -> Result<Response> {
    if header(&req, "x-goog-upload-protocol").is_some_and(|p| !p.eq_ignore_ascii_case("resumable")) {
        return Err(ApiError::new(501, "not_implemented", "only resumable uploads are served here"));
    }
    let body =
        crate::platform::body::read(&mut req, crate::platform::body::SMALL, "an upload's start").await?;
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))?
    };
    let start = upload::start(
        header(&req, "x-goog-upload-header-content-length").as_deref(),
        header(&req, "x-goog-upload-header-content-type").as_deref(),
        header(&req, "x-goog-upload-file-name").as_deref(),
        &body,
    )
    .map_err(|m| ApiError::bad_request("invalid_upload", m))?;
    let mut session = Session {
        account,
        size: start.size,
        mime_type: start.mime_type.clone(),
        display_name: start.display_name.clone(),
        received: 0,
        upload: None,
        input: None,
    };
    if upload::is_batch_input(&start.mime_type, start.display_name.as_deref()) {
        // Kept in R2 rather than at Gemini: held against the account's storage quota all the same.
        let file = format!("input-{}", random::hex(12)?);
        uploads::hold_quota(cx, &session.account, &file, start.size).await?;
        session.input = Some(file);
    } else {
        let new =
            NewSession { size: start.size, mime_type: start.mime_type, display_name: start.display_name };
        session.upload = Some(uploads::open_session(cx, session.account.clone(), new).await?.id);
    }
    let secret = random::hex(32)?;
    save(cx, &secret, &session).await?;
    let url = format!(
        "{}/gemini/upload/{version}/files?upload_id={secret}&upload_protocol=resumable",
        query::origin(&req)
    );
    let resp = status("active")?;
    resp.headers().set("x-goog-upload-url", &url)?;
    resp.headers().set("x-goog-upload-chunk-granularity", &upload::GRANULARITY.to_string())?;
    Ok(resp)
}

/// A request to the upload URL: `upload`, `upload, finalize`, `finalize`, `query` or `cancel`.
pub async fn chunk(mut req: Request, cx: &Ctx<'_>, secret: &str) -> Result<Response> {
    let gone = || ApiError::not_found("no upload session (it finished, was cancelled or never was)");
    if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        drain(&mut req).await;
        return Err(gone());
    }
    let bucket = bindings::bucket(cx.env)?;
    let Some(stored) = bucket.get(gemini_upload_key(secret)).execute().await? else {
        drain(&mut req).await;
        return Err(gone());
    };
    let bytes = stored.body().ok_or_else(gone)?.bytes().await?;
    let mut session: Session =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::internal(e.to_string()))?;
    let command = upload::command(&header(&req, "x-goog-upload-command").unwrap_or_default())
        .map_err(|m| ApiError::bad_request("invalid_upload", m))?;
    if command.query {
        let resp = status("active")?;
        resp.headers().set("x-goog-upload-size-received", &session.received.to_string())?;
        return Ok(resp);
    }
    if command.cancel {
        bucket.delete(gemini_upload_key(secret)).await?;
        return status("cancelled");
    }
    let offset: u64 = header(&req, "x-goog-upload-offset")
        .and_then(|o| o.trim().parse().ok())
        .ok_or_else(|| ApiError::bad_request("invalid_upload", "X-Goog-Upload-Offset is required"))?;
    let len: u64 = header(&req, "content-length").and_then(|l| l.trim().parse().ok()).unwrap_or(0);
    let end = offset.saturating_add(len);
    let refused = if offset != session.received {
        Some(format!("the chunk starts at {offset}; the upload has {} bytes", session.received))
    } else if end > session.size {
        Some(format!("the chunk ends at {end}, past the file's {} bytes", session.size))
    } else if command.finalize && end != session.size {
        Some(format!("finalized at {end} of {} bytes", session.size))
    } else {
        None
    };
    if let Some(why) = refused {
        drain(&mut req).await;
        return Err(ApiError::bad_request("invalid_upload", why));
    }
    match (&session.upload, &session.input) {
        (Some(id), _) => {
            let id = id.clone();
            media_chunk(&mut req, cx, secret, &mut session, &id, (offset, len)).await
        }
        (None, Some(file)) => {
            let file = file.clone();
            input_chunk(&mut req, cx, secret, &mut session, &file, (offset, len), command.finalize).await
        }
        (None, None) => Err(ApiError::internal("an upload session with no file")),
    }
}

/// A media chunk, streamed to Gemini through the batchgate session `id`.
async fn media_chunk(
    req: &mut Request,
    cx: &Ctx<'_>,
    secret: &str,
    session: &mut Session,
    id: &str,
    (offset, len): (u64, u64),
) -> Result<Response> {
    let admit = Admit {
        content_range: format!("bytes {offset}-{}/{}", (offset + len).saturating_sub(1), session.size),
        body_len: Some(len),
    };
    let (view, done) = uploads::send_chunk(req, cx, &session.account, id, &admit).await?;
    session.received = offset + len;
    if !done {
        save(cx, secret, session).await?;
        return status("active");
    }
    bindings::bucket(cx.env)?.delete(gemini_upload_key(secret)).await?;
    let view: SessionView = serde_json::from_slice(&view).map_err(|e| ApiError::internal(e.to_string()))?;
    let file = view.file.ok_or_else(|| ApiError::internal("a finished upload without its file"))?;
    finished(dropin::media_file(&file))
}

/// A chunk of a batch input file, kept in R2 as its own object.
async fn input_chunk(
    req: &mut Request,
    cx: &Ctx<'_>,
    secret: &str,
    session: &mut Session,
    file: &str,
    (offset, len): (u64, u64),
    finalize: bool,
) -> Result<Response> {
    let cap = len.min(cx.settings.uploads.rules.max_chunk);
    if len > cap {
        drain(req).await;
        return Err(ApiError::new(413, "chunk_too_large", format!("a chunk is at most {cap} bytes")));
    }
    let bytes = crate::platform::body::read(req, cap, "a chunk").await?;
    let bucket = bindings::bucket(cx.env)?;
    let prefix = gemini_input_prefix(&session.account, file);
    if !bytes.is_empty() {
        bucket.put(format!("{prefix}part-{offset:020}"), bytes).execute().await?;
    }
    session.received = offset + len;
    if !finalize {
        save(cx, secret, session).await?;
        return status("active");
    }
    let start = upload::Start {
        size: session.size,
        mime_type: session.mime_type.clone(),
        display_name: session.display_name.clone(),
    };
    let resource = upload::input_file(&format!("files/{file}"), &start, now_ms());
    let json = serde_json::to_vec(&resource).map_err(|e| ApiError::internal(e.to_string()))?;
    bucket.put(bindings::gemini_input_record(&session.account, file), json).execute().await?;
    bucket.delete(gemini_upload_key(secret)).await?;
    finished(resource)
}
