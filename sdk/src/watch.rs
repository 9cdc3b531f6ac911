//! `watch(jobId)`: the job's views as they change, as an async iterator. It
//! listens on the JobObject's WebSocket where the platform has one (browsers;
//! Node from 22), reconnecting by itself, and falls back to `ETag` polling
//! (one cheap 304 per interval while nothing changes) when there is no socket
//! or it keeps dropping. The iterator ends after the view in which the job
//! ended and was charged.

use crate::client::{Inner, enc, json_of, network, to_js};
use crate::js::{error, sleep};
use futures_channel::mpsc::{UnboundedReceiver, unbounded};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{MessageEvent, WebSocket};

/// Sockets that drop this many times in a row give way to polling.
const MAX_SOCKET_FAILURES: u32 = 3;

struct Socket {
    ws: WebSocket,
    /// Each message's text; `None` when the socket closed or failed.
    rx: UnboundedReceiver<Option<String>>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_end: Closure<dyn FnMut(JsValue)>,
}

impl Drop for Socket {
    /// Detach the handlers before their closures go: a late `close` event
    /// would otherwise call a dropped closure.
    fn drop(&mut self) {
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onerror(None);
        let _ = self.ws.close();
    }
}

#[wasm_bindgen]
pub struct JobWatch {
    inner: Rc<Inner>,
    id: String,
    interval_ms: u32,
    socket: RefCell<Option<Socket>>,
    socket_failures: Cell<u32>,
    etag: RefCell<Option<String>>,
    polled: Cell<bool>,
    last_version: Cell<u64>,
    finished: Cell<bool>,
}

/// The job ended and its charge is known: nothing more will change.
pub fn is_final(view: &Value) -> bool {
    matches!(view["state"].as_str(), Some("succeeded" | "failed" | "expired" | "cancelled"))
        && view["cost"]["charged"].is_i64()
}

fn has_websocket() -> bool {
    js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("WebSocket")).is_ok_and(|w| w.is_function())
}

fn iter_result(value: JsValue, done: bool) -> Result<JsValue, JsValue> {
    let r = js_sys::Object::new();
    js_sys::Reflect::set(&r, &JsValue::from_str("value"), &value)?;
    js_sys::Reflect::set(&r, &JsValue::from_str("done"), &JsValue::from_bool(done))?;
    Ok(r.into())
}

impl JobWatch {
    pub(crate) fn new(inner: Rc<Inner>, id: String, interval_ms: u32) -> JobWatch {
        JobWatch {
            inner,
            id,
            interval_ms,
            socket: RefCell::new(None),
            socket_failures: Cell::new(if has_websocket() { 0 } else { MAX_SOCKET_FAILURES }),
            etag: RefCell::new(None),
            polled: Cell::new(false),
            last_version: Cell::new(0),
            finished: Cell::new(false),
        }
    }

    async fn connect(&self) -> Result<Socket, JsValue> {
        let token = self.inner.token(false).await?;
        let base = self.inner.endpoint.replacen("http", "ws", 1);
        let url = format!("{base}/v1/jobs/{}/watch?token={}", enc(&self.id), enc(&token));
        let ws = WebSocket::new(&url)?;
        let (tx, rx) = unbounded();
        let on_msg_tx = tx.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let _ = on_msg_tx.unbounded_send(e.data().as_string());
        });
        let on_end = Closure::<dyn FnMut(JsValue)>::new(move |_| {
            let _ = tx.unbounded_send(None);
        });
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_end.as_ref().unchecked_ref()));
        ws.set_onerror(Some(on_end.as_ref().unchecked_ref()));
        Ok(Socket { ws, rx, _on_message: on_message, _on_end: on_end })
    }

    /// The next view from the socket, or `None` when it closed or failed.
    async fn next_from_socket(&self) -> Result<Option<Value>, JsValue> {
        if self.socket.borrow().is_none() {
            let s = self.connect().await?;
            self.socket.replace(Some(s));
        }
        let mut socket = self.socket.take();
        let next = match socket.as_mut() {
            Some(s) => s.rx.next().await.flatten(),
            None => None,
        };
        match next.and_then(|t| serde_json::from_str::<Value>(&t).ok()) {
            Some(v) => {
                self.socket.replace(socket);
                self.socket_failures.set(0);
                Ok(Some(v))
            }
            None => {
                // Closed: normal once the job ended, otherwise a drop to count.
                self.socket_failures.set(self.socket_failures.get() + 1);
                Ok(None)
            }
        }
    }

    /// Poll until the view differs from the last one (`If-None-Match`).
    async fn next_by_polling(&self) -> Result<Value, JsValue> {
        loop {
            if self.polled.replace(true) {
                JsFuture::from(sleep(self.interval_ms)).await?;
            }
            let etag = self.etag.borrow().clone();
            let headers: Vec<(&str, &str)> =
                etag.as_deref().map(|e| ("if-none-match", e)).into_iter().collect();
            let resp =
                self.inner.fetch("GET", &format!("/v1/jobs/{}", enc(&self.id)), None, &headers).await?;
            if resp.status() == 304 {
                continue;
            }
            self.etag.replace(resp.headers().get("etag").map_err(network)?);
            return json_of(resp).await;
        }
    }
}

#[wasm_bindgen]
impl JobWatch {
    /// `{value: job, done: false}` for each change, then `{done: true}`.
    #[wasm_bindgen(unchecked_return_type = "IteratorResult<JobView, undefined>")]
    pub async fn next(&self) -> Result<JsValue, JsValue> {
        while !self.finished.get() {
            let view = if self.socket_failures.get() < MAX_SOCKET_FAILURES {
                match self.next_from_socket().await? {
                    Some(v) => v,
                    // The socket closed: one poll says whether the job ended meanwhile.
                    None => self.next_by_polling().await?,
                }
            } else {
                self.next_by_polling().await?
            };
            let version = view["version"].as_u64().unwrap_or(0);
            if version <= self.last_version.get() && !is_final(&view) {
                continue;
            }
            self.last_version.set(version);
            if is_final(&view) {
                self.finished.set(true);
                self.stop()?;
            }
            return iter_result(to_js(&view)?, false);
        }
        iter_result(JsValue::UNDEFINED, true)
    }

    /// Stop watching (what `break` in a `for await` calls).
    #[wasm_bindgen(js_name = "return")]
    pub fn stop(&self) -> Result<JsValue, JsValue> {
        self.finished.set(true);
        drop(self.socket.take());
        iter_result(JsValue::UNDEFINED, true)
    }
}

/// Results as an async iterator over pages of `limit` lines (`only: "failed"`
/// for failures only).
#[wasm_bindgen]
pub struct ResultLines {
    inner: Rc<Inner>,
    path: String,
    cursor: RefCell<Option<String>>,
    started: Cell<bool>,
    lines: RefCell<std::collections::VecDeque<String>>,
}

impl ResultLines {
    pub(crate) fn new(inner: Rc<Inner>, id: &str, only_failed: bool) -> ResultLines {
        let only = if only_failed { "&only=failed" } else { "" };
        ResultLines {
            inner,
            path: format!("/v1/jobs/{}/results?limit=1000{only}", enc(id)),
            cursor: RefCell::new(None),
            started: Cell::new(false),
            lines: RefCell::new(Default::default()),
        }
    }
}

#[wasm_bindgen]
impl ResultLines {
    #[wasm_bindgen(unchecked_return_type = "IteratorResult<ResultLine, undefined>")]
    pub async fn next(&self) -> Result<JsValue, JsValue> {
        loop {
            let line = self.lines.borrow_mut().pop_front();
            if let Some(line) = line {
                let v: Value = serde_json::from_str(&line).map_err(|e| {
                    error(0, "invalid_result", &format!("an unreadable result line: {e}"), JsValue::UNDEFINED)
                })?;
                return iter_result(to_js(&v)?, false);
            }
            let cursor = self.cursor.borrow().clone();
            if self.started.replace(true) && cursor.is_none() {
                return iter_result(JsValue::UNDEFINED, true);
            }
            let path = match cursor {
                Some(c) => format!("{}&cursor={}", self.path, enc(&c)),
                None => self.path.clone(),
            };
            let resp = self.inner.fetch("GET", &path, None, &[]).await?;
            if !(200..300).contains(&resp.status()) {
                json_of(resp).await?;
                return Err(error(0, "http_error", "results unavailable", JsValue::UNDEFINED));
            }
            self.cursor.replace(resp.headers().get("batchgate-next-cursor").map_err(network)?);
            let text = JsFuture::from(resp.text()?).await.map_err(network)?.as_string().unwrap_or_default();
            self.lines.borrow_mut().extend(text.lines().filter(|l| !l.trim().is_empty()).map(String::from));
        }
    }

    #[wasm_bindgen(js_name = "return")]
    pub fn stop(&self) -> Result<JsValue, JsValue> {
        self.lines.borrow_mut().clear();
        self.started.set(true);
        self.cursor.replace(None);
        iter_result(JsValue::UNDEFINED, true)
    }
}

/// Used by `wait`: a progress callback gets each view.
pub(crate) async fn wait(
    watch: &JobWatch,
    on_progress: Option<js_sys::Function>,
    signal: Option<web_sys::AbortSignal>,
) -> Result<JsValue, JsValue> {
    let mut last = JsValue::UNDEFINED;
    loop {
        if signal.as_ref().is_some_and(web_sys::AbortSignal::aborted) {
            watch.stop()?;
            return Err(error(0, "aborted", "wait was aborted", to_js(&json!({}))?));
        }
        let r = watch.next().await?;
        if js_sys::Reflect::get(&r, &JsValue::from_str("done"))?.is_truthy() {
            return Ok(last);
        }
        last = js_sys::Reflect::get(&r, &JsValue::from_str("value"))?;
        if let Some(f) = &on_progress {
            f.call1(&JsValue::NULL, &last)?;
        }
    }
}
