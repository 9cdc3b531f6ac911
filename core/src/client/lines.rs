//! A job's results: NDJSON pages, followed by their `batchgate-next-cursor`,
//! each split into lines as its bytes arrive, so a large result set never
//! sits in memory whole.

use super::call::{ClientError, Request, check};
use super::machine::{Io, Machine, Reply, out_of_turn};
use super::paths::{job_part, query};
use super::submit::no_price;
use crate::pricing::{PriceTable, Quote, Tokens};
use crate::results::{Outcome, outcome_of};
use std::collections::VecDeque;

/// Lines per page asked for.
pub const PAGE_LIMIT: u32 = 1000;

/// The pages of `GET /v1/jobs/:id/results`, one request at a time.
#[derive(Debug)]
pub struct Pages {
    base: String,
    only_failed: bool,
    cursor: Option<String>,
    started: bool,
}

impl Pages {
    pub fn new(id: &str, only_failed: bool) -> Pages {
        Pages { base: job_part(id, "results"), only_failed, cursor: None, started: false }
    }

    /// The next page's request; `None` once the last page was read.
    pub fn next_page(&mut self) -> Option<Request> {
        if self.started && self.cursor.is_none() {
            return None;
        }
        self.started = true;
        let q = query(&[
            ("limit", Some(PAGE_LIMIT.to_string())),
            ("only", self.only_failed.then(|| "failed".to_string())),
            ("cursor", self.cursor.take()),
        ]);
        Some(Request::get([self.base.as_str(), &q].concat()))
    }

    /// The page's `batchgate-next-cursor` header, if it had one.
    pub fn answered(&mut self, next_cursor: Option<String>) {
        self.cursor = next_cursor.filter(|c| !c.is_empty());
    }
}

/// Bytes in, whole non-blank lines out (a line or a character may be split
/// across chunks). Only new bytes are searched: a long line stays linear.
#[derive(Debug, Default)]
pub struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<String>) {
        let Some(last) = memchr::memrchr(b'\n', chunk) else {
            self.partial.extend_from_slice(chunk);
            return;
        };
        let (complete, rest) = chunk.split_at(last);
        self.partial.extend_from_slice(complete);
        for line in self.partial.split(|&b| b == b'\n') {
            push_line(line, out);
        }
        self.partial.clear();
        self.partial.extend_from_slice(rest.get(1..).unwrap_or_default());
    }

    /// The body ended: its last line, if it had no newline.
    pub fn finish(&mut self, out: &mut Vec<String>) {
        push_line(&std::mem::take(&mut self.partial), out);
    }
}

fn push_line(line: &[u8], out: &mut Vec<String>) {
    if !line.iter().all(u8::is_ascii_whitespace) {
        out.push(String::from_utf8_lossy(line).trim().to_string());
    }
}

/// `results`: every line of every page, one at a time.
pub struct Results {
    pages: Pages,
    lines: Lines,
    ready: VecDeque<String>,
    open: bool,
}

impl Results {
    pub fn new(id: &str, only_failed: bool) -> Results {
        Results {
            pages: Pages::new(id, only_failed),
            lines: Lines::default(),
            ready: VecDeque::new(),
            open: false,
        }
    }
}

impl Machine for Results {
    fn step(&mut self) -> Result<Io, ClientError> {
        if let Some(line) = self.ready.pop_front() {
            return Ok(Io::Yield(line));
        }
        if self.open {
            return Ok(Io::Read);
        }
        Ok(match self.pages.next_page() {
            Some(request) => Io::Send { request, stream: true, headers: &["batchgate-next-cursor"] },
            None => Io::End,
        })
    }

    fn reply(&mut self, reply: Reply) -> Result<(), ClientError> {
        let mut out = vec![];
        match reply {
            Reply::Opened { mut headers } => {
                self.pages.answered(headers.pop().flatten());
                self.open = true;
            }
            Reply::Answer { status, mut headers, body } => {
                check(status, &body)?;
                self.pages.answered(headers.pop().flatten());
                self.lines.feed(&body, &mut out);
                self.lines.finish(&mut out);
            }
            Reply::Chunk(Some(bytes)) => self.lines.feed(&bytes, &mut out),
            Reply::Chunk(None) => {
                self.lines.finish(&mut out);
                self.open = false;
            }
            Reply::Failed(e) => return Err(e),
            other => return Err(out_of_turn(&other)),
        }
        self.ready.extend(out);
        Ok(())
    }
}

/// A result line no JSON parser can read (`invalid_result`, the line in `details`).
pub fn unreadable(line: &str, why: &str) -> ClientError {
    ClientError::new("invalid_result", ["an unreadable result line: ", why].concat(), 0)
        .with_details(&serde_json::json!({ "line": line }))
}

/// What one result line cost, from its `usageMetadata`, counted as the
/// server counts it (an error line costs nothing).
pub fn result_cost(prices: &PriceTable, model: &str, line: &[u8]) -> Result<Quote, ClientError> {
    let model = crate::model::bare(model);
    let price = prices.price(model).ok_or_else(|| no_price(model))?;
    let line: serde_json::Value = serde_json::from_slice(line)
        .map_err(|e| ClientError::invalid_argument(["a result line is JSON: ", &e.to_string()].concat()))?;
    let usage = match outcome_of(&line) {
        Outcome::Success(u) => u,
        _ => Default::default(),
    };
    price.quote(&Tokens::from(&usage)).ok_or_else(|| ClientError::invalid_argument("the cost is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_whole_across_chunk_boundaries_and_split_characters() {
        let e = "{\"key\":\"é\"}\n".as_bytes();
        let mut lines = Lines::default();
        let mut out = vec![];
        for chunk in [
            &b"{\"key\":\"a\",\"resp"[..],
            b"onse\":{}}\n{\"ke",
            b"y\":\"b\"}\r\n\n  \n",
            &e[..9],
            &e[9..],
            b"{\"key\":\"c\"}",
        ] {
            lines.feed(chunk, &mut out);
        }
        lines.finish(&mut out);
        assert_eq!(
            out,
            ["{\"key\":\"a\",\"response\":{}}", "{\"key\":\"b\"}", "{\"key\":\"é\"}", "{\"key\":\"c\"}"]
        );
    }

    #[test]
    fn pages_follow_the_cursor_to_the_end() {
        let mut pages = Pages::new("job/1", true);
        let first = pages.next_page().map(|r| r.path);
        assert_eq!(first.as_deref(), Some("/v1/jobs/job%2F1/results?limit=1000&only=failed"));
        pages.answered(Some("page 2".into()));
        let second = pages.next_page().map(|r| r.path);
        assert_eq!(
            second.as_deref(),
            Some("/v1/jobs/job%2F1/results?limit=1000&only=failed&cursor=page%202")
        );
        pages.answered(None);
        assert_eq!(pages.next_page(), None);
        let e = unreadable("{x", "bad");
        assert_eq!((e.code.as_str(), e.details.as_deref()), ("invalid_result", Some(r#"{"line":"{x"}"#)));
    }

    #[test]
    fn a_result_line_costs_its_usage_and_an_error_nothing() {
        let prices = PriceTable::default();
        let ok = br#"{"key":"a","response":{"usageMetadata":{"promptTokenCount":10,"cachedContentTokenCount":4,"candidatesTokenCount":3,"thoughtsTokenCount":2,"totalTokenCount":15}}}"#;
        let q = result_cost(&prices, "models/gemini-2.5-flash", ok).unwrap_or_default();
        // 6 input × 300 + 4 cached × 30 + 5 output × 2,500 = 14,420 standard.
        assert_eq!((q.standard, q.batch), (14_420, 7_210));
        let err = br#"{"key":"b","error":{"code":3,"message":"bad"}}"#;
        assert_eq!(result_cost(&prices, "gemini-2.5-flash", err).map(|q| q.batch), Ok(0));
        assert!(result_cost(&prices, "nope", ok).is_err());
    }
}
