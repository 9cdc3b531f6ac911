//! `cargo xtask dev`: the whole stack locally. The Gemini emulator stands in for
//! Google unless `GEMINI_API_KEY` is set, in which case the worker talks to
//! Google with it. The worker runs in workerd through wrangler's dev engine
//! (`worker/serve.mjs`: `wrangler dev` without its inspector, which cannot keep
//! up with large bodies), its Durable Objects and R2 persisted under `.wrangler/state`.

use crate::run::{cargo, root, step};
use crate::{setup, worker};
use std::process::{Child, Command};

pub const EMULATOR_PORT: u16 = 8765;
pub const EMULATOR_KEY: &str = "emulator-key";
pub const WORKER_PORT: u16 = 8787;

struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn dev(args: &[String]) -> Result<(), String> {
    if let Some(a) = args.first() {
        return Err(format!("unknown option {a}"));
    }
    setup::worker_tools()?;
    worker::build_worker(&[])?;
    let google_key = std::env::var("GEMINI_API_KEY").ok().filter(|k| !k.is_empty());
    let mut vars: Vec<(String, String)> = vec![];
    let _emulator = match &google_key {
        Some(key) => {
            vars.push(("GEMINI_API_KEY".into(), key.clone()));
            None
        }
        None => {
            step("build the emulator", cargo().args(["build", "--quiet", "-p", "gemini-emulator"]))?;
            let child = Command::new(root().join("target/debug/gemini-emulator"))
                .args(["--port", &EMULATOR_PORT.to_string(), "--api-key", EMULATOR_KEY, "--time-scale", "60"])
                .spawn()
                .map_err(|e| format!("cannot start the emulator: {e}"))?;
            vars.push(("GEMINI_API_BASE".into(), format!("http://127.0.0.1:{EMULATOR_PORT}")));
            vars.push(("GEMINI_API_KEY".into(), EMULATOR_KEY.into()));
            vars.push(("POLL_FIRST_SECS".into(), "1".into()));
            vars.push(("POLL_MIN_SECS".into(), "1".into()));
            Some(Guard(child))
        }
    };
    let url = format!("http://127.0.0.1:{WORKER_PORT}");
    let backend = match google_key {
        Some(_) => "Google's Gemini API (GEMINI_API_KEY is set)".to_string(),
        None => format!(
            "the Gemini emulator at http://127.0.0.1:{EMULATOR_PORT} (one emulated minute per second)"
        ),
    };
    println!(
        "\nbatchgate: {url}   backed by {backend}\n\nSubmit a job, then watch it and read its results:\n  \
         curl -s {url}/v1/jobs -H 'content-type: application/json' -d '{{\"model\":\"gemini-2.5-flash\",\"requests\":[\
         {{\"key\":\"q1\",\"request\":{{\"contents\":[{{\"parts\":[{{\"text\":\"Why is the sky blue?\"}}]}}]}}}}]}}'\n  \
         curl -s {url}/v1/jobs/JOB_ID\n  curl -s {url}/v1/jobs/JOB_ID/results\n\nCtrl-C stops everything.\n"
    );
    let mut wrangler = Command::new("node");
    wrangler
        .arg(root().join("worker/serve.mjs"))
        .args(["--ip", "127.0.0.1", "--port", &WORKER_PORT.to_string(), "--watch", "true"])
        .env("WRANGLER_SEND_METRICS", "false")
        .current_dir(root());
    for (k, v) in &vars {
        wrangler.arg("--var").arg(format!("{k}:{v}"));
    }
    let status = wrangler.status().map_err(|e| format!("cannot start wrangler: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("wrangler exited with {status}")) }
}
