//! `cargo xtask dev`: the local stack, offline. For now the Gemini emulator.

use crate::run::{cargo, root, step};
use std::process::Command;

pub const EMULATOR_PORT: u16 = 8765;
pub const EMULATOR_KEY: &str = "emulator-key";

pub fn dev(args: &[String]) -> Result<(), String> {
    if let Some(a) = args.first() {
        return Err(format!("unknown option {a}"));
    }
    step("build the emulator", cargo().args(["build", "--quiet", "-p", "gemini-emulator"]))?;
    let url = format!("http://127.0.0.1:{EMULATOR_PORT}");
    println!(
        "\nGemini emulator: {url}  (API key: {EMULATOR_KEY}; 60 emulated seconds per real second)\n\
         Try:\n  curl -s {url}/v1beta/models -H 'x-goog-api-key: {EMULATOR_KEY}'\n  \
         curl -s {url}/v1beta/models/gemini-2.5-flash:generateContent -H 'x-goog-api-key: {EMULATOR_KEY}' \\\n    \
         -d '{{\"contents\":[{{\"parts\":[{{\"text\":\"hello\"}}]}}]}}'\n  \
         curl -s {url}/_emulator/state\nCtrl-C stops it.\n"
    );
    let status = Command::new(root().join("target/debug/gemini-emulator"))
        .args(["--port", &EMULATOR_PORT.to_string(), "--api-key", EMULATOR_KEY, "--time-scale", "60"])
        .status()
        .map_err(|e| format!("cannot start the emulator: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("the emulator exited with {status}")) }
}
