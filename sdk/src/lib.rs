//! batchgate-sdk: the browser SDK, compiled to wasm and shipped as the npm
//! package `batchgate`. It reuses batchgate-core so the browser validates and
//! quotes exactly as the worker does. The client API (submit, watch, results,
//! upload, account) grows here; today it exposes the shared JSONL check.

use wasm_bindgen::prelude::*;

/// The SDK's version, as published.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Count the requests in a JSONL text, or throw naming the first bad line.
#[wasm_bindgen(js_name = countJsonlLines)]
pub fn count_jsonl_lines(text: &str) -> Result<u32, JsError> {
    count_lines(text.as_bytes()).map_err(|e| JsError::new(&e))
}

fn count_lines(bytes: &[u8]) -> Result<u32, String> {
    let lines = batchgate_core::jsonl::split_all(bytes, batchgate_core::jsonl::DEFAULT_MAX_LINE_BYTES)
        .map_err(|e| e.to_string())?;
    Ok(lines.len() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_requests_and_skips_blank_lines() {
        assert_eq!(count_lines(b"{}\n\n{}\r\n"), Ok(2));
    }
}
