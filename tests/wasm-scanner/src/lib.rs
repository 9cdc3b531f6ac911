//! The two ways to read result lines, compiled to wasm for the benchmark
//! (`bench.mjs` times them in Node over the same bytes): core's scanner, which
//! the worker runs, and `serde_json` parsing each whole line. Both return the
//! summed `totalTokenCount`, so the benchmark can check they read the same.
//! The bytes are copied into wasm memory once (`Corpus::new`), as the worker
//! holds a fetched range, so the timings are of reading only.

use batchgate_core::results::{Outcome, scan_line};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
pub struct Corpus(Vec<u8>);

#[wasm_bindgen]
impl Corpus {
    #[wasm_bindgen(constructor)]
    pub fn new(data: &[u8]) -> Corpus {
        Corpus(data.to_vec())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn scan_total(&self) -> f64 {
        self.lines()
            .map(|l| match scan_line(l).outcome {
                Outcome::Success(u) => u.total as f64,
                _ => 0.0,
            })
            .sum()
    }

    pub fn serde_total(&self) -> f64 {
        self.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_slice(l).unwrap_or_default();
                v["response"]["usageMetadata"]["totalTokenCount"].as_f64().unwrap_or(0.0)
            })
            .sum()
    }
}

impl Corpus {
    fn lines(&self) -> impl Iterator<Item = &[u8]> {
        self.0.split(|b| *b == b'\n').filter(|l| !l.is_empty())
    }
}
