//! `batchgate`: the command line for batchgate. Every command runs one of
//! core's client machines (the same the browser SDK runs) over reqwest.
//!
//! Exit codes: 0 done; 1 the job ended failed, expired or cancelled; 2 usage;
//! 3 the API (or a local check) refused; 4 no answer from the network.

mod commands;
mod transport;

use batchgate_core::client::call::ClientError;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "batchgate", version, about = "Run Gemini requests through batchgate at half price.")]
pub struct Cli {
    /// The batchgate endpoint.
    #[arg(long, env = "BATCHGATE_URL", global = true, default_value = "http://127.0.0.1:8787")]
    url: String,
    /// Your token.
    #[arg(long, env = "BATCHGATE_TOKEN", global = true, hide_env_values = true, default_value = "")]
    token: String,
    /// Print JSON, one value per line, for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Quote an NDJSON file locally, with the worker's own rules.
    Estimate {
        file: PathBuf,
        #[arg(long)]
        model: String,
        /// The operator's PRICES table (JSON), when it is not Google's.
        #[arg(long)]
        prices: Option<PathBuf>,
    },
    /// Submit an NDJSON file of `{key?, request}` lines. Large files go in
    /// resumable parts: the same command run again after an interruption
    /// goes on where it stopped.
    Submit {
        file: PathBuf,
        #[arg(long)]
        model: String,
        #[arg(long)]
        name: Option<String>,
        /// batch (half price), realtime or auto.
        #[arg(long)]
        mode: Option<String>,
        /// Defaults to a digest of the model and the file: the same file
        /// submitted twice is one job.
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Wait for the job to end (exit 1 if it did not succeed).
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        prices: Option<PathBuf>,
        /// Files larger than this (bytes) go through an input in parts.
        #[arg(long, default_value_t = 4 << 20)]
        inline_bytes: u64,
        /// A part's most bytes (the worker takes up to MAX_INPUT_PART_BYTES).
        #[arg(long, default_value_t = 32 << 20)]
        part_bytes: u64,
    },
    /// The job's view.
    Status { id: String },
    /// The job's progress, live, until it ends.
    Watch { id: String },
    /// Wait for the job to end; print its final view.
    Wait { id: String },
    /// The job's result lines (NDJSON), streamed.
    Results {
        id: String,
        /// Only the lines that failed.
        #[arg(long, value_parser = ["failed"])]
        only: Option<String>,
        /// Write to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Your jobs, newest first.
    List {
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Cancel a job (what Gemini delivered so far is kept and charged).
    Cancel { id: String },
    /// A new job of the lines of an ended job that failed.
    Retry { id: String },
    /// Delete a job and its results.
    Delete { id: String },
    /// The job's timeline.
    Events {
        id: String,
        #[arg(long)]
        after: Option<u64>,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Upload a file for `fileData.fileUri`, resumably.
    Upload {
        file: PathBuf,
        #[arg(long)]
        mime_type: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
    /// One request answered now (the realtime lane, standard price).
    Generate {
        #[arg(long)]
        model: String,
        prompt: String,
    },
    /// Your balance and totals, in micro-credits.
    Account,
    /// Your ledger, newest first.
    Ledger {
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        cursor: Option<String>,
    },
}

/// How a command ended, as the process's exit code.
pub enum Ended {
    Done,
    /// The job ended without succeeding.
    JobUnsuccessful,
}

fn exit_code(e: &ClientError) -> u8 {
    if e.is_network() { 4 } else { 3 }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: runtime: {e}");
            return ExitCode::from(4);
        }
    };
    match runtime.block_on(commands::run(&cli)) {
        Ok(Ended::Done) => ExitCode::SUCCESS,
        Ok(Ended::JobUnsuccessful) => ExitCode::from(1),
        Err(e) => {
            if cli.json {
                let details: Option<serde_json::Value> =
                    e.details.as_deref().and_then(|d| serde_json::from_str(d).ok());
                let line = serde_json::json!({"error": {"code": e.code, "message": e.message, "status": e.status, "details": details}});
                eprintln!("{line}");
            } else {
                eprintln!("error: {}: {}", e.code, e.message);
            }
            ExitCode::from(exit_code(&e))
        }
    }
}
