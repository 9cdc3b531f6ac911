//! Submitting a job: its requests (NDJSON, from whatever the caller had) read
//! once through the worker's own validator and estimate, so a bad line or a
//! short balance is refused before anything is sent; then sent inline when
//! small, or as an input's parts (resumable, whole lines each) when large.

use super::call::{ClientError, Request, read, read_value};
use super::machine::{Io, Machine, Reply, answer_of, out_of_turn};
use super::resume::{Resume, ResumeStep};
use crate::jsonl::{LineSplitter, SplitError};
use crate::pricing::{EstimateRules, PriceTable, Quote};
use crate::submit::{Limits, Validator};
use serde_json::{Value, json};

/// The submission's fields that go to the server as they are (besides its
/// requests): everything else the caller passed is the client's own option.
pub const BODY_FIELDS: [&str; 6] = ["model", "displayName", "metadata", "webhook", "mode", "fallback"];
/// The longest line read (the worker's `MAX_LINE_BYTES` default).
pub const MAX_LINE_BYTES: usize = 8 << 20;

#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// Jobs of at most this many NDJSON bytes go inline in `POST /v1/jobs`
    /// (the worker takes JSON bodies up to 10 MB by default).
    pub inline_bytes: u64,
    /// Larger ones go through `/v1/inputs` in parts of at most this many
    /// bytes (the worker's `MAX_INPUT_PART_BYTES` is 64 MiB by default).
    pub part_bytes: u64,
}

impl Default for Sizes {
    fn default() -> Sizes {
        Sizes { inline_bytes: 4 << 20, part_bytes: 32 << 20 }
    }
}

/// Reads the job's NDJSON as it arrives: validates and counts each line,
/// keeps the bytes while they fit inline, and notes where parts would end.
pub struct Scan {
    model: String,
    validator: Validator,
    splitter: LineSplitter,
    sizes: Sizes,
    size: u64,
    kept: Option<Vec<u8>>,
    part_start: u64,
    last_end: u64,
    cuts: Vec<u64>,
    /// What the lines cost parsed, together (`json_shape::parse_cost`).
    cost: u64,
}

/// The job read whole: its quote, and how it will be sent.
#[derive(Debug)]
pub struct Scanned {
    pub quote: Quote,
    pub requests: u64,
    pub size: u64,
    pub send: Send,
}

#[derive(Debug)]
pub enum Send {
    /// Its NDJSON, to go in one JSON body.
    Inline(Vec<u8>),
    /// Its parts' ends (exclusive, ascending; the last is its size).
    Parts(Vec<u64>),
}

impl Scan {
    pub fn new(model: &str, rules: EstimateRules, sizes: Sizes) -> Scan {
        let model = crate::model::bare(model).to_string();
        Scan {
            validator: Validator::new(Limits::default()).with_estimate(rules).with_model(&model),
            model,
            splitter: LineSplitter::new(MAX_LINE_BYTES),
            sizes,
            size: 0,
            kept: Some(vec![]),
            part_start: 0,
            last_end: 0,
            cuts: vec![],
            cost: 0,
        }
    }

    pub fn chunk(&mut self, bytes: &[u8]) {
        for newline in memchr::memchr_iter(b'\n', bytes) {
            self.line_ends(self.size + newline as u64 + 1);
        }
        self.size = self.size.saturating_add(bytes.len() as u64);
        match &mut self.kept {
            Some(kept) if self.size <= self.sizes.inline_bytes => kept.extend_from_slice(bytes),
            _ => self.kept = None,
        }
        let (validator, cost) = (&mut self.validator, &mut self.cost);
        let fed = self.splitter.feed(bytes, |line, text| {
            *cost = cost.saturating_add(check_line(validator, line, text));
            Ok::<(), ()>(())
        });
        if let Err(SplitError::LineTooLong { line, limit }) = fed {
            self.validator.unreadable(line, too_long(limit));
            self.splitter = LineSplitter::new(MAX_LINE_BYTES); // one error is enough
        }
    }

    /// A line ends at `end`: the part running now is cut before it if it would grow past its size.
    fn line_ends(&mut self, end: u64) {
        if end - self.part_start > self.sizes.part_bytes && self.last_end > self.part_start {
            self.cuts.push(self.last_end);
            self.part_start = self.last_end;
        }
        self.last_end = end;
    }

    /// The verdict: `invalid_requests` naming the first bad line, or the
    /// quote at `prices` and how to send it.
    pub fn finish(mut self, prices: &PriceTable) -> Result<Scanned, ClientError> {
        let (validator, cost) = (&mut self.validator, &mut self.cost);
        let last = std::mem::replace(&mut self.splitter, LineSplitter::new(0)).finish(|line, text| {
            *cost = cost.saturating_add(check_line(validator, line, text));
            Ok::<(), ()>(())
        });
        if let Err(SplitError::LineTooLong { line, limit }) = last {
            self.validator.unreadable(line, too_long(limit));
        }
        if self.size > self.last_end {
            self.line_ends(self.size);
        }
        let summary = self.validator.finish().map_err(|(count, errors)| {
            let first =
                errors.first().map(|e| [" (line ", &e.line.to_string(), ": ", &e.message, ")"].concat());
            let message = [&count.to_string(), " invalid request(s)", &first.unwrap_or_default()].concat();
            ClientError::new("invalid_requests", message, 400).with_details(&json!(errors))
        })?;
        let price = prices.price(&self.model).ok_or_else(|| no_price(&self.model))?;
        let quote = price
            .quote(&summary.tokens)
            .ok_or_else(|| ClientError::new("quote_too_large", "the quote is too large to reserve", 400))?;
        // Inline only what the worker will parse whole: few bytes, and not
        // too many small values (`json_shape`); the rest streams in parts.
        let send = match self.kept {
            Some(kept) if self.cost <= crate::json_shape::MAX_BODY_COST => Send::Inline(kept),
            _ => {
                self.cuts.push(self.size);
                Send::Parts(self.cuts)
            }
        };
        Ok(Scanned { quote, requests: summary.count, size: self.size, send })
    }
}

/// A line checked as the worker will; returns what it costs parsed.
fn check_line(validator: &mut Validator, line: u64, text: &[u8]) -> u64 {
    if let Some(item) = validator.parse_line(line, text) {
        validator.check(line, item);
    }
    crate::json_shape::parse_cost(text)
}

fn too_long(limit: usize) -> String {
    ["longer than ", &limit.to_string(), " bytes"].concat()
}

/// `"model" has no price`, quoted by hand: `{:?}` would ship Unicode
/// escaping tables in the wasm.
pub fn no_price(model: &str) -> ClientError {
    ClientError::new("unknown_model", ["model \"", model, "\" has no price"].concat(), 400)
}

/// What the balance must cover: realtime (and a job that may fall back to
/// it) is reserved at the standard price; `auto` picks its lane on the
/// server, so the batch price is its floor.
pub fn needed(quote: &Quote, body: &Value) -> i64 {
    if body["mode"] == "realtime" || body["fallback"] == "realtime" { quote.standard } else { quote.batch }
}

/// Sends a scanned job: the balance first (a 402 without sending the job),
/// then the job inline or through an input, with its idempotency key.
pub struct Submit {
    body: Value,
    key: String,
    quote: Quote,
    size: u64,
    stage: Stage,
    /// An input an earlier attempt opened for these bytes: asked for first.
    reopen: Option<String>,
    reopening: bool,
}

enum Stage {
    Account(Send),
    Post,
    OpenInput(Vec<u64>),
    Sending(Resume, Sent),
    Done,
}

#[derive(Clone, Copy)]
enum Sent {
    Part,
    Status,
}

#[derive(Debug, PartialEq, Eq)]
pub enum SubmitStep {
    /// Send this, and report its answer with [`Submit::answered`].
    Call(Request),
    /// `received` of the input's `size` bytes are sent; stop here if the user aborted.
    Progress {
        received: u64,
        size: u64,
    },
    Sleep(u32),
}

impl Submit {
    /// `body`: the [`BODY_FIELDS`] the caller gave; `key`: the idempotency key.
    pub fn new(scanned: Scanned, body: Value, key: String) -> Submit {
        let stage = Stage::Account(scanned.send);
        Submit { body, key, quote: scanned.quote, size: scanned.size, stage, reopen: None, reopening: false }
    }

    /// Go on with the input an interrupted attempt at the same bytes opened
    /// (a new one if it is gone): its parts are not sent again.
    pub fn resuming(mut self, input: Option<String>) -> Submit {
        self.reopen = input;
        self
    }

    /// The input the job is being sent through, once it is open.
    pub fn input_id(&self) -> Option<&str> {
        self.body["input"].as_str()
    }

    pub fn step(&mut self) -> Result<SubmitStep, ClientError> {
        match &mut self.stage {
            Stage::Account(_) => Ok(SubmitStep::Call(Request::get("/v1/account"))),
            Stage::Post => {
                let post = Request::post("/v1/jobs", self.body.to_string());
                Ok(SubmitStep::Call(post.header("idempotency-key", self.key.clone())))
            }
            Stage::OpenInput(_) => {
                self.reopening = false;
                if let Some(id) = self.reopen.take() {
                    self.reopening = true;
                    return Ok(SubmitStep::Call(Request::get(super::paths::input(&id))));
                }
                Ok(SubmitStep::Call(Request::post("/v1/inputs", json!({ "size": self.size }).to_string())))
            }
            Stage::Sending(resume, sent) => Ok(match resume.step()? {
                ResumeStep::Progress { received, size } => SubmitStep::Progress { received, size },
                ResumeStep::Put(r) => {
                    *sent = Sent::Part;
                    SubmitStep::Call(r)
                }
                ResumeStep::Status(r) => {
                    *sent = Sent::Status;
                    SubmitStep::Call(r)
                }
                ResumeStep::Sleep(ms) => SubmitStep::Sleep(ms),
                ResumeStep::Done(_) => {
                    self.stage = Stage::Post;
                    return self.step();
                }
            }),
            Stage::Done => Err(ClientError::invalid_argument("the job was submitted already")),
        }
    }

    /// The answer to the last `Call` (`Err` for one that got none).
    pub fn answered(
        &mut self,
        answer: Result<(u16, &[u8]), ClientError>,
    ) -> Result<Option<String>, ClientError> {
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Account(send) => {
                let (status, body) = answer?;
                let balance = read_value(status, body)?["balance"].as_i64().unwrap_or(0);
                let needed = needed(&self.quote, &self.body);
                if balance < needed {
                    let message = [
                        "the job needs ",
                        &needed.to_string(),
                        " micro-credits and the balance is ",
                        &balance.to_string(),
                    ]
                    .concat();
                    let details = json!({ "quote": self.quote, "balance": balance, "needed": needed });
                    return Err(ClientError::new("insufficient_credits", message, 402).with_details(&details));
                }
                self.stage = match send {
                    Send::Inline(ndjson) => {
                        self.body["requests"] = requests_of(&ndjson)?;
                        Stage::Post
                    }
                    Send::Parts(cuts) => Stage::OpenInput(cuts),
                };
                Ok(None)
            }
            Stage::Post => {
                let (status, body) = answer?;
                Ok(Some(String::from_utf8_lossy(read(status, body)?).into_owned()))
            }
            Stage::OpenInput(cuts) => {
                let view = answer.and_then(|(status, body)| read_value(status, body));
                let view = match view {
                    Ok(v) if !self.reopening || v["state"] == "open" => v,
                    // The earlier input is gone or used: open a new one.
                    Ok(_) | Err(_) if self.reopening => {
                        self.stage = Stage::OpenInput(cuts);
                        return Ok(None);
                    }
                    other => other?,
                };
                self.body["input"] = view["id"].clone();
                self.stage = Stage::Sending(Resume::input(&view, cuts)?, Sent::Part);
                Ok(None)
            }
            Stage::Sending(mut resume, sent) => {
                let view = answer.and_then(|(status, body)| read_value(status, body));
                match sent {
                    Sent::Part => resume.put(view)?,
                    Sent::Status => resume.status(view)?,
                }
                self.stage = Stage::Sending(resume, sent);
                Ok(None)
            }
            Stage::Done => Err(ClientError::invalid_argument("the job was submitted already")),
        }
    }

    /// Run to the end with `call` doing each exchange (a test's scripted
    /// server); `on_progress` may stop it with an error.
    #[cfg(test)]
    pub fn run(
        mut self,
        mut call: impl FnMut(&Request) -> Result<(u16, Vec<u8>), ClientError>,
        mut on_progress: impl FnMut(u64, u64) -> Result<(), ClientError>,
        mut sleep: impl FnMut(u32),
    ) -> Result<String, ClientError> {
        loop {
            match self.step()? {
                SubmitStep::Call(request) => {
                    let answer = call(&request);
                    let done = self
                        .answered(answer.as_ref().map(|(s, b)| (*s, b.as_slice())).map_err(Clone::clone))?;
                    if let Some(view) = done {
                        return Ok(view);
                    }
                }
                SubmitStep::Progress { received, size } => on_progress(received, size)?,
                SubmitStep::Sleep(ms) => sleep(ms),
            }
        }
    }
}

/// `submit`: read the caller's data through a [`Scan`] (`ReadData`), then
/// send it with [`Submit`]; the job's view is the answer.
pub struct Submission {
    stage: Option<Phase>,
    view: Option<String>,
    reopen: Option<String>,
}

enum Phase {
    Scanning { scan: Box<Scan>, prices: PriceTable, body: Value, key: String },
    Sending(Box<Submit>),
}

impl Submission {
    pub fn new(scan: Scan, prices: PriceTable, body: Value, key: String) -> Submission {
        Submission {
            stage: Some(Phase::Scanning { scan: Box::new(scan), prices, body, key }),
            view: None,
            reopen: None,
        }
    }

    /// See [`Submit::resuming`].
    pub fn resuming(mut self, input: Option<String>) -> Submission {
        self.reopen = input;
        self
    }
}

impl Machine for Submission {
    fn step(&mut self) -> Result<Io, ClientError> {
        if let Some(view) = self.view.take() {
            return Ok(Io::Yield(view));
        }
        match &mut self.stage {
            None => Ok(Io::End),
            Some(Phase::Scanning { .. }) => Ok(Io::ReadData),
            Some(Phase::Sending(submit)) => Ok(match submit.step()? {
                SubmitStep::Call(request) => Io::Send { request, stream: false, headers: &[] },
                SubmitStep::Progress { received, size } => {
                    let id = submit.input_id().unwrap_or_default().to_string();
                    Io::Progress { name: "inputId", id, received, size }
                }
                SubmitStep::Sleep(ms) => Io::Sleep(ms),
            }),
        }
    }

    fn reply(&mut self, reply: Reply) -> Result<(), ClientError> {
        match (self.stage.take(), reply) {
            (Some(Phase::Scanning { mut scan, prices, body, key }), Reply::Chunk(Some(bytes))) => {
                scan.chunk(&bytes);
                self.stage = Some(Phase::Scanning { scan, prices, body, key });
            }
            (Some(Phase::Scanning { scan, prices, body, key }), Reply::Chunk(None)) => {
                let submit = Submit::new(scan.finish(&prices)?, body, key).resuming(self.reopen.take());
                self.stage = Some(Phase::Sending(Box::new(submit)));
            }
            // The caller's data could not be read (a file changed or gone).
            (Some(Phase::Scanning { .. }), Reply::Failed(e)) => return Err(e),
            (Some(Phase::Sending(submit)), Reply::Done) => self.stage = Some(Phase::Sending(submit)),
            (Some(Phase::Sending(mut submit)), reply) => {
                let answer = answer_of(reply);
                match submit
                    .answered(answer.as_ref().map(|(s, _, b)| (*s, b.as_slice())).map_err(Clone::clone))?
                {
                    Some(view) => self.view = Some(view),
                    None => self.stage = Some(Phase::Sending(submit)),
                }
            }
            (_, reply) => return Err(out_of_turn(&reply)),
        }
        Ok(())
    }
}

/// The NDJSON's lines as a JSON array (each line was validated already).
fn requests_of(ndjson: &[u8]) -> Result<Value, ClientError> {
    // The scan read past a UTF-8 BOM (as the worker does); so does this.
    let ndjson = ndjson.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(ndjson);
    let mut requests = vec![];
    for line in ndjson.split(|&b| b == b'\n') {
        if !line.iter().all(u8::is_ascii_whitespace) {
            let item = serde_json::from_slice(line).map_err(|e| {
                ClientError::invalid_argument(["a request is not JSON: ", &e.to_string()].concat())
            })?;
            requests.push(item);
        }
    }
    Ok(Value::Array(requests))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::call::{Body, Method};

    fn ndjson(n: usize, text: &str) -> Vec<u8> {
        let mut out = vec![];
        for i in 0..n {
            let key = format!("k{i:03}");
            let line = json!({"key": key, "request": {"contents": [{"parts": [{"text": text}]}]}});
            out.extend_from_slice(line.to_string().as_bytes());
            out.push(b'\n');
        }
        out
    }

    fn scan(data: &[u8], sizes: Sizes, chunk: usize) -> Result<Scanned, ClientError> {
        let mut s = Scan::new("models/gemini-2.5-flash", EstimateRules::default(), sizes);
        for c in data.chunks(chunk) {
            s.chunk(c);
        }
        s.finish(&PriceTable::default())
    }

    /// A worker that holds `balance`, takes inputs' parts and jobs; returns what it was sent.
    fn server(
        balance: i64,
        log: &mut Vec<String>,
    ) -> impl FnMut(&Request) -> Result<(u16, Vec<u8>), ClientError> + '_ {
        move |r: &Request| {
            let answer = match (r.method, r.path.as_str()) {
                (Method::Get, "/v1/account") => json!({"balance": balance}),
                (Method::Post, "/v1/inputs") => json!({"id": "in_1", "state": "open", "received": 0}),
                (Method::Put, "/v1/inputs/in_1") => {
                    let Body::Range { end, .. } = r.body else { panic!("a range") };
                    json!({"received": end, "lines": 1})
                }
                (Method::Post, "/v1/jobs") => {
                    let Body::Json(body) = &r.body else { panic!("JSON") };
                    let key = r.headers.iter().find(|h| h.0 == "idempotency-key").map(|h| h.1.clone());
                    log.push([body.as_str(), " key=", &key.unwrap_or_default()].concat());
                    json!({"id": "job_1", "state": "accepted"})
                }
                _ => panic!("unexpected {r:?}"),
            };
            log.push([r.method.as_str(), " ", &r.path].concat());
            Ok((200, answer.to_string().into_bytes()))
        }
    }

    #[test]
    fn a_small_job_goes_inline_with_its_key_once_the_balance_covers_it() {
        let data = ndjson(3, "hello");
        let scanned = scan(&data, Sizes::default(), 7).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((scanned.requests, scanned.size), (3, data.len() as u64));
        assert!(matches!(scanned.send, Send::Inline(ref b) if *b == data));
        let batch = scanned.quote.batch;
        let mut log = vec![];
        let body = json!({"model": "gemini-2.5-flash", "displayName": "d"});
        let view =
            Submit::new(scanned, body, "key1".into()).run(server(batch, &mut log), |_, _| Ok(()), |_| {});
        assert_eq!(view.as_deref(), Ok(r#"{"id":"job_1","state":"accepted"}"#));
        assert_eq!(log.first().map(String::as_str), Some("GET /v1/account"));
        let sent: Value =
            serde_json::from_str(log[1].split(" key=").next().unwrap_or_default()).unwrap_or_default();
        assert_eq!(sent["requests"].as_array().map(Vec::len), Some(3));
        assert_eq!(
            (sent["displayName"].as_str(), sent["model"].as_str()),
            (Some("d"), Some("gemini-2.5-flash"))
        );
        assert!(log[1].ends_with(" key=key1"));
    }

    #[test]
    fn a_small_file_of_many_small_requests_goes_in_parts_not_in_one_json_body() {
        // 2.7 MB, under the inline size, but 180,000 objects: more than the worker parses whole.
        let data = ndjson(45_000, "hi");
        assert!((data.len() as u64) < Sizes::default().inline_bytes);
        let scanned = scan(&data, Sizes::default(), 1 << 16).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(matches!(scanned.send, Send::Parts(_)), "{:?}", scanned.send);
        let few = scan(&ndjson(1_000, "hi"), Sizes::default(), 1 << 16).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(matches!(few.send, Send::Inline(_)));
    }

    #[test]
    fn a_large_job_goes_in_parts_of_whole_lines_then_the_job_names_its_input() {
        let data = ndjson(40, &"x".repeat(100));
        let line = data.iter().position(|&b| b == b'\n').map_or(0, |p| p + 1) as u64;
        let sizes = Sizes { inline_bytes: 1000, part_bytes: 5 * line + 3 };
        let scanned = scan(&data, sizes, 333).unwrap_or_else(|e| panic!("{e:?}"));
        let Send::Parts(cuts) = &scanned.send else { panic!("parts") };
        assert_eq!(cuts.len(), 8, "five lines a part");
        assert!(cuts.iter().all(|c| c % line == 0), "every part ends a line");
        let (mut log, mut progress) = (vec![], vec![]);
        let body = json!({"model": "gemini-2.5-flash", "mode": "realtime"});
        let standard = scanned.quote.standard;
        let view = Submit::new(scanned, body, "k".into()).run(
            server(standard, &mut log),
            |received, _| {
                progress.push(received);
                Ok(())
            },
            |_| {},
        );
        assert!(view.is_ok(), "{view:?}");
        assert_eq!(progress.len(), 9);
        assert_eq!(progress.last().copied(), Some(data.len() as u64));
        let job = log.iter().find(|l| l.starts_with('{')).cloned().unwrap_or_default();
        assert!(job.contains(r#""input":"in_1""#) && !job.contains("requests"), "{job}");
    }

    #[test]
    fn a_short_balance_and_bad_lines_are_refused_before_the_job_is_sent() {
        let data = ndjson(2, "hi");
        let scanned = scan(&data, Sizes::default(), 1 << 20).unwrap_or_else(|e| panic!("{e:?}"));
        let (batch, standard) = (scanned.quote.batch, scanned.quote.standard);
        let mut log = vec![];
        // Enough for batch, not for realtime (reserved at the standard price).
        let body = json!({"model": "gemini-2.5-flash", "fallback": "realtime"});
        let e = Submit::new(scanned, body, "k".into()).run(server(batch, &mut log), |_, _| Ok(()), |_| {});
        let e = e.err().unwrap_or_else(|| panic!("refused"));
        assert_eq!((e.code.as_str(), e.status), ("insufficient_credits", 402));
        let details: Value = serde_json::from_str(e.details.as_deref().unwrap_or("")).unwrap_or_default();
        assert_eq!((details["needed"].as_i64(), details["balance"].as_i64()), (Some(standard), Some(batch)));
        assert_eq!(log, ["GET /v1/account"], "nothing else was sent");

        let bad = scan(b"{\"request\":{\"contents\":[]}}\nnot json\n", Sizes::default(), 5);
        let e = bad.err().unwrap_or_else(|| panic!("refused"));
        assert_eq!((e.code.as_str(), e.status), ("invalid_requests", 400));
        assert!(e.message.starts_with("2 invalid request(s) (line 1:"), "{}", e.message);
        assert!(scan(b"", Sizes::default(), 5).is_err_and(|e| e.message.contains("no requests")));
        let mut s = Scan::new("gpt-4", EstimateRules::default(), Sizes::default());
        s.chunk(&data);
        assert!(s.finish(&PriceTable::default()).is_err_and(|e| e.message == "model \"gpt-4\" has no price"));
    }

    #[test]
    fn a_rerun_goes_on_with_the_input_its_interrupted_attempt_opened() {
        let data = ndjson(20, &"y".repeat(100));
        let line = data.iter().position(|&b| b == b'\n').map_or(0, |p| p + 1) as u64;
        let sizes = Sizes { inline_bytes: 10, part_bytes: 5 * line };
        let scanned = scan(&data, sizes, 4096).unwrap_or_else(|e| panic!("{e:?}"));
        let standard = scanned.quote.standard;
        let mut puts = vec![];
        let server = |r: &Request| -> Result<(u16, Vec<u8>), ClientError> {
            let answer = match (r.method, r.path.as_str()) {
                (Method::Get, "/v1/account") => json!({"balance": standard}),
                // The first attempt sent two parts before it was killed.
                (Method::Get, "/v1/inputs/in_old") => {
                    json!({"id": "in_old", "state": "open", "received": 10 * line})
                }
                (Method::Put, "/v1/inputs/in_old") => {
                    let Body::Range { start, end } = r.body else { panic!("a range") };
                    puts.push(start / line);
                    json!({"received": end, "lines": end / line})
                }
                (Method::Post, "/v1/jobs") => json!({"id": "job_1"}),
                _ => panic!("unexpected {r:?}"),
            };
            Ok((200, answer.to_string().into_bytes()))
        };
        let body = json!({"model": "gemini-2.5-flash"});
        let submit = Submit::new(scanned, body, "k".into()).resuming(Some("in_old".into()));
        assert!(submit.run(server, |_, _| Ok(()), |_| {}).is_ok());
        assert_eq!(puts, [10, 15], "only the parts the server lacks");

        // An input that is gone (expired, or used by a job) is replaced by a new one.
        let scanned = scan(&data, sizes, 4096).unwrap_or_else(|e| panic!("{e:?}"));
        let mut log = vec![];
        let submit = Submit::new(scanned, json!({"model": "gemini-2.5-flash"}), "k".into())
            .resuming(Some("in_gone".into()));
        assert!(submit.run(server_gone(standard, &mut log), |_, _| Ok(()), |_| {}).is_ok());
        assert!(log.iter().any(|l| l == "POST /v1/inputs"), "{log:?}");
    }

    fn server_gone(
        balance: i64,
        log: &mut Vec<String>,
    ) -> impl FnMut(&Request) -> Result<(u16, Vec<u8>), ClientError> + '_ {
        let mut inner = server(balance, log);
        move |r: &Request| {
            if r.path == "/v1/inputs/in_gone" {
                return Ok((404, br#"{"error":{"code":"not_found","message":"no such input"}}"#.to_vec()));
            }
            inner(r)
        }
    }

    #[test]
    fn a_small_file_with_a_byte_order_mark_goes_inline_as_it_was_quoted() {
        let mut data = b"\xEF\xBB\xBF".to_vec();
        data.extend(ndjson(2, "bom"));
        let scanned = scan(&data, Sizes::default(), 2).unwrap_or_else(|e| panic!("{e:?}"));
        let batch = scanned.quote.batch;
        let mut log = vec![];
        let view = Submit::new(scanned, json!({"model": "gemini-2.5-flash"}), "k".into()).run(
            server(batch, &mut log),
            |_, _| Ok(()),
            |_| {},
        );
        assert!(view.is_ok(), "{view:?}");
    }
}
