//! `cargo xtask build-sdk`: the npm package `batchgate` in `sdk/pkg`.
//!
//! - core's rules (`sdk/src`) compiled to wasm (wasm-release profile),
//!   `wasm-bindgen --target web` into `target/sdk-wasm/`, `wasm-opt -Oz` into
//!   the package;
//! - the JavaScript client (`sdk/js`) bundled with that glue by esbuild into
//!   one minified module per entry (`index.js` for browsers, `node.js` for
//!   Node), with source maps so stack traces read as the sources;
//! - the hand-written `index.d.ts` and `package.json`, the generated
//!   `batchgate.d.ts` (core's wire types), and the README.
//!
//! Skipped when the package is newer than its sources.

use crate::fresh::up_to_date;
use crate::run::{cargo, root, step};
use crate::setup;
use std::path::Path;
use std::process::Command;

pub const PKG: &str = "sdk/pkg";
const GLUE: &str = "target/sdk-wasm";

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to).map(drop).map_err(|e| format!("{}: {e}", from.display()))
}

pub fn build_sdk(args: &[String]) -> Result<(), String> {
    let force = args.iter().any(|a| a == "--force");
    let tools = setup::worker_tools()?;
    let pkg = root().join(PKG);
    let glue = root().join(GLUE);
    let inputs = [
        "sdk/src",
        "sdk/js",
        "sdk/Cargo.toml",
        "sdk/README.md",
        "core/src",
        "Cargo.lock",
        ".cargo/config.toml",
    ];
    if up_to_date(&pkg.join("index.js"), &inputs) && !force {
        eprintln!("sdk package is up to date ({PKG})");
        return Ok(());
    }
    step(
        "build the SDK's rules (wasm)",
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
    let _ = std::fs::remove_dir_all(&glue);
    step(
        "wasm-bindgen the SDK's rules",
        Command::new(&tools.wasm_bindgen)
            .arg(root().join("target/wasm32-unknown-unknown/wasm-release/batchgate_sdk.wasm"))
            .args(["--target", "web", "--out-name", "batchgate", "--out-dir"])
            .arg(&glue),
    )?;
    let _ = std::fs::remove_dir_all(&pkg);
    std::fs::create_dir_all(&pkg).map_err(|e| format!("{PKG}: {e}"))?;
    step(
        "wasm-opt -Oz the SDK",
        Command::new(&tools.wasm_opt)
            .arg(glue.join("batchgate_bg.wasm"))
            .args(["-Oz", "-o"])
            .arg(pkg.join("batchgate_bg.wasm")),
    )?;
    for entry in ["index", "node"] {
        step(
            &format!("bundle the SDK's {entry}.js"),
            Command::new(&tools.esbuild)
                .arg(root().join(format!("sdk/js/{entry}.js")))
                .args([
                    "--bundle",
                    "--format=esm",
                    "--target=es2022",
                    "--minify",
                    "--keep-names",
                    "--sourcemap",
                ])
                .args(["--external:node:*", "--log-level=warning"])
                .arg(format!("--alias:batchgate-wasm={}", glue.join("batchgate.js").display()))
                .arg(format!("--outfile={}", pkg.join(format!("{entry}.js")).display())),
        )?;
    }
    copy(&glue.join("batchgate.d.ts"), &pkg.join("batchgate.d.ts"))?;
    for file in ["index.d.ts", "package.json"] {
        copy(&root().join("sdk/js").join(file), &pkg.join(file))?;
    }
    copy(&root().join("sdk/README.md"), &pkg.join("README.md"))
}
