//! The Gemini Files API's resumable protocol: start a session, send a chunk
//! whose body is a stream (never buffered here), ask what a session holds,
//! abandon it, delete a file. Used by media uploads and by a job uploading its
//! input; what each answer means is core's (`gemini::upload_answer`).

use super::gemini::{Gemini, with_timeout};
use batchgate_core::gemini::client::{Call, Failure, failure};
pub use batchgate_core::gemini::upload_answer::Received;
use batchgate_core::gemini::upload_answer::{self, Answer};
use futures_util::StreamExt;
use wasm_bindgen::JsValue;

/// A new session for `call` (a job's input or a typed media upload): its URL,
/// and the chunk granularity Gemini announced.
pub async fn start(gemini: &Gemini, call: &Call) -> Result<(String, Option<u64>), Failure> {
    let (resp, _) = gemini.ok_text(call, None).await?;
    let header = |name: &str| resp.headers().get(name).ok().flatten();
    let url = header("x-goog-upload-url")
        .ok_or_else(|| Failure::network("upload start answered without X-Goog-Upload-URL"))?;
    let granularity =
        header("x-goog-upload-chunk-granularity").and_then(|g| g.parse().ok()).filter(|g| *g > 0);
    Ok((gemini.cfg.session_url(&url), granularity))
}

/// A session's answer, read whole (it is small), whatever its status.
struct Heard {
    status: u16,
    upload_status: Option<String>,
    size_received: Option<u64>,
    body: String,
}

impl Heard {
    async fn of(gemini: &Gemini, call: &Call, body: Option<JsValue>) -> Result<Heard, Failure> {
        let mut resp = gemini.send(call, body).await?;
        let text = gemini.text(&mut resp).await?;
        let header = |name: &str| resp.headers().get(name).ok().flatten();
        Ok(Heard {
            status: resp.status_code(),
            upload_status: header("x-goog-upload-status"),
            size_received: header("x-goog-upload-size-received").and_then(|v| v.parse().ok()),
            body: text,
        })
    }

    fn answer(&self) -> Answer<'_> {
        Answer {
            status: self.status,
            upload_status: self.upload_status.as_deref(),
            size_received: self.size_received,
            body: &self.body,
        }
    }
}

/// Send `len` bytes at `offset` (`last` finalizes).
pub async fn send_chunk(
    gemini: &Gemini,
    session_url: &str,
    (offset, len, last): (u64, u64, bool),
    body: JsValue,
) -> Result<Received, Failure> {
    let call = gemini.cfg.upload_chunk(session_url, offset, len, last);
    let heard = Heard::of(gemini, &call, Some(body)).await?;
    upload_answer::chunk(&heard.answer(), offset, len, last)
}

/// What the session holds (after a chunk whose outcome is unknown).
pub async fn query(gemini: &Gemini, session_url: &str) -> Result<Received, Failure> {
    let heard = Heard::of(gemini, &gemini.cfg.upload_query(session_url), None).await?;
    upload_answer::query(&heard.answer())
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

/// Bytes `[start, end)` of a results file. A server that ignores `Range` and
/// sends the whole file is read through, keeping only the wanted bytes.
pub async fn download(gemini: &Gemini, name: &str, start: u64, end: u64) -> Result<Vec<u8>, Failure> {
    let mut resp = gemini.send(&gemini.cfg.download(name, start, end), None).await?;
    let status = resp.status_code();
    if status != 200 && status != 206 {
        let text = gemini.text(&mut resp).await?;
        return Err(failure(status, &text));
    }
    let skip = if status == 200 { start } else { 0 };
    let want = usize::try_from(end - start).unwrap_or(usize::MAX);
    let mut out = Vec::with_capacity(want);
    let mut seen = 0u64;
    let mut stream = resp.stream().map_err(|e| Failure::network(e.to_string()))?;
    while out.len() < want {
        let next = with_timeout(120_000, stream.next(), || ()).await;
        let chunk = match next {
            None => return Err(Failure::network("the results download stalled")),
            Some(None) => break,
            Some(Some(Err(e))) => return Err(Failure::network(format!("the results download broke: {e}"))),
            Some(Some(Ok(c))) => c,
        };
        let chunk_start = seen;
        seen += chunk.len() as u64;
        if seen <= skip {
            continue;
        }
        let from = usize::try_from(skip.saturating_sub(chunk_start)).unwrap_or(0);
        let take = want - out.len();
        out.extend(chunk.iter().skip(from).take(take));
    }
    if out.len() != want {
        return Err(Failure::network(format!(
            "the results download ended after {} of {want} bytes",
            out.len()
        )));
    }
    Ok(out)
}
