//! `watch(id)` and `wait(id)`: core's watch machine run over the platform's
//! WebSocket, `fetch` and timers.

use crate::http::Http;
use crate::js::{self, error};
use batchgate_core::client::watch::{Step, Watch};
use js_sys::{Function, Promise};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};
use web_sys::{MessageEvent, WebSocket};

/// A WebSocket's text messages, one at a time; `None` once it closed.
#[derive(Default)]
struct Inbox {
    queue: VecDeque<Option<String>>,
    waiting: Option<Function>,
    closed: bool,
}

fn deliver(inbox: &RefCell<Inbox>, message: Option<String>) {
    let mut inbox = inbox.borrow_mut();
    if inbox.closed {
        return;
    }
    inbox.closed = message.is_none();
    match inbox.waiting.take() {
        Some(resolve) => {
            let value = message.map_or(JsValue::NULL, |m| JsValue::from_str(&m));
            let _ = resolve.call1(&JsValue::UNDEFINED, &value);
        }
        None => inbox.queue.push_back(message),
    }
}

struct Socket {
    ws: WebSocket,
    inbox: Rc<RefCell<Inbox>>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(JsValue)>,
}

impl Socket {
    fn open(url: &str) -> Option<Rc<Socket>> {
        let ws = WebSocket::new(url).ok()?;
        let inbox = Rc::new(RefCell::new(Inbox::default()));
        let to = inbox.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(text) = e.data().as_string() {
                deliver(&to, Some(text));
            }
        });
        let to = inbox.clone();
        let on_close = Closure::<dyn FnMut(JsValue)>::new(move |_| deliver(&to, None));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        ws.set_onerror(Some(on_close.as_ref().unchecked_ref()));
        Some(Rc::new(Socket { ws, inbox, _on_message: on_message, _on_close: on_close }))
    }

    async fn next(&self) -> Option<String> {
        let waiting = {
            let mut inbox = self.inbox.borrow_mut();
            if let Some(message) = inbox.queue.pop_front() {
                return message;
            }
            if inbox.closed {
                return None;
            }
            let mut slot = None;
            let promise = Promise::new(&mut |resolve, _| slot = Some(resolve));
            inbox.waiting = slot;
            promise
        };
        JsFuture::from(waiting).await.ok().and_then(|m| m.as_string())
    }

    fn close(&self) {
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onerror(None);
        let _ = self.ws.close();
        deliver(&self.inbox, None);
    }
}

struct State {
    machine: Watch,
    socket: Option<Rc<Socket>>,
}

impl State {
    fn close(&mut self) {
        if let Some(s) = self.socket.take() {
            s.close();
        }
    }
}

/// The job's views as they change (`for await`).
#[wasm_bindgen]
pub struct JobWatch {
    http: Rc<Http>,
    state: Rc<RefCell<State>>,
}

impl JobWatch {
    pub fn new(http: Rc<Http>, id: &str, interval_ms: u32) -> JobWatch {
        let machine = Watch::new(&http.endpoint, id, interval_ms, js::has_global("WebSocket"));
        JobWatch { http, state: Rc::new(RefCell::new(State { machine, socket: None })) }
    }
}

#[wasm_bindgen]
impl JobWatch {
    /// `{value: view, done: false}` for each change, then `{done: true}`.
    pub fn next(&self) -> Promise {
        let (http, state) = (self.http.clone(), self.state.clone());
        future_to_promise(async move { next_view(&http, &state).await })
    }

    /// Stop watching (what `break` in a `for await` calls); a pending `next` ends.
    #[wasm_bindgen(js_name = "return")]
    pub fn stop(&self) -> Promise {
        let mut state = self.state.borrow_mut();
        state.machine.stop();
        state.close();
        Promise::resolve(&js::step(&JsValue::UNDEFINED, true))
    }
}

async fn next_view(http: &Http, state: &RefCell<State>) -> Result<JsValue, JsValue> {
    let none = JsValue::UNDEFINED;
    loop {
        let step = state.borrow_mut().machine.step();
        match step {
            Step::Sleep(ms) => js::sleep(ms).await,
            Step::Ticket(request) => {
                let answer = match http.exchange(&request, None, &none).await {
                    Ok(a) => a.value().await.map(|v| v.to_string()),
                    Err(e) => Err(e),
                };
                state
                    .borrow_mut()
                    .machine
                    .ticket(answer.as_ref().map(|t| t.as_bytes()).map_err(Clone::clone));
            }
            Step::Open(url) => {
                let mut s = state.borrow_mut();
                match Socket::open(&url) {
                    Some(socket) => s.socket = Some(socket),
                    None => s.machine.socket_refused(),
                }
            }
            Step::Listen => {
                let socket = state.borrow().socket.clone();
                let message = match socket {
                    Some(s) => s.next().await,
                    None => None,
                };
                let mut s = state.borrow_mut();
                match message {
                    Some(text) => s.machine.message(&text),
                    None => {
                        s.close();
                        s.machine.closed();
                    }
                }
            }
            Step::Poll(request) => {
                let answer = http.send(&request, None, &none).await?;
                let etag = answer.header("etag");
                let body = answer.text().await.map_err(error)?;
                state.borrow_mut().machine.polled(answer.status, etag, body.as_bytes()).map_err(error)?;
            }
            Step::Close => state.borrow_mut().close(),
            Step::View(text) => return Ok(js::step(&js::parse(&text)?, false)),
            Step::Done => {
                state.borrow_mut().close();
                return Ok(js::step(&none, true));
            }
        }
    }
}

/// Every view to `on_progress` until the job ends; an aborted `signal`
/// rejects at once, though a poll is still pending.
pub async fn wait(watch: JobWatch, on_progress: JsValue, signal: JsValue) -> Result<JsValue, JsValue> {
    let on_progress = on_progress.dyn_into::<Function>().ok();
    let mut last = JsValue::UNDEFINED;
    let result = loop {
        let next = js::abortable(watch.next(), &signal, "wait").await;
        let step = match next {
            Ok(step) => step,
            Err(e) => break Err(e),
        };
        if js::get(&step, "done").is_truthy() {
            break Ok(last);
        }
        last = js::get(&step, "value");
        if let Some(f) = &on_progress
            && let Err(e) = f.call1(&JsValue::UNDEFINED, &last)
        {
            break Err(e);
        }
    };
    let _ = watch.stop();
    result
}

/// `intervalMs` as given (1000 by default), kept within 50 ms and a minute.
pub fn interval_of(options: &JsValue) -> u32 {
    let ms = js::get(options, "intervalMs").as_f64().unwrap_or(1000.0);
    if ms.is_finite() { ms.clamp(50.0, 60_000.0) as u32 } else { 1000 }
}
