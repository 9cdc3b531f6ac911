//! The realtime lane: a request answered now, at the standard price, beside
//! the batch lane's half price. Its rules: which Gemini key may take one more
//! request for a model this minute (Gemini's requests-per-minute limit, kept
//! here so batchgate never draws the 429 itself), what a call is charged
//! (the usage Gemini reports; the reserved ceiling when it reports none), and
//! reading that usage from an answer, whole or streamed as server-sent events.

use crate::pricing::{Price, Tokens};
use crate::quota::Caps;
use crate::results::{RawUsage, Usage};
use serde::Deserialize;
use serde::de::IgnoredAny;

/// Ledger ids of `POST /v1/generate` calls start so (job ids are hex): the
/// account counts them apart from jobs.
pub const GENERATE_PREFIX: &str = "gen_";

pub fn is_generate(ledger_job: &str) -> bool {
    ledger_job.starts_with(GENERATE_PREFIX)
}

/// Tier 1's published requests per minute (the lowest paid tier: a safe start).
pub fn default_rpm() -> Caps {
    Caps::new(
        150,
        &[
            ("gemini-2.5-pro", 150),
            ("gemini-2.5-flash", 1_000),
            ("gemini-2.5-flash-lite", 4_000),
            ("gemini-2.0-flash", 2_000),
            ("gemini-2.0-flash-lite", 4_000),
            ("gemini-3-pro", 50),
        ],
    )
}

/// `REALTIME_RPM`: `{"model-prefix": requests per minute, …, "*": default}` over [`default_rpm`].
pub fn rpm_caps(json: Option<&str>) -> Result<Caps, String> {
    let Some(text) = json else { return Ok(default_rpm()) };
    // A limit of 0 would admit nothing, ever: every call would wait for a slot that never comes.
    if serde_json::from_str::<std::collections::BTreeMap<String, u64>>(text)
        .is_ok_and(|m| m.values().any(|n| *n == 0))
    {
        return Err("REALTIME_RPM: a limit must be at least 1 request a minute".into());
    }
    default_rpm().overridden("REALTIME_RPM", text)
}

/// A call counts against the minute from its admission, a little before
/// Gemini sees it; it counts this much longer here, so that Gemini, counting
/// from when it arrives, never sees more than the limit in its minute.
pub const WINDOW_MARGIN_MS: u64 = 1_000;

/// How long the limiter must remember a call.
pub const REMEMBER_MS: u64 = crate::window::MINUTE_MS + WINDOW_MARGIN_MS;

/// What one key sent for a model in the last minute.
pub struct KeyLoad<'a> {
    pub key: &'a str,
    pub recent_ms: &'a [u64],
}

/// The key that may send one more request now (the least loaded of those with
/// room), or how many milliseconds until one has room.
pub fn pick_key<'a>(loads: &[KeyLoad<'a>], now_ms: u64, rpm: u64) -> Result<&'a str, u64> {
    let mut wait = u64::MAX;
    let mut best: Option<(&str, usize)> = None;
    // Judged a margin in the past: a call counts for the minute and the margin.
    let then = now_ms.saturating_sub(WINDOW_MARGIN_MS);
    for load in loads {
        match crate::window::admit(load.recent_ms, then, rpm) {
            Ok(()) => {
                let n = load.recent_ms.iter().filter(|t| **t + crate::window::MINUTE_MS > then).count();
                if best.is_none_or(|(_, m)| n < m) {
                    best = Some((load.key, n));
                }
            }
            Err(w) => wait = wait.min(w),
        }
    }
    best.map(|(k, _)| k).ok_or(if loads.is_empty() { crate::window::MINUTE_MS } else { wait })
}

/// What a realtime call costs: `charge` = `standard` (no discount in this lane).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bill {
    pub charge: i64,
    /// Gemini reported the usage; otherwise the call is charged its reserved
    /// ceiling (it ran, and what it used is unknown: never less than it may have cost).
    pub measured: bool,
}

pub fn bill(price: &Price, usage: Option<&Usage>, reserved: i64) -> Bill {
    match usage {
        Some(u) => Bill { charge: price.standard(&Tokens::from(u)), measured: true },
        None => Bill { charge: reserved.max(0), measured: false },
    }
}

/// A Gemini error answer, as the realtime lane's user gets it: Gemini's
/// status, a `gemini_*` code and Gemini's own error in the details. A key
/// Gemini refused is batchgate's problem, not the user's: 503, and nothing
/// of Gemini's message (it names the key's project).
#[derive(Clone, Debug, PartialEq)]
pub struct Refused {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub retry_after_secs: Option<u64>,
    pub gemini: Option<crate::gemini::status::Status>,
    pub key_refused: bool,
}

pub fn refused(status: u16, body: &[u8]) -> Refused {
    let envelope: Option<crate::gemini::status::ErrorEnvelope> = serde_json::from_slice(body).ok();
    if status == 401 || envelope.as_ref().is_some_and(|e| e.refuses_the_key()) {
        return Refused {
            status: 503,
            code: "gemini_key_refused".into(),
            message: "Gemini refused batchgate's API key; the operator must replace it (GET /v1/admin/keys)"
                .into(),
            retry_after_secs: Some(60),
            gemini: None,
            key_refused: true,
        };
    }
    let name = envelope.as_ref().and_then(|e| e.error.status.as_deref()).map(str::to_ascii_lowercase);
    let retry_after_secs = match status {
        429 | 503 => {
            Some(envelope.as_ref().and_then(|e| e.retry_delay_ms()).map_or(30, |ms| ms.div_ceil(1000).max(1)))
        }
        _ => None,
    };
    Refused {
        status: if (400..600).contains(&status) { status } else { 502 },
        code: name.map_or_else(|| format!("gemini_http_{status}"), |n| format!("gemini_{n}")),
        message: envelope.as_ref().map_or_else(
            || format!("Gemini answered HTTP {status}"),
            |e| format!("Gemini refused the request: {}", e.error.message),
        ),
        retry_after_secs,
        gemini: envelope.map(|e| e.error),
        key_refused: false,
    }
}

/// A realtime job's result line for `key`: Gemini's answer, compacted to one
/// line (Gemini may pretty-print), as a batch result line is written.
/// `None`: the answer is not JSON.
pub fn answer_line(key: &str, body: &[u8]) -> Option<Vec<u8>> {
    let response: serde_json::Value = serde_json::from_slice(body).ok()?;
    let mut out = serde_json::to_vec(&serde_json::json!({"key": key, "response": response})).ok()?;
    out.push(b'\n');
    Some(out)
}

/// The error line of a request the realtime lane could not answer: a
/// `google.rpc.Status` with the gRPC code of Gemini's HTTP status.
pub fn error_line(key: &str, http_status: u16, message: &str) -> Vec<u8> {
    let code = crate::gemini::status::Code::from_http_status(http_status) as i32;
    let line = serde_json::json!({"key": key, "error": {"code": code, "message": message}});
    let mut out = line.to_string().into_bytes();
    out.push(b'\n');
    out
}

/// Index a stored realtime shard's results (whole lines, each ending `\n`):
/// each line's place and outcome, and what they hold together.
pub fn index_answers(bytes: &[u8]) -> (Vec<crate::ingest::LineRecord>, crate::results::Tally) {
    let mut records = vec![];
    let mut tally = crate::results::Tally::default();
    let mut offset = 0u64;
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        if !body.is_empty() {
            let scanned = crate::results::scan_line(body);
            tally.add(&scanned.outcome);
            records.push(crate::ingest::LineRecord {
                number: records.len() as u64 + 1,
                offset,
                len: body.len() as u64,
                key: scanned.key.map(|k| k.to_string()),
                outcome: scanned.outcome,
            });
        }
        offset += line.len() as u64;
    }
    (records, tally)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    usage_metadata: Option<RawUsage>,
    candidates: Option<Vec<Candidate>>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    finish_reason: Option<IgnoredAny>,
}

/// The usage in a whole `GenerateContentResponse` (fields it does not need
/// are skipped, not built: an answer may carry megabytes of image).
pub fn response_usage(body: &[u8]) -> Option<Usage> {
    serde_json::from_slice::<Answer>(body).ok()?.usage_metadata.map(Usage::from)
}

/// Reads a streamed answer (`alt=sse`) as it passes through, in chunks cut
/// anywhere, keeping the latest usage. Memory stays bounded: an event longer
/// than `max_event` bytes is skipped (an image chunk; usage rides on small ones).
#[derive(Debug)]
pub struct StreamMeter {
    line: Vec<u8>,
    data: Vec<u8>,
    max_event: usize,
    /// The current line or event outgrew `max_event` and is being skipped.
    skipping_line: bool,
    skipping_event: bool,
    usage: Option<Usage>,
    finished: bool,
    errored: bool,
    /// An event was skipped after the last usage read: it may have carried a later one.
    skipped_since_usage: bool,
}

impl StreamMeter {
    pub fn new(max_event: usize) -> StreamMeter {
        StreamMeter {
            line: vec![],
            data: vec![],
            max_event,
            skipping_line: false,
            skipping_event: false,
            usage: None,
            finished: false,
            errored: false,
            skipped_since_usage: false,
        }
    }

    pub fn feed(&mut self, mut chunk: &[u8]) {
        while let Some(end) = memchr::memchr(b'\n', chunk) {
            let (head, rest) = chunk.split_at(end);
            self.take(head);
            if !std::mem::take(&mut self.skipping_line) {
                let line = std::mem::take(&mut self.line);
                self.line_done(line.strip_suffix(b"\r").unwrap_or(&line));
            }
            self.line.clear();
            chunk = rest.get(1..).unwrap_or_default();
        }
        self.take(chunk);
    }

    fn take(&mut self, bytes: &[u8]) {
        if self.skipping_line {
            return;
        }
        if self.line.len() + bytes.len() > self.max_event {
            self.line.clear();
            self.skipping_line = true;
            self.skipping_event = true;
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    fn line_done(&mut self, line: &[u8]) {
        if line.is_empty() {
            self.dispatch();
        } else if let Some(value) = line.strip_prefix(b"data:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            if self.data.len() + value.len() + 1 > self.max_event {
                self.data.clear();
                self.skipping_event = true;
            } else if !self.skipping_event {
                if !self.data.is_empty() {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
            }
        }
    }

    fn dispatch(&mut self) {
        let data = std::mem::take(&mut self.data);
        if std::mem::take(&mut self.skipping_event) {
            self.skipped_since_usage = true;
            return;
        }
        if data.is_empty() {
            return;
        }
        let Ok(answer) = serde_json::from_slice::<Answer>(&data) else {
            // Unreadable, it may have carried a later report: the stream is unmeasured.
            self.skipped_since_usage = true;
            return;
        };
        if answer.error.is_some() {
            self.errored = true;
        }
        if let Some(u) = answer.usage_metadata {
            // Reports are running totals; one that goes down (a last event
            // counting only its own part) never lowers what was already reported.
            let u: Usage = u.into();
            self.usage = Some(self.usage.map_or(u, |before| before.at_least(&u)));
            self.skipped_since_usage = false;
        }
        if answer.candidates.iter().flatten().any(|c| c.finish_reason.is_some()) {
            self.finished = true;
        }
    }

    /// The usage to charge once the stream is over: Gemini's largest report, if
    /// the stream ended cleanly and finished its answer; `None` otherwise
    /// (charged the ceiling: what a cut stream used is unknown).
    pub fn settle(mut self, ended_cleanly: bool) -> Option<Usage> {
        if !self.line.is_empty() && !self.skipping_line {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line);
        }
        self.dispatch();
        let whole = ended_cleanly && self.finished && !self.errored && !self.skipped_since_usage;
        whole.then_some(self.usage).flatten()
    }
}

#[cfg(test)]
mod tests;
