//! `cargo xtask build-sdk`: the npm package `batchgate` in `sdk/pkg`: the SDK
//! compiled to wasm (wasm-release profile), `wasm-bindgen --target web`,
//! `wasm-opt -Oz`, and the hand-written entry points and package.json from
//! `sdk/npm/`. Skipped when the package is newer than its sources.

use crate::run::{cargo, root, step};
use crate::setup;
use crate::worker::newest;
use std::process::Command;

pub const PKG: &str = "sdk/pkg";

pub fn build_sdk(args: &[String]) -> Result<(), String> {
    let force = args.iter().any(|a| a == "--force");
    let tools = setup::worker_tools()?;
    let pkg = root().join(PKG);
    let wasm = pkg.join("batchgate_bg.wasm");
    let inputs = [
        "sdk/src",
        "sdk/npm",
        "sdk/Cargo.toml",
        "sdk/README.md",
        "core/src",
        "Cargo.lock",
        ".cargo/config.toml",
    ];
    let fresh = newest(&wasm)
        .is_some_and(|built| inputs.iter().filter_map(|p| newest(&root().join(p))).all(|t| t <= built));
    if fresh && !force {
        eprintln!("sdk package is up to date ({PKG})");
        return Ok(());
    }
    step(
        "build the SDK (wasm)",
        cargo().args([
            "build",
            "--quiet",
            "-p",
            "batchgate-sdk",
            "--target",
            "wasm32-unknown-unknown",
            "--profile",
            "wasm-release",
        ]),
    )?;
    let _ = std::fs::remove_dir_all(&pkg);
    step(
        "wasm-bindgen the SDK",
        Command::new(&tools.wasm_bindgen)
            .arg(root().join("target/wasm32-unknown-unknown/wasm-release/batchgate_sdk.wasm"))
            .args(["--target", "web", "--out-name", "batchgate", "--out-dir"])
            .arg(&pkg),
    )?;
    step("wasm-opt -Oz the SDK", Command::new(&tools.wasm_opt).arg(&wasm).args(["-Oz", "-o"]).arg(&wasm))?;
    for entry in std::fs::read_dir(root().join("sdk/npm")).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if let Some(name) = path.file_name() {
            std::fs::copy(&path, pkg.join(name)).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    std::fs::copy(root().join("sdk/README.md"), pkg.join("README.md"))
        .map_err(|e| format!("sdk/README.md: {e}"))?;
    Ok(())
}
