//! The same cases as `wasm.rs`, run inside a dedicated web worker in headless
//! Chromium: the package calls the platform on the global scope, so it works
//! where there is no `window` (run by `cargo xtask test`).
#![cfg(target_arch = "wasm32")]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

#[path = "wasm.rs"]
mod cases;
