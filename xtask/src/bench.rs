//! `cargo xtask bench`: release builds, then the benchmark driver, which writes
//! BENCHMARKS.md at the repository root.

use crate::run::{cargo, root, step};
use std::process::Command;

pub fn bench(args: &[String]) -> Result<(), String> {
    crate::worker::build_worker(&[])?;
    crate::sdk::build_sdk(&[])?;
    scanner_wasm()?;
    step(
        "release build",
        cargo().args(["build", "--release", "--quiet", "-p", "gemini-emulator", "-p", "batchgate-e2e"]),
    )?;
    let date = crate::run::output(Command::new("date").args(["-u", "+%Y-%m-%d"])).unwrap_or_default();
    step(
        "benchmarks",
        Command::new(root().join("target/release/bench"))
            .args(args)
            .args(["--out", "BENCHMARKS.md"])
            .env("GEMINI_EMULATOR_BIN", root().join("target/release/gemini-emulator"))
            .env("BENCH_DATE", date)
            .current_dir(root()),
    )
}

/// Core's scanner compiled to wasm for Node (`tests/wasm-scanner`), which the
/// scanner benchmark times beside serde_json in the same module.
fn scanner_wasm() -> Result<(), String> {
    let tools = crate::setup::worker_tools()?;
    step(
        "build the scanner as wasm",
        cargo().args([
            "build",
            "--quiet",
            "-p",
            "batchgate-scanner-wasm",
            "--target",
            "wasm32-unknown-unknown",
            "--profile",
            "wasm-release",
        ]),
    )?;
    step(
        "wasm-bindgen the scanner (Node)",
        Command::new(&tools.wasm_bindgen)
            .arg(root().join("target/wasm32-unknown-unknown/wasm-release/batchgate_scanner_wasm.wasm"))
            .args(["--target", "nodejs", "--out-dir"])
            .arg(root().join("target/scanner-wasm")),
    )
}
