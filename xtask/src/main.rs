//! `cargo xtask`: the project's commands. Each installs what it needs first and
//! skips what is already in place, so a fresh machine with only Rust, Node and
//! Python needs nothing else.
//!
//! - `cargo xtask dev`: build and serve everything locally (offline, on the emulator).
//! - `cargo xtask test`: every test suite; exits non-zero if any fails.
//! - `cargo xtask bench`: the benchmarks, written to BENCHMARKS.md.
//! - `cargo xtask tidy`: the architecture's rules a text search can check.
//! - `cargo xtask deploy-check`: what `wrangler deploy` would upload, checked offline.
//! - `cargo xtask setup`: only the installs.
//! - `cargo xtask build-worker`: the worker wasm and the demo site it serves (what
//!   `wrangler dev/deploy` run).
//! - `cargo xtask build-sdk`: the npm package `batchgate` (sdk/pkg).

mod bench;
mod demo;
mod deploy_check;
mod dev;
mod fresh;
mod local_http;
mod run;
mod sdk;
mod setup;
mod test;
mod tidy;
mod worker;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <dev|test|bench|setup> [options]
  dev                  serve the worker and the Gemini emulator locally (Google with GEMINI_API_KEY)
  test                 run every suite (fmt, clippy, cargo test, SDK conformance, worker e2e)
  bench [--size-mb N] [--reps N]
                       run the benchmarks and write BENCHMARKS.md
  tidy                 check the architecture's rules (ARCHITECTURE.md) in the sources
  deploy-check         wrangler deploy --dry-run: bundle, bindings, migrations, upload size
  setup                install the tools the other commands need
  build-worker [--force]
                       build the worker wasm and its demo site (wrangler's build command)
  build-sdk [--force]  build the npm package `batchgate` into sdk/pkg";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    let result = match args.first().map(String::as_str) {
        Some("dev") => dev::dev(rest),
        Some("test") => test::test(rest),
        Some("bench") => bench::bench(rest),
        Some("tidy") => tidy::tidy(rest),
        Some("deploy-check") => deploy_check::deploy_dry_run(),
        Some("setup") => setup::all().map(|_| ()),
        Some("build-worker") => worker::build_worker(rest),
        Some("build-sdk") => sdk::build_sdk(rest),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
