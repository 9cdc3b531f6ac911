//! `files.upload` through the Gemini drop-in: Google's resumable protocol
//! (`X-Goog-Upload-*`, core's `dropin::upload`). A media file goes through
//! batchgate's upload sessions to Gemini's Files API, like `/v1/uploads`; a
//! JSONL file of batch requests is kept in R2 (`bindings::gemini_input_prefix`)
//! until a batch is made from it. The upload URL carries a random secret
//! (Python's SDK sends no key with the chunks): the session's state in R2
//! under that secret names the account.

use crate::api::uploads::{self, NewSession, drain};
use crate::api::{Ctx, Result};
use crate::objects::account::client as accounts;
use crate::objects::upload::client::Upload;
use crate::objects::upload::protocol::{Admit, SessionView};
use crate::platform::bindings::{self, gemini_input_prefix, gemini_upload_key};
use crate::platform::clock::now_ms;
use crate::platform::error::ApiError;
use crate::platform::{query, random};
use batchgate_core::dropin::{self, upload};
use batchgate_core::gemini::File;
use serde::{Deserialize, Serialize};
use worker::{Conditional, Request, Response};

/// An upload under way, kept in R2 under its secret.
#[derive(Serialize, Deserialize)]
struct Session {
    account: String,
    size: u64,
    mime_type: String,
    display_name: Option<String>,
    received: u64,
    started_ms: u64,
    /// The batchgate upload session of a media file, or…
    upload: Option<String>,
    /// …the id of a batch input file kept here, and its chunks' R2 keys in order.
    input: Option<String>,
    #[serde(default)]
    parts: Vec<String>,
}

/// How long an upload may take from its start (the secret stops working then).
const SESSION_TTL_MS: u64 = 24 * 3_600_000;

/// How long a batch input file can hold storage: its whole upload, then its
/// 48 hours. The R2 lifecycle rule in the README (3 days) reclaims it then.
const INPUT_HOLD_TTL_MS: u64 = SESSION_TTL_MS + upload::FILE_LIFETIME_MS;

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

fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| ApiError::internal(e.to_string()))
}

/// Store the session; with `etag`, only if it is still the version read
/// (false: another request changed it first).
async fn save(cx: &Ctx<'_>, secret: &str, session: &Session, etag: Option<String>) -> Result<bool> {
    let bucket = bindings::bucket(cx.env)?;
    let mut put = bucket.put(gemini_upload_key(secret), to_json(session)?);
    if let Some(etag) = etag {
        put = put.only_if(Conditional { etag_matches: Some(etag), ..Conditional::default() });
    }
    Ok(put.execute().await?.is_some())
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
        started_ms: now_ms(),
        upload: None,
        input: None,
        parts: vec![],
    };
    let file_name = header(&req, "x-goog-upload-file-name").or_else(|| start.display_name.clone());
    if upload::is_batch_input(&start.mime_type, file_name.as_deref()) {
        // Kept in R2 rather than at Gemini: held against the account's storage quota all the same.
        let file = format!("input-{}", random::hex(12)?);
        uploads::hold_quota(cx, &session.account, &file, start.size, INPUT_HOLD_TTL_MS).await?;
        session.input = Some(file);
    } else {
        let new =
            NewSession { size: start.size, mime_type: start.mime_type, display_name: start.display_name };
        session.upload = Some(uploads::open_session(cx, session.account.clone(), new).await?.id);
    }
    let secret = random::hex(32)?;
    if let Err(e) = save(cx, &secret, &session, None).await {
        // No one can reach the session: what its start held goes back.
        if let Some(file) = &session.input {
            accounts::release_storage(cx.env, &session.account, file).await;
        }
        return Err(e);
    }
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
    let gone = || ApiError::not_found("no upload session (it finished, was cancelled, expired or never was)");
    let loaded = if secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        load(cx, secret).await?
    } else {
        None
    };
    let Some((mut session, etag)) = loaded else {
        drain(&mut req).await;
        return Err(gone());
    };
    let command = upload::command(&header(&req, "x-goog-upload-command").unwrap_or_default())
        .map_err(|m| ApiError::bad_request("invalid_upload", m))?;
    if command.cancel || now_ms() >= session.started_ms.saturating_add(SESSION_TTL_MS) {
        drain(&mut req).await;
        forget(cx, secret, &session).await?;
        return if command.cancel { status("cancelled") } else { Err(gone()) };
    }
    if command.query {
        let resp = status("active")?;
        resp.headers().set("x-goog-upload-size-received", &session.received.to_string())?;
        return Ok(resp);
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
    match (session.upload.clone(), session.input.clone()) {
        (Some(id), _) => media_chunk(&mut req, cx, secret, &mut session, &id, (offset, len)).await,
        (None, Some(file)) => {
            let at = Chunk { offset, len, finalize: command.finalize };
            input_chunk(&mut req, cx, (secret, etag), &mut session, &file, at).await
        }
        (None, None) => Err(ApiError::internal("an upload session with no file")),
    }
}

/// The session under `secret`, and its version (R2's etag).
async fn load(cx: &Ctx<'_>, secret: &str) -> Result<Option<(Session, String)>> {
    let Some(stored) = bindings::bucket(cx.env)?.get(gemini_upload_key(secret)).execute().await? else {
        return Ok(None);
    };
    let etag = stored.etag();
    let Some(body) = stored.body() else { return Ok(None) };
    let session =
        serde_json::from_slice(&body.bytes().await?).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Some((session, etag)))
}

/// End the session: its state, and for a batch input file not finished, its
/// chunks and the storage its start held.
async fn forget(cx: &Ctx<'_>, secret: &str, session: &Session) -> Result<()> {
    let bucket = bindings::bucket(cx.env)?;
    bucket.delete(gemini_upload_key(secret)).await?;
    if let Some(file) = &session.input {
        super::files::delete_input(cx, &session.account, file).await?;
    }
    Ok(())
}

/// A media chunk, streamed to Gemini through the batchgate session `id`
/// (whose object decides what was received; the state here follows it).
async fn media_chunk(
    req: &mut Request,
    cx: &Ctx<'_>,
    secret: &str,
    session: &mut Session,
    id: &str,
    (offset, len): (u64, u64),
) -> Result<Response> {
    let admit = Admit {
        content_range: format!("bytes {offset}-{}/{}", end_byte(offset, len), session.size),
        body_len: Some(len),
    };
    let sent = uploads::send_chunk(req, cx, &session.account, id, &admit).await;
    let json = match &sent {
        Ok((view, _)) => view.clone(),
        Err(_) => Upload::named(cx.env, id)?.status(&session.account).await?,
    };
    let view: SessionView = serde_json::from_slice(&json).map_err(|e| ApiError::internal(e.to_string()))?;
    session.received = view.received;
    let done = sent?.1;
    if !done {
        save(cx, secret, session, None).await?;
        return status("active");
    }
    bindings::bucket(cx.env)?.delete(gemini_upload_key(secret)).await?;
    let file = view.file.ok_or_else(|| ApiError::internal("a finished upload without its file"))?;
    finished(dropin::media_file(&file))
}

fn end_byte(offset: u64, len: u64) -> u64 {
    offset.saturating_add(len).saturating_sub(1)
}

/// Where a chunk goes in its file.
struct Chunk {
    offset: u64,
    len: u64,
    finalize: bool,
}

/// A chunk of a batch input file, kept in R2 as its own object. Chunks are
/// the SDKs' 8 MiB (the last one less), so a file is at most 256 of them and
/// one is held in memory at a time; the session is saved only if no other
/// request changed it meanwhile, and a chunk that lost that race is deleted.
async fn input_chunk(
    req: &mut Request,
    cx: &Ctx<'_>,
    (secret, etag): (&str, String),
    session: &mut Session,
    file: &str,
    at: Chunk,
) -> Result<Response> {
    let last = at.offset.saturating_add(at.len) == session.size;
    if at.len > upload::GRANULARITY || (!last && at.len != upload::GRANULARITY) {
        drain(req).await;
        return Err(ApiError::bad_request(
            "invalid_chunk_size",
            format!("every chunk but the last is {} bytes, and none is more", upload::GRANULARITY),
        ));
    }
    let bytes = crate::platform::body::read(req, at.len, "a chunk").await?;
    if bytes.len() as u64 != at.len {
        return Err(ApiError::bad_request(
            "length_mismatch",
            "the chunk is not as long as its Content-Length",
        ));
    }
    let bucket = bindings::bucket(cx.env)?;
    let key =
        format!("{}part-{:020}-{}", gemini_input_prefix(&session.account, file), at.offset, random::hex(4)?);
    bucket.put(key.clone(), bytes).execute().await?;
    session.parts.push(key.clone());
    session.received = at.offset + at.len;
    // A chunk the session does not list is no part of the file: a lost race
    // or a failed save leaves no stray object behind (the retry stores its own).
    match save(cx, secret, session, Some(etag)).await {
        Ok(true) => {}
        Ok(false) => {
            bucket.delete(key).await?;
            return Err(ApiError::new(
                409,
                "upload_changed",
                "another request changed this upload meanwhile; ask where it is (query) and go on from there",
            ));
        }
        Err(e) => {
            let _ = bucket.delete(key).await;
            return Err(e);
        }
    }
    if !at.finalize {
        return status("active");
    }
    let start = upload::Start {
        size: session.size,
        mime_type: session.mime_type.clone(),
        display_name: session.display_name.clone(),
    };
    let file = upload::input_file(&format!("files/{file}"), &start, now_ms());
    let record = super::files::InputRecord { file: file.clone(), parts: std::mem::take(&mut session.parts) };
    bucket
        .put(bindings::gemini_input_record(&session.account, file_id(&file.name)), to_json(&record)?)
        .execute()
        .await?;
    bucket.delete(gemini_upload_key(secret)).await?;
    finished(file)
}

fn file_id(name: &str) -> &str {
    name.strip_prefix("files/").unwrap_or(name)
}
