//! Request lines from a stream of chunks: split (core's `LineSplitter`),
//! numbered, checked by the submission's `Validator`, and written normalized
//! to an input in R2. Shared by `POST /v1/jobs` (NDJSON), the parts of
//! `/v1/inputs`, a job made from an input, and `/v1/estimate`.

use super::input::InputWriter;
use crate::api::Result;
use crate::platform::config::Settings;
use crate::platform::error::ApiError;
use batchgate_core::jsonl::{LineSplitter, SplitError};
use batchgate_core::submit::{Validator, key_of};
use std::convert::Infallible;

pub struct Feed<'a> {
    splitter: LineSplitter,
    validator: &'a mut Validator,
    writer: Option<&'a mut InputWriter>,
    /// Lines before this stream's first (an input's earlier parts).
    lines_before: u64,
    /// Every accepted line's `(number, key)`, when asked for.
    keys: Option<Vec<(u64, String)>>,
    bytes: u64,
    last_byte: Option<u8>,
}

impl<'a> Feed<'a> {
    pub fn new(
        settings: &Settings,
        validator: &'a mut Validator,
        writer: Option<&'a mut InputWriter>,
    ) -> Feed<'a> {
        Feed {
            splitter: LineSplitter::new(usize::try_from(settings.max_line_bytes).unwrap_or(usize::MAX)),
            validator,
            writer,
            lines_before: 0,
            keys: None,
            bytes: 0,
            last_byte: None,
        }
    }

    /// Number the lines after `lines_before` and keep their keys (an input's part).
    pub fn for_part(mut self, lines_before: u64) -> Feed<'a> {
        self.lines_before = lines_before;
        self.keys = Some(Vec::new());
        self
    }

    /// Take one chunk; an error ends the stream (a line too long, or storing failed).
    pub async fn chunk(&mut self, chunk: &[u8]) -> Result<()> {
        self.bytes += chunk.len() as u64;
        if let Some(&b) = chunk.last() {
            self.last_byte = Some(b);
        }
        let (validator, writer, keys, before) =
            (&mut *self.validator, &mut self.writer, &mut self.keys, self.lines_before);
        let fed = self.splitter.feed(chunk, |n, line| {
            accept(validator, writer, keys, before + n, line);
            Ok::<(), Infallible>(())
        });
        if let Err(SplitError::LineTooLong { line, limit }) = fed {
            let line = before + line;
            self.validator.unreadable(line, format!("line is longer than {limit} bytes"));
            return Err(ApiError::bad_request(
                "line_too_long",
                format!("line {line} is longer than {limit} bytes"),
            ));
        }
        match self.writer.as_deref_mut() {
            Some(w) => w.flush().await,
            None => Ok(()),
        }
    }

    /// The stream ended: its last line, if it had no line end, and what was fed.
    pub fn finish(self) -> Fed {
        let (validator, mut writer, mut keys, before) =
            (self.validator, self.writer, self.keys, self.lines_before);
        let mut lines = self.splitter.lines_seen();
        let _ = self.splitter.finish(|n, line| {
            lines = lines.max(n);
            accept(validator, &mut writer, &mut keys, before + n, line);
            Ok::<(), Infallible>(())
        });
        Fed { lines, bytes: self.bytes, last_byte: self.last_byte, keys: keys.unwrap_or_default() }
    }
}

/// What a stream fed.
pub struct Fed {
    /// Lines seen (blank ones too: they number the lines after them).
    pub lines: u64,
    pub bytes: u64,
    pub last_byte: Option<u8>,
    /// Every accepted line's `(number, key)` (an input's part).
    pub keys: Vec<(u64, String)>,
}

fn accept(
    validator: &mut Validator,
    writer: &mut Option<&mut InputWriter>,
    keys: &mut Option<Vec<(u64, String)>>,
    number: u64,
    line: &[u8],
) {
    let Some(normalized) = validator.line(number, line) else { return };
    if let Some(keys) = keys
        && let Some(key) = key_of(&normalized)
    {
        keys.push((number, key));
    }
    if let Some(w) = writer.as_deref_mut() {
        w.push(&normalized);
    }
}
