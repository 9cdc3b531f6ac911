//! The platform, reached on the global scope (a page, a web worker or Node ≥
//! 20 alike), and the small conversions between JavaScript values and core's.

use batchgate_core::client::call::ClientError;
use js_sys::{Function, JSON, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    pub fn fetch(url: &str, init: &web_sys::RequestInit) -> Promise;
    #[wasm_bindgen(js_name = setTimeout)]
    pub fn set_timeout(f: &Function, ms: u32) -> JsValue;
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(buf: &mut [u8]);
}

#[wasm_bindgen(module = "/js/errors.js")]
extern "C" {
    #[wasm_bindgen(js_name = BatchgateError)]
    pub type JsError;
    #[wasm_bindgen(constructor, js_class = "BatchgateError")]
    fn new(message: &str, code: &str, status: u16, details: JsValue) -> JsError;
    /// The class itself, which the package exports: one class, so `instanceof` holds.
    #[wasm_bindgen(thread_local_v2, js_name = BatchgateError)]
    pub static ERROR_CLASS: JsValue;
}

/// Core's error as the package's `BatchgateError`.
pub fn error(e: ClientError) -> JsValue {
    let details = e.details.as_deref().and_then(|d| JSON::parse(d).ok()).unwrap_or(JsValue::UNDEFINED);
    JsError::new(&e.message, &e.code, e.status, details).into()
}

pub fn invalid(message: &str) -> JsValue {
    error(ClientError::invalid_argument(message))
}

pub async fn sleep(ms: u32) {
    let done = Promise::new(&mut |resolve, _| {
        set_timeout(&resolve, ms);
    });
    let _ = JsFuture::from(done).await;
}

pub fn random16() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    get_random_values(&mut bytes);
    bytes
}

/// `obj[name]`, or `undefined` (also when `obj` is not an object).
pub fn get(obj: &JsValue, name: &str) -> JsValue {
    if !obj.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(obj, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

pub fn has_global(name: &str) -> bool {
    Reflect::get(&js_sys::global(), &JsValue::from_str(name)).is_ok_and(|v| v.is_function())
}

/// A string, or a number as JavaScript writes it (`String(n)`), for queries.
pub fn text(value: &JsValue) -> Option<String> {
    if value.as_f64().is_some() {
        return js_sys::Number::from(value.clone()).to_string_with_radix(10).ok().map(String::from);
    }
    value.as_string()
}

/// JSON text as a JavaScript value (`JSON.parse`, the platform's parser).
pub fn parse(text: &str) -> Result<JsValue, JsValue> {
    if text.is_empty() {
        return Ok(JsValue::NULL);
    }
    JSON::parse(text).map_err(|_| error(ClientError::new("invalid_answer", "the answer is not JSON", 0)))
}

/// A value as JSON text (`JSON.stringify`).
pub fn stringify(value: &JsValue) -> Result<String, JsValue> {
    JSON::stringify(value).ok().and_then(|s| s.as_string()).ok_or_else(|| invalid("a value is not JSON"))
}

/// An iterator step, `{value, done}`.
pub fn step(value: &JsValue, done: bool) -> JsValue {
    let out = Object::new();
    let _ = Reflect::set(&out, &"value".into(), value);
    let _ = Reflect::set(&out, &"done".into(), &done.into());
    out.into()
}

/// `AbortSignal.aborted`.
pub fn aborted(signal: &JsValue) -> bool {
    get(signal, "aborted").is_truthy()
}

/// `promise`, or its rejection as `aborted` once `signal` aborts (at once,
/// though the promise is still pending).
pub async fn abortable(promise: Promise, signal: &JsValue, what: &str) -> Result<JsValue, JsValue> {
    let signal: Option<web_sys::AbortSignal> = signal.clone().dyn_into().ok();
    let Some(signal) = signal else { return JsFuture::from(promise).await };
    let reason = error(ClientError::aborted(what));
    if signal.aborted() {
        return Err(reason);
    }
    let mut listener: Option<Closure<dyn FnMut()>> = None;
    let abort = Promise::new(&mut |_, reject| {
        let reason = reason.clone();
        let on_abort = Closure::once(move || {
            let _ = reject.call1(&JsValue::UNDEFINED, &reason);
        });
        let _ = signal.add_event_listener_with_callback("abort", on_abort.as_ref().unchecked_ref());
        listener = Some(on_abort);
    });
    let settled = JsFuture::from(Promise::race(&js_sys::Array::of2(&promise, &abort))).await;
    // Removed and freed: one listener at a time, not one more per view of a wait.
    if let Some(on_abort) = listener {
        let _ = signal.remove_event_listener_with_callback("abort", on_abort.as_ref().unchecked_ref());
    }
    settled
}
