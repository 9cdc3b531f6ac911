//! `POST /v1/generate`: one request answered now, whole or streamed as
//! server-sent events. The cost rides in the `batchgate-cost` header or,
//! streamed, in a last `: batchgate-cost {json}` comment.

use super::call::{ClientError, Request};

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
    let value: serde_json::Value = serde_json::from_str(data).ok()?;
    let error = value.get("error")?;
    let message = error["message"].as_str().unwrap_or("Gemini broke off");
    Some(ClientError::new("gemini_error", message, 502).with_details(error))
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
}
