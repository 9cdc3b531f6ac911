//! Reading Gemini's result lines: the key, success or error, and the token
//! counts, without building the response body (serde skips every other field
//! without allocating). Results are joined to requests by key, never by position.

use crate::pricing::Tokens;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

mod of_value;
pub use of_value::outcome_of;

/// Token counts of one response, or sums of many.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub prompt: u64,
    pub candidates: u64,
    pub thoughts: u64,
    pub cached: u64,
    pub tool_use_prompt: u64,
    pub total: u64,
    /// Of `prompt`, the audio tokens (`promptTokensDetails`): some models
    /// price audio input above text, image and video.
    #[serde(default)]
    pub audio_prompt: u64,
    /// Of `cached`, the audio tokens (`cacheTokensDetails`).
    #[serde(default)]
    pub audio_cached: u64,
}

impl Usage {
    pub fn add(&mut self, o: &Usage) {
        *self = self.zip(o, u64::saturating_add);
    }

    /// Each count the larger of `self`'s and `o`'s, but the cached counts the
    /// smaller: a cached token costs less, so the bill is never lowered.
    pub fn at_least(&self, o: &Usage) -> Usage {
        let cached = (self.cached.min(o.cached), self.audio_cached.min(o.audio_cached));
        Usage { cached: cached.0, audio_cached: cached.1, ..self.zip(o, u64::max) }
    }

    fn zip(&self, o: &Usage, f: impl Fn(u64, u64) -> u64) -> Usage {
        Usage {
            prompt: f(self.prompt, o.prompt),
            candidates: f(self.candidates, o.candidates),
            thoughts: f(self.thoughts, o.thoughts),
            cached: f(self.cached, o.cached),
            tool_use_prompt: f(self.tool_use_prompt, o.tool_use_prompt),
            total: f(self.total, o.total),
            audio_prompt: f(self.audio_prompt, o.audio_prompt),
            audio_cached: f(self.audio_cached, o.audio_cached),
        }
    }

    /// Whether this one response's prompt passed the long-context line, above
    /// which some models bill the whole request at higher rates. Tool-use
    /// prompt tokens count: they are the request's input too.
    pub fn is_long_context(&self) -> bool {
        self.prompt.saturating_add(self.tool_use_prompt) > crate::pricing::LONG_CONTEXT_PROMPT_TOKENS
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success(Usage),
    Error {
        code: i32,
        message: String,
    },
    /// Not a result line at all (not JSON, or neither `response` nor `error`).
    Malformed(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultLine<'a> {
    pub key: Option<Cow<'a, str>>,
    pub outcome: Outcome,
}

#[derive(Deserialize)]
struct RawLine<'a> {
    #[serde(borrow, default)]
    key: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    metadata: Option<RawMetadata<'a>>,
    #[serde(default)]
    response: Option<RawResponse>,
    #[serde(default)]
    error: Option<RawError>,
}

#[derive(Deserialize)]
struct RawMetadata<'a> {
    #[serde(borrow, default)]
    key: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawResponse {
    #[serde(default, rename = "usageMetadata")]
    usage: Option<RawUsage>,
}

/// `usageMetadata` as Gemini writes it (missing counts are zero).
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct RawUsage {
    prompt_token_count: u64,
    candidates_token_count: u64,
    thoughts_token_count: u64,
    cached_content_token_count: u64,
    tool_use_prompt_token_count: u64,
    total_token_count: u64,
    prompt_tokens_details: Option<Details>,
    cache_tokens_details: Option<Details>,
}

/// A `ModalityTokenCount` list as read: its audio tokens, or `None` when it
/// cannot be read. It never makes the line unreadable (the line is billed
/// from its counts); an unreadable list bills every token it may cover as audio.
pub(crate) struct Details(Option<u64>);

impl<'de> Deserialize<'de> for Details {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Details, D::Error> {
        Ok(Details(audio_in(&serde_json::Value::deserialize(d)?)))
    }
}

/// The `AUDIO` tokens of a list of `{modality, tokenCount}` (a missing count
/// is zero, as proto3 JSON omits zeros; other modalities are not read).
/// `None` when it is not such a list, or an audio count is not a count.
pub(crate) fn audio_in(list: &serde_json::Value) -> Option<u64> {
    let mut audio = 0u64;
    for item in list.as_array()? {
        let item = item.as_object()?;
        match item.get("modality").filter(|m| !m.is_null()) {
            Some(m) if m.as_str()? == "AUDIO" => {
                let count = item.get("tokenCount").map_or(Some(0), serde_json::Value::as_u64)?;
                audio = audio.saturating_add(count);
            }
            _ => {}
        }
    }
    Some(audio)
}

/// The audio tokens a details list says: none when absent, all `of` when unreadable.
pub(crate) fn audio_of(details: Option<Option<u64>>, of: u64) -> u64 {
    match details {
        None => 0,
        Some(audio) => audio.unwrap_or(of).min(of),
    }
}

impl From<RawUsage> for Usage {
    fn from(u: RawUsage) -> Usage {
        Usage {
            prompt: u.prompt_token_count,
            candidates: u.candidates_token_count,
            thoughts: u.thoughts_token_count,
            cached: u.cached_content_token_count,
            tool_use_prompt: u.tool_use_prompt_token_count,
            total: u.total_token_count,
            audio_prompt: audio_of(u.prompt_tokens_details.map(|d| d.0), u.prompt_token_count),
            audio_cached: audio_of(u.cache_tokens_details.map(|d| d.0), u.cached_content_token_count),
        }
    }
}

#[derive(Deserialize)]
struct RawError {
    #[serde(default)]
    code: i32,
    #[serde(default)]
    message: String,
}

/// Scan one result line (`{"key", "response"}` or `{"key", "error"}`; inline
/// results carry the key in `metadata.key`).
pub fn scan_line(line: &[u8]) -> ResultLine<'_> {
    fast::scan(line).unwrap_or_else(|| scan_with_serde(line))
}

/// The reference path: serde, skipping (not building) unknown fields.
pub fn scan_with_serde(line: &[u8]) -> ResultLine<'_> {
    let raw: RawLine<'_> = match serde_json::from_slice(line) {
        Ok(r) => r,
        Err(e) => return ResultLine { key: None, outcome: Outcome::Malformed(e.to_string()) },
    };
    let key = raw.key.or_else(|| raw.metadata.and_then(|m| m.key));
    let outcome = match (raw.response, raw.error) {
        (Some(resp), None) => Outcome::Success(resp.usage.unwrap_or_default().into()),
        (None, Some(e)) => Outcome::Error { code: e.code, message: e.message },
        _ => Outcome::Malformed("a result line has exactly one of response or error".into()),
    };
    ResultLine { key, outcome }
}

/// A structural walk over the line that jumps through strings with `memchr`
/// and hands only the small objects it needs (`usageMetadata`, `error`, the
/// key) to serde. Anything it does not expect makes it give up (`None`), and
/// the serde path answers instead, so it can only be faster, never different.
mod fast {
    use super::*;

    fn ws(b: &[u8], mut i: usize) -> usize {
        while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
            i += 1;
        }
        i
    }

    /// `b[i]` is the opening quote; returns the index after the closing one.
    fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
        i += 1;
        loop {
            let rest = b.get(i..)?;
            let j = memchr::memchr2(b'"', b'\\', rest)?;
            i += j;
            if *b.get(i)? == b'\\' {
                i += 2;
            } else {
                return Some(i + 1);
            }
        }
    }

    /// The index after the JSON value starting at `b[i]`.
    fn skip_value(b: &[u8], i: usize) -> Option<usize> {
        match *b.get(i)? {
            b'"' => skip_string(b, i),
            b'{' | b'[' => {
                let mut depth = 0usize;
                let mut j = i;
                loop {
                    match *b.get(j)? {
                        b'"' => {
                            j = skip_string(b, j)?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                return Some(j + 1);
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
            }
            _ => {
                let mut j = i;
                while b.get(j).is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace()) {
                    j += 1;
                }
                (j > i).then_some(j)
            }
        }
    }

    /// Walk the members of the object at `b[i]`: `f(name, value_start)` consumes
    /// each value and returns where it ends. Returns the index after the `}`.
    fn members<'a>(
        b: &'a [u8],
        i: usize,
        mut f: impl FnMut(&'a [u8], usize) -> Option<usize>,
    ) -> Option<usize> {
        let mut i = ws(b, i);
        if *b.get(i)? != b'{' {
            return None;
        }
        i = ws(b, i + 1);
        if *b.get(i)? == b'}' {
            return Some(i + 1);
        }
        loop {
            if *b.get(i)? != b'"' {
                return None;
            }
            let name_end = skip_string(b, i)?;
            let name = b.get(i + 1..name_end - 1)?;
            if name.contains(&b'\\') {
                return None; // escaped member names: leave it to serde
            }
            i = ws(b, name_end);
            if *b.get(i)? != b':' {
                return None;
            }
            let end = f(name, ws(b, i + 1))?;
            i = ws(b, end);
            match *b.get(i)? {
                b',' => i = ws(b, i + 1),
                b'}' => return Some(i + 1),
                _ => return None,
            }
        }
    }

    /// Parse the value at `b[start..]` with serde (for the small parts we keep).
    fn take<'a, T: serde::Deserialize<'a>>(b: &'a [u8], start: usize) -> Option<(T, usize)> {
        let end = skip_value(b, start)?;
        Some((serde_json::from_slice(b.get(start..end)?).ok()?, end))
    }

    /// `usageMetadata` without serde (it is most of the work left per line):
    /// the six counts as plain integers, the two details lists through serde
    /// (never refused: see `Details`), every other member skipped. Anything
    /// serde would refuse or read differently (a quoted or signed number, a
    /// leading zero, a count given twice) gives up, and serde decides.
    fn usage_metadata(b: &[u8], start: usize) -> Option<(RawUsage, usize)> {
        let mut u = RawUsage::default();
        let mut seen = 0u8;
        let end = members(b, start, |name, at| {
            let (bit, slot) = match name {
                b"promptTokenCount" => (1, &mut u.prompt_token_count),
                b"candidatesTokenCount" => (2, &mut u.candidates_token_count),
                b"thoughtsTokenCount" => (4, &mut u.thoughts_token_count),
                b"cachedContentTokenCount" => (8, &mut u.cached_content_token_count),
                b"toolUsePromptTokenCount" => (16, &mut u.tool_use_prompt_token_count),
                b"totalTokenCount" => (32, &mut u.total_token_count),
                // Small lists, read by serde as the reference path reads them.
                b"promptTokensDetails" | b"cacheTokensDetails" => {
                    let bit = if name == b"promptTokensDetails" { 64 } else { 128 };
                    if seen & bit != 0 {
                        return None;
                    }
                    seen |= bit;
                    let (details, end) = take::<Option<Details>>(b, at)?;
                    if bit == 64 {
                        u.prompt_tokens_details = details;
                    } else {
                        u.cache_tokens_details = details;
                    }
                    return Some(end);
                }
                _ => return skip_value(b, at),
            };
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            let (value, end) = integer(b, at)?;
            *slot = value;
            Some(end)
        })?;
        Some((u, end))
    }

    /// A JSON unsigned integer at `b[i]` (no sign, fraction, exponent or leading zero).
    fn integer(b: &[u8], i: usize) -> Option<(u64, usize)> {
        let mut j = i;
        let mut value = 0u64;
        while let Some(d) = b.get(j).filter(|c| c.is_ascii_digit()) {
            value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            j += 1;
        }
        let digits = j - i;
        let leading_zero = digits > 1 && b.get(i) == Some(&b'0');
        let more = b.get(j).is_some_and(|c| matches!(c, b'.' | b'e' | b'E'));
        (digits > 0 && !leading_zero && !more).then_some((value, j))
    }

    pub fn scan(b: &[u8]) -> Option<ResultLine<'_>> {
        let mut key: Option<Cow<'_, str>> = None;
        let mut outcome: Option<Outcome> = None;
        let mut seen = 0;
        let end = members(b, 0, |name, start| match name {
            b"key" => {
                let (k, end) = take::<Cow<'_, str>>(b, start)?;
                key = Some(k);
                Some(end)
            }
            b"metadata" => {
                let (m, end) = take::<RawMetadata<'_>>(b, start)?;
                key = key.take().or(m.key);
                Some(end)
            }
            b"error" => {
                seen += 1;
                let (e, end) = take::<RawError>(b, start)?;
                outcome = Some(Outcome::Error { code: e.code, message: e.message });
                Some(end)
            }
            b"response" => {
                seen += 1;
                let mut usage = RawUsage::default();
                let end = members(b, start, |n, s| {
                    if n == b"usageMetadata" {
                        let (u, end) = usage_metadata(b, s)?;
                        usage = u;
                        Some(end)
                    } else {
                        skip_value(b, s)
                    }
                })?;
                outcome = Some(Outcome::Success(usage.into()));
                Some(end)
            }
            _ => skip_value(b, start),
        })?;
        if seen != 1 || ws(b, end) != b.len() {
            return None;
        }
        Some(ResultLine { key, outcome: outcome? })
    }
}

/// Counts and usage summed over result lines.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    pub succeeded: u64,
    pub failed: u64,
    pub malformed: u64,
    pub usage: Usage,
    /// `usage` as it is billed: each response's tokens at its own tier and
    /// rates (`Tokens::from(&Usage)`), summed. `None` in a tally stored before
    /// they were kept (see `Tokens::from(&Tally)`).
    /// Boxed: a tally rides in every job phase and action, most without usage.
    #[serde(default)]
    pub tokens: Option<Box<Tokens>>,
}

impl Tally {
    pub fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Success(u) => {
                self.succeeded += 1;
                self.add_usage(u);
            }
            Outcome::Error { .. } => self.failed += 1,
            Outcome::Malformed(_) => self.malformed += 1,
        }
    }

    /// One response's usage, and its tokens at its tier.
    pub fn add_usage(&mut self, u: &Usage) {
        self.add_tokens(&Tokens::from(u));
        self.usage.add(u);
    }

    /// Usage that Gemini never reported, billed as `tokens` (a call's ceiling).
    pub fn add_billed(&mut self, usage: &Usage, tokens: &Tokens) {
        self.add_tokens(tokens);
        self.usage.add(usage);
    }

    pub fn merge(&mut self, o: &Tally) {
        self.succeeded += o.succeeded;
        self.failed += o.failed;
        self.malformed += o.malformed;
        // An empty tally leaves `tokens` as it was.
        if o.tokens.is_some() || o.usage != Usage::default() {
            self.add_tokens(&Tokens::from(o));
        }
        self.usage.add(&o.usage);
    }

    /// Called before `usage` grows: a tally without `tokens` turns its usage so far into them.
    fn add_tokens(&mut self, t: &Tokens) {
        let mut tokens = Tokens::from(&*self);
        tokens.add(t);
        self.tokens = Some(Box::new(tokens));
    }
}

/// A page of results holds at most this many bytes of lines (a line alone may
/// be larger: a page always carries at least one).
pub const MAX_PAGE_BYTES: u64 = 16 * 1024 * 1024;

/// The line the results carry for a request Gemini returned nothing for, in
/// the shape of an error result (`google.rpc.Code` 5, NOT_FOUND), ending in `\n`.
pub fn missing_line(key: &str) -> Vec<u8> {
    let mut out = missing_value(key).to_string().into_bytes();
    out.push(b'\n');
    out
}

/// The result line of a request Gemini returned nothing for, as a value.
pub fn missing_value(key: &str) -> serde_json::Value {
    serde_json::json!({
        "key": key,
        "error": {"code": 5, "message": "Gemini returned no result for this request"}
    })
}

/// How many of the lines (their byte lengths, in order) fit one page of at
/// most `max_bytes`; at least one when there is any, so paging always moves.
pub fn lines_in_page(lens: impl IntoIterator<Item = u64>, max_bytes: u64) -> usize {
    let mut total = 0u64;
    let mut n = 0;
    for len in lens {
        total = total.saturating_add(len.saturating_add(1));
        if n > 0 && total > max_bytes {
            break;
        }
        n += 1;
    }
    n
}

#[cfg(test)]
mod page_tests {
    use super::lines_in_page;

    #[test]
    fn a_page_stops_at_its_byte_budget_but_always_moves() {
        assert_eq!(lines_in_page([10, 10, 10], 100), 3);
        assert_eq!(lines_in_page([40, 40, 40], 100), 2, "each line counts its newline");
        assert_eq!(lines_in_page([8 << 20; 1000], 16 << 20), 1, "1,000 lines of 8 MiB: one a page");
        assert_eq!(lines_in_page([500, 1], 100), 1, "a line over the budget goes alone");
        assert_eq!(lines_in_page(std::iter::empty(), 100), 0);
    }

    #[test]
    fn a_missing_result_is_an_error_line_of_its_key_that_reads_back_as_not_found() {
        let line = super::missing_line("a \"quoted\" key");
        assert_eq!(line.last(), Some(&b'\n'));
        let scanned = super::scan_line(&line[..line.len() - 1]);
        assert_eq!(scanned.key.as_deref(), Some("a \"quoted\" key"));
        assert!(matches!(scanned.outcome, super::Outcome::Error { code: 5, .. }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    #[test]
    fn reads_the_cookbook_line() {
        let line = br#"{"key":"request_1","response":{"candidates":[{"content":{"role":"model","parts":[{"text":"AI learns."}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":11,"totalTokenCount":848,"thoughtsTokenCount":829,"promptTokensDetails":[{"modality":"TEXT","tokenCount":8}]},"modelVersion":"gemini-3.7-flash","responseId":"6VFk"}}"#;
        let r = scan_line(line);
        assert_eq!(r.key.as_deref(), Some("request_1"));
        assert_eq!(
            r.outcome,
            Outcome::Success(Usage {
                prompt: 8,
                candidates: 11,
                thoughts: 829,
                total: 848,
                ..Default::default()
            })
        );
    }

    #[test]
    fn the_fast_path_declines_what_it_does_not_expect() {
        for line in [
            &br#"{"key":"a","response":{}} trailing"#[..],
            br#"{"key":"a","response":{},"error":{}}"#,
            br#"{"k\u0065y":"a","response":{}}"#,
            b"[1,2]",
            b"{",
            // Counts serde reads differently or refuses: the fast path must not guess.
            br#"{"key":"a","response":{"usageMetadata":{"totalTokenCount":"12"}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"totalTokenCount":012}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"totalTokenCount":-1}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"totalTokenCount":1.0}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"totalTokenCount":1e3}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"totalTokenCount":99999999999999999999}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"totalTokenCount":1,"totalTokenCount":2}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"totalTokenCount":7,"promptTokensDetails":[{"tokenCount":3}]}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"promptTokensDetails":[{"modality":"AUDIO","tokenCount":3}],"promptTokensDetails":[]}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"cacheTokensDetails":[{"modality":"AUDIO","tokenCount":"3"}]}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"cacheTokensDetails":[{"modality":7}]}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"promptTokensDetails":{"modality":"AUDIO"}}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"promptTokensDetails":null,"cacheTokensDetails":[["AUDIO",2]]}}}"#,
        ] {
            assert_eq!(scan_line(line), scan_with_serde(line), "{}", String::from_utf8_lossy(line));
        }
        assert_eq!(scan_line(br#"{"k\u0065y":"a","response":{}}"#).key.as_deref(), Some("a"));
    }

    #[test]
    fn errors_escaped_keys_inline_keys_and_garbage() {
        let r = scan_line(br#"{"error":{"code":3,"message":"bad part"},"key":"a\"b"}"#);
        assert_eq!(r.key.as_deref(), Some("a\"b"));
        assert_eq!(r.outcome, Outcome::Error { code: 3, message: "bad part".into() });
        let r = scan_line(br#"{"response":{},"metadata":{"key":"inline-1"}}"#);
        assert_eq!(r.key.as_deref(), Some("inline-1"));
        assert!(matches!(scan_line(b"not json").outcome, Outcome::Malformed(_)));
        assert!(matches!(scan_line(br#"{"key":"x"}"#).outcome, Outcome::Malformed(_)));
    }

    proptest! {
        /// The scanner agrees with a full parse on every line shape it can meet.
        #[test]
        fn agrees_with_a_full_parse(
            key in "[a-zA-Z0-9 \"\\\\é-]{0,12}",
            counts in proptest::collection::vec(0u64..100_000, 4),
            text in ".{0,40}",
            is_error in any::<bool>(),
        ) {
            let line = if is_error {
                json!({"key": key, "error": {"code": counts[0] as i64, "message": text}})
            } else {
                json!({"response": {"candidates": [{"content": {"parts": [{"text": text}]}}],
                       "usageMetadata": {"promptTokenCount": counts[0], "candidatesTokenCount": counts[1],
                                         "thoughtsTokenCount": counts[2], "totalTokenCount": counts[3],
                                         "cachedContentTokenCount": counts[1],
                                         "promptTokensDetails": [{"modality": "TEXT", "tokenCount": counts[1]},
                                                                 {"modality": "AUDIO", "tokenCount": counts[2]}],
                                         "cacheTokensDetails": [{"modality": "AUDIO", "tokenCount": counts[3]}]}},
                       "key": key})
            };
            let bytes = serde_json::to_vec(&line).unwrap();
            let full: Value = serde_json::from_slice(&bytes).unwrap();
            let r = scan_line(&bytes);
            prop_assert_eq!(&r, &scan_with_serde(&bytes), "the fast path answers exactly as serde does");
            prop_assert_eq!(r.key.as_deref(), full["key"].as_str());
            match r.outcome {
                Outcome::Success(u) => {
                    prop_assert!(!is_error);
                    prop_assert_eq!(u.prompt, full["response"]["usageMetadata"]["promptTokenCount"].as_u64().unwrap());
                    prop_assert_eq!(u.total, counts[3]);
                    // Of the prompt and of the cache: never more than either.
                    prop_assert_eq!((u.audio_prompt, u.audio_cached), (counts[2].min(counts[0]), counts[3].min(counts[1])));
                    prop_assert!(fast::scan(&bytes).is_some(), "lines with per-modality counts stay on the fast path");
                }
                Outcome::Error { code, message } => {
                    prop_assert!(is_error);
                    prop_assert_eq!(i64::from(code), counts[0] as i64);
                    prop_assert_eq!(message, text);
                }
                Outcome::Malformed(m) => prop_assert!(false, "{}", m),
            }
        }
    }
}
