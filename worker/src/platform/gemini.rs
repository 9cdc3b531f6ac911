//! Sends core's Gemini [`Call`]s: adds the API key header (the only place the key
//! is used; it never reaches a response or a log line), bounds every call and
//! body read with a timeout, and turns every answer into `Ok` or a classified
//! [`Failure`].

use super::config::Settings;
use batchgate_core::gemini::client::{API_KEY_HEADER, Call, Failure, GeminiConfig, failure};
use futures_util::future::{Either, select};
use serde::de::DeserializeOwned;
use std::future::Future;
use std::time::Duration;
use wasm_bindgen::JsValue;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, Response};

pub struct Gemini {
    pub cfg: GeminiConfig,
    key: String,
    timeout_ms: u64,
}

/// Race `fut` against a timer; on timeout `on_timeout` runs (to abort the fetch).
pub async fn with_timeout<T>(ms: u64, fut: impl Future<Output = T>, on_timeout: impl FnOnce()) -> Option<T> {
    let fut = std::pin::pin!(fut);
    let delay = std::pin::pin!(Delay::from(Duration::from_millis(ms)));
    match select(fut, delay).await {
        Either::Left((v, _)) => Some(v),
        Either::Right(_) => {
            on_timeout();
            None
        }
    }
}

fn method(m: &str) -> Method {
    match m {
        "POST" => Method::Post,
        "DELETE" => Method::Delete,
        "PUT" => Method::Put,
        _ => Method::Get,
    }
}

impl Gemini {
    /// Gemini with the deployment's first key (user uploads, and everything
    /// not tied to a batch: a file is its key's project's).
    pub fn new(settings: &Settings) -> Gemini {
        let key = settings.secrets.gemini_keys.get(None).map(|k| k.secret().to_string()).unwrap_or_default();
        Gemini { cfg: settings.gemini.clone(), key, timeout_ms: settings.gemini_timeout_ms }
    }

    /// Gemini with the key of this id (none: the first): a batch is made,
    /// polled, read and cancelled with one key. A key no longer configured
    /// fails transiently: the shard waits (up to its deadline) for the
    /// operator to put it back; its batch may still run, and only that key
    /// reaches it (`GET /v1/admin/keys` lists such keys with their batches).
    pub fn with_key(settings: &Settings, id: Option<&str>) -> Result<Gemini, Failure> {
        let key = settings.secrets.gemini_keys.get(id).ok_or_else(|| {
            Failure::network(format!(
                "the Gemini key {} this shard's batch belongs to is no longer configured",
                id.unwrap_or("(first)")
            ))
        })?;
        Ok(Gemini {
            cfg: settings.gemini.clone(),
            key: key.secret().to_string(),
            timeout_ms: settings.gemini_timeout_ms,
        })
    }

    fn request(&self, call: &Call, body: Option<JsValue>) -> Result<Request, Failure> {
        let headers = Headers::new();
        let bad = |e: worker::Error| Failure::Permanent {
            status: 0,
            message: format!("building a Gemini call: {e}"),
        };
        for (k, v) in &call.headers {
            headers.set(k, v).map_err(bad)?;
        }
        headers.set(API_KEY_HEADER, &self.key).map_err(bad)?;
        let mut init = RequestInit::new();
        init.with_method(method(call.method)).with_headers(headers);
        let body = body.or_else(|| call.body.as_deref().map(JsValue::from_str));
        init.with_body(body);
        Request::new_with_init(&call.url, &init).map_err(bad)
    }

    /// Send and wait for the response head (within the timeout).
    pub async fn send(&self, call: &Call, body: Option<JsValue>) -> Result<Response, Failure> {
        match self.exchange(call, body).await {
            Exchange::Answered(r) => Ok(r),
            Exchange::Failed(f) | Exchange::TimedOut(f) => Err(f),
        }
    }

    /// [`Gemini::send`], telling a call that got no answer in time (Gemini
    /// may be working on it) from one that failed.
    pub async fn exchange(&self, call: &Call, body: Option<JsValue>) -> Exchange {
        let req = match self.request(call, body) {
            Ok(r) => r,
            Err(f) => return Exchange::Failed(f),
        };
        let controller = AbortController::default();
        let signal = controller.signal();
        let what = format!("{} {}", call.method, path_of(&call.url));
        let sent = with_timeout(self.timeout_ms, Fetch::Request(req).send_with_signal(&signal), || {
            controller.abort()
        })
        .await;
        match sent {
            None => Exchange::TimedOut(Failure::network(format!(
                "{what}: no answer within {} ms",
                self.timeout_ms
            ))),
            Some(Err(e)) => Exchange::Failed(Failure::network(format!("{what}: {e}"))),
            Some(Ok(r)) => Exchange::Answered(r),
        }
    }

    pub fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }

    /// Read a whole (small) body within the timeout.
    pub async fn text(&self, resp: &mut Response) -> Result<String, Failure> {
        match with_timeout(self.timeout_ms, resp.text(), || ()).await {
            Some(Ok(t)) => Ok(t),
            Some(Err(e)) => Err(Failure::network(format!("reading a Gemini answer: {e}"))),
            None => Err(Failure::network("reading a Gemini answer timed out")),
        }
    }

    /// A whole answer body of at most `cap` bytes, each chunk within the timeout
    /// (an image model's answer can be large: it is never read unbounded).
    pub async fn read_capped(&self, resp: &mut Response, cap: u64) -> Result<Vec<u8>, String> {
        use futures_util::StreamExt;
        let mut body = resp.stream().map_err(|e| format!("reading Gemini's answer: {e}"))?;
        let mut bytes = Vec::new();
        loop {
            match with_timeout(self.timeout_ms, body.next(), || ()).await {
                None => return Err("Gemini's answer stalled".into()),
                Some(None) => return Ok(bytes),
                Some(Some(Err(e))) => return Err(format!("Gemini's answer broke off: {e}")),
                Some(Some(Ok(chunk))) => {
                    if bytes.len() as u64 + chunk.len() as u64 > cap {
                        return Err(format!("Gemini's answer is over {cap} bytes"));
                    }
                    bytes.extend_from_slice(&chunk);
                }
            }
        }
    }

    /// Send; a 200 answer's body is returned, anything else is a failure.
    pub async fn ok_text(&self, call: &Call, body: Option<JsValue>) -> Result<(Response, String), Failure> {
        let mut resp = self.send(call, body).await?;
        let text = self.text(&mut resp).await?;
        match resp.status_code() {
            200 => Ok((resp, text)),
            status => Err(failure(status, &text)),
        }
    }

    pub async fn json<T: DeserializeOwned>(&self, call: &Call) -> Result<T, Failure> {
        let (_, text) = self.ok_text(call, None).await?;
        serde_json::from_slice(text.as_bytes())
            .map_err(|e| Failure::network(format!("unreadable Gemini answer: {e}")))
    }
}

pub enum Exchange {
    Answered(Response),
    Failed(Failure),
    TimedOut(Failure),
}

/// The path of a URL, for messages (no host, no query: nothing secret).
fn path_of(url: &str) -> &str {
    let no_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    let path = no_scheme.find('/').and_then(|i| no_scheme.get(i..)).unwrap_or("/");
    path.split('?').next().unwrap_or(path)
}
