//! `upload(blob)`: core's resume planner over `fetch` and `Blob.slice`.

use crate::http::Http;
use crate::js::{self, error};
use batchgate_core::client::call::{ClientError, Request};
use batchgate_core::client::paths;
use batchgate_core::client::resume::{Resume, ResumeStep};
use js_sys::{Function, Object, Reflect};
use serde_json::{Value, json};
use wasm_bindgen::prelude::*;
use web_sys::Blob;

/// `{name: received…}` to `on_progress`; a throw from it, or an aborted
/// signal, stops the transfer there.
pub fn progress(
    on_progress: &JsValue,
    id_name: &str,
    id: &str,
    received: u64,
    size: u64,
) -> Result<(), JsValue> {
    let Some(f) = on_progress.dyn_ref::<Function>() else { return Ok(()) };
    let p = Object::new();
    let _ = Reflect::set(&p, &id_name.into(), &id.into());
    let _ = Reflect::set(&p, &"received".into(), &(received as f64).into());
    let _ = Reflect::set(&p, &"size".into(), &(size as f64).into());
    f.call1(&JsValue::UNDEFINED, &p).map(drop)
}

/// Run `resume` to its end, sending parts of `data`.
pub async fn run(
    http: &Http,
    mut resume: Resume,
    data: &Blob,
    (id_name, id): (&str, &str),
    options: &JsValue,
) -> Result<Option<String>, JsValue> {
    let (on_progress, signal) = (js::get(options, "onProgress"), js::get(options, "signal"));
    loop {
        match resume.step().map_err(error)? {
            ResumeStep::Progress { received, size } => {
                progress(&on_progress, id_name, id, received, size)?;
                // Checked after the callback, so aborting from it sends nothing more.
                if js::aborted(&signal) {
                    return Err(error(ClientError::aborted("the transfer")));
                }
            }
            ResumeStep::Put(request) => {
                let answer = exchange(http, &request, Some(data), &signal).await;
                resume.put(answer).map_err(error)?;
            }
            ResumeStep::Status(request) => {
                let answer = exchange(http, &request, None, &JsValue::UNDEFINED).await;
                resume.status(answer).map_err(error)?;
            }
            ResumeStep::Sleep(ms) => js::sleep(ms).await,
            ResumeStep::Done(file) => return Ok(file),
        }
    }
}

async fn exchange(
    http: &Http,
    request: &Request,
    data: Option<&Blob>,
    signal: &JsValue,
) -> Result<Value, ClientError> {
    http.exchange(request, data, signal).await?.value().await
}

pub async fn upload(http: &Http, blob: Blob, options: JsValue) -> Result<JsValue, JsValue> {
    let upload_id = js::get(&options, "uploadId").as_string();
    let opened = match &upload_id {
        Some(id) => exchange(http, &Request::get(paths::upload(id)), None, &JsValue::UNDEFINED).await,
        None => {
            let mime = js::get(&options, "mimeType")
                .as_string()
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| blob.type_());
            let name = js::get(&options, "displayName").as_string();
            let body = json!({ "size": blob.size() as u64, "mimeType": mime, "displayName": name });
            exchange(http, &Request::post("/v1/uploads", body.to_string()), None, &JsValue::UNDEFINED).await
        }
    };
    let view = opened.map_err(error)?;
    let id = view["id"].as_str().unwrap_or_default().to_string();
    let resume = Resume::upload(&view).map_err(error)?;
    let file = run(http, resume, &blob, ("uploadId", &id), &options).await?;
    js::parse(file.as_deref().unwrap_or("null"))
}
