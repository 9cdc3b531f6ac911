//! batchgate-sdk: the npm package `batchgate`. The client is core's
//! (`batchgate_core::client`: what to send, what an answer means, the token
//! policy, the watch machine, resumable parts), and so are the rules that
//! must agree with the worker to the micro-credit (validation, the estimate,
//! prices). This crate is the transport that runs them in a JavaScript
//! engine: `fetch`, `WebSocket`, `ReadableStream`, `Blob` and timers, called
//! on the global scope so one module serves a page, a web worker and Node.
//!
//! Values cross as JavaScript objects; JSON the client only hands on is
//! parsed by the platform's `JSON.parse`, never by serde in the wasm.

mod generate;
mod http;
mod js;
mod results;
mod submit;
mod upload;
mod watch;

use batchgate_core::client::call::{Method, Request};
use batchgate_core::client::lines::result_cost;
use batchgate_core::client::paths::{self, query};
use batchgate_core::pricing::{EstimateRules, PriceTable, Quote};
use http::Http;
use js_sys::Promise;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

pub use generate::Chunks;
pub use results::ResultLines;
pub use watch::JobWatch;

/// One endpoint and one user: every call of the API.
#[wasm_bindgen]
pub struct Batchgate {
    http: Rc<Http>,
    prices: Rc<PriceTable>,
    rules: EstimateRules,
}

fn quote_value(q: &Quote) -> Result<JsValue, JsValue> {
    js::parse(&serde_json::to_string(q).map_err(|_| js::invalid("an unwritable quote"))?)
}

fn id_arg(id: &JsValue, name: &str) -> Result<String, JsValue> {
    id.as_string().ok_or_else(|| js::invalid(&[name, " must be a string"].concat()))
}

/// A promise of `f`'s answer; a refusal before anything is sent is a rejection too.
fn promise(f: impl Future<Output = Result<JsValue, JsValue>> + 'static) -> Promise {
    future_to_promise(f)
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
        Ok(Batchgate { http: Rc::new(http), prices: Rc::new(prices), rules: EstimateRules::default() })
    }

    /// The local quote `{tokens, standard, batch, savings}` of `{model, requests}`.
    pub fn estimate(&self, input: JsValue) -> Result<JsValue, JsValue> {
        quote_value(&submit::estimate(&self.prices, self.rules, &input)?.quote)
    }

    /// The models the price table lists.
    pub fn models(&self) -> Vec<String> {
        self.prices.models().map(|(m, _)| m.to_string()).collect()
    }

    /// What one result line cost, counted as the server counts it.
    #[wasm_bindgen(js_name = resultCost)]
    pub fn result_cost(&self, model: JsValue, line: JsValue) -> Result<JsValue, JsValue> {
        let model = id_arg(&model, "model")?;
        let line = js::stringify(&line)?;
        quote_value(&result_cost(&self.prices, &model, line.as_bytes()).map_err(js::error)?)
    }

    pub fn submit(&self, input: JsValue) -> Promise {
        let (http, prices, rules) = (self.http.clone(), self.prices.clone(), self.rules);
        promise(async move { submit::submit(&http, &prices, rules, input).await })
    }

    fn get(&self, path: String) -> Promise {
        self.call(Request::get(path))
    }

    fn call(&self, request: Request) -> Promise {
        let http = self.http.clone();
        promise(async move { http.call(&request).await })
    }

    fn about(&self, id: JsValue, path: impl FnOnce(&str) -> Request) -> Promise {
        match id_arg(&id, "id") {
            Ok(id) => self.call(path(&id)),
            Err(e) => Promise::reject(&e),
        }
    }

    pub fn job(&self, id: JsValue) -> Promise {
        self.about(id, |id| Request::get(paths::job(id)))
    }

    /// `{state?, limit?, cursor?}`; `state` a state or an array of them.
    pub fn list(&self, options: JsValue) -> Promise {
        let state = js::get(&options, "state");
        let state = match state.dyn_ref::<js_sys::Array>() {
            Some(states) => Some(states.join(",").into()),
            None => js::text(&state),
        };
        let q = query(&[
            ("state", state),
            ("limit", js::text(&js::get(&options, "limit"))),
            ("cursor", js::text(&js::get(&options, "cursor"))),
        ]);
        self.get(["/v1/jobs", &q].concat())
    }

    pub fn cancel(&self, id: JsValue) -> Promise {
        self.about(id, |id| Request::post(paths::job_part(id, "cancel"), ""))
    }

    #[wasm_bindgen(js_name = retryFailed)]
    pub fn retry_failed(&self, id: JsValue) -> Promise {
        self.about(id, |id| Request::post(paths::job_part(id, "retry"), ""))
    }

    #[wasm_bindgen(js_name = deleteJob)]
    pub fn delete_job(&self, id: JsValue) -> Promise {
        self.about(id, |id| Request::new(Method::Delete, paths::job(id)))
    }

    pub fn result(&self, id: JsValue, key: JsValue) -> Promise {
        match id_arg(&key, "key") {
            Ok(key) => self.about(id, |id| Request::get(paths::result(id, &key))),
            Err(e) => Promise::reject(&e),
        }
    }

    /// Media part `n` of `key`'s answer, as a `Blob`.
    #[wasm_bindgen(js_name = resultMedia)]
    pub fn result_media(&self, id: JsValue, key: JsValue, n: u32) -> Promise {
        let http = self.http.clone();
        promise(async move {
            let request = Request::get(paths::result_media(&id_arg(&id, "id")?, &id_arg(&key, "key")?, n));
            let answer = http.send(&request, None, &JsValue::UNDEFINED).await?;
            if !(200..300).contains(&answer.status) {
                answer.checked_text().await?;
            }
            let blob = answer.response.blob().map_err(|e| http::network(&e))?;
            wasm_bindgen_futures::JsFuture::from(blob).await.map_err(|e| http::network(&e))
        })
    }

    pub fn account(&self) -> Promise {
        self.get("/v1/account".into())
    }

    /// `{limit?, cursor?}`.
    pub fn ledger(&self, options: JsValue) -> Promise {
        let q = query(&[
            ("limit", js::text(&js::get(&options, "limit"))),
            ("cursor", js::text(&js::get(&options, "cursor"))),
        ]);
        self.get(["/v1/account/ledger", &q].concat())
    }

    /// `{after?, limit?}`.
    pub fn events(&self, id: JsValue, options: JsValue) -> Promise {
        let q = query(&[
            ("after", js::text(&js::get(&options, "after"))),
            ("limit", js::text(&js::get(&options, "limit"))),
        ]);
        self.about(id, |id| Request::get([paths::job_part(id, "events"), q].concat()))
    }

    pub fn watch(&self, id: JsValue, options: JsValue) -> Result<JobWatch, JsValue> {
        Ok(JobWatch::new(self.http.clone(), &id_arg(&id, "id")?, watch::interval_of(&options)))
    }

    pub fn wait(&self, id: JsValue, options: JsValue) -> Promise {
        let watch = match self.watch(id, options.clone()) {
            Ok(w) => w,
            Err(e) => return Promise::reject(&e),
        };
        promise(watch::wait(watch, js::get(&options, "onProgress"), js::get(&options, "signal")))
    }

    /// `{only?: "failed"}`.
    pub fn results(&self, id: JsValue, options: JsValue) -> Result<ResultLines, JsValue> {
        let only_failed = js::get(&options, "only").as_string().is_some_and(|o| o == "failed");
        Ok(ResultLines::new(self.http.clone(), &id_arg(&id, "id")?, only_failed))
    }

    pub fn upload(&self, blob: JsValue, options: JsValue) -> Promise {
        let http = self.http.clone();
        promise(async move {
            let blob = blob.dyn_into().map_err(|_| js::invalid("upload takes a Blob or a File"))?;
            upload::upload(&http, blob, options).await
        })
    }

    pub fn generate(&self, model: JsValue, request: JsValue, options: JsValue) -> Promise {
        let http = self.http.clone();
        promise(async move {
            let (model, request) = (id_arg(&model, "model")?, js::stringify(&request)?);
            generate::generate(http, model, request, js::get(&options, "signal")).await
        })
    }

    #[wasm_bindgen(js_name = generateStream)]
    pub fn generate_stream(
        &self,
        model: JsValue,
        request: JsValue,
        options: JsValue,
    ) -> Result<JsValue, JsValue> {
        let (model, request) = (id_arg(&model, "model")?, js::stringify(&request)?);
        Ok(generate::stream(self.http.clone(), model, request, js::get(&options, "signal")))
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
