//! Google's SDKs against the worker's `/gemini` (issue 23): the official
//! Python SDK (`google-genai`), unchanged but for its base URL and a batchgate
//! token as the API key, runs batches, downloads results, generates and
//! counts tokens (tests/python/test_gemini_dropin.py), against the real
//! worker in workerd with the emulator behind it.

use batchgate_e2e::python::pytest;
use batchgate_e2e::stack::{ACCOUNT, Stack, token};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler, the built worker and the test virtualenv: run through `cargo xtask test`"]
async fn googles_python_sdk_runs_batches_through_the_drop_in() {
    let s = Stack::start(json!({}), &[]);
    let (url, emulator) = (s.url(""), s.emu(""));
    // An account with no credits (nothing granted).
    let (mine, broke) = (token(ACCOUNT), token("dropin-broke"));
    pytest(
        "tests/python/test_gemini_dropin.py",
        &[
            ("BATCHGATE_URL", &url),
            ("BATCHGATE_TOKEN", &mine),
            ("BATCHGATE_BROKE_TOKEN", &broke),
            ("EMULATOR_URL", &emulator),
        ],
    );
    assert!(s.uncaught_exceptions().is_empty(), "{:?}", s.uncaught_exceptions());
}

/// The same through Google's JS SDK (`@google/genai`, a test dependency) in Node.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler, the built worker and node_modules: run through `cargo xtask test`"]
async fn googles_js_sdk_runs_batches_through_the_drop_in() {
    let s = Stack::start(json!({}), &[]);
    let script = batchgate_e2e::process::workspace_root().join("tests/node/google_genai.e2e.mjs");
    let out = std::process::Command::new("node")
        .arg(&script)
        .env("BATCHGATE_URL", s.url(""))
        .env("BATCHGATE_TOKEN", token(ACCOUNT))
        .output()
        .unwrap_or_else(|e| panic!("node: {e}"));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{}:\n{stdout}\n{stderr}", script.display());
    assert_eq!(stdout.lines().filter(|l| l.starts_with("ok - ")).count(), 5, "{stdout}");
    assert!(s.uncaught_exceptions().is_empty(), "{:?}", s.uncaught_exceptions());
}

/// The emulator's conformance suite (emulator/conformance), run a second time
/// with the worker's `/gemini` as the SDK's base URL and a batchgate token as
/// its key: everything the SDK does against Gemini's wire protocol works
/// through batchgate (tests of the emulator itself are skipped there).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler, the built worker and the test virtualenv: run through `cargo xtask test`"]
async fn the_emulator_s_conformance_suite_passes_through_the_drop_in() {
    let s = Stack::start(json!({}), &[]);
    let (gate, emulator) = (s.url("/gemini"), s.emu(""));
    pytest(
        "emulator/conformance",
        &[
            ("BATCHGATE_GEMINI_URL", &gate),
            ("EMULATOR_URL", &emulator),
            ("BATCHGATE_ADMIN_TOKEN", batchgate_e2e::stack::ADMIN_TOKEN),
        ],
    );
    assert!(s.uncaught_exceptions().is_empty(), "{:?}", s.uncaught_exceptions());
}
