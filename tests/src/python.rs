//! The test virtualenv's Python (`cargo xtask` makes it: google-genai,
//! pytest, openapi-python-client), for suites that drive the worker from
//! Python clients.

use std::path::PathBuf;
use std::process::Command;

/// `BATCHGATE_PYTHON` (set by `cargo xtask test`), else the virtualenv under target/.
pub fn python() -> PathBuf {
    std::env::var_os("BATCHGATE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::process::workspace_root().join("target/py-venv/bin/python"))
}

/// `PATH` with the virtualenv's scripts first (its tools call each other).
pub fn path() -> String {
    let bin = python().parent().map(PathBuf::from).unwrap_or_default();
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
}

/// Run `cmd`; panic with its output unless it succeeds.
pub fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} (run `cargo xtask test` once to make the virtualenv)"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `pytest -q` on `file` (under the workspace) with `env`.
pub fn pytest(file: &str, env: &[(&str, &str)]) {
    let mut cmd = Command::new(python());
    cmd.args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(crate::process::workspace_root().join(file))
        .env("PATH", path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd, file);
}
