//! Idempotent installs. Each checks what is there (and at which version) before
//! doing anything, so repeated runs cost a few milliseconds.

use crate::run::{output, root, step};
use std::path::PathBuf;
use std::process::Command;

/// Everything any command needs.
pub fn all() -> Result<(), String> {
    python_venv()?;
    Ok(())
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
        "install google-genai and pytest",
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
    )?;
    std::fs::write(&stamp, wanted).map_err(|e| e.to_string())?;
    Ok(python)
}
