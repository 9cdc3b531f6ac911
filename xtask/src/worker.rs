//! `cargo xtask build-worker`: worker-build with the pinned local tools (it would
//! otherwise download wasm-bindgen, esbuild and wasm-opt from GitHub), skipped
//! when the build output is newer than every source it depends on.

use crate::run::{root, step};
use crate::setup;
use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

pub const OUTPUT: &str = "worker/build/index_bg.wasm";

pub fn build_worker(args: &[String]) -> Result<(), String> {
    let force = args.iter().any(|a| a == "--force");
    let tools = setup::worker_tools()?;
    // The static assets wrangler serves beside the worker.
    crate::demo::build_demo()?;
    let out = root().join(OUTPUT);
    if !force && is_fresh(&out) {
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

pub fn newest(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path).ok()?.filter_map(|e| newest(&e.ok()?.path())).max()
}

fn is_fresh(out: &Path) -> bool {
    let Some(built) = newest(out) else { return false };
    let inputs = [
        "worker/src",
        "worker/Cargo.toml",
        "core/src",
        "core/Cargo.toml",
        "Cargo.lock",
        "Cargo.toml",
        ".cargo/config.toml",
    ];
    inputs.iter().filter_map(|p| newest(&root().join(p))).all(|t| t <= built)
}
