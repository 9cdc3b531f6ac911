//! batchgate-sdk: the part of the npm package `batchgate` that must agree with
//! the worker to the micro-credit — request validation, the token estimate and
//! the price table — compiled from batchgate-core to wasm.
//!
//! The client around it (HTTP, tokens, errors, the WebSocket watch, results,
//! resumable uploads) is JavaScript in `sdk/js/`: in Rust, every platform call
//! and every `async` method cost wasm and glue that the platform already has
//! as JavaScript, and the package's budget is 60 KB gzipped (ARCHITECTURE.md).
//!
//! Values cross as JSON text: the platform's `JSON.stringify`/`parse` on one
//! side, serde_json (which core needs anyway) on the other.

mod quote;

use batchgate_core::pricing::{EstimateRules, PriceTable};
use wasm_bindgen::prelude::*;

/// The worker's pricing rules: a price table (Google's, or the operator's
/// `PRICES`) and the estimate rules every quote is made with.
#[wasm_bindgen]
pub struct Rules {
    prices: PriceTable,
    estimate: EstimateRules,
}

#[wasm_bindgen]
impl Rules {
    /// `prices`: the operator's `PRICES` table as JSON text, or nothing for
    /// Google's. Throws a message naming what is wrong with the table.
    #[wasm_bindgen(constructor)]
    pub fn new(prices: Option<String>) -> Result<Rules, String> {
        let prices = match prices {
            Some(json) => PriceTable::from_json(&json)?,
            None => PriceTable::default(),
        };
        Ok(Rules { prices, estimate: EstimateRules::default() })
    }

    /// The quote (JSON text) of `requests` (JSON text of `[{key?, request}]`)
    /// on `model`, as `POST /v1/estimate` makes it. Throws naming the first
    /// bad request, or a model without a price.
    pub fn estimate(&self, model: &str, requests: &str) -> Result<String, String> {
        let quote = quote::estimate(&self.prices, self.estimate, model, requests.as_bytes())?;
        serde_json::to_string(&quote).map_err(|e| e.to_string())
    }

    /// The quote (JSON text) of one result line's `usageMetadata` (the line as
    /// JSON text), counted as the server counts it; an error line costs 0.
    #[wasm_bindgen(js_name = resultCost)]
    pub fn result_cost(&self, model: &str, line: &str) -> Result<String, String> {
        let quote = quote::result_cost(&self.prices, model, line.as_bytes())?;
        serde_json::to_string(&quote).map_err(|e| e.to_string())
    }

    /// The models the price table lists, as a JSON array.
    pub fn models(&self) -> String {
        let models: Vec<serde_json::Value> = self.prices.models().map(|(m, _)| m.into()).collect();
        serde_json::Value::Array(models).to_string()
    }
}

/// The SDK's version, as published.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
