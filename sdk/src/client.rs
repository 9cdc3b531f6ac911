//! The `Batchgate` class: one per endpoint and user. Every call carries the
//! user's token (a string, or a function called again when the token expires),
//! and every failure is a `BatchgateError`: `status` and `code` from the API,
//! or `status` 0 and `network_error` when the request never got an answer.

use crate::js::{callback, error, field, global_fetch, signal};
use crate::quote;
use crate::watch::{JobWatch, ResultLines};
use batchgate_core::pricing::{EstimateRules, PriceTable};
use serde::Serialize;
use serde_json::{Value, json};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestInit, Response};

enum Token {
    Fixed(String),
    /// Called for a token, and again after a 401 (an expired token).
    Provider(js_sys::Function),
}

/// What every call needs; shared with the iterators a client hands out.
pub(crate) struct Inner {
    pub(crate) endpoint: String,
    token: Token,
    cached: RefCell<Option<String>>,
}

#[wasm_bindgen]
pub struct Batchgate {
    inner: Rc<Inner>,
    prices: PriceTable,
    rules: EstimateRules,
}

/// Values cross between JS and Rust as JSON text (the platform's own
/// `JSON.parse`/`stringify`): smaller than a serde bridge, and the API is JSON.
pub(crate) fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsValue> {
    let text = serde_json::to_string(v).map_err(|e| bad_argument(&e.to_string()))?;
    js_sys::JSON::parse(&text)
}

pub(crate) fn from_js(v: JsValue) -> Result<Value, JsValue> {
    if v.is_undefined() || v.is_null() {
        return Ok(Value::Null);
    }
    let text: String = js_sys::JSON::stringify(&v)?.into();
    serde_json::from_str(&text).map_err(|e| bad_argument(&format!("not a JSON value: {e}")))
}

fn bad_argument(message: &str) -> JsValue {
    error(0, "invalid_argument", message, JsValue::UNDEFINED)
}

pub(crate) fn network(e: JsValue) -> JsValue {
    let message = e.as_string().or_else(|| js_sys::Error::from(e).message().as_string()).unwrap_or_default();
    error(0, "network_error", &format!("the request got no answer: {message}"), JsValue::UNDEFINED)
}

/// `encodeURIComponent`, for ids and keys in paths.
pub(crate) fn enc(s: &str) -> String {
    js_sys::encode_uri_component(s).as_string().unwrap_or_default()
}

fn random_key() -> String {
    (0..4).map(|_| format!("{:08x}", (js_sys::Math::random() * f64::from(u32::MAX)) as u32)).collect()
}

impl Inner {
    pub(crate) async fn token(&self, refresh: bool) -> Result<String, JsValue> {
        match &self.token {
            Token::Fixed(t) => Ok(t.clone()),
            Token::Provider(f) => {
                if !refresh && let Some(t) = self.cached.borrow().clone() {
                    return Ok(t);
                }
                let mut v = f.call0(&JsValue::NULL)?;
                if v.has_type::<js_sys::Promise>() {
                    v = JsFuture::from(js_sys::Promise::from(v)).await?;
                }
                let t =
                    v.as_string().ok_or_else(|| bad_argument("the token function must return a string"))?;
                self.cached.replace(Some(t.clone()));
                Ok(t)
            }
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&JsValue>,
        headers: &[(&str, &str)],
        token: &str,
    ) -> Result<Response, JsValue> {
        let h = Headers::new()?;
        h.set("authorization", &format!("Bearer {token}"))?;
        if body.is_some_and(JsValue::is_string) {
            h.set("content-type", "application/json")?;
        }
        for (k, v) in headers {
            h.set(k, v)?;
        }
        let init = RequestInit::new();
        init.set_method(method);
        init.set_headers(&h);
        if let Some(b) = body {
            init.set_body(b);
        }
        let url = format!("{}{path}", self.endpoint);
        let req = Request::new_with_str_and_init(&url, &init).map_err(network)?;
        let resp = JsFuture::from(global_fetch(&req)).await.map_err(network)?;
        Ok(resp.unchecked_into())
    }

    /// Send with the token; a refused token is renewed once (token functions).
    pub(crate) async fn fetch(
        &self,
        method: &str,
        path: &str,
        body: Option<&JsValue>,
        headers: &[(&str, &str)],
    ) -> Result<Response, JsValue> {
        let resp = self.send(method, path, body, headers, &self.token(false).await?).await?;
        if resp.status() == 401 && matches!(self.token, Token::Provider(_)) {
            return self.send(method, path, body, headers, &self.token(true).await?).await;
        }
        Ok(resp)
    }

    /// A call whose answer is JSON; anything but a 2xx is a `BatchgateError`.
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Value, JsValue> {
        let body = body.map(|b| JsValue::from_str(&b.to_string()));
        json_of(self.fetch(method, path, body.as_ref(), headers).await?).await
    }

    async fn get(&self, path: &str) -> Result<JsValue, JsValue> {
        to_js(&self.call("GET", path, None, &[]).await?)
    }
}

/// The JSON of a 2xx answer, or the API's error as a `BatchgateError`.
pub(crate) async fn json_of(resp: Response) -> Result<Value, JsValue> {
    let status = resp.status();
    let text = JsFuture::from(resp.text()?).await.map_err(network)?.as_string().unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        return Ok(v);
    }
    let e = &v["error"];
    let message = e["message"].as_str().map_or_else(|| format!("HTTP {status}: {text}"), String::from);
    let details = to_js(&e["details"]).unwrap_or(JsValue::UNDEFINED);
    Err(error(status, e["code"].as_str().unwrap_or("http_error"), &message, details))
}

#[wasm_bindgen]
impl Batchgate {
    /// `new Batchgate({ endpoint, token, prices? })`: `token` is a string or a
    /// (possibly async) function returning one; `prices` is the operator's
    /// `PRICES` table when it is not Google's default.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "BatchgateOptions")] options: JsValue,
    ) -> Result<Batchgate, JsValue> {
        let get = |k: &str| field(&options, k);
        let endpoint =
            get("endpoint").as_string().ok_or_else(|| bad_argument("endpoint must be a URL string"))?;
        let token = match get("token") {
            t if t.is_function() => Token::Provider(t.unchecked_into()),
            t => Token::Fixed(
                t.as_string().ok_or_else(|| bad_argument("token must be a string or a function"))?,
            ),
        };
        let prices = match from_js(get("prices"))? {
            Value::Null => PriceTable::default(),
            table => PriceTable::from_json(&table.to_string()).map_err(|e| bad_argument(&e))?,
        };
        let inner =
            Inner { endpoint: endpoint.trim_end_matches('/').to_string(), token, cached: RefCell::new(None) };
        Ok(Batchgate { inner: Rc::new(inner), prices, rules: EstimateRules::default() })
    }

    /// A local quote `{tokens, standard, batch, savings}` in micro-credits,
    /// computed as the worker computes it. Throws naming the first bad request.
    #[wasm_bindgen(unchecked_return_type = "Quote")]
    pub fn estimate(
        &self,
        #[wasm_bindgen(unchecked_param_type = "EstimateInput")] input: JsValue,
    ) -> Result<JsValue, JsValue> {
        let input = from_js(input)?;
        let model = input["model"].as_str().ok_or_else(|| bad_argument("model is required"))?;
        let requests =
            input["requests"].as_array().cloned().ok_or_else(|| bad_argument("requests must be an array"))?;
        let q = quote::estimate(&self.prices, self.rules, model, requests)
            .map_err(|e| error(400, "invalid_requests", &e, JsValue::UNDEFINED))?;
        to_js(&q)
    }

    /// The models the price table lists (what `estimate` and `submit` accept).
    #[wasm_bindgen(unchecked_return_type = "string[]")]
    pub fn models(&self) -> Result<JsValue, JsValue> {
        to_js(&self.prices.models().map(|(m, _)| m).collect::<Vec<_>>())
    }

    /// What one result line cost, from its `usageMetadata`, counted as the
    /// server counts a job's usage (`batch` for this line alone; a job's
    /// charge rounds once over all its lines). An error line costs nothing.
    #[wasm_bindgen(js_name = resultCost, unchecked_return_type = "Quote")]
    pub fn result_cost(
        &self,
        model: String,
        #[wasm_bindgen(unchecked_param_type = "ResultLine")] line: JsValue,
    ) -> Result<JsValue, JsValue> {
        let text = js_sys::JSON::stringify(&line).map(String::from).unwrap_or_default();
        to_js(&quote::result_cost(&self.prices, &model, text.as_bytes()).map_err(|e| bad_argument(&e))?)
    }

    /// Submit `{model, requests, displayName?, metadata?, idempotencyKey?}`.
    /// The balance is checked against the local quote first (a 402
    /// `BatchgateError` without a round trip to submit); a retried call with
    /// the same `idempotencyKey` returns the same job.
    #[wasm_bindgen(unchecked_return_type = "JobView")]
    pub async fn submit(
        &self,
        #[wasm_bindgen(unchecked_param_type = "SubmitInput")] input: JsValue,
    ) -> Result<JsValue, JsValue> {
        let mut input = from_js(input)?;
        let quote = self.estimate(to_js(&input)?)?;
        let quote: Value = from_js(quote)?;
        let balance =
            self.inner.call("GET", "/v1/account", None, &[]).await?["balance"].as_i64().unwrap_or(0);
        let needed = quote["batch"].as_i64().unwrap_or(0);
        if balance < needed {
            let details = to_js(&json!({"quote": quote, "balance": balance, "needed": needed}))?;
            let message = format!("the job needs {needed} micro-credits and the balance is {balance}");
            return Err(error(402, "insufficient_credits", &message, details));
        }
        let key = match input.as_object_mut().and_then(|o| o.remove("idempotencyKey")) {
            Some(Value::String(k)) => k,
            _ => random_key(),
        };
        to_js(&self.inner.call("POST", "/v1/jobs", Some(&input), &[("idempotency-key", &key)]).await?)
    }

    /// The job's current view.
    #[wasm_bindgen(unchecked_return_type = "JobView")]
    pub async fn job(&self, id: String) -> Result<JsValue, JsValue> {
        self.inner.get(&format!("/v1/jobs/{}", enc(&id))).await
    }

    /// `{jobs, nextCursor}`, newest first; options `{state?, limit?, cursor?}`.
    #[wasm_bindgen(unchecked_return_type = "JobPage")]
    pub async fn list(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "ListOptions")] options: JsValue,
    ) -> Result<JsValue, JsValue> {
        let q = query(&from_js(options)?, &["state", "limit", "cursor"]);
        self.inner.get(&format!("/v1/jobs?{q}")).await
    }

    /// Cancel the job; the results Gemini delivered so far are kept (and charged).
    #[wasm_bindgen(unchecked_return_type = "JobView")]
    pub async fn cancel(&self, id: String) -> Result<JsValue, JsValue> {
        to_js(&self.inner.call("POST", &format!("/v1/jobs/{}/cancel", enc(&id)), None, &[]).await?)
    }

    /// A new job of the lines of an ended job that failed or that Gemini
    /// returned nothing for, linked by `retryOf`; charged like any job.
    /// Calling it again for the same job returns the same child.
    #[wasm_bindgen(js_name = retryFailed, unchecked_return_type = "JobView")]
    pub async fn retry_failed(&self, id: String) -> Result<JsValue, JsValue> {
        to_js(&self.inner.call("POST", &format!("/v1/jobs/{}/retry", enc(&id)), None, &[]).await?)
    }

    /// Delete the job and its stored results (a running job is cancelled and settled first).
    #[wasm_bindgen(js_name = deleteJob)]
    pub async fn delete_job(&self, id: String) -> Result<JsValue, JsValue> {
        to_js(&self.inner.call("DELETE", &format!("/v1/jobs/{}", enc(&id)), None, &[]).await?)
    }

    /// One result line `{key, response}` or `{key, error}`.
    #[wasm_bindgen(unchecked_return_type = "ResultLine")]
    pub async fn result(&self, id: String, key: String) -> Result<JsValue, JsValue> {
        self.inner.get(&format!("/v1/jobs/{}/results/{}", enc(&id), enc(&key))).await
    }

    /// `{account, balance, reserved, granted, spent, saved, openJobs}` in micro-credits.
    #[wasm_bindgen(unchecked_return_type = "Account")]
    pub async fn account(&self) -> Result<JsValue, JsValue> {
        self.inner.get("/v1/account").await
    }

    /// An async iterator of the job's views as they change; it ends after
    /// the view in which the job ended and was charged. Options `{intervalMs?}`
    /// (polling, when there is no WebSocket; 1000 by default).
    pub fn watch(
        &self,
        id: String,
        #[wasm_bindgen(unchecked_optional_param_type = "WatchOptions")] options: JsValue,
    ) -> Result<JobWatch, JsValue> {
        let interval = from_js(options)?["intervalMs"].as_u64().unwrap_or(1000).clamp(50, 60_000) as u32;
        Ok(JobWatch::new(self.inner.clone(), id, interval))
    }

    /// Wait for the job to end (and be charged); `onProgress(job)` gets every
    /// change, `signal` (an `AbortSignal`) stops waiting. Resolves to the final job.
    #[wasm_bindgen(unchecked_return_type = "JobView")]
    pub async fn wait(
        &self,
        id: String,
        #[wasm_bindgen(unchecked_optional_param_type = "WaitOptions")] options: JsValue,
    ) -> Result<JsValue, JsValue> {
        let interval = field(&options, "intervalMs").as_f64().unwrap_or(1000.0).clamp(50.0, 60_000.0) as u32;
        let watch = JobWatch::new(self.inner.clone(), id, interval);
        crate::watch::wait(&watch, callback(&options, "onProgress"), signal(&options)).await
    }

    /// An async iterator of the job's result lines (`{only: "failed"}` for failures).
    pub fn results(
        &self,
        id: String,
        #[wasm_bindgen(unchecked_optional_param_type = "ResultsOptions")] options: JsValue,
    ) -> Result<ResultLines, JsValue> {
        let only_failed = from_js(options)?["only"].as_str() == Some("failed");
        Ok(ResultLines::new(self.inner.clone(), &id, only_failed))
    }

    /// Upload a `Blob` (or `File`) for requests to reference as
    /// `fileData.fileUri`, resumably: `{mimeType?, displayName?, uploadId?,
    /// onProgress?, signal?}`; `onProgress({uploadId, received, size})` after
    /// each chunk (keep `uploadId` to resume in a later session). Resolves to
    /// `{name, uri, mimeType, sizeBytes, expiresAt}`.
    #[wasm_bindgen(unchecked_return_type = "UploadedFile")]
    pub async fn upload(
        &self,
        blob: web_sys::Blob,
        #[wasm_bindgen(unchecked_optional_param_type = "UploadOptions")] options: JsValue,
    ) -> Result<JsValue, JsValue> {
        crate::upload::upload(&self.inner, blob, crate::upload::Options::from_js(&options)).await
    }

    /// The job's timeline, oldest first: `{events, nextCursor}`; options `{after?, limit?}`.
    #[wasm_bindgen(unchecked_return_type = "EventPage")]
    pub async fn events(
        &self,
        id: String,
        #[wasm_bindgen(unchecked_optional_param_type = "EventOptions")] options: JsValue,
    ) -> Result<JsValue, JsValue> {
        let q = query(&from_js(options)?, &["after", "limit"]);
        self.inner.get(&format!("/v1/jobs/{}/events?{q}", enc(&id))).await
    }

    /// `{entries, nextCursor}`; options `{limit?, cursor?}`.
    #[wasm_bindgen(unchecked_return_type = "LedgerPage")]
    pub async fn ledger(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "LedgerOptions")] options: JsValue,
    ) -> Result<JsValue, JsValue> {
        let q = query(&from_js(options)?, &["limit", "cursor"]);
        self.inner.get(&format!("/v1/account/ledger?{q}")).await
    }
}

/// The options named in `keys` that are strings or numbers, as a query string
/// (absent ones are left to the server's defaults).
fn query(options: &Value, keys: &[&str]) -> String {
    let pairs = keys.iter().filter_map(|k| match &options[*k] {
        Value::String(v) => Some(format!("{k}={}", enc(v))),
        Value::Number(n) => Some(format!("{k}={n}")),
        _ => None,
    });
    pairs.collect::<Vec<_>>().join("&")
}
