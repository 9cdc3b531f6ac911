//! The Gemini Files API's resumable protocol for media: start a session, send
//! a chunk whose body is a stream (never buffered here), ask what a session
//! holds, abandon it, delete a file.

use crate::gemini::Gemini;
use batchgate_core::gemini::File;
use batchgate_core::gemini::client::{Failure, failure, finalized_file};
use wasm_bindgen::JsValue;

/// Where a session stands after a chunk or a query.
pub enum Received {
    Partial(u64),
    Final(Box<File>),
}

/// A new session: its URL, and the chunk granularity Gemini announced.
pub async fn start(
    gemini: &Gemini,
    size: u64,
    mime: &str,
    display_name: &str,
) -> Result<(String, Option<u64>), Failure> {
    let (resp, _) = gemini.ok_text(&gemini.cfg.upload_start_typed(size, mime, display_name), None).await?;
    let header = |name: &str| resp.headers().get(name).ok().flatten();
    let url = header("x-goog-upload-url")
        .ok_or_else(|| Failure::network("upload start answered without X-Goog-Upload-URL"))?;
    let granularity =
        header("x-goog-upload-chunk-granularity").and_then(|g| g.parse().ok()).filter(|g| *g > 0);
    Ok((gemini.cfg.session_url(&url), granularity))
}

/// Send `len` bytes at `offset` (`last` finalizes). A 400 naming a different
/// received size means the session is elsewhere: that size is returned.
pub async fn send_chunk(
    gemini: &Gemini,
    session_url: &str,
    offset: u64,
    len: u64,
    last: bool,
    body: JsValue,
) -> Result<Received, Failure> {
    let call = gemini.cfg.upload_chunk(session_url, offset, len, last);
    let mut resp = gemini.send(&call, Some(body)).await?;
    let text = gemini.text(&mut resp).await?;
    let received =
        resp.headers().get("x-goog-upload-size-received").ok().flatten().and_then(|v| v.parse::<u64>().ok());
    match (resp.status_code(), last) {
        (200, true) => Ok(Received::Final(Box::new(finalized_file(&text)?))),
        (200, false) => Ok(Received::Partial(offset + len)),
        (400, _) if received.is_some_and(|r| r != offset) => {
            Ok(Received::Partial(received.unwrap_or(offset)))
        }
        (status, _) => Err(failure(status, &text)),
    }
}

/// What the session holds (after a chunk broke off).
pub async fn query(gemini: &Gemini, session_url: &str) -> Result<Received, Failure> {
    let mut resp = gemini.send(&gemini.cfg.upload_query(session_url), None).await?;
    let status = resp.headers().get("x-goog-upload-status").ok().flatten().unwrap_or_default();
    let received =
        resp.headers().get("x-goog-upload-size-received").ok().flatten().and_then(|v| v.parse().ok());
    let text = gemini.text(&mut resp).await?;
    if resp.status_code() != 200 {
        return Err(failure(resp.status_code(), &text));
    }
    if status == "final" {
        return Ok(Received::Final(Box::new(finalized_file(&text)?)));
    }
    Ok(Received::Partial(received.unwrap_or(0)))
}

pub async fn cancel(gemini: &Gemini, session_url: &str) -> Result<(), Failure> {
    gemini.ok_text(&gemini.cfg.upload_cancel(session_url), None).await.map(|_| ())
}

/// Delete a file; one already gone counts as deleted.
pub async fn delete(gemini: &Gemini, name: &str) -> Result<(), Failure> {
    match gemini.ok_text(&gemini.cfg.delete_file(name), None).await {
        Ok(_) | Err(Failure::Permanent { status: 404, .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
