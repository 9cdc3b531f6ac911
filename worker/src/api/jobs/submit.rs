//! `POST /v1/jobs`: validate every request line as it streams in, writing the
//! normalized input JSONL to R2 in fixed-size multipart parts (memory stays at
//! about one part). Any bad line aborts the upload, so a refused submission
//! leaves nothing behind; a valid one becomes a JobObject, whose alarm takes it
//! from there. An `Idempotency-Key` maps to the same job on every retry.

use super::from_input::feed_parts;
use super::input::InputWriter;
use super::lines::{Fed, Feed};
use super::open::{open, prior_answer};
use crate::api::{Ctx, Result};
use crate::objects::input::client::InputRef;
use crate::objects::job::client::JobRef;
use crate::platform::clock::now_ms;
use crate::platform::config::Settings;
use crate::platform::error::ApiError;
use crate::platform::query::Query;
use batchgate_core::lane::Mode;
use batchgate_core::pricing::Price;
use batchgate_core::shard::ShardLimits;
use batchgate_core::submit::{LineError, Summary, Validator};
use batchgate_core::view::JobView;
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use worker::{ByteStream, Request, Response};

/// A job's `metadata` is kept with it and shown in every view: bounded.
const MAX_METADATA_BYTES: usize = 16 * 1024;

#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub(crate) struct Invalid {
    invalid_count: u64,
    lines: Vec<LineError>,
}

/// A 400 naming every bad line (the first in the message).
pub fn invalid(count: u64, errors: Vec<LineError>) -> ApiError {
    let noun = if count == 1 { "request is" } else { "requests are" };
    let first = errors.first().map(|e| format!(" (line {}: {})", e.line, e.message)).unwrap_or_default();
    ApiError::new(400, "invalid_requests", format!("{count} {noun} invalid{first}"))
        .with_details(Invalid { invalid_count: count, lines: errors })
}

/// The model id and its price; a model the price table does not list is
/// refused (it could not be billed).
pub fn priced_model(model: &str, settings: &Settings) -> Result<(String, Price)> {
    let id = batchgate_core::model::ModelId::parse(model)
        .map_err(|e| ApiError::bad_request("invalid_model", e))?;
    let m = id.as_str();
    if let Some(e) = &settings.prices_error {
        return Err(ApiError::new(503, "misconfigured", format!("the price table is unusable: {e}")));
    }
    if let Some(e) = &settings.shards.caps_error {
        return Err(ApiError::new(503, "misconfigured", e.clone()));
    }
    let price = settings.prices.price(m).ok_or_else(|| {
        let known: Vec<&str> = settings.prices.models().map(|(m, _)| m).collect();
        ApiError::bad_request(
            "unpriced_model",
            format!("model {m:?} has no price here; priced models: {}", known.join(", ")),
        )
    })?;
    Ok((m.to_string(), price))
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JsonSubmission {
    pub model: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// The requests themselves, or…
    #[serde(default)]
    #[cfg_attr(test, schemars(with = "Option<Vec<crate::openapi::types::SubmitLine>>"))]
    pub requests: Option<Vec<Value>>,
    /// …the id of an input sent in parts (`/v1/inputs`).
    #[serde(default)]
    pub input: Option<String>,
    #[serde(default)]
    pub metadata: Option<Value>,
    /// `{url}`: POSTed the final job, signed with the account's webhook secret.
    #[serde(default)]
    pub webhook: Option<WebhookTarget>,
    /// `batch` (the default), `realtime` or `auto`.
    #[serde(default)]
    pub mode: Mode,
    /// `"realtime"`: run realtime what Gemini will not take as a batch.
    #[serde(default)]
    pub fallback: Option<FallbackLane>,
}

/// The one lane a batch job may fall back to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum FallbackLane {
    Realtime,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct WebhookTarget {
    pub url: String,
}

/// A webhook URL the job may call, or a 400 naming the problem. `own_host`:
/// the host this request reached batchgate by (a webhook may not point back at it).
fn webhook_url(url: Option<String>, settings: &Settings, own_host: Option<&str>) -> Result<Option<String>> {
    let Some(url) = url else { return Ok(None) };
    batchgate_core::webhook::check_url(&url, settings.webhook_allow_http, own_host)
        .map_err(|e| ApiError::bad_request("invalid_webhook_url", e))?;
    Ok(Some(url))
}

/// The checks a submission to `model` goes through, and the batches it will be cut into.
pub fn validator(settings: &Settings, model: &str) -> Validator {
    Validator::new(settings.limits.clone())
        .with_file_hosts(settings.gemini.file_hosts())
        .with_estimate(settings.estimate)
        .with_model(model)
        .with_shards(settings.shards.limits(model))
        .with_realtime_shards(ShardLimits {
            max_bytes: settings.realtime.shard_bytes,
            // A realtime shard's answers are held whole: an image or speech
            // model's (megabytes each) are held one at a time.
            max_requests: if batchgate_core::media::makes_media(model) {
                1
            } else {
                settings.realtime.shard_requests
            },
            max_tokens: u64::MAX,
        })
}

/// `?mode=` and `?fallback=` of an NDJSON submission.
fn lanes_of(q: &Query) -> Result<(Mode, Option<FallbackLane>)> {
    let mode = match q.get("mode") {
        None => Mode::Batch,
        Some(m) => serde_json::from_value(Value::String(m.clone())).map_err(|_| {
            ApiError::bad_request("invalid_mode", format!("mode {m:?} is not one of batch, realtime, auto"))
        })?,
    };
    let fallback = match q.get("fallback").as_deref() {
        None => None,
        Some("realtime") => Some(FallbackLane::Realtime),
        Some(f) => {
            return Err(ApiError::bad_request("invalid_fallback", format!("fallback {f:?} is not realtime")));
        }
    };
    Ok((mode, fallback))
}

/// A validated input, stored in R2 under `input_key`, not yet a job.
pub struct Submission {
    pub model: String,
    pub price: Price,
    pub display_name: Option<String>,
    pub metadata: Option<Value>,
    pub summary: Summary,
    pub bytes: u64,
    pub input_key: String,
    pub webhook: Option<String>,
    pub mode: Mode,
    pub fallback: Option<FallbackLane>,
}

/// `POST /v1/jobs` as `account`.
pub async fn handle(mut req: Request, cx: &Ctx<'_>, account: &str) -> Result<Response> {
    let started = now_ms();
    let req = &mut req;
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let own_host = header("host");
    let key = batchgate_core::idempotency::key(header("idempotency-key"))
        .map_err(|m| ApiError::bad_request("invalid_idempotency_key", m))?;
    let job = match &key {
        Some(k) => JobRef::derived(cx.env, &format!("{account}\n{k}"))?,
        None => JobRef::fresh(cx.env)?,
    };
    if key.is_some()
        && let Some(answer) = prior_answer(&job, account).await?
    {
        return answer;
    }
    let writer = InputWriter::new(cx.env, cx.settings, job.id())?;
    let is_ndjson = header("content-type").is_some_and(|c| c.contains("ndjson") || c.contains("jsonl"));
    if is_ndjson {
        let submission = read_ndjson(req, cx.settings, own_host.as_deref(), writer).await?;
        return open(cx, account, &job, submission, (None, started)).await;
    }
    let body = read_json_body(req, cx.settings).await?;
    let input = body.input.as_deref().map(|id| InputRef::named(cx.env, id)).transpose()?;
    let submission = match &input {
        Some(input) => from_input(cx, account, &job, input, body, own_host.as_deref(), writer).await?,
        None => from_requests(cx.settings, body, own_host.as_deref(), writer).await?,
    };
    let answer = open(cx, account, &job, submission, (None, started)).await;
    if let Some(input) = input {
        match &answer {
            Ok(_) => input.consume(account, job.id()).await,
            // Refused: the input may make a job later. (After a 5xx the job may
            // exist: the input stays claimed by it, and a retry with the same
            // Idempotency-Key finds it.)
            // A racing retry with the same Idempotency-Key is refused while
            // the first makes the job: the claim is the first's, not to give back.
            Err(e) if e.status < 500 && e.code != "idempotency_key_in_use" => {
                input.unclaim(account, job.id()).await
            }
            Err(_) => {}
        }
    }
    answer
}

/// `body` (its `requests`) made a new job for `account`, as `POST /v1/jobs`
/// would: what the Gemini drop-in's `batches.create` does with inline requests.
pub async fn requests_as_job(cx: &Ctx<'_>, account: &str, body: JsonSubmission) -> Result<JobView> {
    let started = now_ms();
    let job = JobRef::fresh(cx.env)?;
    let writer = InputWriter::new(cx.env, cx.settings, job.id())?;
    let submission = from_requests(cx.settings, body, None, writer).await?;
    open_as_view(cx, account, &job, submission, started).await
}

/// An NDJSON stream of `{key?, request}` lines made a new batch job on
/// `model` for `account`: what the Gemini drop-in does with a batch's file.
pub async fn stream_as_job<S: Stream<Item = worker::Result<Vec<u8>>> + Unpin>(
    cx: &Ctx<'_>,
    account: &str,
    (model, display_name, metadata): (&str, Option<String>, Option<Value>),
    body: &mut S,
) -> Result<JobView> {
    let started = now_ms();
    display_name_ok(display_name.as_deref())?;
    let model = priced_model(model, cx.settings)?;
    let job = JobRef::fresh(cx.env)?;
    let mut writer = InputWriter::new(cx.env, cx.settings, job.id())?;
    let mut validator = validator(cx.settings, &model.0);
    let failed = feed_body(body, Feed::new(cx.settings, &mut validator, Some(&mut writer))).await.err();
    let submission = conclude(validator, writer, failed, model, display_name, metadata).await?;
    let submission = Submission { webhook: None, mode: Mode::Batch, fallback: None, ..submission };
    open_as_view(cx, account, &job, submission, started).await
}

async fn open_as_view(
    cx: &Ctx<'_>,
    account: &str,
    job: &JobRef,
    submission: Submission,
    started: u64,
) -> Result<JobView> {
    let mut made = open(cx, account, job, submission, (None, started)).await?;
    made.json::<JobView>().await.map_err(|e| ApiError::internal(format!("reading the new job: {e}")))
}

/// `application/x-ndjson`: one `{key?, request}` per line; `?model=` (and
/// optionally `?displayName=`) in the query.
async fn read_ndjson(
    req: &mut Request,
    settings: &Settings,
    own_host: Option<&str>,
    mut writer: InputWriter,
) -> Result<Submission> {
    let q = Query::of(req);
    let (model, price) = priced_model(
        &q.get("model").ok_or_else(|| {
            ApiError::bad_request("missing_model", "NDJSON submissions name the model in ?model=")
        })?,
        settings,
    )?;
    let display_name = q.get("displayName");
    display_name_ok(display_name.as_deref())?;
    let webhook = webhook_url(q.get("webhookUrl"), settings, own_host)?;
    let (mode, fallback) = lanes_of(&q)?;
    let mut validator = validator(settings, &model);
    let feed = Feed::new(settings, &mut validator, Some(&mut writer));
    let failed = match body_stream(req) {
        Ok(mut body) => feed_body(&mut body, feed).await.err(),
        Err(e) => Some(e),
    };
    let submission = conclude(validator, writer, failed, (model, price), display_name, None).await?;
    Ok(Submission { webhook, mode, fallback, ..submission })
}

fn display_name_ok(name: Option<&str>) -> Result<()> {
    batchgate_core::submit::check_display_name(name)
        .map_err(|m| ApiError::bad_request("invalid_display_name", m))
}

/// A request's body as a stream.
pub fn body_stream(req: &mut Request) -> Result<ByteStream> {
    req.stream().map_err(|e| ApiError::bad_request("unreadable_body", e.to_string()))
}

/// Feed an NDJSON body to `feed`, to its end or its first refusal.
pub async fn feed_body<S: Stream<Item = worker::Result<Vec<u8>>> + Unpin>(
    body: &mut S,
    mut feed: Feed<'_>,
) -> Result<Fed> {
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request("unreadable_body", format!("the request body broke off: {e}"))
        })?;
        feed.chunk(&chunk).await?;
    }
    Ok(feed.finish())
}

/// `application/json`: `{model, displayName?, requests: [{key?, request}] | input: ID, metadata?, webhook?}`.
pub async fn read_json_body(req: &mut Request, settings: &Settings) -> Result<JsonSubmission> {
    let bytes = crate::platform::body::read(
        req,
        settings.max_json_body_bytes,
        "a JSON submission (send larger jobs as application/x-ndjson or through /v1/inputs)",
    )
    .await?;
    crate::platform::body::parse_cost_ok(&bytes, "the JSON submission")?;
    let body: JsonSubmission = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not a valid submission: {e}"))
    })?;
    match (&body.requests, &body.input) {
        (Some(_), Some(_)) => Err(ApiError::bad_request("invalid_json", "send requests or input, not both")),
        (None, None) => Err(ApiError::bad_request(
            "invalid_json",
            "the body is not a valid submission: missing field `requests` (or `input`)",
        )),
        _ => Ok(body),
    }
}

/// The submission's model, price and webhook, and the checks its lines go through.
fn prepare(
    settings: &Settings,
    body: &JsonSubmission,
    own_host: Option<&str>,
) -> Result<((String, Price), Option<String>, Validator)> {
    if let Some(m) = &body.metadata
        && m.to_string().len() > MAX_METADATA_BYTES
    {
        return Err(ApiError::bad_request(
            "metadata_too_large",
            format!("metadata is at most {MAX_METADATA_BYTES} bytes of JSON"),
        ));
    }
    display_name_ok(body.display_name.as_deref())?;
    let model = priced_model(&body.model, settings)?;
    let webhook = webhook_url(body.webhook.as_ref().map(|w| w.url.clone()), settings, own_host)?;
    let validator = validator(settings, &model.0);
    Ok((model, webhook, validator))
}

async fn from_requests(
    settings: &Settings,
    body: JsonSubmission,
    own_host: Option<&str>,
    mut writer: InputWriter,
) -> Result<Submission> {
    let (model, webhook, mut validator) = prepare(settings, &body, own_host)?;
    for (i, item) in body.requests.unwrap_or_default().into_iter().enumerate() {
        if let Some(normalized) = validator.item(i as u64 + 1, item) {
            writer.push(&normalized);
        }
    }
    let failed = writer.flush().await.err();
    let (mode, fallback) = (body.mode, body.fallback);
    let submission = conclude(validator, writer, failed, model, body.display_name, body.metadata).await?;
    Ok(Submission { webhook, mode, fallback, ..submission })
}

/// The job's lines from `input`, claimed for it (an input makes one job).
async fn from_input(
    cx: &Ctx<'_>,
    account: &str,
    job: &JobRef,
    input: &InputRef,
    body: JsonSubmission,
    own_host: Option<&str>,
    mut writer: InputWriter,
) -> Result<Submission> {
    let (model, webhook, mut validator) = prepare(cx.settings, &body, own_host)?;
    let parts = input.claim(account, job.id()).await?;
    let failed = feed_parts(cx, &parts.keys, &mut validator, Some(&mut writer)).await.err();
    let (mode, fallback) = (body.mode, body.fallback);
    match conclude(validator, writer, failed, model, body.display_name, body.metadata).await {
        Ok(submission) => Ok(Submission { webhook, mode, fallback, ..submission }),
        Err(e) => {
            input.unclaim(account, job.id()).await;
            Err(e)
        }
    }
}

pub async fn conclude(
    validator: Validator,
    writer: InputWriter,
    failed: Option<ApiError>,
    (model, price): (String, Price),
    display_name: Option<String>,
    metadata: Option<Value>,
) -> Result<Submission> {
    let verdict = validator.finish();
    let error = match (failed, verdict) {
        (_, Err((count, errors))) => Some(invalid(count, errors)),
        (Some(e), _) => Some(e),
        (None, Ok(summary)) => {
            let input_key = writer.key().to_string();
            let bytes = writer.finish().await?;
            return Ok(Submission {
                model,
                price,
                display_name,
                metadata,
                summary,
                bytes,
                input_key,
                webhook: None,
                mode: Mode::Batch,
                fallback: None,
            });
        }
    };
    writer.abort().await;
    Err(error.unwrap_or_else(|| ApiError::internal("submission failed")))
}
