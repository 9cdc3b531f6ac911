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
