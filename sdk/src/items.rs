//! The wasm's async iterators (a job's views, its result lines, a stream's
//! chunks): each `next` drives the op's machine to its next value. And
//! `wait`, which drives a watch to its end.

use crate::drive::{Op, drive};
use crate::http::Http;
use crate::js::{self, error};
use batchgate_core::client::lines::unreadable;
use js_sys::{Function, Promise};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

/// Values as they come (`for await`): `next`, and `return` to leave early.
#[wasm_bindgen]
pub struct Items {
    http: Rc<Http>,
    op: Rc<RefCell<Op>>,
    /// Resolves the op's outcome (a stream's cost) once it is over.
    settle: Rc<RefCell<Option<Function>>>,
}

impl Items {
    pub fn new(http: Rc<Http>, op: Op) -> Items {
        Items { http, op: Rc::new(RefCell::new(op)), settle: Rc::new(RefCell::new(None)) }
    }

    /// A promise of the op's outcome (`null` if it has none), settled when it is over.
    pub fn outcome(&self) -> Promise {
        let mut slot = None;
        let promise = Promise::new(&mut |resolve, _| slot = Some(resolve));
        *self.settle.borrow_mut() = slot;
        promise
    }
}

fn end(op: &RefCell<Op>, settle: &RefCell<Option<Function>>) {
    let outcome = {
        let mut op = op.borrow_mut();
        op.close();
        op.machine.outcome()
    };
    if let Some(settle) = settle.borrow_mut().take() {
        let value = outcome.and_then(|o| js_sys::JSON::parse(&o).ok()).unwrap_or(JsValue::NULL);
        let _ = settle.call1(&JsValue::UNDEFINED, &value);
    }
}

/// An item's JSON text as a value; an unreadable one is an `invalid_result`.
pub fn item(text: &str) -> Result<JsValue, JsValue> {
    js_sys::JSON::parse(text)
        .map_err(|e| error(unreadable(text, &js::get(&e, "message").as_string().unwrap_or_default())))
}

#[wasm_bindgen]
impl Items {
    /// `{value, done: false}` for each value, then `{done: true}`.
    pub fn next(&self) -> Promise {
        let (http, op, settle) = (self.http.clone(), self.op.clone(), self.settle.clone());
        future_to_promise(async move {
            let next = drive(&http, &op).await.and_then(|v| v.as_deref().map(item).transpose());
            match next {
                Ok(Some(value)) => Ok(js::step(&value, false)),
                Ok(None) => {
                    end(&op, &settle);
                    Ok(js::step(&JsValue::UNDEFINED, true))
                }
                Err(e) => {
                    end(&op, &settle);
                    Err(e)
                }
            }
        })
    }

    /// Leave early (what `break` in a `for await` calls): what was being
    /// read is cancelled, and a pending `next` ends.
    #[wasm_bindgen(js_name = "return")]
    pub fn stop(&self) -> Promise {
        end(&self.op, &self.settle);
        Promise::resolve(&js::step(&JsValue::UNDEFINED, true))
    }

    /// As `return`, rejecting with `error` (an async generator's `throw`).
    #[wasm_bindgen(js_name = "throw")]
    pub fn fail(&self, error: JsValue) -> Promise {
        end(&self.op, &self.settle);
        Promise::reject(&error)
    }
}

/// Every view to `on_progress` until the job ends; an aborted `signal`
/// rejects at once, though a poll is still pending.
pub async fn wait(
    http: Rc<Http>,
    watch: Op,
    on_progress: JsValue,
    signal: JsValue,
) -> Result<JsValue, JsValue> {
    let op = Rc::new(RefCell::new(watch));
    let mut last = JsValue::UNDEFINED;
    let result = loop {
        let (http, op) = (http.clone(), op.clone());
        let next = future_to_promise(async move {
            Ok(drive(&http, &op).await?.map_or(JsValue::UNDEFINED, JsValue::from))
        });
        let text = match js::abortable(next, &signal, "wait").await {
            Ok(text) => text,
            Err(e) => break Err(e),
        };
        let Some(text) = text.as_string() else { break Ok(last) };
        last = match item(&text) {
            Ok(view) => view,
            Err(e) => break Err(e),
        };
        if let Some(f) = on_progress.dyn_ref::<Function>()
            && let Err(e) = f.call1(&JsValue::UNDEFINED, &last)
        {
            break Err(e);
        }
    };
    op.borrow_mut().close();
    result
}
