//! Writing a batch's results: one output line per input line, streamed from the
//! input file to the output file so memory does not grow with the batch.

use crate::model;
use crate::store::InlineRequest;
use batchgate_core::gemini::{Code, InlinedResponse, Status};
use batchgate_core::jsonl::{LineSplitter, SplitError};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Which lines fail, and how.
#[derive(Clone, Debug)]
pub struct LineRules {
    pub model: String,
    pub fail_keys: HashSet<String>,
    pub error_rate: f64,
    pub seed: u64,
    pub error_code: i32,
    /// Lines from this index on were cut off by a cancel.
    pub cancelled_from: Option<u64>,
    /// Lines from this index on get no result line at all.
    pub keep_lines: Option<u64>,
    pub pad_bytes: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counts {
    pub ok: u64,
    pub failed: u64,
}

/// FNV-1a: a stable hash for "does this key fail at this seed".
fn stable_hash(seed: u64, key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl LineRules {
    /// The outcome for one request: a response or a per-line error.
    pub fn answer(&self, index: u64, key: Option<&str>, request: Option<&Value>) -> Result<Value, Status> {
        if self.cancelled_from.is_some_and(|c| index >= c) {
            return Err(Status::item(Code::Cancelled, "Request was cancelled."));
        }
        let key_str = key.unwrap_or_default();
        let by_rate = self.error_rate > 0.0
            && (stable_hash(self.seed, key_str) % 1_000_000) < (self.error_rate * 1_000_000.0) as u64;
        if self.fail_keys.contains(key_str) || by_rate {
            return Err(Status {
                code: self.error_code,
                message: format!("Emulated failure for key {key_str:?}."),
                ..Default::default()
            });
        }
        let request =
            request.ok_or_else(|| Status::item(Code::InvalidArgument, "Missing \"request\" field."))?;
        model::respond_padded(&self.model, request, self.pad_bytes)
            .map_err(|e| Status::item(Code::InvalidArgument, e.0))
    }
}

/// One input line → one output line (`{key, response}` or `{key, error}`).
fn result_line(rules: &LineRules, index: u64, line: &[u8]) -> (Value, bool) {
    let parsed: Result<Map<String, Value>, _> = serde_json::from_slice(line);
    let mut out = Map::new();
    let outcome = match &parsed {
        Ok(obj) => {
            let key = obj.get("key").and_then(Value::as_str);
            if let Some(k) = key {
                out.insert("key".into(), json!(k));
            }
            rules.answer(index, key, obj.get("request"))
        }
        Err(e) => {
            Err(Status::item(Code::InvalidArgument, format!("Invalid JSON on input line {}: {e}", index + 1)))
        }
    };
    let ok = outcome.is_ok();
    match outcome {
        Ok(resp) => out.insert("response".into(), resp),
        Err(status) => out.insert("error".into(), json!(status)),
    };
    (Value::Object(out), ok)
}

/// Stream `input` (JSONL) to `output`, optionally in a shuffled order.
pub fn write_file_results(
    input: &Path,
    output: &Path,
    rules: &LineRules,
    shuffle_seed: Option<u64>,
) -> std::io::Result<Counts> {
    let staging = output.with_extension("staging");
    let mut counts = Counts::default();
    let mut offsets: Vec<(u64, u32)> = Vec::new();
    {
        let mut reader = std::fs::File::open(input)?;
        let mut writer = BufWriter::with_capacity(1 << 20, std::fs::File::create(&staging)?);
        let mut splitter = LineSplitter::new(usize::MAX / 4);
        let mut pos = 0u64;
        let mut index = 0u64;
        let mut on_line = |_: u64, line: &[u8]| -> std::io::Result<()> {
            if rules.keep_lines.is_some_and(|keep| index >= keep) {
                index += 1;
                return Ok(());
            }
            let (value, ok) = result_line(rules, index, line);
            index += 1;
            if ok {
                counts.ok += 1
            } else {
                counts.failed += 1
            }
            let mut bytes = serde_json::to_vec(&value)?;
            bytes.push(b'\n');
            writer.write_all(&bytes)?;
            offsets.push((pos, bytes.len() as u32));
            pos += bytes.len() as u64;
            Ok(())
        };
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            splitter.feed(&buf[..n], &mut on_line).map_err(split_io)?;
        }
        splitter.finish(&mut on_line).map_err(split_io)?;
        writer.flush()?;
    }
    match shuffle_seed {
        None => std::fs::rename(&staging, output)?,
        Some(seed) => {
            offsets.shuffle(&mut StdRng::seed_from_u64(seed));
            let mut src = std::fs::File::open(&staging)?;
            let mut dst = BufWriter::with_capacity(1 << 20, std::fs::File::create(output)?);
            let mut line = Vec::new();
            for (off, len) in offsets {
                line.resize(len as usize, 0);
                src.seek(SeekFrom::Start(off))?;
                src.read_exact(&mut line)?;
                dst.write_all(&line)?;
            }
            dst.flush()?;
            std::fs::remove_file(&staging)?;
        }
    }
    Ok(counts)
}

/// Cut the `\n` after a results file's last line, if it has one.
pub fn drop_final_newline(path: &Path) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8; 1];
    f.seek(SeekFrom::Start(len - 1))?;
    f.read_exact(&mut last)?;
    if last[0] == b'\n' {
        f.set_len(len - 1)?;
    }
    Ok(())
}

fn split_io(e: SplitError<std::io::Error>) -> std::io::Error {
    match e {
        SplitError::Handler { error, .. } => error,
        other => std::io::Error::other(other.to_string()),
    }
}

/// Inline batches answer inline; `metadata` is echoed.
pub fn inline_results(
    requests: &[InlineRequest],
    rules: &LineRules,
    shuffle_seed: Option<u64>,
) -> (Vec<InlinedResponse>, Counts) {
    let mut counts = Counts::default();
    let mut out: Vec<InlinedResponse> = requests
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let key = r.metadata.as_ref().and_then(|m| m.get("key")).and_then(Value::as_str);
            let answer = rules.answer(i as u64, key, Some(&r.request));
            let (response, error) = match answer {
                Ok(v) => {
                    counts.ok += 1;
                    (Some(v), None)
                }
                Err(e) => {
                    counts.failed += 1;
                    (None, Some(e))
                }
            };
            InlinedResponse { response, error, metadata: r.metadata.clone() }
        })
        .collect();
    if let Some(seed) = shuffle_seed {
        out.shuffle(&mut StdRng::seed_from_u64(seed));
    }
    (out, counts)
}

/// Count lines and prompt tokens of an input file (for `requestCount` and the
/// enqueued-token quota). Unparseable lines count as requests with 0 tokens.
pub fn scan_input(path: &Path) -> std::io::Result<crate::store::Scan> {
    let mut scan = crate::store::Scan::default();
    let mut reader = std::fs::File::open(path)?;
    let mut splitter = LineSplitter::new(usize::MAX / 4);
    let mut on_line = |_: u64, line: &[u8]| -> Result<(), std::io::Error> {
        scan.lines += 1;
        let v: Value = serde_json::from_slice(line).unwrap_or(Value::Null);
        let request = v.get("request").unwrap_or(&v);
        scan.prompt_tokens += model::prompt_tokens(request).unwrap_or(0);
        Ok(())
    };
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        splitter.feed(&buf[..n], &mut on_line).map_err(split_io)?;
    }
    splitter.finish(&mut on_line).map_err(split_io)?;
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> LineRules {
        LineRules {
            model: "gemini-2.5-flash".into(),
            fail_keys: ["bad".to_string()].into(),
            error_rate: 0.0,
            seed: 0,
            error_code: 13,
            cancelled_from: None,
            keep_lines: None,
            pad_bytes: 0,
        }
    }

    #[test]
    fn every_input_line_gets_one_output_line_under_its_key_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.jsonl");
        let mut text = String::new();
        for i in 0..50 {
            let key = if i == 7 { "bad".to_string() } else { format!("k{i}") };
            text.push_str(&format!("{{\"key\":\"{key}\",\"request\":{{\"contents\":[{{\"parts\":[{{\"text\":\"q{i}\"}}]}}]}}}}\r\n"));
        }
        text.push_str("not json\n");
        std::fs::write(&input, text).unwrap();
        let out = dir.path().join("out.jsonl");
        let counts = write_file_results(&input, &out, &rules(), Some(42)).unwrap();
        assert_eq!(counts, Counts { ok: 49, failed: 2 });
        let lines: Vec<Value> = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 51);
        let keys: Vec<&str> = lines.iter().filter_map(|l| l["key"].as_str()).collect();
        assert_ne!(keys.first(), Some(&"k0"), "seed 42 shuffles the order");
        let bad = lines.iter().find(|l| l["key"] == "bad").unwrap();
        assert_eq!(bad["error"]["code"], 13);
        let k3 = lines.iter().find(|l| l["key"] == "k3").unwrap();
        assert!(
            k3["response"]["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap().ends_with("q3")
        );
    }

    #[test]
    fn error_rate_is_deterministic_per_seed_and_near_the_rate() {
        let r = LineRules { error_rate: 0.25, seed: 7, ..rules() };
        let req = json!({"contents": [{"parts": [{"text": "x"}]}]});
        let fails = |r: &LineRules| {
            (0..4000).filter(|i| r.answer(0, Some(&format!("k{i}")), Some(&req)).is_err()).count()
        };
        let n = fails(&r);
        assert_eq!(n, fails(&r));
        assert!((800..1200).contains(&n), "about a quarter fail: {n}");
    }
}
