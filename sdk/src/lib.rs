//! batchgate-sdk: the browser SDK, compiled to wasm and shipped as the npm
//! package `batchgate`. It reuses batchgate-core, so the browser validates and
//! quotes exactly as the worker does, and speaks the worker's HTTP API with the
//! platform's own `fetch` (browsers and Node ≥ 20 alike).
//!
//! - `client.rs` — the `Batchgate` class: tokens, calls, every API error as one
//!   `BatchgateError` (`code`, `status`, `details`), network errors apart.
//! - `quote.rs` — `estimate`, computed locally with core's validator and prices.
//! - `watch.rs` — `watch` (WebSocket, falling back to `ETag` polling), `wait`,
//!   and `results` as async iterators.
//! - `upload.rs` — resumable uploads that resume by themselves after a drop.
//! - `js.rs` — the few things only JavaScript can say (the error class, fetch).

mod client;
mod js;
mod quote;
mod types;
mod upload;
mod watch;

pub use client::Batchgate;
pub use js::error_class;
pub use watch::{JobWatch, ResultLines};

use wasm_bindgen::prelude::*;

/// The SDK's version, as published.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
