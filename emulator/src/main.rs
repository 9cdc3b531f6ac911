//! `gemini-emulator`: serve the emulated Gemini API until interrupted.
//!
//! Prints `gemini-emulator listening on http://HOST:PORT` once ready (harnesses
//! wait for that line). Flags override `--config` JSON, which overrides defaults.

use gemini_emulator::config::{Config, WebhookConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "gemini-emulator [options]
  --host H              address to bind (default 127.0.0.1)
  --port P              port (default 8765; 0 picks a free one)
  --api-key K           the accepted API key (default emulator-key; env GEMINI_EMULATOR_API_KEY)
  --time-scale S        emulated seconds per real second (default 1)
  --pending-secs N      emulated seconds a batch stays PENDING (default 5)
  --running-secs N      emulated seconds a batch stays RUNNING (default 10)
  --webhook-url U       POST signed terminal-state events here
  --webhook-secret S    whsec_... secret for the signatures
  --public-base-url U   base of handed-out URLs (default: the request's Host)
  --data-dir D          where file bytes live (default: a temporary dir)
  --config JSON|@FILE   any config field (see GET /_emulator/config)";

struct Args {
    addr: SocketAddr,
    scale: f64,
    data_dir: Option<PathBuf>,
    config: Config,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut host = "127.0.0.1".to_string();
    let mut port = "8765".to_string();
    let mut scale = 1.0;
    let mut data_dir = None;
    let mut config = Config::default();
    if let Ok(k) = std::env::var("GEMINI_EMULATOR_API_KEY") {
        config.api_key = k;
    }
    let (mut hook_url, mut hook_secret) = (None, None);
    let mut flags: Vec<(String, String)> = vec![];
    while let Some(flag) = argv.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.into());
        }
        let value = argv.next().ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"))?;
        flags.push((flag, value));
    }
    // --config first so that the other flags override it.
    flags.sort_by_key(|(f, _)| f != "--config");
    let num = |f: &str, v: &str| v.parse::<f64>().map_err(|_| format!("{f}: not a number: {v:?}"));
    for (flag, value) in flags {
        match flag.as_str() {
            "--host" => host = value,
            "--port" => port = value,
            "--api-key" => config.api_key = value,
            "--time-scale" => scale = num(&flag, &value)?,
            "--pending-secs" => config.pending_secs = num(&flag, &value)?,
            "--running-secs" => config.running_secs = num(&flag, &value)?,
            "--webhook-url" => hook_url = Some(value),
            "--webhook-secret" => hook_secret = Some(value),
            "--public-base-url" => config.public_base_url = Some(value),
            "--data-dir" => data_dir = Some(PathBuf::from(value)),
            "--config" => {
                let text = match value.strip_prefix('@') {
                    Some(path) => {
                        std::fs::read_to_string(path).map_err(|e| format!("--config {path}: {e}"))?
                    }
                    None => value,
                };
                let patch: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| format!("--config: {e}"))?;
                config = config.patched(&patch).map_err(|e| format!("--config: {e}"))?;
            }
            _ => return Err(format!("unknown option {flag}\n\n{USAGE}")),
        }
    }
    if let Some(url) = hook_url {
        let secret = hook_secret.ok_or("--webhook-url needs --webhook-secret")?;
        config.webhook = Some(WebhookConfig { url, secret, max_attempts: 5 });
    }
    let addr = format!("{host}:{port}").parse().map_err(|e| format!("bad address {host}:{port}: {e}"))?;
    Ok(Args { addr, scale, data_dir, config })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let emulator = match gemini_emulator::Emulator::new(args.config, args.scale, args.data_dir) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("gemini-emulator: cannot prepare the data dir: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(args.addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("gemini-emulator: cannot listen on {}: {e}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    let server = match gemini_emulator::serve(emulator, listener).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gemini-emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("gemini-emulator listening on {}", server.base_url());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        _ = server.task => {}
    }
    ExitCode::SUCCESS
}
