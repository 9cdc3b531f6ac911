//! `cargo xtask bench`: release builds, then the benchmark driver, which writes
//! BENCHMARKS.md at the repository root.

use crate::run::{cargo, root, step};
use std::process::Command;

pub fn bench(args: &[String]) -> Result<(), String> {
    crate::worker::build_worker(&[])?;
    crate::sdk::build_sdk(&[])?;
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
