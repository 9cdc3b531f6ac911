//! Settings from `[vars]` and secrets, with defaults for everything optional.

use batchgate_core::gemini::client::GeminiConfig;
use batchgate_core::job::Policy;
use batchgate_core::submit::Limits;
use worker::Env;

pub struct Settings {
    pub gemini: GeminiConfig,
    pub policy: Policy,
    pub limits: Limits,
    /// R2 multipart part size for inputs and results (≥ 5 MiB, R2's minimum).
    pub part_bytes: u64,
    /// Bytes of input sent to Gemini per upload request (a multiple of 8 MiB).
    pub upload_chunk_bytes: u64,
    /// A result line longer than this is recorded as malformed.
    pub max_line_bytes: u64,
    /// JSON (non-NDJSON) submissions are parsed whole; larger ones must stream.
    pub max_json_body_bytes: u64,
    /// Timeout of one Gemini call.
    pub gemini_timeout_ms: u64,
}

fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string()).filter(|v| !v.is_empty())
}

fn num(env: &Env, name: &str, default: u64) -> u64 {
    var(env, name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Seconds as a decimal (`0.2`) to milliseconds.
fn secs_ms(env: &Env, name: &str, default_ms: u64) -> u64 {
    var(env, name).and_then(|v| v.parse::<f64>().ok()).map_or(default_ms, |s| (s * 1000.0).max(1.0) as u64)
}

impl Settings {
    pub fn from_env(env: &Env) -> Settings {
        let defaults = Policy::default();
        let mut policy = defaults.clone();
        policy.poll.first_ms = secs_ms(env, "POLL_FIRST_SECS", defaults.poll.first_ms);
        policy.poll.min_ms = secs_ms(env, "POLL_MIN_SECS", defaults.poll.min_ms);
        policy.poll.max_ms = secs_ms(env, "POLL_MAX_SECS", defaults.poll.max_ms);
        policy.poll.growth_permille = num(env, "POLL_GROWTH_PERMILLE", defaults.poll.growth_permille);
        policy.retry.base_ms = secs_ms(env, "RETRY_BASE_SECS", defaults.retry.base_ms);
        policy.retry.max_ms = secs_ms(env, "RETRY_MAX_SECS", defaults.retry.max_ms);
        policy.deadline_ms = secs_ms(env, "JOB_DEADLINE_SECS", defaults.deadline_ms);
        let gemini_defaults = GeminiConfig::default();
        Settings {
            gemini: GeminiConfig {
                base_url: var(env, "GEMINI_API_BASE").unwrap_or(gemini_defaults.base_url),
                api_version: var(env, "GEMINI_API_VERSION").unwrap_or(gemini_defaults.api_version),
                jsonl_mime: var(env, "GEMINI_JSONL_MIME").unwrap_or(gemini_defaults.jsonl_mime),
                rewrite_upload_url: var(env, "GEMINI_REWRITE_UPLOAD_URL").is_none_or(|v| v != "false"),
            },
            policy,
            limits: Limits {
                max_requests: num(env, "MAX_REQUESTS_PER_JOB", Limits::default().max_requests),
                ..Limits::default()
            },
            part_bytes: num(env, "R2_PART_BYTES", 8 * 1024 * 1024).max(5 * 1024 * 1024),
            upload_chunk_bytes: (num(env, "UPLOAD_CHUNK_BYTES", 64 * 1024 * 1024) / (8 << 20)).max(1)
                * (8 << 20),
            max_line_bytes: num(env, "MAX_LINE_BYTES", 8 * 1024 * 1024),
            max_json_body_bytes: num(env, "MAX_JSON_BODY_BYTES", 10 * 1024 * 1024),
            gemini_timeout_ms: secs_ms(env, "GEMINI_TIMEOUT_SECS", 120_000),
        }
    }
}

/// The Gemini key (a secret; never echoed).
pub fn gemini_key(env: &Env) -> String {
    env.secret("GEMINI_API_KEY")
        .map(|s| s.to_string())
        .or_else(|_| env.var("GEMINI_API_KEY").map(|v| v.to_string()))
        .unwrap_or_default()
}
