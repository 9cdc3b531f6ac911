//! Idempotent installs. Each checks what is there (and at which version) before
//! doing anything, so repeated runs cost milliseconds.

use crate::run::{cargo, output, root, step};
use std::path::PathBuf;
use std::process::Command;

/// The pinned worker-build (its minor must match the `worker` crate's).
const WORKER_BUILD_VERSION: &str = "0.8.7";

/// Everything any command needs.
pub fn all() -> Result<(), String> {
    python_venv()?;
    worker_tools()?;
    Ok(())
}

fn cargo_bin(name: &str) -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo"));
    home.join("bin").join(name)
}

/// `cargo install crate --version =version` unless `bin --version` already says `version`.
fn cargo_tool(bin: &str, krate: &str, version: &str) -> Result<PathBuf, String> {
    let path = cargo_bin(bin);
    let have = output(Command::new(&path).arg("--version")).unwrap_or_default();
    if have.split_whitespace().any(|w| w == version) {
        return Ok(path);
    }
    // Not --locked: some pinned lockfiles reference yanked crates (research/platform.md).
    step(
        &format!("install {krate} {version}"),
        cargo().args(["install", krate, "--version", &format!("={version}")]),
    )?;
    Ok(path)
}

/// The `wasm-bindgen` version in Cargo.lock: the CLI must be exactly this.
pub fn locked_wasm_bindgen() -> Result<String, String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).map_err(|e| format!("Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l == "name = \"wasm-bindgen\""
            && let Some(v) = lines.next().and_then(|v| v.strip_prefix("version = \""))
        {
            return Ok(v.trim_end_matches('"').to_string());
        }
    }
    Err("wasm-bindgen is not in Cargo.lock".into())
}

/// Paths of the tools the wasm builds use, all installed offline-safe.
pub struct WasmTools {
    pub wasm_bindgen: PathBuf,
    pub worker_build: PathBuf,
    pub esbuild: PathBuf,
    pub wasm_opt: PathBuf,
}

pub fn worker_tools() -> Result<WasmTools, String> {
    wasm_target()?;
    npm_packages()?;
    let wasm_bindgen = cargo_tool("wasm-bindgen", "wasm-bindgen-cli", &locked_wasm_bindgen()?)?;
    let worker_build = cargo_tool("worker-build", "worker-build", WORKER_BUILD_VERSION)?;
    Ok(WasmTools {
        wasm_bindgen,
        worker_build,
        esbuild: root().join("node_modules/@esbuild/linux-x64/bin/esbuild"),
        wasm_opt: root().join("node_modules/.bin/wasm-opt"),
    })
}

fn wasm_target() -> Result<(), String> {
    let installed =
        output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if installed.lines().any(|l| l.trim() == "wasm32-unknown-unknown") {
        return Ok(());
    }
    step("add the wasm32 target", Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))
}

/// `npm ci` unless node_modules was installed from this exact package-lock.json
/// (a stamp holds the lockfile's contents as of the last install).
pub fn npm_packages() -> Result<(), String> {
    let lock =
        std::fs::read(root().join("package-lock.json")).map_err(|e| format!("package-lock.json: {e}"))?;
    let stamp = root().join("node_modules/.batchgate-lock");
    if std::fs::read(&stamp).is_ok_and(|s| s == lock) {
        return Ok(());
    }
    step(
        "install Node packages (wrangler, binaryen)",
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .env("WRANGLER_SEND_METRICS", "false")
            .current_dir(root()),
    )?;
    std::fs::write(&stamp, lock).map_err(|e| e.to_string())
}

/// The virtualenv with the official `google-genai` SDK used by the emulator
/// conformance suite, at the versions pinned in `emulator/conformance/requirements.txt`.
pub fn python_venv() -> Result<PathBuf, String> {
    let venv = root().join("target/py-venv");
    let python = venv.join("bin/python");
    let requirements = root().join("emulator/conformance/requirements.txt");
    let wanted =
        std::fs::read_to_string(&requirements).map_err(|e| format!("{}: {e}", requirements.display()))?;
    let stamp = venv.join(".requirements");
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(python);
    }
    if !python.exists() {
        let py = ["python3", "python"]
            .into_iter()
            .find(|p| output(Command::new(p).arg("--version")).is_some())
            .ok_or("Python 3 is needed for the conformance suite and was not found")?;
        step("create the Python virtualenv", Command::new(py).args(["-m", "venv"]).arg(&venv))?;
    }
    step(
        "install google-genai, pytest and openapi-python-client",
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
    )?;
    std::fs::write(&stamp, wanted).map_err(|e| e.to_string())?;
    Ok(python)
}

/// Debian's Chromium and its WebDriver, for the browser tests.
pub struct Browser {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

/// `apt-get install chromium chromium-driver` unless both are present (as root,
/// or through sudo when not).
pub fn chromium() -> Result<Browser, String> {
    let browser = Browser {
        chromium: PathBuf::from("/usr/bin/chromium"),
        chromedriver: PathBuf::from("/usr/bin/chromedriver"),
    };
    if browser.chromium.exists() && browser.chromedriver.exists() {
        return Ok(browser);
    }
    let root_user = output(Command::new("id").arg("-u")).is_some_and(|u| u.trim() == "0");
    let apt = |args: &[&str]| {
        let mut cmd = if root_user { Command::new("apt-get") } else { Command::new("sudo") };
        if !root_user {
            cmd.arg("apt-get");
        }
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    step("apt-get update", &mut apt(&["update", "-qq"]))?;
    step(
        "install chromium and chromium-driver",
        &mut apt(&["install", "-y", "-qq", "--no-install-recommends", "chromium", "chromium-driver"]),
    )?;
    Ok(browser)
}
