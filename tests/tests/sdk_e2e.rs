//! The npm package as users get it: `npm pack` of `sdk/pkg`, installed into a
//! fresh project, driven from Node against the real worker and the emulator
//! (`sdk/tests/e2e.mjs`). Run by `cargo xtask test` after `cargo xtask build-sdk`.

use batchgate_e2e::process::workspace_root;
use batchgate_e2e::stack::{ACCOUNT, Stack, token};
use serde_json::json;
use std::path::Path;
use std::process::Command;

/// Run to success; its standard output.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{cmd:?} failed:\n{stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// Pack the package and install the tarball into a new project in `dir`.
fn install_packed(dir: &Path) {
    let packed = run(Command::new("npm")
        .args(["pack", "--pack-destination"])
        .arg(dir)
        .current_dir(workspace_root().join("sdk/pkg")));
    let tarball = packed
        .lines()
        .rev()
        .find(|l| l.ends_with(".tgz"))
        .unwrap_or_else(|| panic!("no tarball in:\n{packed}"));
    std::fs::write(dir.join("package.json"), r#"{"name": "sdk-e2e-app", "private": true, "type": "module"}"#)
        .unwrap();
    run(Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--offline"])
        .arg(dir.join(tarball.trim()))
        .current_dir(dir));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the built worker and SDK: run through `cargo xtask test`"]
async fn the_packed_sdk_works_from_node() {
    let app = tempfile::tempdir().unwrap();
    install_packed(app.path());
    std::fs::copy(workspace_root().join("sdk/tests/e2e.mjs"), app.path().join("e2e.mjs")).unwrap();
    // Node 20 has no WebSocket (watch polls); with the flag it has one (watch listens).
    for (flags, mode) in [(vec![], "polling"), (vec!["--experimental-websocket"], "websocket")] {
        // 8 MiB chunks, so a 20 MiB upload takes three and can be interrupted.
        let s = Stack::start(json!({"failKeys": ["flaky"]}), &[("MAX_UPLOAD_CHUNK_BYTES", "8388608")]);
        let out = Command::new("node")
            .args(&flags)
            .arg("e2e.mjs")
            .env("BATCHGATE_URL", s.url(""))
            .env("BATCHGATE_TOKEN", token(ACCOUNT))
            .env("POOR_TOKEN", token("poor"))
            .current_dir(app.path())
            .output()
            .unwrap();
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && text.contains(&format!("sdk e2e: ok ({mode})")), "{mode}: {text}");
    }
}

#[test]
#[ignore = "needs the built SDK: run through `cargo xtask test`"]
fn the_packed_sdk_declares_its_api_to_typescript() {
    let app = tempfile::tempdir().unwrap();
    install_packed(app.path());
    std::fs::copy(workspace_root().join("sdk/tests/types.ts"), app.path().join("types.ts")).unwrap();
    let tsc = workspace_root().join("node_modules/.bin/tsc");
    run(Command::new(tsc)
        .args(["--strict", "--noEmit", "--target", "es2022", "--module", "nodenext"])
        .args(["--moduleResolution", "nodenext", "--lib", "es2022,dom,dom.asynciterable", "types.ts"])
        .current_dir(app.path()));
}

/// The Rust client compiled to wasm (sdk/tests/live.rs) against the worker, in
/// Node and in headless Chromium. Built in its own target directory: the
/// endpoint is baked in at build time, and the workspace's is locked by the
/// `cargo test` running this.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the built worker and Chromium: run through `cargo xtask test`"]
async fn the_rust_client_runs_against_the_worker_in_node_and_chromium() {
    // 8 MiB chunks, so a 20 MiB upload takes three and can be interrupted.
    let s = Stack::start(json!({}), &[("MAX_UPLOAD_CHUNK_BYTES", "8388608"), ("CORS_ORIGINS", "*")]);
    let runner =
        std::env::var("WASM_BINDGEN_TEST_RUNNER").unwrap_or_else(|_| "wasm-bindgen-test-runner".into());
    let chromedriver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    for browser in [false, true] {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["test", "-p", "batchgate-sdk", "--target", "wasm32-unknown-unknown", "--test", "live"])
            .env("CARGO_TARGET_DIR", workspace_root().join("target/sdk-live"))
            .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", &runner)
            .env("BATCHGATE_URL", s.url(""))
            .env("BATCHGATE_TOKEN", token(ACCOUNT))
            .env("WASM_BINDGEN_TEST_TIMEOUT", "300")
            .current_dir(workspace_root());
        if browser {
            // The runner gives chromedriver 5 s to bind its port by default: too
            // little while other suites load both cores (CI failed on it once).
            cmd.env("WASM_BINDGEN_USE_BROWSER", "1")
                .env("CHROMEDRIVER", &chromedriver)
                .env("WASM_BINDGEN_TEST_DRIVER_TIMEOUT", "120");
        }
        let out = cmd.output().unwrap();
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let engine = if browser { "chromium" } else { "node" };
        assert!(out.status.success() && text.contains("test result: ok. 3 passed"), "{engine}: {text}");
    }
}
