//! Settings from `[vars]` and secrets, with defaults for everything optional,
//! read once: per request in the entry worker, per instance in an object.

use batchgate_core::gemini::client::GeminiConfig;
use batchgate_core::gemini::timestamp::seconds_to_ms;
use batchgate_core::job::Policy;
use batchgate_core::keys::KeyRing;
use batchgate_core::ledger;
use batchgate_core::pricing::{EstimateRules, PriceTable};
use batchgate_core::quota::Caps;
use batchgate_core::shard::ShardLimits;
use batchgate_core::submit::Limits;
use batchgate_core::upload::UploadRules;
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
    /// `PRICES` (JSON) or Google's public prices.
    pub prices: PriceTable,
    /// Set when `PRICES` is present but unreadable: submits are refused rather
    /// than billed at a price the operator did not set.
    pub prices_error: Option<String>,
    pub estimate: EstimateRules,
    pub account_limits: ledger::Limits,
    pub uploads: UploadSettings,
    pub inputs: InputSettings,
    /// `WEBHOOK_ALLOW_HTTP`: accept `http://` webhook URLs (local development only).
    pub webhook_allow_http: bool,
    pub shards: ShardSettings,
    pub realtime: RealtimeSettings,
    /// `CORS_ORIGINS` (comma-separated; `*` for any).
    pub cors_origins: Vec<String>,
    /// `BENCH_ROUTES`: serve `/_bench/*` (benchmarks only).
    pub bench_routes: bool,
    /// `GEMINI_WEBHOOK_TOLERANCE_SECS`: how far a Gemini webhook's timestamp may be from now.
    pub gemini_webhook_tolerance_secs: u64,
    pub secrets: Secrets,
}

/// Secrets (`wrangler secret put`, or `.dev.vars` locally), or plain vars of
/// the same names; never echoed.
pub struct Secrets {
    /// `GEMINI_API_KEYS` (comma-separated), or the one `GEMINI_API_KEY`.
    pub gemini_keys: KeyRing,
    pub jwt_secret: Option<String>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    pub admin_token: Option<String>,
    /// Signs Gemini's batch webhooks (`whsec_…`); none: the route is off.
    pub gemini_webhook_secret: Option<String>,
}

/// How a job is cut into Gemini batches, and the quota they are admitted under.
pub struct RealtimeSettings {
    /// `POST /v1/generate` calls per account per minute (and in flight at once).
    pub max_generate_per_minute: u64,
    /// Each model's requests per minute, per Gemini key (`REALTIME_RPM`).
    pub rpm: Caps,
    pub rpm_error: Option<String>,
    /// The largest answer a non-streamed call reads (an image model's can be large).
    pub max_answer_bytes: u64,
    /// `mode: "auto"` runs a job of at most this many requests realtime.
    pub auto_max_requests: u64,
    /// A realtime job's shards: at most this many requests and input bytes,
    /// answered this many at a time (each shard's answers are held whole).
    pub shard_requests: u64,
    pub shard_bytes: u64,
    pub concurrency: usize,
    /// `"fallback": "realtime"`: a shard waiting this long for Gemini's batch
    /// quota runs realtime; a job of more requests may not ask for it.
    pub fallback_after_ms: u64,
    pub fallback_max_requests: u64,
}

pub struct ShardSettings {
    /// `MAX_BATCH_BYTES`: input file bytes per batch (Gemini: 2 GB).
    pub max_bytes: u64,
    /// `MAX_BATCH_REQUESTS`: requests per batch (Gemini states no limit).
    pub max_requests: u64,
    /// `SHARD_FILL_PERCENT`: share of a model's enqueued-token cap one shard may plan for.
    pub fill_percent: u64,
    /// `MAX_CONCURRENT_BATCHES`: batches one Gemini key may have in flight (Tier 1: 100).
    pub max_batches: u64,
    /// `ENQUEUED_TOKEN_CAPS`: per-model caps (JSON), or Tier 1's figures.
    pub caps: Caps,
    /// Set when `ENQUEUED_TOKEN_CAPS` is present but unreadable: submits are
    /// refused rather than sharded for a quota the operator did not set.
    pub caps_error: Option<String>,
}

impl ShardSettings {
    pub fn limits(&self, model: &str) -> ShardLimits {
        ShardLimits::for_cap(self.max_bytes, self.max_requests, self.caps.of(model), self.fill_percent)
    }
}

/// Job inputs sent in parts (`/v1/inputs`).
pub struct InputSettings {
    /// `MAX_INPUT_PART_BYTES`: one part's body (Cloudflare refuses bodies over 100 MB).
    pub max_part_bytes: u64,
    /// `INPUT_IDLE_SECS`: an input without a part this long expires.
    pub idle_ms: u64,
}

pub struct UploadSettings {
    pub rules: UploadRules,
    /// `POST /v1/files` bodies above this must use a resumable session.
    pub max_single_bytes: u64,
    /// Bytes of live files one account may keep at Gemini.
    pub quota_bytes: u64,
    /// A session without a chunk this long is abandoned (and cancelled upstream).
    pub idle_ms: u64,
}

fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string()).filter(|v| !v.is_empty())
}

fn num(env: &Env, name: &str, default: u64) -> u64 {
    var(env, name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Seconds as a decimal (`0.2`) to milliseconds.
fn secs_ms(env: &Env, name: &str, default_ms: u64) -> u64 {
    var(env, name).and_then(|v| seconds_to_ms(v.trim())).map_or(default_ms, |ms| ms.max(1))
}

impl Settings {
    pub fn from_env(env: &Env) -> Settings {
        let (prices, prices_error) = match var(env, "PRICES").map(|p| PriceTable::from_json(&p)) {
            None => (PriceTable::default(), None),
            Some(Ok(t)) => (t, None),
            Some(Err(e)) => (PriceTable::default(), Some(e)),
        };
        let estimate_defaults = EstimateRules::default();
        let limit_defaults = ledger::Limits::default();
        Settings {
            gemini: gemini(env),
            policy: policy(env),
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
            prices,
            prices_error,
            estimate: EstimateRules {
                default_max_output_tokens: num(
                    env,
                    "DEFAULT_MAX_OUTPUT_TOKENS",
                    estimate_defaults.default_max_output_tokens,
                ),
                ..estimate_defaults
            },
            account_limits: ledger::Limits {
                max_open_jobs: num(env, "MAX_OPEN_JOBS", limit_defaults.max_open_jobs),
                max_submits_per_minute: num(
                    env,
                    "MAX_SUBMITS_PER_MINUTE",
                    limit_defaults.max_submits_per_minute,
                ),
            },
            uploads: uploads(env),
            inputs: InputSettings {
                max_part_bytes: num(env, "MAX_INPUT_PART_BYTES", 64 * 1024 * 1024),
                idle_ms: secs_ms(env, "INPUT_IDLE_SECS", 86_400_000),
            },
            webhook_allow_http: var(env, "WEBHOOK_ALLOW_HTTP").is_some_and(|v| v == "true"),
            shards: shards(env),
            realtime: realtime(env),
            cors_origins: list(env, "CORS_ORIGINS")
                .iter()
                .map(|o| o.trim_end_matches('/').to_string())
                .collect(),
            bench_routes: var(env, "BENCH_ROUTES").is_some_and(|v| v == "true"),
            gemini_webhook_tolerance_secs: num(env, "GEMINI_WEBHOOK_TOLERANCE_SECS", 300),
            secrets: Secrets {
                gemini_keys: KeyRing::parse(
                    secret(env, "GEMINI_API_KEYS").as_deref(),
                    secret(env, "GEMINI_API_KEY").as_deref(),
                ),
                jwt_secret: secret(env, "JWT_SECRET"),
                jwt_issuer: secret(env, "JWT_ISSUER"),
                jwt_audience: secret(env, "JWT_AUDIENCE"),
                admin_token: secret(env, "ADMIN_TOKEN"),
                gemini_webhook_secret: secret(env, "GEMINI_WEBHOOK_SECRET"),
            },
        }
    }
}

/// A comma-separated var's non-empty items, trimmed.
fn list(env: &Env, name: &str) -> Vec<String> {
    var(env, name)
        .map(|v| v.split(',').map(|i| i.trim().to_string()).filter(|i| !i.is_empty()).collect())
        .unwrap_or_default()
}

fn gemini(env: &Env) -> GeminiConfig {
    let defaults = GeminiConfig::default();
    GeminiConfig {
        base_url: var(env, "GEMINI_API_BASE").unwrap_or(defaults.base_url),
        api_version: var(env, "GEMINI_API_VERSION").unwrap_or(defaults.api_version),
        jsonl_mime: var(env, "GEMINI_JSONL_MIME").unwrap_or(defaults.jsonl_mime),
        rewrite_upload_url: var(env, "GEMINI_REWRITE_UPLOAD_URL").is_none_or(|v| v != "false"),
    }
}

/// How jobs are polled, retried and given up on.
fn policy(env: &Env) -> Policy {
    let defaults = Policy::default();
    let mut policy = defaults.clone();
    policy.poll.first_ms = secs_ms(env, "POLL_FIRST_SECS", defaults.poll.first_ms);
    policy.poll.min_ms = secs_ms(env, "POLL_MIN_SECS", defaults.poll.min_ms);
    policy.poll.max_ms = secs_ms(env, "POLL_MAX_SECS", defaults.poll.max_ms);
    policy.poll.growth_permille = num(env, "POLL_GROWTH_PERMILLE", defaults.poll.growth_permille);
    policy.retry.base_ms = secs_ms(env, "RETRY_BASE_SECS", defaults.retry.base_ms);
    policy.retry.max_ms = secs_ms(env, "RETRY_MAX_SECS", defaults.retry.max_ms);
    policy.deadline_ms = secs_ms(env, "JOB_DEADLINE_SECS", defaults.deadline_ms);
    policy.pending_limit_ms = secs_ms(env, "PENDING_LIMIT_SECS", defaults.pending_limit_ms);
    policy.max_resubmits =
        u32::try_from(num(env, "MAX_RESUBMITS", u64::from(defaults.max_resubmits))).unwrap_or(u32::MAX);
    policy.quota_retry_ms = secs_ms(env, "QUOTA_RETRY_SECS", defaults.quota_retry_ms);
    policy.max_parallel_shards =
        u32::try_from(num(env, "MAX_PARALLEL_SHARDS", u64::from(defaults.max_parallel_shards)).max(1))
            .unwrap_or(u32::MAX);
    policy
}

fn uploads(env: &Env) -> UploadSettings {
    let defaults = UploadRules::default();
    let mime_types = list(env, "UPLOAD_MIME_TYPES");
    UploadSettings {
        rules: UploadRules {
            mime_types: if mime_types.is_empty() { defaults.mime_types.clone() } else { mime_types },
            max_chunk: num(env, "MAX_UPLOAD_CHUNK_BYTES", defaults.max_chunk),
            ..defaults
        },
        max_single_bytes: num(env, "MAX_SINGLE_UPLOAD_BYTES", 100 * 1024 * 1024),
        quota_bytes: num(env, "STORAGE_QUOTA_BYTES", 10 * 1024 * 1024 * 1024),
        idle_ms: secs_ms(env, "UPLOAD_IDLE_SECS", 86_400_000),
    }
}

fn realtime(env: &Env) -> RealtimeSettings {
    let (rpm, rpm_error) = match batchgate_core::realtime::rpm_caps(var(env, "REALTIME_RPM").as_deref()) {
        Ok(caps) => (caps, None),
        Err(e) => (batchgate_core::realtime::default_rpm(), Some(e)),
    };
    RealtimeSettings {
        max_generate_per_minute: num(env, "MAX_GENERATE_PER_MINUTE", 60),
        rpm,
        rpm_error,
        max_answer_bytes: num(env, "MAX_GENERATE_ANSWER_BYTES", 64 * 1024 * 1024),
        auto_max_requests: num(env, "AUTO_REALTIME_MAX_REQUESTS", 50),
        shard_requests: num(env, "REALTIME_SHARD_REQUESTS", 25).max(1),
        shard_bytes: num(env, "REALTIME_SHARD_BYTES", 4 * 1024 * 1024).max(1),
        concurrency: usize::try_from(num(env, "REALTIME_CONCURRENCY", 8).clamp(1, 64)).unwrap_or(8),
        fallback_after_ms: secs_ms(env, "FALLBACK_AFTER_SECS", 3_600_000),
        fallback_max_requests: num(env, "FALLBACK_MAX_REQUESTS", 10_000),
    }
}

fn shards(env: &Env) -> ShardSettings {
    // Running jobs keep going on Tier 1's caps (the lowest) if the table is unreadable.
    let (caps, caps_error) = match var(env, "ENQUEUED_TOKEN_CAPS").map(|t| Caps::from_json(&t)) {
        None => (Caps::default(), None),
        Some(Ok(caps)) => (caps, None),
        Some(Err(e)) => (Caps::default(), Some(e)),
    };
    ShardSettings {
        max_bytes: num(env, "MAX_BATCH_BYTES", 2_000_000_000),
        max_requests: num(env, "MAX_BATCH_REQUESTS", u64::MAX),
        fill_percent: num(env, "SHARD_FILL_PERCENT", 30).clamp(1, 100),
        max_batches: num(env, "MAX_CONCURRENT_BATCHES", 100).max(1),
        caps,
        caps_error,
    }
}

/// A secret, or a plain var of the same name.
fn secret(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|s| !s.is_empty())
}
