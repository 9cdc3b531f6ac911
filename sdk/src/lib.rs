//! batchgate-sdk: the npm package `batchgate`. The client is core's
//! (`batchgate_core::client`: every call a machine that says what to send and
//! what an answer means; the token policy; the watch machine; resumable
//! parts), and so are the rules that must agree with the worker to the
//! micro-credit (validation, the estimate, prices). This crate is the
//! transport that runs them in a JavaScript engine: one loop (`drive`) over
//! `fetch`, body readers, timers and `WebSocket`, called on the global scope
//! so one module serves a page, a web worker and Node.
//!
//! Values cross as JavaScript objects; JSON the client only hands on is
//! parsed by the platform's `JSON.parse`, never by serde in the wasm.

mod drive;
mod http;
mod items;
mod js;
mod socket;
mod source;

use batchgate_core::client::call::{Method, Request, is_success};
use batchgate_core::client::generate::{Generate, Stream};
use batchgate_core::client::lines::{Results, result_cost};
use batchgate_core::client::machine::{Call, Machine};
use batchgate_core::client::paths::{self, idempotency_key, query};
use batchgate_core::client::resume::Upload;
use batchgate_core::client::submit::{BODY_FIELDS, Scan, Sizes, Submission};
use batchgate_core::client::watch::Watch;
use batchgate_core::pricing::{EstimateRules, PriceTable, Quote};
use drive::{Op, drive};
use http::Http;
use js_sys::{Array, Promise};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};
use web_sys::Blob;

pub use items::Items;

/// One endpoint and one user: every call of the API.
#[wasm_bindgen]
pub struct Batchgate {
    http: Rc<Http>,
    prices: PriceTable,
    rules: EstimateRules,
}

fn quote_value(q: &Quote) -> Result<JsValue, JsValue> {
    js::parse(&serde_json::to_string(q).map_err(|_| js::invalid("an unwritable quote"))?)
}

fn string_arg(value: &JsValue, name: &str) -> Result<String, JsValue> {
    value.as_string().ok_or_else(|| js::invalid(&[name, " must be a string"].concat()))
}

/// `options[name]` for a query: a string, or a number as JavaScript writes it.
fn option(options: &JsValue, name: &str) -> Option<String> {
    js::text(&js::get(options, name))
}

/// A promise of the op's answer. With `source`, the caller's requests are
/// first made the op's data (a submit).
fn answer(http: Rc<Http>, op: Op, source: Option<JsValue>) -> Promise {
    future_to_promise(async move {
        let op = RefCell::new(op);
        if let Some(source) = source {
            op.borrow_mut().data = Some(source::ndjson(&source).await?);
        }
        match drive(&http, &op).await? {
            Some(text) => js::parse(&text),
            None => Ok(JsValue::UNDEFINED),
        }
    })
}

/// A refusal before anything is sent is the promise's rejection, as for any failure.
fn rejecting(promise: Result<Promise, JsValue>) -> Promise {
    promise.unwrap_or_else(|e| Promise::reject(&e))
}

/// The local quote of `{model, requests: [...]}`, and the scan that made it.
fn scan_array(rules: EstimateRules, input: &JsValue) -> Result<Scan, JsValue> {
    let model = string_arg(&js::get(input, "model"), "model")?;
    let requests: Array =
        js::get(input, "requests").dyn_into().map_err(|_| js::invalid("requests must be an array"))?;
    let mut scan = Scan::new(&model, rules, Sizes::default());
    for item in requests.iter() {
        let mut line = js::stringify(&item)?.into_bytes();
        line.push(b'\n');
        scan.chunk(&line);
    }
    Ok(scan)
}

#[wasm_bindgen]
impl Batchgate {
    /// `{endpoint, token, prices?}`: `token` a string or a function returning one
    /// (called again after a 401); `prices` the operator's `PRICES` table.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue) -> Result<Batchgate, JsValue> {
        let endpoint = js::get(&options, "endpoint")
            .as_string()
            .ok_or_else(|| js::invalid("endpoint must be a URL string"))?;
        let http = Http::new(&endpoint, &js::get(&options, "token"))?;
        let prices = js::get(&options, "prices");
        let prices = if prices.is_null() || prices.is_undefined() {
            PriceTable::default()
        } else {
            PriceTable::from_json(&js::stringify(&prices)?).map_err(|e| js::invalid(&e))?
        };
        Ok(Batchgate { http: Rc::new(http), prices, rules: EstimateRules::default() })
    }

    /// The local quote `{tokens, standard, batch, savings}` of `{model, requests}`.
    pub fn estimate(&self, input: JsValue) -> Result<JsValue, JsValue> {
        let scanned = scan_array(self.rules, &input)?.finish(&self.prices).map_err(js::error)?;
        quote_value(&scanned.quote)
    }

    /// The models the price table lists.
    pub fn models(&self) -> Vec<String> {
        self.prices.models().map(|(m, _)| m.to_string()).collect()
    }

    /// What one result line cost, counted as the server counts it.
    #[wasm_bindgen(js_name = resultCost)]
    pub fn result_cost(&self, model: JsValue, line: JsValue) -> Result<JsValue, JsValue> {
        let model = string_arg(&model, "model")?;
        let line = js::stringify(&line)?;
        quote_value(&result_cost(&self.prices, &model, line.as_bytes()).map_err(js::error)?)
    }

    /// Read the requests through the worker's rules, check the balance, then
    /// send them inline or through an input in parts.
    pub fn submit(&self, input: JsValue) -> Promise {
        rejecting(self.submit_call(input))
    }

    fn submit_call(&self, input: JsValue) -> Result<Promise, JsValue> {
        let model = string_arg(&js::get(&input, "model"), "model")?;
        let mut sizes = Sizes::default();
        let size = |name| js::get(&input, name).as_f64().filter(|n| *n >= 1.0).map(|n| n as u64);
        sizes.inline_bytes = size("inlineBytes").unwrap_or(sizes.inline_bytes);
        sizes.part_bytes = size("partBytes").unwrap_or(sizes.part_bytes);
        let mut body = Map::new();
        for field in BODY_FIELDS {
            let value = js::get(&input, field);
            if !value.is_undefined() {
                body.insert(
                    field.into(),
                    serde_json::from_slice(js::stringify(&value)?.as_bytes()).unwrap_or(Value::Null),
                );
            }
        }
        let key =
            js::get(&input, "idempotencyKey").as_string().unwrap_or_else(|| idempotency_key(js::random16()));
        let scan = Scan::new(&model, self.rules, sizes);
        let machine = Submission::new(scan, self.prices.clone(), Value::Object(body), key);
        let op = Op::new(machine).with_options(&input);
        Ok(answer(self.http.clone(), op, Some(js::get(&input, "requests"))))
    }

    fn call(&self, request: Request) -> Promise {
        answer(self.http.clone(), Op::new(Call::new(request)), None)
    }

    fn about(&self, id: &JsValue, path: impl FnOnce(&str) -> Request) -> Promise {
        rejecting(string_arg(id, "id").map(|id| self.call(path(&id))))
    }

    pub fn job(&self, id: JsValue) -> Promise {
        self.about(&id, |id| Request::get(paths::job(id)))
    }

    /// `{state?, limit?, cursor?}`; `state` a state or an array of them.
    pub fn list(&self, options: JsValue) -> Promise {
        let state = js::get(&options, "state");
        let state = match state.dyn_ref::<Array>() {
            Some(states) => Some(states.join(",").into()),
            None => js::text(&state),
        };
        let q = query(&[
            ("state", state),
            ("limit", option(&options, "limit")),
            ("cursor", option(&options, "cursor")),
        ]);
        self.call(Request::get(["/v1/jobs", &q].concat()))
    }

    pub fn cancel(&self, id: JsValue) -> Promise {
        self.about(&id, |id| Request::post(paths::job_part(id, "cancel"), ""))
    }

    #[wasm_bindgen(js_name = retryFailed)]
    pub fn retry_failed(&self, id: JsValue) -> Promise {
        self.about(&id, |id| Request::post(paths::job_part(id, "retry"), ""))
    }

    #[wasm_bindgen(js_name = deleteJob)]
    pub fn delete_job(&self, id: JsValue) -> Promise {
        self.about(&id, |id| Request::new(Method::Delete, paths::job(id)))
    }

    pub fn result(&self, id: JsValue, key: JsValue) -> Promise {
        match string_arg(&key, "key") {
            Ok(key) => self.about(&id, |id| Request::get(paths::result(id, &key))),
            Err(e) => Promise::reject(&e),
        }
    }

    /// Media part `n` of `key`'s answer, as a `Blob`.
    #[wasm_bindgen(js_name = resultMedia)]
    pub fn result_media(&self, id: JsValue, key: JsValue, n: u32) -> Promise {
        rejecting(self.result_media_call(id, key, n))
    }

    fn result_media_call(&self, id: JsValue, key: JsValue, n: u32) -> Result<Promise, JsValue> {
        let request =
            Request::get(paths::result_media(&string_arg(&id, "id")?, &string_arg(&key, "key")?, n));
        let http = self.http.clone();
        Ok(future_to_promise(async move {
            let answer = http.send(&request, None, &JsValue::UNDEFINED).await?;
            if !is_success(answer.status) {
                return Err(answer.refusal().await);
            }
            let blob = answer.response.blob().map_err(|e| http::network(&e))?;
            JsFuture::from(blob).await.map_err(|e| http::network(&e))
        }))
    }

    pub fn account(&self) -> Promise {
        self.call(Request::get("/v1/account"))
    }

    /// `{limit?, cursor?}`.
    pub fn ledger(&self, options: JsValue) -> Promise {
        let q = query(&[("limit", option(&options, "limit")), ("cursor", option(&options, "cursor"))]);
        self.call(Request::get(["/v1/account/ledger", &q].concat()))
    }

    /// `{after?, limit?}`.
    pub fn events(&self, id: JsValue, options: JsValue) -> Promise {
        let q = query(&[("after", option(&options, "after")), ("limit", option(&options, "limit"))]);
        self.about(&id, |id| Request::get([paths::job_part(id, "events"), q].concat()))
    }

    fn watch_op(&self, id: &JsValue, options: &JsValue) -> Result<Op, JsValue> {
        let ms = js::get(options, "intervalMs").as_f64().unwrap_or(1000.0);
        let interval = if ms.is_finite() { ms.clamp(50.0, 60_000.0) as u32 } else { 1000 };
        let watch =
            Watch::new(&self.http.endpoint, &string_arg(id, "id")?, interval, js::has_global("WebSocket"));
        Ok(Op::new(watch))
    }

    /// The job's views as they change, ending with the charged one.
    pub fn watch(&self, id: JsValue, options: JsValue) -> Result<Items, JsValue> {
        Ok(Items::new(self.http.clone(), self.watch_op(&id, &options)?))
    }

    /// The final (charged) job; `onProgress(view)` on each change; `signal` aborts.
    pub fn wait(&self, id: JsValue, options: JsValue) -> Promise {
        rejecting(self.wait_call(id, options))
    }

    fn wait_call(&self, id: JsValue, options: JsValue) -> Result<Promise, JsValue> {
        let op = self.watch_op(&id, &options)?;
        let (on_progress, signal) = (js::get(&options, "onProgress"), js::get(&options, "signal"));
        Ok(future_to_promise(items::wait(self.http.clone(), op, on_progress, signal)))
    }

    /// `{only?: "failed"}`.
    pub fn results(&self, id: JsValue, options: JsValue) -> Result<Items, JsValue> {
        let only_failed = js::get(&options, "only").as_string().is_some_and(|o| o == "failed");
        Ok(Items::new(self.http.clone(), Op::new(Results::new(&string_arg(&id, "id")?, only_failed))))
    }

    /// A `Blob`/`File` into the Gemini Files API, resumably.
    pub fn upload(&self, blob: JsValue, options: JsValue) -> Promise {
        rejecting(self.upload_call(blob, options))
    }

    fn upload_call(&self, blob: JsValue, options: JsValue) -> Result<Promise, JsValue> {
        let blob: Blob = blob.dyn_into().map_err(|_| js::invalid("upload takes a Blob or a File"))?;
        let mime = js::get(&options, "mimeType")
            .as_string()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| blob.type_());
        let name = js::get(&options, "displayName").as_string();
        let resume = js::get(&options, "uploadId").as_string();
        let machine = Upload::new(blob.size() as u64, &mime, name.as_deref(), resume.as_deref());
        let mut op = Op::new(machine).with_options(&options);
        op.data = Some(blob);
        Ok(answer(self.http.clone(), op, None))
    }

    fn generation(&self, machine: impl Machine + 'static, options: &JsValue) -> Op {
        Op::new(machine).with_options(options)
    }

    /// One request answered now: `{response, cost, callId}`.
    pub fn generate(&self, model: JsValue, request: JsValue, options: JsValue) -> Promise {
        rejecting(self.generate_call(model, request, options))
    }

    fn generate_call(&self, model: JsValue, request: JsValue, options: JsValue) -> Result<Promise, JsValue> {
        let machine = Generate::new(&string_arg(&model, "model")?, &js::stringify(&request)?);
        Ok(answer(self.http.clone(), self.generation(machine, &options), None))
    }

    /// `{chunks, cost}`: the answer as it streams, then its cost.
    #[wasm_bindgen(js_name = generateStream)]
    pub fn generate_stream(
        &self,
        model: JsValue,
        request: JsValue,
        options: JsValue,
    ) -> Result<JsValue, JsValue> {
        let machine = Stream::new(&string_arg(&model, "model")?, &js::stringify(&request)?);
        let chunks = Items::new(self.http.clone(), self.generation(machine, &options));
        let cost = chunks.outcome();
        let out = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&out, &"cost".into(), &cost);
        let _ = js_sys::Reflect::set(&out, &"chunks".into(), &chunks.into());
        Ok(out.into())
    }
}

/// The `BatchgateError` class every failure is an instance of.
#[wasm_bindgen(js_name = errorClass)]
pub fn error_class() -> JsValue {
    js::ERROR_CLASS.with(JsValue::clone)
}

/// The SDK's version, as published.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
