//! The one loop that runs every machine of core's client: what a step asks
//! for, done with the platform (fetch, body readers, timers, WebSocket), and
//! its outcome replied.

use crate::http::{self, Http, network_error};
use crate::js::{self, error};
use crate::socket::{Heard, Socket};
use batchgate_core::client::call::{ClientError, is_success};
use batchgate_core::client::machine::{Io, Machine, Reply};
use js_sys::{Function, Object, Reflect};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use web_sys::{Blob, ReadableStreamDefaultReader};

/// A machine and what its steps work on.
pub struct Op {
    pub machine: Box<dyn Machine>,
    /// The caller's data: what `Range` bodies are cut from, what `ReadData` reads.
    pub data: Option<Blob>,
    pub signal: JsValue,
    pub on_progress: JsValue,
    reader: Option<ReadableStreamDefaultReader>,
    data_reader: Option<ReadableStreamDefaultReader>,
    socket: Option<Rc<Socket>>,
    stopped: bool,
}

impl Op {
    pub fn new(machine: impl Machine + 'static) -> Op {
        Op {
            machine: Box::new(machine),
            data: None,
            signal: JsValue::UNDEFINED,
            on_progress: JsValue::UNDEFINED,
            reader: None,
            data_reader: None,
            socket: None,
            stopped: false,
        }
    }

    /// With `signal` and `onProgress` from the caller's options.
    pub fn with_options(mut self, options: &JsValue) -> Op {
        self.signal = js::get(options, "signal");
        self.on_progress = js::get(options, "onProgress");
        self
    }

    /// Stop: a body being read is cancelled (not downloaded further), a
    /// socket closed, and a drive under way ends at its next step.
    pub fn close(&mut self) {
        self.stopped = true;
        for reader in [self.reader.take(), self.data_reader.take()].into_iter().flatten() {
            let _ = reader.cancel();
        }
        if let Some(s) = self.socket.take() {
            s.close();
        }
    }
}

/// `{[name]: id, received, size}` to `on_progress`.
fn progress(on_progress: &JsValue, name: &str, id: &str, received: u64, size: u64) -> Result<(), JsValue> {
    let Some(f) = on_progress.dyn_ref::<Function>() else { return Ok(()) };
    let p = Object::new();
    let _ = Reflect::set(&p, &name.into(), &id.into());
    let _ = Reflect::set(&p, &"received".into(), &(received as f64).into());
    let _ = Reflect::set(&p, &"size".into(), &(size as f64).into());
    f.call1(&JsValue::UNDEFINED, &p).map(drop)
}

async fn read(reader: Option<ReadableStreamDefaultReader>, signal: &JsValue) -> Reply {
    let Some(reader) = reader else { return Reply::Chunk(None) };
    match http::read_chunk(&reader).await {
        Ok(chunk) => Reply::Chunk(chunk),
        Err(_) if js::aborted(signal) => Reply::Failed(ClientError::aborted("the request")),
        Err(e) => Reply::Failed(network_error(&e)),
    }
}

/// Run the op's machine to its next value (JSON text); `None` once it ended.
pub async fn drive(http: &Http, op: &RefCell<Op>) -> Result<Option<String>, JsValue> {
    loop {
        if op.borrow().stopped {
            return Ok(None);
        }
        let io = op.borrow_mut().machine.step().map_err(error)?;
        let reply = match io {
            Io::Yield(value) => return Ok(Some(value)),
            Io::End => {
                op.borrow_mut().close();
                return Ok(None);
            }
            Io::Send { request, stream, headers } => {
                let (data, signal) = {
                    let o = op.borrow();
                    (o.data.clone(), o.signal.clone())
                };
                match http.exchange(&request, data.as_ref(), &signal).await {
                    Err(e) => Reply::Failed(e),
                    Ok(answer) => {
                        let headers = headers.iter().map(|h| answer.header(h)).collect();
                        if stream && is_success(answer.status) {
                            op.borrow_mut().reader = http::reader(&answer);
                            Reply::Opened { headers }
                        } else {
                            match answer.bytes().await {
                                Ok(body) => Reply::Answer { status: answer.status, headers, body },
                                Err(e) => Reply::Failed(e),
                            }
                        }
                    }
                }
            }
            Io::Read => {
                let (reader, signal) = {
                    let o = op.borrow();
                    (o.reader.clone(), o.signal.clone())
                };
                read(reader, &signal).await
            }
            Io::ReadData => {
                let reader = {
                    let mut o = op.borrow_mut();
                    if o.data_reader.is_none() {
                        o.data_reader = o.data.as_ref().map(|d| d.stream().get_reader().unchecked_into());
                    }
                    o.data_reader.clone()
                };
                read(reader, &JsValue::UNDEFINED).await
            }
            Io::Sleep(ms) => {
                js::sleep(ms).await;
                Reply::Done
            }
            Io::Progress { name, id, received, size } => {
                let (on_progress, signal) = {
                    let o = op.borrow();
                    (o.on_progress.clone(), o.signal.clone())
                };
                progress(&on_progress, name, &id, received, size)?;
                // Checked after the callback, so aborting from it sends nothing more.
                if js::aborted(&signal) {
                    return Err(error(ClientError::aborted("the transfer")));
                }
                Reply::Done
            }
            Io::Open(url) => match Socket::open(&url) {
                Some(socket) => {
                    op.borrow_mut().socket = Some(socket);
                    Reply::Done
                }
                None => Reply::Refused,
            },
            Io::Listen { idle_ms } => {
                let socket = op.borrow().socket.clone();
                let heard = match socket {
                    Some(s) => s.next(idle_ms).await,
                    None => Heard::Closed,
                };
                match heard {
                    Heard::Message(text) => Reply::Message(Some(text)),
                    Heard::Silence => Reply::Idle,
                    Heard::Closed => {
                        op.borrow_mut().socket = None;
                        Reply::Message(None)
                    }
                }
            }
            Io::Close => {
                if let Some(s) = op.borrow_mut().socket.take() {
                    s.close();
                }
                Reply::Done
            }
        };
        op.borrow_mut().machine.reply(reply).map_err(error)?;
    }
}
