//! `generate` and `generateStream`: one request answered now, whole or as
//! server-sent events split by core as they arrive.

use crate::http::{self, Http};
use crate::js::{self, error};
use batchgate_core::client::generate::{Event, Sse, chunk_error, cost_of, request};
use js_sys::{Function, Object, Promise, Reflect};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use web_sys::ReadableStreamDefaultReader;

/// JSON text as a value, or `null` (a cost header that is missing or unreadable).
fn or_null(text: Option<&str>) -> JsValue {
    text.and_then(|t| js_sys::JSON::parse(t).ok()).unwrap_or(JsValue::NULL)
}

/// `{response, cost, callId}`.
pub async fn generate(
    http: Rc<Http>,
    model: String,
    body: String,
    signal: JsValue,
) -> Result<JsValue, JsValue> {
    let answer = http.send(&request(&model, &body, false), None, &signal).await?;
    let response = answer.json().await?;
    let out = Object::new();
    let _ = Reflect::set(&out, &"response".into(), &response);
    let _ = Reflect::set(&out, &"cost".into(), &or_null(answer.header("batchgate-cost").as_deref()));
    let call_id = answer.header("batchgate-call-id").map_or(JsValue::NULL, |c| c.into());
    let _ = Reflect::set(&out, &"callId".into(), &call_id);
    Ok(out.into())
}

struct State {
    http: Rc<Http>,
    /// The call, until it is sent (by the first `next`).
    call: Option<(String, String, JsValue)>,
    reader: Option<ReadableStreamDefaultReader>,
    sse: Sse,
    events: VecDeque<Event>,
    cost: JsValue,
    settle: Option<Function>,
    finished: bool,
}

impl State {
    /// The stream is over: its cost (if its comment came) to the `cost` promise.
    fn end(&mut self) {
        self.finished = true;
        self.events.clear();
        if let Some(reader) = self.reader.take() {
            // Leaving early closes the connection; the call is still charged in full.
            let _ = reader.cancel();
        }
        if let Some(settle) = self.settle.take() {
            let _ = settle.call1(&JsValue::UNDEFINED, &self.cost);
        }
    }
}

/// Gemini's answer in chunks as they arrive (`for await`).
#[wasm_bindgen]
pub struct Chunks {
    state: Rc<RefCell<State>>,
}

/// `{chunks, cost}`: the call is made when the chunks are first asked for.
pub fn stream(http: Rc<Http>, model: String, body: String, signal: JsValue) -> JsValue {
    let mut settle = None;
    let cost = Promise::new(&mut |resolve, _| settle = Some(resolve));
    let state = State {
        http,
        call: Some((model, body, signal)),
        reader: None,
        sse: Sse::default(),
        events: VecDeque::new(),
        cost: JsValue::NULL,
        settle,
        finished: false,
    };
    let out = Object::new();
    let chunks = Chunks { state: Rc::new(RefCell::new(state)) };
    let _ = Reflect::set(&out, &"chunks".into(), &chunks.into());
    let _ = Reflect::set(&out, &"cost".into(), &cost);
    out.into()
}

#[wasm_bindgen]
impl Chunks {
    pub fn next(&self) -> Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let chunk = next_chunk(&state).await;
            if chunk.is_err() {
                state.borrow_mut().end();
            }
            chunk
        })
    }

    #[wasm_bindgen(js_name = "return")]
    pub fn stop(&self) -> Promise {
        self.state.borrow_mut().end();
        Promise::resolve(&js::step(&JsValue::UNDEFINED, true))
    }
}

async fn next_chunk(state: &RefCell<State>) -> Result<JsValue, JsValue> {
    let done = || Ok(js::step(&JsValue::UNDEFINED, true));
    let call = state.borrow_mut().call.take();
    if let Some((model, body, signal)) = call {
        let http = state.borrow().http.clone();
        let answer = http.send(&request(&model, &body, true), None, &signal).await?;
        if answer.status != 200 {
            answer.checked_text().await?;
        }
        state.borrow_mut().reader = http::reader(&answer);
    }
    loop {
        let (event, reader) = {
            let mut s = state.borrow_mut();
            if s.finished {
                return done();
            }
            (s.events.pop_front(), s.reader.clone())
        };
        match event {
            Some(Event::Comment(c)) => {
                if let Some(cost) = cost_of(&c) {
                    state.borrow_mut().cost = or_null(Some(cost));
                }
            }
            Some(Event::Data(data)) => {
                if let Some(e) = chunk_error(&data) {
                    return Err(error(e));
                }
                return Ok(js::step(&js::parse(&data)?, false));
            }
            None => {
                let Some(reader) = reader else {
                    state.borrow_mut().end();
                    return done();
                };
                let chunk = http::read_chunk(&reader).await?;
                let mut s = state.borrow_mut();
                let mut out = vec![];
                match chunk {
                    Some(bytes) => s.sse.feed(&bytes, &mut out),
                    None => {
                        s.sse.finish(&mut out);
                        s.reader = None;
                    }
                }
                s.events.extend(out);
            }
        }
    }
}
