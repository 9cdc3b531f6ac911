//! `cargo xtask build-worker`: worker-build with the pinned local tools (it would
//! otherwise download wasm-bindgen, esbuild and wasm-opt from GitHub), skipped
//! when the build output is newer than every source it depends on.

use crate::fresh::up_to_date;
use crate::run::{root, step};
use crate::setup;
use std::process::Command;

pub const OUTPUT: &str = "worker/build/index_bg.wasm";

pub fn build_worker(args: &[String]) -> Result<(), String> {
    let force = args.iter().any(|a| a == "--force");
    let tools = setup::worker_tools()?;
    // The static assets wrangler serves beside the worker.
    crate::demo::build_demo()?;
    let out = root().join(OUTPUT);
    if !force && up_to_date(&out, INPUTS) {
        eprintln!("worker build is up to date ({OUTPUT})");
        return Ok(());
    }
    step(
        "build the worker (wasm)",
        Command::new(&tools.worker_build)
            .args(["--profile", "wasm-release"])
            .env("WASM_BINDGEN_BIN", &tools.wasm_bindgen)
            .env("ESBUILD_BIN", &tools.esbuild)
            .env("WASM_OPT_BIN", &tools.wasm_opt)
            .current_dir(root().join("worker")),
    )?;
    // wasm-bindgen keeps the function-name section (a sixth of the module);
    // workerd does not need it, and every cold start downloads and compiles it.
    step(
        "strip the worker's name section",
        Command::new(&tools.wasm_opt).arg(&out).args(["--strip-debug", "--strip-producers", "-o"]).arg(&out),
    )
}

/// What the worker's wasm is built from.
const INPUTS: &[&str] = &[
    "worker/src",
    "worker/Cargo.toml",
    "core/src",
    "core/Cargo.toml",
    "Cargo.lock",
    "Cargo.toml",
    ".cargo/config.toml",
];
