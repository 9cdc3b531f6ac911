//! The demo app in a real browser: headless Chromium (Debian's) driven by
//! playwright-core through `demo/tests/demo.e2e.mjs`, against the worker that
//! serves the demo and the emulator. Screenshots go to `artifacts/demo/`.
//! Run by `cargo xtask test` after the worker (and the demo site) are built.

use batchgate_e2e::process::workspace_root;
use batchgate_e2e::stack::{ACCOUNT, Stack, token};
use serde_json::json;
use std::process::Command;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the built worker, demo and Chromium: run through `cargo xtask test`"]
async fn the_demo_runs_a_job_cancels_one_and_uploads_a_file_in_chromium() {
    let artifacts = workspace_root().join("artifacts/demo");
    std::fs::create_dir_all(&artifacts).unwrap();
    let s = Stack::start(json!({}), &[]);
    let out = Command::new("node")
        .arg(workspace_root().join("demo/tests/demo.e2e.mjs"))
        .env("DEMO_URL", s.url("/"))
        .env("BATCHGATE_TOKEN", token(ACCOUNT))
        .env("EMULATOR_URL", s.emu(""))
        .env("ARTIFACTS_DIR", &artifacts)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && text.contains("demo e2e: ok"),
        "{text}\n(screenshots in {})",
        artifacts.display()
    );
}
