//! The two ways to read result lines, compiled to wasm for the benchmark
//! (`bench.mjs` times them in Node over the same bytes): core's scanner, which
//! the worker runs, and `serde_json` parsing each whole line. Both return the
//! summed `totalTokenCount`, so the benchmark can check they read the same.

use batchgate_core::results::{Outcome, scan_line};
use wasm_bindgen::prelude::*;

fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|b| *b == b'\n').filter(|l| !l.is_empty())
}

#[wasm_bindgen]
pub fn scan_total(data: &[u8]) -> f64 {
    lines(data)
        .map(|l| match scan_line(l).outcome {
            Outcome::Success(u) => u.total as f64,
            _ => 0.0,
        })
        .sum()
}

#[wasm_bindgen]
pub fn serde_total(data: &[u8]) -> f64 {
    lines(data)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_slice(l).unwrap_or_default();
            v["response"]["usageMetadata"]["totalTokenCount"].as_f64().unwrap_or(0.0)
        })
        .sum()
}
