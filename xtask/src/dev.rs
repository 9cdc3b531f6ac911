//! `cargo xtask dev`: the whole stack locally. The Gemini emulator stands in for
//! Google unless `GEMINI_API_KEY` is set, in which case the worker talks to
//! Google with it. The worker runs in workerd through wrangler's dev engine
//! (`worker/serve.mjs`: `wrangler dev` without its inspector, which cannot keep
//! up with large bodies), its Durable Objects and R2 persisted under `.wrangler/state`.

use crate::local_http::{call, json_str};
use crate::run::{cargo, root, step};
use crate::{setup, worker};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub const EMULATOR_PORT: u16 = 8765;
pub const EMULATOR_KEY: &str = "emulator-key";
pub const WORKER_PORT: u16 = 8787;
/// The local account `dev` serves, and what it starts with (1,000 credits).
pub const DEV_ACCOUNT: &str = "dev";
pub const DEV_CREDITS: u64 = 1_000_000_000;

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
    let secrets = dev_secrets(&root().join(".dev.vars"))?;
    let url = format!("http://127.0.0.1:{WORKER_PORT}");
    let mut serve = Command::new("node");
    serve
        .arg(root().join("worker/serve.mjs"))
        .args(["--ip", "127.0.0.1", "--port", &WORKER_PORT.to_string(), "--watch", "true"])
        .env("WRANGLER_SEND_METRICS", "false")
        .current_dir(root());
    for (k, v) in &vars {
        serve.arg("--var").arg(format!("{k}:{v}"));
    }
    let worker = Guard(serve.spawn().map_err(|e| format!("cannot start the worker: {e}"))?);
    let token = dev_account(&url, &secrets.admin_token)?;
    let backend = match google_key {
        Some(_) => "Google's Gemini API (GEMINI_API_KEY is set)".to_string(),
        None => format!(
            "the Gemini emulator at http://127.0.0.1:{EMULATOR_PORT} (one emulated minute per second)"
        ),
    };
    let auth = "-H \"authorization: Bearer $BATCHGATE_TOKEN\"";
    println!(
        "\nbatchgate: {url}   backed by {backend}\n\nThe demo, signed in as the dev account:\n  {url}/#token={token}\n\n\
         Dev account \"{DEV_ACCOUNT}\" ({} credits). Its token (30 days):\n  \
         export BATCHGATE_TOKEN={token}\n\nSubmit a job, then watch it, read its results and the account:\n  \
         curl -s {url}/v1/jobs {auth} -H 'content-type: application/json' -d '{{\"model\":\"gemini-2.5-flash\",\"requests\":[\
         {{\"key\":\"q1\",\"request\":{{\"contents\":[{{\"parts\":[{{\"text\":\"Why is the sky blue?\"}}]}}]}}}}]}}'\n  \
         curl -s {url}/v1/jobs/JOB_ID {auth}\n  curl -s {url}/v1/jobs/JOB_ID/results {auth}\n  \
         curl -s {url}/v1/account {auth}\n\nSecrets for local use are in .dev.vars. Ctrl-C stops everything.\n",
        DEV_CREDITS / 1_000_000
    );
    let mut worker = worker;
    let status = worker.0.wait().map_err(|e| format!("the worker: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("the worker exited with {status}")) }
}

struct Secrets {
    admin_token: String,
}

/// `.dev.vars` (wrangler's local secrets file): created once with random
/// `JWT_SECRET` and `ADMIN_TOKEN`, then reused so tokens survive restarts.
fn dev_secrets(path: &Path) -> Result<Secrets, String> {
    if !path.exists() {
        let text = format!(
            "# Local development secrets for `cargo xtask dev` (never used in production).\n\
             JWT_SECRET={}\nADMIN_TOKEN={}\n",
            random_hex()?,
            random_hex()?
        );
        std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{name}=")))
            .map(|v| v.trim().trim_matches('"').to_string())
    };
    match (value("JWT_SECRET"), value("ADMIN_TOKEN")) {
        (Some(_), Some(admin_token)) => Ok(Secrets { admin_token }),
        _ => Err(format!("{} must set JWT_SECRET and ADMIN_TOKEN (delete it to regenerate)", path.display())),
    }
}

fn random_hex() -> Result<String, String> {
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("reading /dev/urandom: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Wait for the worker, give the dev account its starting credits (once:
/// the grant is idempotent) and mint its token.
fn dev_account(url: &str, admin_token: &str) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(300);
    while call("GET", &format!("{url}/healthz"), &[], "").is_none_or(|(s, _)| s != 200) {
        if Instant::now() > deadline {
            return Err("the worker did not come up within 5 minutes".into());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let bearer = format!("Bearer {admin_token}");
    let headers = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    let grant = format!(
        r#"{{"amount":{DEV_CREDITS},"idempotencyKey":"dev-starting-credits","note":"cargo xtask dev"}}"#
    );
    match call("POST", &format!("{url}/v1/admin/accounts/{DEV_ACCOUNT}/grants"), &headers, &grant) {
        Some((201, _)) => {}
        other => return Err(format!("granting the dev account its credits failed: {other:?}")),
    }
    let mint = format!(r#"{{"account":"{DEV_ACCOUNT}","ttlSecs":2592000}}"#);
    match call("POST", &format!("{url}/v1/admin/tokens"), &headers, &mint) {
        Some((201, body)) => json_str(&body, "token").ok_or_else(|| format!("no token in {body}")),
        other => Err(format!("minting the dev token failed: {other:?}")),
    }
}
