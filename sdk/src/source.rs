//! What a submit reads: the caller's requests as one NDJSON `Blob`, however
//! they came (an array, a `Blob`/`File`, an iterable, an async iterable).

use crate::js;
use js_sys::{Array, Function, JSON, Symbol};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::Blob;

fn invalid_requests() -> JsValue {
    js::invalid("requests must be an array, a Blob of NDJSON, or an (async) iterable of requests")
}

/// The requests as one NDJSON `Blob`: the lines stay JavaScript strings
/// until they are read.
pub async fn ndjson(requests: &JsValue) -> Result<Blob, JsValue> {
    if let Some(blob) = requests.dyn_ref::<Blob>() {
        return Ok(blob.clone());
    }
    let lines = Array::new();
    let push = |item: &JsValue| -> Result<(), JsValue> {
        lines.push(&JSON::stringify(item).map_err(|_| invalid_requests())?.into());
        lines.push(&"\n".into());
        Ok(())
    };
    let async_iter =
        js_sys::Reflect::get(requests, &Symbol::async_iterator()).ok().filter(JsValue::is_function);
    if let Some(method) = async_iter.and_then(|m| m.dyn_into::<Function>().ok()) {
        let iterator = method.call0(requests)?;
        let next: Function = js::get(&iterator, "next").dyn_into().map_err(|_| invalid_requests())?;
        loop {
            let step = JsFuture::from(js_sys::Promise::resolve(&next.call0(&iterator)?)).await?;
            if js::get(&step, "done").is_truthy() {
                break;
            }
            push(&js::get(&step, "value"))?;
        }
    } else if requests.is_object() && !requests.is_string() {
        let iter = js_sys::try_iter(requests)?.ok_or_else(invalid_requests)?;
        for item in iter {
            push(&item?)?;
        }
    } else {
        return Err(invalid_requests());
    }
    Blob::new_with_str_sequence(&lines)
}
