//! JavaScript the SDK needs that Rust cannot express: an `Error` subclass, the
//! global `fetch` (present in browsers and in Node ≥ 20, where `window` is not).

use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
export class BatchgateError extends Error {
  constructor(message, code, status, details) {
    super(message);
    this.name = "BatchgateError";
    this.code = code;
    this.status = status;
    this.details = details;
  }
  get isNetworkError() { return this.status === 0; }
}
export function makeError(message, code, status, details) {
  return new BatchgateError(message, code, status, details);
}
export function errorCtor() { return BatchgateError; }
export function globalFetch(request) { return fetch(request); }
export function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }
"#)]
extern "C" {
    #[wasm_bindgen(js_name = makeError)]
    fn make_error(message: &str, code: &str, status: u16, details: JsValue) -> JsValue;

    #[wasm_bindgen(js_name = errorCtor)]
    fn error_ctor() -> JsValue;

    #[wasm_bindgen(js_name = globalFetch)]
    pub fn global_fetch(request: &web_sys::Request) -> js_sys::Promise;

    pub fn sleep(ms: u32) -> js_sys::Promise;
}

/// The `BatchgateError` class, for the package to export (`instanceof` checks).
#[wasm_bindgen(js_name = errorClass)]
pub fn error_class() -> JsValue {
    error_ctor()
}

/// An API error (`status` > 0) or a network error (`status` 0, code `network_error`).
pub fn error(status: u16, code: &str, message: &str, details: JsValue) -> JsValue {
    make_error(message, code, status, details)
}

/// `o[k]`, or `undefined` when `o` is not an object (options are optional).
pub fn field(o: &JsValue, k: &str) -> JsValue {
    js_sys::Reflect::get(o, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED)
}

/// `o[k]` when it is a function: the callbacks in options.
pub fn callback(o: &JsValue, k: &str) -> Option<js_sys::Function> {
    Some(field(o, k)).filter(JsValue::is_function).map(JsCast::unchecked_into)
}

/// `o.signal` when it is given.
pub fn signal(o: &JsValue) -> Option<web_sys::AbortSignal> {
    Some(field(o, "signal")).filter(JsValue::is_object).map(JsCast::unchecked_into)
}
