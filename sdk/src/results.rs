//! `results(id)`: the result pages core asks for, each read as its bytes
//! arrive and split into lines by core; each line is parsed by the
//! platform's `JSON.parse` (the client only hands it on).

use crate::http::{self, Http};
use crate::js::{self, error};
use batchgate_core::client::lines::{Lines, Pages, unreadable};
use js_sys::Promise;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use web_sys::ReadableStreamDefaultReader;

struct State {
    pages: Pages,
    lines: Lines,
    ready: VecDeque<String>,
    reader: Option<ReadableStreamDefaultReader>,
    finished: bool,
}

/// The job's result lines (`for await`).
#[wasm_bindgen]
pub struct ResultLines {
    http: Rc<Http>,
    state: Rc<RefCell<State>>,
}

impl ResultLines {
    pub fn new(http: Rc<Http>, id: &str, only_failed: bool) -> ResultLines {
        let state = State {
            pages: Pages::new(id, only_failed),
            lines: Lines::default(),
            ready: VecDeque::new(),
            reader: None,
            finished: false,
        };
        ResultLines { http, state: Rc::new(RefCell::new(state)) }
    }
}

#[wasm_bindgen]
impl ResultLines {
    pub fn next(&self) -> Promise {
        let (http, state) = (self.http.clone(), self.state.clone());
        future_to_promise(async move {
            let line = next_line(&http, &state).await;
            if line.is_err() {
                stop(&state);
            }
            line
        })
    }

    /// Leave early (what `break` in a `for await` calls): the page being
    /// read is cancelled, so the rest of it is not downloaded.
    #[wasm_bindgen(js_name = "return")]
    pub fn stop(&self) -> Promise {
        stop(&self.state);
        Promise::resolve(&js::step(&JsValue::UNDEFINED, true))
    }
}

fn stop(state: &RefCell<State>) {
    let mut s = state.borrow_mut();
    s.finished = true;
    s.ready.clear();
    if let Some(reader) = s.reader.take() {
        let _ = reader.cancel();
    }
}

async fn next_line(http: &Http, state: &RefCell<State>) -> Result<JsValue, JsValue> {
    loop {
        let (line, reader, request) = {
            let mut s = state.borrow_mut();
            if s.finished {
                return Ok(js::step(&JsValue::UNDEFINED, true));
            }
            let line = s.ready.pop_front();
            let request = if line.is_none() && s.reader.is_none() { s.pages.next_page() } else { None };
            (line, s.reader.clone(), request)
        };
        if let Some(line) = line {
            let value = js_sys::JSON::parse(&line).map_err(|e| {
                let why = js::get(&e, "message").as_string().unwrap_or_default();
                error(unreadable(&line, &why))
            })?;
            return Ok(js::step(&value, false));
        }
        if let Some(reader) = reader {
            let chunk = http::read_chunk(&reader).await?;
            let mut s = state.borrow_mut();
            let mut out = vec![];
            match chunk {
                Some(bytes) => s.lines.feed(&bytes, &mut out),
                None => {
                    s.lines.finish(&mut out);
                    s.reader = None;
                }
            }
            s.ready.extend(out);
            continue;
        }
        let Some(request) = request else {
            state.borrow_mut().finished = true;
            continue;
        };
        let answer = http.send(&request, None, &JsValue::UNDEFINED).await?;
        if answer.status != 200 {
            answer.checked_text().await?;
        }
        let mut s = state.borrow_mut();
        s.pages.answered(answer.header("batchgate-next-cursor"));
        s.reader = http::reader(&answer);
    }
}
