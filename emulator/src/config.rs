//! Everything about the emulator's behaviour that tests may want to change.
//! Settable at start-up (`--config`, flags) and live through `/_emulator/config`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const GIB: u64 = 1024 * 1024 * 1024;
pub const HOUR_SECS: f64 = 3600.0;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Config {
    /// The one key the emulator accepts (`x-goog-api-key` or `?key=`).
    pub api_key: String,
    /// Base of the absolute URLs the emulator hands out (upload sessions, file
    /// `uri`s); by default taken from each request's `Host`.
    pub public_base_url: Option<String>,
    /// Emulated seconds a new batch stays PENDING, then RUNNING.
    pub pending_secs: f64,
    pub running_secs: f64,
    /// New batches stay PENDING until released (the "stuck for days" incident).
    pub stick_new_batches: bool,
    /// Emulated seconds after creation when an unfinished batch becomes EXPIRED.
    pub batch_expiry_secs: f64,
    /// Emulated seconds after creation when a file disappears.
    pub file_ttl_secs: f64,
    /// Write result lines in a shuffled order (real results can be out of order).
    pub shuffle_results: bool,
    /// End a results file without a newline after its last line (Gemini does
    /// not promise one either way).
    pub omit_final_newline: bool,
    /// Results files carry only the first this many lines; the rest of the
    /// requests get no line at all (Gemini does not promise one per request).
    pub keep_lines: Option<u64>,
    /// While RUNNING, move counts from pending to succeeded/failed as time passes.
    /// The real API keeps `pendingRequestCount` at the full count, so this is off.
    pub progress_stats: bool,
    /// Fraction of lines (chosen by a hash of `seed` and the key) that fail.
    pub line_error_rate: f64,
    pub seed: u64,
    /// Lines with these keys fail.
    pub fail_keys: Vec<String>,
    /// gRPC code and message of an injected per-line error.
    pub line_error_code: i32,
    pub max_concurrent_batches: usize,
    /// Per-model cap on the prompt tokens of all PENDING/RUNNING batches.
    pub enqueued_token_cap: u64,
    pub enqueued_token_caps: BTreeMap<String, u64>,
    /// Known model ids (without `models/`).
    pub models: Vec<String>,
    pub max_file_bytes: u64,
    pub max_inline_batch_bytes: u64,
    /// `X-Goog-Upload-Chunk-Granularity`; non-final chunks must be multiples.
    pub chunk_granularity: u64,
    pub enforce_chunk_granularity: bool,
    /// When set, MIME types outside this list fail at finalize with a 200 whose
    /// body is `{"error": ...}`: the real "Unsupported MIME type" anomaly.
    pub allowed_mime_types: Option<Vec<String>>,
    /// Uploaded files are not downloadable on the real API (400 FAILED_PRECONDITION).
    pub download_uploaded_files: bool,
    /// The real API returned an empty list when `pageSize` was missing (python-genai #1250).
    pub list_requires_page_size: bool,
    /// `error.code` of a cancelled batch (the reference says 1; 13 was observed).
    pub cancel_error_code: i32,
    /// Pad every answer's text to at least this many bytes (realistic result
    /// sizes for benchmarks; token counts do not change).
    pub answer_pad_bytes: usize,
    /// Realtime answers (`generateContent`) leave `usageMetadata` out, as an
    /// answer Gemini cut short may: what is such a call charged?
    pub omit_usage: bool,
    /// Realtime calls per minute per API key and model (`rpm_limits` for one
    /// model, `rpm_limit` for the rest; none: unlimited).
    pub rpm_limit: Option<u64>,
    pub rpm_limits: BTreeMap<String, u64>,
    /// `streamGenerateContent` answers in this many chunks, this far apart.
    pub stream_chunks: usize,
    pub stream_chunk_delay_ms: u64,
    pub webhook: Option<WebhookConfig>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookConfig {
    pub url: String,
    /// `whsec_<base64>` as Standard Webhooks secrets are written.
    pub secret: String,
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
}

fn default_attempts() -> u32 {
    5
}

impl Default for Config {
    fn default() -> Self {
        Config {
            api_key: "emulator-key".into(),
            public_base_url: None,
            pending_secs: 5.0,
            running_secs: 10.0,
            stick_new_batches: false,
            batch_expiry_secs: 48.0 * HOUR_SECS,
            file_ttl_secs: 48.0 * HOUR_SECS,
            shuffle_results: false,
            omit_final_newline: false,
            keep_lines: None,
            progress_stats: false,
            line_error_rate: 0.0,
            seed: 0,
            fail_keys: vec![],
            line_error_code: 13,
            max_concurrent_batches: 100,
            enqueued_token_cap: 3_000_000,
            enqueued_token_caps: BTreeMap::new(),
            models: [
                "gemini-3-pro-preview",
                "gemini-3-flash-preview",
                "gemini-3.1-flash-preview",
                "gemini-2.5-pro",
                "gemini-2.5-flash",
                "gemini-2.5-flash-lite",
                "gemini-2.0-flash",
                "gemini-2.0-flash-lite",
                "gemini-3-pro-image-preview",
                "gemini-2.5-flash-image",
                "gemini-2.5-flash-preview-tts",
            ]
            .map(String::from)
            .to_vec(),
            max_file_bytes: 2 * GIB,
            max_inline_batch_bytes: 20_000_000,
            chunk_granularity: 8 * 1024 * 1024,
            enforce_chunk_granularity: true,
            allowed_mime_types: None,
            download_uploaded_files: false,
            list_requires_page_size: false,
            cancel_error_code: 1,
            answer_pad_bytes: 0,
            omit_usage: false,
            rpm_limit: None,
            rpm_limits: BTreeMap::new(),
            stream_chunks: 3,
            stream_chunk_delay_ms: 0,
            webhook: None,
        }
    }
}

impl Config {
    pub fn token_cap(&self, model: &str) -> u64 {
        self.enqueued_token_caps.get(model).copied().unwrap_or(self.enqueued_token_cap)
    }

    pub fn rpm_limit(&self, model: &str) -> Option<u64> {
        self.rpm_limits.get(model).copied().or(self.rpm_limit)
    }

    /// Merge a JSON object of changed fields into this config.
    pub fn patched(&self, patch: &serde_json::Value) -> Result<Config, String> {
        let mut base = serde_json::to_value(self).map_err(|e| e.to_string())?;
        let (Some(base_obj), Some(patch_obj)) = (base.as_object_mut(), patch.as_object()) else {
            return Err("the config patch must be a JSON object".into());
        };
        for (k, v) in patch_obj {
            if !base_obj.contains_key(k) {
                return Err(format!("unknown config field {k:?}"));
            }
            base_obj.insert(k.clone(), v.clone());
        }
        serde_json::from_value(base).map_err(|e| e.to_string())
    }
}
