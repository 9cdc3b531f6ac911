//! `upload(blob)`: a file into the Gemini Files API through a resumable
//! session (`/v1/uploads`), in chunks the server accepts (multiples of its
//! granularity, at most its per-request cap). A dropped connection is not the
//! end: the SDK asks the session what it holds and resumes from there, with
//! backoff, so a flaky network costs time, not the upload.

use crate::client::{Inner, enc, json_of, to_js};
use crate::js::{callback, error, field, signal, sleep};
use serde_json::{Value, json};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Blob};

/// Network failures in a row before `upload` gives up.
const MAX_RETRIES: u32 = 8;

pub struct Options {
    pub mime_type: Option<String>,
    pub display_name: Option<String>,
    /// Resume this session instead of opening one.
    pub upload_id: Option<String>,
    pub on_progress: Option<js_sys::Function>,
    pub signal: Option<AbortSignal>,
}

fn aborted() -> JsValue {
    error(0, "aborted", "the upload was aborted", JsValue::UNDEFINED)
}

impl Options {
    pub fn from_js(o: &JsValue) -> Options {
        Options {
            mime_type: field(o, "mimeType").as_string(),
            display_name: field(o, "displayName").as_string(),
            upload_id: field(o, "uploadId").as_string(),
            on_progress: callback(o, "onProgress"),
            signal: signal(o),
        }
    }
}

async fn session(inner: &Inner, blob: &Blob, o: &Options) -> Result<Value, JsValue> {
    if let Some(id) = &o.upload_id {
        return inner.call("GET", &format!("/v1/uploads/{}", enc(id)), None, &[]).await;
    }
    let mime = o.mime_type.clone().filter(|m| !m.is_empty()).unwrap_or_else(|| blob.type_());
    let body = json!({"size": blob.size() as u64, "mimeType": mime, "displayName": o.display_name});
    inner.call("POST", "/v1/uploads", Some(&body), &[]).await
}

pub async fn upload(inner: &Inner, blob: Blob, o: Options) -> Result<JsValue, JsValue> {
    let mut s = session(inner, &blob, &o).await?;
    let id = s["id"].as_str().unwrap_or_default().to_string();
    let size = s["size"].as_u64().unwrap_or(0);
    let granularity = s["chunkGranularity"].as_u64().unwrap_or(8 << 20).max(1);
    let chunk = (s["maxChunkBytes"].as_u64().unwrap_or(64 << 20) / granularity).max(1) * granularity;
    let mut failures = 0;
    while s["state"] == "open" {
        let received = s["received"].as_u64().unwrap_or(0);
        if let Some(f) = &o.on_progress {
            f.call1(&JsValue::NULL, &to_js(&json!({"uploadId": id, "received": received, "size": size}))?)?;
        }
        // Checked after the progress callback, so aborting from it sends nothing more.
        if o.signal.as_ref().is_some_and(AbortSignal::aborted) {
            return Err(aborted());
        }
        let end = (received + chunk).min(size);
        let part = blob.slice_with_f64_and_f64(received as f64, end as f64)?;
        let range = format!("bytes {received}-{}/{size}", end.saturating_sub(1));
        let path = format!("/v1/uploads/{}", enc(&id));
        match inner.fetch("PUT", &path, Some(&part.into()), &[("content-range", &range)]).await {
            Ok(resp) => match json_of(resp).await {
                Ok(v) => {
                    failures = 0;
                    s = v;
                }
                // Another attempt already moved the session: continue from where it is.
                Err(e) if field(&e, "code").as_string().as_deref() == Some("wrong_offset") => {
                    s = inner.call("GET", &path, None, &[]).await?;
                }
                Err(e) => return Err(e),
            },
            Err(e) => {
                // The connection dropped: back off, then ask the session what it
                // holds (once its broken chunk has settled) and go on from there.
                failures += 1;
                if failures > MAX_RETRIES {
                    return Err(e);
                }
                JsFuture::from(sleep(250 * 2u32.pow(failures.min(7)))).await?;
                if let Ok(v) = inner.call("GET", &path, None, &[]).await
                    && v["sending"] != true
                {
                    s = v;
                }
            }
        }
    }
    if let Some(f) = &o.on_progress {
        f.call1(&JsValue::NULL, &to_js(&json!({"uploadId": id, "received": size, "size": size}))?)?;
    }
    match s["state"].as_str() {
        Some("done") => to_js(&s["file"]),
        _ => Err(error(410, "upload_expired", "the upload session expired", to_js(&s)?)),
    }
}
