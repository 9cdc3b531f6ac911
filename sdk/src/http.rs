//! One endpoint and one user's token, over the platform's `fetch`: core says
//! what to send and which token to use; this moves the bytes.

use crate::js::{self, error};
use batchgate_core::client::call::{Body, ClientError, Request, check};
use batchgate_core::client::paths;
use batchgate_core::client::token::{TokenPolicy, TokenStep};
use js_sys::{Function, Promise, Uint8Array};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, Headers, RequestInit, Response};

pub struct Http {
    pub endpoint: String,
    source: Option<Function>,
    policy: RefCell<TokenPolicy>,
    /// The token function's pending answer, under its ask's number.
    asking: RefCell<Option<(u64, Promise)>>,
}

/// A sent call's answer: its status and the platform's response.
pub struct Answer {
    pub status: u16,
    pub response: Response,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<String> {
        self.response.headers().get(name).ok().flatten()
    }

    /// The whole body's bytes.
    pub async fn bytes(&self) -> Result<Vec<u8>, ClientError> {
        let buffer = self.response.array_buffer().map_err(|e| network_error(&e))?;
        let buffer = JsFuture::from(buffer).await.map_err(|e| network_error(&e))?;
        Ok(Uint8Array::new(&buffer).to_vec())
    }

    /// The API's error, for an answer that is not a 2xx.
    pub async fn refusal(&self) -> JsValue {
        match self.bytes().await {
            Ok(body) => check(self.status, &body).err().map_or(JsValue::UNDEFINED, error),
            Err(e) => error(e),
        }
    }
}

/// A platform failure (fetch rejected, a body broke off) as `network_error`.
pub fn network(cause: &JsValue) -> JsValue {
    error(network_error(cause))
}

pub fn network_error(cause: &JsValue) -> ClientError {
    let message = js::get(cause, "message").as_string().or_else(|| cause.as_string());
    ClientError::network(message.as_deref().unwrap_or("failed"))
}

impl Http {
    /// `token`: a string, or a function returning one (or a promise of one).
    pub fn new(endpoint: &str, token: &JsValue) -> Result<Http, JsValue> {
        let (policy, source) = match (token.as_string(), token.dyn_ref::<Function>()) {
            (Some(t), _) => (TokenPolicy::fixed(t), None),
            (None, Some(f)) => (TokenPolicy::function(), Some(f.clone())),
            _ => return Err(js::invalid("token must be a string or a function")),
        };
        Ok(Http {
            endpoint: paths::endpoint(endpoint).into(),
            source,
            policy: RefCell::new(policy),
            asking: RefCell::new(None),
        })
    }

    async fn token(&self) -> Result<(String, u64), JsValue> {
        loop {
            let step = self.policy.borrow_mut().want();
            match step {
                TokenStep::Use { token, ask } => return Ok((token, ask)),
                TokenStep::Ask(n) => {
                    let asked = self.source.as_ref().map(|f| f.call0(&JsValue::UNDEFINED));
                    let promise = match asked {
                        Some(Ok(v)) => Promise::resolve(&v),
                        Some(Err(e)) => Promise::reject(&e),
                        None => Promise::reject(&js::invalid("no token")),
                    };
                    *self.asking.borrow_mut() = Some((n, promise.clone()));
                    let token = JsFuture::from(promise).await;
                    let token = token.and_then(|t| {
                        t.as_string().ok_or_else(|| js::invalid("the token function must return a string"))
                    });
                    self.policy.borrow_mut().answered(n, token.as_ref().ok().cloned());
                    return token.map(|t| (t, n));
                }
                TokenStep::Wait(n) => {
                    let pending = self.asking.borrow().clone().filter(|(ask, _)| *ask == n);
                    if let Some((_, promise)) = pending {
                        // A failed ask fails everyone who waited for it.
                        JsFuture::from(promise).await?;
                    }
                }
            }
        }
    }

    async fn send_with(
        &self,
        request: &Request,
        data: Option<&Blob>,
        signal: &JsValue,
        token: &str,
    ) -> Result<Answer, ClientError> {
        let headers = Headers::new().map_err(|e| network_error(&e))?;
        let bearer = ["Bearer ", token].concat();
        let _ = headers.set("authorization", &bearer);
        for (name, value) in &request.headers {
            let _ = headers.set(name, value);
        }
        if let Some(t) = request.content_type() {
            let _ = headers.set("content-type", t);
        }
        let init = RequestInit::new();
        init.set_method(request.method.as_str());
        init.set_headers(&headers);
        match &request.body {
            Body::None => {}
            Body::Json(text) => init.set_body(&JsValue::from_str(text)),
            Body::Ndjson(bytes) => init.set_body(&Uint8Array::from(bytes.as_slice())),
            Body::Range { start, end } => {
                let blob = data.ok_or_else(|| ClientError::invalid_argument("no data to send"))?;
                let part =
                    blob.slice_with_f64_and_f64(*start as f64, *end as f64).map_err(|e| network_error(&e))?;
                init.set_body(&part);
            }
        }
        if let Some(s) = signal.dyn_ref::<web_sys::AbortSignal>() {
            init.set_signal(Some(s));
        }
        let url = [self.endpoint.as_str(), &request.path].concat();
        match JsFuture::from(js::fetch(&url, &init)).await {
            Ok(r) => {
                let response: Response = r.unchecked_into();
                Ok(Answer { status: response.status(), response })
            }
            Err(_) if js::aborted(signal) => Err(ClientError::aborted("the request")),
            Err(e) => Err(network_error(&e)),
        }
    }

    /// Send `request` (its `Range` body cut from `data`); a 401 with a token
    /// function is sent once more with a new token.
    pub async fn send(
        &self,
        request: &Request,
        data: Option<&Blob>,
        signal: &JsValue,
    ) -> Result<Answer, JsValue> {
        self.exchange(request, data, signal).await.map_err(error)
    }

    /// As `send`, with core's error (for machines that decide on it).
    pub async fn exchange(
        &self,
        request: &Request,
        data: Option<&Blob>,
        signal: &JsValue,
    ) -> Result<Answer, ClientError> {
        let mut renewed = false;
        loop {
            let (token, ask) = self.token().await.map_err(|e| token_error(&e))?;
            let answer = self.send_with(request, data, signal, &token).await?;
            if answer.status != 401 || renewed || !self.policy.borrow().renews() {
                return Ok(answer);
            }
            self.policy.borrow_mut().refused(ask);
            renewed = true;
        }
    }
}

/// The token function's failure, as the caller sees it.
fn token_error(e: &JsValue) -> ClientError {
    let code = js::get(e, "code").as_string().unwrap_or_else(|| "token_error".into());
    let message = js::get(e, "message").as_string().or_else(|| e.as_string());
    ClientError::new(&code, message.unwrap_or_else(|| "the token function failed".into()), 0)
}

/// Read a body's chunks as they arrive: `None` at its end.
pub async fn read_chunk(reader: &web_sys::ReadableStreamDefaultReader) -> Result<Option<Vec<u8>>, JsValue> {
    let chunk = JsFuture::from(reader.read()).await.map_err(|e| network(&e))?;
    if js::get(&chunk, "done").is_truthy() {
        return Ok(None);
    }
    Ok(Some(Uint8Array::new(&js::get(&chunk, "value")).to_vec()))
}

/// The body's reader (an empty body reads as ended at once).
pub fn reader(answer: &Answer) -> Option<web_sys::ReadableStreamDefaultReader> {
    answer.response.body().map(|b| b.get_reader().unchecked_into())
}
