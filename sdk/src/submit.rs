//! `estimate` and `submit`: the requests (an array, a `Blob`/`File` of
//! NDJSON, or an iterable or async iterable of requests) read once through
//! core's scan, then sent by core's submit machine.

use crate::http::{self, Http};
use crate::js::{self, error};
use crate::upload::progress;
use batchgate_core::client::call::ClientError;
use batchgate_core::client::paths::idempotency_key;
use batchgate_core::client::submit::{BODY_FIELDS, Scan, Scanned, Sizes, Submit, SubmitStep};
use batchgate_core::pricing::{EstimateRules, PriceTable};
use js_sys::{Array, Function, JSON, Symbol};
use serde_json::{Map, Value};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::Blob;

fn invalid_requests() -> JsValue {
    js::invalid("requests must be an array, a Blob of NDJSON, or an (async) iterable of requests")
}

fn model_of(input: &JsValue) -> Result<String, JsValue> {
    js::get(input, "model").as_string().ok_or_else(|| js::invalid("model is required"))
}

fn sizes_of(input: &JsValue) -> Sizes {
    let mut sizes = Sizes::default();
    let size = |name| js::get(input, name).as_f64().filter(|n| *n >= 1.0).map(|n| n as u64);
    sizes.inline_bytes = size("inlineBytes").unwrap_or(sizes.inline_bytes);
    sizes.part_bytes = size("partBytes").unwrap_or(sizes.part_bytes);
    sizes
}

/// The local quote of an array of requests (what `estimate` answers).
pub fn estimate(prices: &PriceTable, rules: EstimateRules, input: &JsValue) -> Result<Scanned, JsValue> {
    let model = model_of(input)?;
    let requests: Array =
        js::get(input, "requests").dyn_into().map_err(|_| js::invalid("requests must be an array"))?;
    let mut scan = Scan::new(&model, rules, Sizes::default());
    for item in requests.iter() {
        let mut line = js::stringify(&item)?.into_bytes();
        line.push(b'\n');
        scan.chunk(&line);
    }
    scan.finish(prices).map_err(error)
}

/// The requests as one NDJSON `Blob`: the lines stay JavaScript strings
/// until they are read.
async fn ndjson(requests: &JsValue) -> Result<Blob, JsValue> {
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

pub async fn submit(
    http: &Http,
    prices: &PriceTable,
    rules: EstimateRules,
    input: JsValue,
) -> Result<JsValue, JsValue> {
    let model = model_of(&input)?;
    let data = ndjson(&js::get(&input, "requests")).await?;
    let mut scan = Scan::new(&model, rules, sizes_of(&input));
    let reader = data.stream().get_reader().unchecked_into();
    while let Some(chunk) = http::read_chunk(&reader).await? {
        scan.chunk(&chunk);
    }
    let scanned = scan.finish(prices).map_err(error)?;
    let mut body = Map::new();
    for field in BODY_FIELDS {
        let value = js::get(&input, field);
        if !value.is_undefined() {
            let text = js::stringify(&value)?;
            body.insert(field.into(), serde_json::from_str(&text).unwrap_or(Value::Null));
        }
    }
    let key =
        js::get(&input, "idempotencyKey").as_string().unwrap_or_else(|| idempotency_key(js::random16()));
    let mut submit = Submit::new(scanned, Value::Object(body), key);
    let (on_progress, signal) = (js::get(&input, "onProgress"), js::get(&input, "signal"));
    loop {
        match submit.step().map_err(error)? {
            SubmitStep::Call(request) => {
                let answer = match http.exchange(&request, Some(&data), &signal).await {
                    Ok(a) => a.text().await.map(|t| (a.status, t)),
                    Err(e) => Err(e),
                };
                let answer = answer.as_ref().map(|(s, t)| (*s, t.as_bytes())).map_err(Clone::clone);
                if let Some(view) = submit.answered(answer).map_err(error)? {
                    return js::parse(&view);
                }
            }
            SubmitStep::Progress { received, size } => {
                let id = submit.input_id().unwrap_or_default().to_string();
                progress(&on_progress, "inputId", &id, received, size)?;
                if js::aborted(&signal) {
                    return Err(error(ClientError::aborted("the submit")));
                }
            }
            SubmitStep::Sleep(ms) => js::sleep(ms).await,
        }
    }
}
