//! A WebSocket's text messages, one promise at a time.

use js_sys::{Function, Promise};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{MessageEvent, WebSocket};

/// A WebSocket's text messages, one at a time; `None` once it closed.
#[derive(Default)]
struct Inbox {
    queue: VecDeque<Option<String>>,
    waiting: Option<Function>,
    closed: bool,
    /// Counts the waits, so a timer set for one never ends a later one.
    turn: u64,
}

/// What a wait for the next message heard.
pub enum Heard {
    Message(String),
    Closed,
    /// Nothing, for as long as it waited.
    Silence,
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

pub struct Socket {
    ws: WebSocket,
    inbox: Rc<RefCell<Inbox>>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(JsValue)>,
}

impl Socket {
    pub fn open(url: &str) -> Option<Rc<Socket>> {
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

    /// The next text message, or `Closed`, or `Silence` after `idle_ms`
    /// with neither (the socket stays open).
    pub async fn next(&self, idle_ms: u32) -> Heard {
        let waiting = {
            let mut inbox = self.inbox.borrow_mut();
            match inbox.queue.pop_front() {
                Some(Some(text)) => return Heard::Message(text),
                Some(None) => return Heard::Closed,
                None if inbox.closed => return Heard::Closed,
                None => {}
            }
            let mut slot = None;
            let promise = Promise::new(&mut |resolve, _| slot = Some(resolve));
            inbox.waiting = slot;
            inbox.turn += 1;
            let (turn, to) = (inbox.turn, self.inbox.clone());
            let silence = Closure::once_into_js(move || {
                let resolve = {
                    let mut inbox = to.borrow_mut();
                    if inbox.turn == turn { inbox.waiting.take() } else { None }
                };
                if let Some(resolve) = resolve {
                    let _ = resolve.call1(&JsValue::UNDEFINED, &JsValue::TRUE);
                }
            });
            crate::js::set_timeout(silence.unchecked_ref(), idle_ms);
            promise
        };
        match JsFuture::from(waiting).await {
            Ok(m) if m.is_string() => Heard::Message(m.as_string().unwrap_or_default()),
            Ok(m) if m == JsValue::TRUE => Heard::Silence,
            _ => Heard::Closed,
        }
    }

    pub fn close(&self) {
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onerror(None);
        let _ = self.ws.close();
        deliver(&self.inbox, None);
    }
}

impl Drop for Socket {
    /// Its handlers go with it: an `error` then a `close` event in one task
    /// would otherwise call a closure already dropped.
    fn drop(&mut self) {
        self.close();
    }
}
