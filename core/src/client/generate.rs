//! `POST /v1/generate`: one request answered now, whole or streamed as
//! server-sent events. The cost rides in the `batchgate-cost` header or,
//! streamed, in a last `: batchgate-cost {json}` comment.

use super::call::{ClientError, Request, check};
use super::machine::{Io, Machine, Reply, answer_of, out_of_turn};
use std::collections::VecDeque;

/// The call: `request` is a `GenerateContentRequest` as JSON text.
pub fn request(model: &str, request: &str, stream: bool) -> Request {
    let model = serde_json::Value::from(model).to_string();
    let path = if stream { "/v1/generate?alt=sse" } else { "/v1/generate" };
    Request::post(path, ["{\"model\":", &model, ",\"request\":", request, "}"].concat())
}

#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A `data:` event (its lines joined by `\n`).
    Data(String),
    /// A `:` comment line.
    Comment(String),
}

/// Bytes in, events out, as they complete (lines may end `\r\n`; an event
/// or a character may be split across chunks).
#[derive(Debug, Default)]
pub struct Sse {
    buffer: Vec<u8>,
    data: Vec<String>,
}

impl Sse {
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Event>) {
        self.buffer.extend_from_slice(chunk);
        let Some(last) = memchr::memrchr(b'\n', &self.buffer) else { return };
        let rest = self.buffer.split_off(last + 1);
        let mut complete = std::mem::replace(&mut self.buffer, rest);
        complete.pop(); // its last newline: what follows it is not a (blank) line yet
        for raw in complete.split(|&b| b == b'\n') {
            self.line(raw, out);
        }
    }

    /// The stream ended: a last event without its blank line still counts.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        let rest = std::mem::take(&mut self.buffer);
        if !rest.is_empty() {
            self.line(&rest, out);
        }
        self.line(b"", out);
    }

    fn line(&mut self, raw: &[u8], out: &mut Vec<Event>) {
        let text = String::from_utf8_lossy(raw);
        let line = text.strip_suffix('\r').unwrap_or(&text);
        if line.is_empty() {
            if !self.data.is_empty() {
                out.push(Event::Data(self.data.join("\n")));
                self.data.clear();
            }
        } else if let Some(data) = line.strip_prefix("data:") {
            self.data.push(data.strip_prefix(' ').unwrap_or(data).to_string());
        } else if let Some(comment) = line.strip_prefix(':') {
            out.push(Event::Comment(comment.trim().to_string()));
        }
    }
}

/// The cost (JSON text) a `batchgate-cost` comment carries.
pub fn cost_of(comment: &str) -> Option<&str> {
    comment.strip_prefix("batchgate-cost ").map(str::trim)
}

/// A chunk that is Gemini breaking off mid-stream (`{"error": …}`): a
/// `gemini_error` (502) rather than a chunk.
pub fn chunk_error(data: &str) -> Option<ClientError> {
    if !data.contains("\"error\"") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(data.as_bytes()).ok()?;
    let error = value.get("error")?;
    let message = error["message"].as_str().unwrap_or("Gemini broke off");
    Some(ClientError::new("gemini_error", message, 502).with_details(error))
}

/// JSON text as it came if it is JSON, `null` otherwise (a header may be missing or mangled).
fn json_or_null(text: Option<&str>) -> &str {
    text.filter(|t| serde_json::from_slice::<serde_json::Value>(t.as_bytes()).is_ok()).unwrap_or("null")
}

/// `generate`: `{response, cost, callId}` of one call answered whole.
pub struct Generate {
    request: Option<Request>,
    answer: Option<String>,
}

impl Generate {
    pub fn new(model: &str, body: &str) -> Generate {
        Generate { request: Some(request(model, body, false)), answer: None }
    }
}

impl Machine for Generate {
    fn step(&mut self) -> Result<Io, ClientError> {
        if let Some(answer) = self.answer.take() {
            return Ok(Io::Yield(answer));
        }
        match self.request.take() {
            Some(request) => {
                Ok(Io::Send { request, stream: false, headers: &["batchgate-cost", "batchgate-call-id"] })
            }
            None => Ok(Io::End),
        }
    }

    fn reply(&mut self, reply: Reply) -> Result<(), ClientError> {
        let (status, headers, body) = answer_of(reply)?;
        check(status, &body)?;
        let header = |i: usize| headers.get(i).cloned().flatten();
        let cost = header(0);
        let call_id = header(1).map(|id| serde_json::to_string(&id).unwrap_or_default());
        let response = String::from_utf8_lossy(&body);
        let parts = [
            "{\"response\":",
            json_or_null(Some(&response)),
            ",\"cost\":",
            json_or_null(cost.as_deref()),
            ",\"callId\":",
            json_or_null(call_id.as_deref()),
            "}",
        ];
        self.answer = Some(parts.concat());
        Ok(())
    }
}

/// `generateStream`: Gemini's chunks as they arrive, then the call's cost
/// (its [`Machine::outcome`]; none if the stream broke off first).
pub struct Stream {
    request: Option<Request>,
    sse: Sse,
    events: VecDeque<Event>,
    open: bool,
    cost: Option<String>,
}

impl Stream {
    pub fn new(model: &str, body: &str) -> Stream {
        Stream {
            request: Some(request(model, body, true)),
            sse: Sse::default(),
            events: VecDeque::new(),
            open: false,
            cost: None,
        }
    }
}

impl Machine for Stream {
    fn step(&mut self) -> Result<Io, ClientError> {
        if let Some(request) = self.request.take() {
            return Ok(Io::Send { request, stream: true, headers: &[] });
        }
        while let Some(event) = self.events.pop_front() {
            match event {
                Event::Comment(c) => {
                    if let Some(cost) = cost_of(&c) {
                        self.cost = Some(json_or_null(Some(cost)).to_string());
                    }
                }
                Event::Data(data) => match chunk_error(&data) {
                    Some(e) => return Err(e),
                    None => return Ok(Io::Yield(data)),
                },
            }
        }
        Ok(if self.open { Io::Read } else { Io::End })
    }

    fn reply(&mut self, reply: Reply) -> Result<(), ClientError> {
        let mut out = vec![];
        match reply {
            Reply::Opened { .. } => self.open = true,
            Reply::Chunk(Some(bytes)) => self.sse.feed(&bytes, &mut out),
            Reply::Chunk(None) => {
                self.sse.finish(&mut out);
                self.open = false;
            }
            Reply::Answer { status, body, .. } => {
                // A refusal, or a transport that read the body whole.
                check(status, &body)?;
                self.sse.feed(&body, &mut out);
                self.sse.finish(&mut out);
            }
            Reply::Failed(e) => return Err(e),
            other => return Err(out_of_turn(&other)),
        }
        self.events.extend(out);
        Ok(())
    }

    fn outcome(&self) -> Option<String> {
        self.cost.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_whole_across_chunk_boundaries_then_the_cost() {
        let mut sse = Sse::default();
        let mut out = vec![];
        for chunk in [
            "data: {\"n\":1}\r\n",
            "\r\ndata: {\"n\"",
            ":2}\n\n: batchgate-co",
            "st {\"standard\":3,\"charged\":3}\n\n",
        ] {
            sse.feed(chunk.as_bytes(), &mut out);
        }
        sse.finish(&mut out);
        assert_eq!(
            out,
            [
                Event::Data("{\"n\":1}".into()),
                Event::Data("{\"n\":2}".into()),
                Event::Comment("batchgate-cost {\"standard\":3,\"charged\":3}".into())
            ]
        );
        assert_eq!(cost_of("batchgate-cost {\"a\":1}"), Some("{\"a\":1}"));
        assert_eq!(cost_of("keepalive"), None);
    }

    #[test]
    fn a_last_event_without_its_blank_line_counts_and_an_error_chunk_is_an_error() {
        let mut sse = Sse::default();
        let mut out = vec![];
        sse.feed(b"data: a\ndata: b", &mut out);
        assert!(out.is_empty());
        sse.finish(&mut out);
        assert_eq!(out, [Event::Data("a\nb".into())]);
        let e = chunk_error(r#"{"error":{"code":500,"message":"broke"}}"#);
        assert_eq!(
            e.map(|e| (e.code, e.message, e.status)),
            Some(("gemini_error".into(), "broke".into(), 502))
        );
        assert_eq!(
            chunk_error(r#"{"candidates":[{"content":{"parts":[{"text":"no \"error\" here"}]}}]}"#),
            None
        );
    }

    #[test]
    fn the_call_quotes_the_model() {
        let r = request("m\"x", "{\"contents\":[]}", true);
        assert_eq!(r.path, "/v1/generate?alt=sse");
        assert_eq!(
            r.body,
            super::super::call::Body::Json(r#"{"model":"m\"x","request":{"contents":[]}}"#.into())
        );
    }

    #[test]
    fn a_generate_answer_carries_its_cost_and_call_id() {
        let mut g = Generate::new("m", "{}");
        let answer = super::super::machine::run(&mut g, |io| {
            assert!(matches!(io, Io::Send { ref request, .. } if request.path == "/v1/generate"));
            let headers = vec![Some(r#"{"standard":7,"charged":7}"#.into()), Some("gen_1".into())];
            Ok(Some(Reply::Answer { status: 200, headers, body: br#"{"candidates":[]}"#.to_vec() }))
        });
        assert_eq!(
            answer,
            Ok(Some(
                r#"{"response":{"candidates":[]},"cost":{"standard":7,"charged":7},"callId":"gen_1"}"#.into()
            ))
        );
        let mut g = Generate::new("m", "{}");
        let answer = super::super::machine::run(&mut g, |_| {
            Ok(Some(Reply::Answer {
                status: 200,
                headers: vec![Some("{broken".into()), None],
                body: b"{}".to_vec(),
            }))
        });
        assert_eq!(
            answer,
            Ok(Some(r#"{"response":{},"cost":null,"callId":null}"#.into())),
            "a mangled header is no cost"
        );
    }

    #[test]
    fn a_stream_yields_each_chunk_then_ends_with_its_cost() {
        let mut s = Stream::new("m", "{}");
        let mut chunks =
            vec!["data: {\"n\":1}\n\n", "data: {\"n\":2}\n\n: batchgate-cost {\"charged\":3}\n\n"]
                .into_iter();
        let mut seen = vec![];
        loop {
            let next = super::super::machine::run(&mut s, |io| match io {
                Io::Send { stream: true, .. } => Ok(Some(Reply::Opened { headers: vec![] })),
                Io::Read => Ok(Some(Reply::Chunk(chunks.next().map(|c| c.as_bytes().to_vec())))),
                other => panic!("{other:?}"),
            });
            match next {
                Ok(Some(chunk)) => seen.push(chunk),
                Ok(None) => break,
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(seen, ["{\"n\":1}", "{\"n\":2}"]);
        assert_eq!(s.outcome().as_deref(), Some("{\"charged\":3}"));
        let mut refused = Stream::new("m", "{}");
        let e = super::super::machine::run(&mut refused, |_| {
            Ok(Some(Reply::Answer {
                status: 402,
                headers: vec![],
                body: br#"{"error":{"code":"insufficient_credits","message":"no"}}"#.to_vec(),
            }))
        });
        assert!(e.is_err_and(|e| e.status == 402));
    }
}
