//! `POST /v1/jobs`: validate every request line as it streams in, writing the
//! normalized input JSONL to R2 in fixed-size multipart parts (memory stays at
//! about one part). Any bad line aborts the upload, so a refused submission
//! leaves nothing behind; a valid one becomes a JobObject, whose alarm takes it
//! from there. An `Idempotency-Key` maps to the same job on every retry.

use crate::accounts::{self, ReserveAnswer, ReserveRequest, SettleRequest};
use crate::config::Settings;
use crate::errors::ApiError;
use crate::internal::{self, Created};
use crate::steps::BUCKET;
use batchgate_core::jsonl::{LineSplitter, SplitError};
use batchgate_core::pricing::{Price, Quote};
use batchgate_core::submit::{LineError, Summary, Validator};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use worker::{Bucket, Env, Method, MultipartUpload, ObjectNamespace, Request, Response, UploadedPart};

type Result<T> = std::result::Result<T, ApiError>;

/// A job's `metadata` is kept with it and shown in every view: bounded.
const MAX_METADATA_BYTES: usize = 16 * 1024;

/// The normalized input, written as R2 multipart parts of exactly `part_bytes`.
pub struct InputWriter {
    bucket: Bucket,
    key: String,
    part_bytes: usize,
    pending: Vec<u8>,
    upload: Option<MultipartUpload>,
    parts: Vec<UploadedPart>,
    total: u64,
}

fn r2(e: worker::Error) -> ApiError {
    ApiError::new(503, "storage_unavailable", format!("storing the input failed: {e}"))
}

impl InputWriter {
    /// A new input object for job `job_id` (a fresh key per attempt: a racing
    /// retry never overwrites the input a job uses).
    pub fn new(env: &Env, settings: &Settings, job_id: &str) -> Result<InputWriter> {
        let bucket = env.bucket(BUCKET).map_err(|e| ApiError::internal(e.to_string()))?;
        let nonce = format!("{:x}", (js_sys::Math::random() * u64::MAX as f64) as u64);
        Ok(InputWriter {
            bucket,
            key: format!("jobs/{job_id}/input-{nonce}.jsonl"),
            part_bytes: usize::try_from(settings.part_bytes).unwrap_or(8 << 20),
            pending: Vec::new(),
            upload: None,
            parts: Vec::new(),
            total: 0,
        })
    }

    pub fn push(&mut self, line: &[u8]) {
        self.pending.extend_from_slice(line);
        self.total += line.len() as u64;
    }

    /// Store every full part waiting in `pending`.
    pub async fn flush(&mut self) -> Result<()> {
        while self.pending.len() >= self.part_bytes {
            let rest = self.pending.split_off(self.part_bytes);
            let part = std::mem::replace(&mut self.pending, rest);
            self.upload_part(part).await?;
        }
        Ok(())
    }

    async fn upload_part(&mut self, part: Vec<u8>) -> Result<()> {
        if self.upload.is_none() {
            self.upload =
                Some(self.bucket.create_multipart_upload(self.key.clone()).execute().await.map_err(r2)?);
        }
        let number = u16::try_from(self.parts.len() + 1)
            .map_err(|_| ApiError::new(413, "too_large", "input too large"))?;
        if let Some(up) = &self.upload {
            self.parts.push(up.upload_part(number, part).await.map_err(r2)?);
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<u64> {
        match self.upload.take() {
            // Small inputs: one plain put.
            None => {
                self.bucket
                    .put(self.key.clone(), std::mem::take(&mut self.pending))
                    .execute()
                    .await
                    .map_err(r2)?;
            }
            Some(up) => {
                if !self.pending.is_empty() {
                    let last = std::mem::take(&mut self.pending);
                    self.upload = Some(up);
                    self.upload_part(last).await?;
                    let Some(up) = self.upload.take() else {
                        return Err(ApiError::internal("lost the upload"));
                    };
                    up.complete(std::mem::take(&mut self.parts)).await.map_err(r2)?;
                } else {
                    up.complete(std::mem::take(&mut self.parts)).await.map_err(r2)?;
                }
            }
        }
        Ok(self.total)
    }

    async fn abort(mut self) {
        if let Some(up) = self.upload.take() {
            let _ = up.abort().await;
        }
    }
}

pub fn invalid(count: u64, errors: Vec<LineError>) -> ApiError {
    let noun = if count == 1 { "request is" } else { "requests are" };
    let first = errors.first().map(|e| format!(" (line {}: {})", e.line, e.message)).unwrap_or_default();
    ApiError::new(400, "invalid_requests", format!("{count} {noun} invalid{first}"))
        .with_details(json!({"invalidCount": count, "lines": errors}))
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
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JsonSubmission {
    pub model: String,
    #[serde(default)]
    pub display_name: Option<String>,
    pub requests: Vec<Value>,
    #[serde(default)]
    pub metadata: Option<Value>,
    /// `{url}`: POSTed the final job, signed with the account's webhook secret.
    #[serde(default)]
    pub webhook: Option<WebhookTarget>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookTarget {
    pub url: String,
}

/// A webhook URL the job may call, or a 400 naming the problem.
fn webhook_url(url: Option<String>, settings: &Settings) -> Result<Option<String>> {
    let Some(url) = url else { return Ok(None) };
    batchgate_core::webhook::check_url(&url, settings.webhook_allow_http, settings.own_host.as_deref())
        .map_err(|e| ApiError::bad_request("invalid_webhook_url", e))?;
    Ok(Some(url))
}

/// The checks a submission to `model` goes through, and the batches it will be cut into.
pub fn validator(settings: &Settings, model: &str) -> Validator {
    Validator::new(settings.limits.clone())
        .with_estimate(settings.estimate)
        .with_model(model)
        .with_shards(settings.shards.limits(model))
}

/// What the requests cost; a job whose amounts would not fit is refused
/// (reserving a saturated or wrapped figure would let it run unpaid).
pub fn quote(price: &Price, tokens: &batchgate_core::pricing::Tokens) -> Result<Quote> {
    price.quote(tokens).ok_or_else(|| {
        ApiError::bad_request(
            "quote_too_large",
            "the job's estimated cost is too large to reserve; send fewer or smaller requests",
        )
    })
}

/// A validated input, stored in R2 under `input_key`, not yet a job.
pub struct Submission {
    model: String,
    price: Price,
    display_name: Option<String>,
    metadata: Option<Value>,
    summary: Summary,
    bytes: u64,
    input_key: String,
    webhook: Option<String>,
}

pub async fn handle(mut req: Request, env: &Env, account: &str) -> Result<Response> {
    let mut settings = Settings::from_env(env);
    settings.own_host = req.headers().get("host").ok().flatten();
    let jobs = env.durable_object("JOBS").map_err(|e| ApiError::internal(e.to_string()))?;
    let idem = req.headers().get("idempotency-key").ok().flatten().filter(|k| !k.is_empty());
    if idem.as_ref().is_some_and(|k| k.len() > 255) {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key is longer than 255 characters",
        ));
    }
    let id = match &idem {
        Some(k) => jobs.id_from_name(&format!("{account}\n{k}")),
        None => jobs.unique_id(),
    }
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let job_id = id.to_string();
    let stub = id.get_stub().map_err(|e| ApiError::internal(e.to_string()))?;
    if idem.is_some()
        && let Some(answer) = prior_answer(&stub, account, &job_id).await?
    {
        return answer;
    }
    let writer = InputWriter::new(env, &settings, &job_id)?;
    let is_ndjson = req
        .headers()
        .get("content-type")
        .ok()
        .flatten()
        .is_some_and(|c| c.contains("ndjson") || c.contains("jsonl"));
    let submission = if is_ndjson {
        read_ndjson(&mut req, &settings, writer).await?
    } else {
        read_json(&mut req, &settings, writer).await?
    };
    open(env, &settings, account, (&job_id, &stub), submission, None).await
}

/// Make a stored submission a job: check its files, reserve its quote, and
/// init its JobObject. Any refusal deletes the input; nothing is left behind.
pub async fn open(
    env: &Env,
    settings: &Settings,
    account: &str,
    (job_id, stub): (&str, &worker::Stub),
    submission: Submission,
    retry_of: Option<&str>,
) -> Result<Response> {
    let input_key = submission.input_key.clone();
    let job_id = job_id.to_string();
    let quote = match reserve(env, settings, account, (&job_id, stub), &submission).await {
        Ok(q) => q,
        Err(answer) => {
            // Nothing else happens: the stored input goes too.
            if let Ok(b) = env.bucket(BUCKET) {
                let _ = b.delete(input_key).await;
            }
            return answer;
        }
    };
    let init = json!({
        "id": job_id,
        "account": account,
        "model": submission.model,
        "requestCount": submission.summary.count,
        "inputBytes": submission.bytes,
        "inputKey": input_key,
        "displayName": submission.display_name,
        "metadata": submission.metadata,
        "keys": submission.summary.keys,
        "price": submission.price,
        "reserved": quote.batch,
        "retryOf": retry_of,
        "webhookUrl": submission.webhook,
        "shards": submission.summary.shards,
    });
    let created =
        internal::call_json::<Created>(stub, Method::Post, "/init", account, Some(init.to_string()))
            .await
            .and_then(|c| c.ok_or_else(|| ApiError::internal("the job object refused its init")));
    let created = match created {
        Ok(c) => c,
        Err(e) => {
            // The answer may be lost, not the job: the object says which, and
            // spends the id first when there is none, so no late `/init` can
            // create a job after its reservation is given back.
            let abandoned =
                internal::call_json::<internal::Abandoned>(stub, Method::Post, "/abandon", account, None)
                    .await;
            return match abandoned {
                Ok(Some(internal::Abandoned::Exists(view))) => {
                    accepted(&serde_json::to_value(&view).unwrap_or_default(), &job_id)
                }
                Ok(Some(internal::Abandoned::Abandoned)) => {
                    let release = SettleRequest {
                        job: job_id.clone(),
                        event: "not-created".into(),
                        charge: 0,
                        standard: 0,
                    };
                    let _ = accounts::settle(env, account, &release).await;
                    Err(e)
                }
                // Unknown: the reservation stays held rather than freeing credits a job may be using.
                _ => Err(e),
            };
        }
    };
    if !created.created {
        // Lost a race with the same Idempotency-Key: the first submission stands.
        if let Ok(b) = env.bucket(BUCKET) {
            let _ = b.delete(input_key).await;
        }
    }
    accepted(&serde_json::to_value(&created.view).unwrap_or_default(), &job_id)
}

/// Price the submission (files the requests reference by their sizes) and
/// reserve the quote. `Err` is the answer instead: a refusal, or, when the id
/// is already claimed, what it already is.
async fn reserve(
    env: &Env,
    settings: &Settings,
    account: &str,
    (job_id, stub): (&str, &worker::Stub),
    submission: &Submission,
) -> std::result::Result<Quote, Result<Response>> {
    let extra = check_files(env, settings, account, &submission.summary.files).await.map_err(Err)?;
    let mut tokens = submission.summary.tokens;
    tokens.input = tokens.input.saturating_add(extra);
    let quote = quote(&submission.price, &tokens).map_err(Err)?;
    let reservation =
        ReserveRequest { job: job_id.into(), amount: quote.batch, limits: settings.account_limits };
    match accounts::reserve(env, account, &reservation).await {
        Ok(ReserveAnswer::Reserved { .. }) => Ok(quote),
        Ok(ReserveAnswer::Duplicate { .. }) => Err(already_claimed(stub, account, job_id).await),
        Ok(refused) => Err(Err(refused_error(refused, &quote))),
        Err(e) => Err(Err(e)),
    }
}

/// Requests may reference (`fileData.fileUri`) only the account's own files; each reference is
/// reserved what its file's size may cost (`EstimateRules::media_tokens`), on
/// top of the validator's flat figure for it: the tokens to add.
pub async fn check_files(
    env: &Env,
    settings: &Settings,
    account: &str,
    files: &[(u64, String)],
) -> Result<u64> {
    if files.is_empty() {
        return Ok(0);
    }
    let owned: std::collections::HashMap<String, batchgate_core::upload::OwnedFile> =
        accounts::files(env, account).await?.into_iter().map(|f| (f.name.clone(), f)).collect();
    let extra = files
        .iter()
        .filter_map(|(_, name)| owned.get(name))
        .map(|f| settings.estimate.media_tokens(&f.mime_type, f.size_bytes))
        .fold(0u64, u64::saturating_add);
    let errors: Vec<LineError> = files
        .iter()
        .filter(|(_, f)| !owned.contains_key(f))
        .map(|(line, f)| LineError {
            line: *line,
            message: format!("{f} is not one of this account's files (upload it with POST /v1/files)"),
        })
        .collect();
    match errors.len() as u64 {
        0 => Ok(extra),
        n => Err(invalid(n, errors.into_iter().take(50).collect())),
    }
}

/// What an id that a submission wants already is: its job (an idempotent
/// retry gets it back), or a 409 when the id is spent or another submission
/// holds it; `None` when the id is free.
async fn prior_answer(stub: &worker::Stub, account: &str, job_id: &str) -> Result<Option<Result<Response>>> {
    let prior = internal::call_json::<internal::Prior>(stub, Method::Get, "/prior", account, None)
        .await?
        .ok_or_else(|| ApiError::internal("the job object did not answer /prior"))?;
    Ok(match prior {
        internal::Prior::Free => None,
        internal::Prior::Live(view) => {
            Some(accepted(&serde_json::to_value(&view).unwrap_or_default(), job_id))
        }
        internal::Prior::Gone(t) => Some(Err(key_used(job_id, &t))),
        internal::Prior::Taken => Some(Err(key_in_use(job_id))),
    })
}

fn key_used(job_id: &str, t: &internal::Tombstone) -> ApiError {
    ApiError::new(
        409,
        "idempotency_key_used",
        format!(
            "this Idempotency-Key made job {job_id}, which was {}; use a new key for a new job",
            t.reason
        ),
    )
    .with_details(json!({"job": job_id, "reason": t.reason}))
}

fn key_in_use(job_id: &str) -> ApiError {
    ApiError::new(
        409,
        "idempotency_key_in_use",
        "another submission with this Idempotency-Key is under way; retry shortly",
    )
    .with_details(json!({"job": job_id}))
    .with_retry_after(1)
}

/// The ledger already holds this id: a racing submission with the same key
/// (its job, once it exists), or a spent id.
async fn already_claimed(stub: &worker::Stub, account: &str, job_id: &str) -> Result<Response> {
    match prior_answer(stub, account, job_id).await? {
        Some(answer) => answer,
        None => Err(key_in_use(job_id)),
    }
}

fn refused_error(answer: ReserveAnswer, quote: &Quote) -> ApiError {
    match answer {
        ReserveAnswer::Insufficient { balance, needed } => ApiError::new(
            402,
            "insufficient_credits",
            format!("the job needs {needed} micro-credits reserved and the balance is {balance}"),
        )
        .with_details(json!({"quote": quote, "balance": balance, "needed": needed})),
        ReserveAnswer::TooManyOpenJobs { limit } => ApiError::new(
            429,
            "too_many_open_jobs",
            format!("this account already has {limit} jobs running; wait for one to end"),
        )
        .with_details(json!({"limit": limit}))
        .with_retry_after(60),
        ReserveAnswer::TooManySubmits { limit, retry_after_secs } => ApiError::new(
            429,
            "too_many_submits",
            format!("at most {limit} submits a minute; retry in {retry_after_secs} s"),
        )
        .with_details(json!({"limit": limit, "retryAfterSecs": retry_after_secs}))
        .with_retry_after(retry_after_secs),
        ReserveAnswer::Reserved { .. } | ReserveAnswer::Duplicate { .. } => ApiError::internal("reserved"),
    }
}

pub fn accepted(view: &Value, id: &str) -> Result<Response> {
    let resp = Response::from_json(view).map_err(|e| ApiError::internal(e.to_string()))?.with_status(202);
    let _ = resp.headers().set("location", &format!("/v1/jobs/{id}"));
    Ok(resp)
}

/// `application/x-ndjson`: one `{key?, request}` per line; `?model=` (and
/// optionally `?displayName=`) in the query.
async fn read_ndjson(req: &mut Request, settings: &Settings, mut writer: InputWriter) -> Result<Submission> {
    let q = crate::query::Query::of(req);
    let (model, price) = priced_model(
        &q.get("model").ok_or_else(|| {
            ApiError::bad_request("missing_model", "NDJSON submissions name the model in ?model=")
        })?,
        settings,
    )?;
    let display_name = q.get("displayName");
    let webhook = webhook_url(q.get("webhookUrl"), settings)?;
    let mut validator = validator(settings, &model);
    let mut splitter = LineSplitter::new(usize::try_from(settings.max_line_bytes).unwrap_or(usize::MAX));
    let mut body = req.stream().map_err(|e| ApiError::bad_request("unreadable_body", e.to_string()))?;
    let mut failed: Option<ApiError> = None;
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                failed = Some(ApiError::bad_request(
                    "unreadable_body",
                    format!("the request body broke off: {e}"),
                ));
                break;
            }
        };
        let fed = splitter.feed(&chunk, |n, line| {
            if let Some(normalized) = validator.line(n, line) {
                writer.push(&normalized);
            }
            Ok::<(), std::convert::Infallible>(())
        });
        if let Err(SplitError::LineTooLong { line, limit }) = fed {
            validator.unreadable(line, format!("line is longer than {limit} bytes"));
            failed = Some(ApiError::bad_request(
                "line_too_long",
                format!("line {line} is longer than {limit} bytes"),
            ));
            break;
        }
        if let Err(e) = writer.flush().await {
            failed = Some(e);
            break;
        }
    }
    if failed.is_none() {
        let _ = splitter.finish(|n, line| {
            if let Some(normalized) = validator.line(n, line) {
                writer.push(&normalized);
            }
            Ok::<(), std::convert::Infallible>(())
        });
    }
    let submission = conclude(validator, writer, failed, (model, price), display_name, None).await?;
    Ok(Submission { webhook, ..submission })
}

/// `application/json`: `{model, displayName?, requests: [{key?, request}], metadata?}`.
async fn read_json(req: &mut Request, settings: &Settings, mut writer: InputWriter) -> Result<Submission> {
    let bytes = crate::body::read(
        req,
        settings.max_json_body_bytes,
        "a JSON submission (send larger jobs as application/x-ndjson)",
    )
    .await?;
    let body: JsonSubmission = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not a valid submission: {e}"))
    })?;
    drop(bytes);
    if let Some(m) = &body.metadata
        && m.to_string().len() > MAX_METADATA_BYTES
    {
        return Err(ApiError::bad_request(
            "metadata_too_large",
            format!("metadata is at most {MAX_METADATA_BYTES} bytes of JSON"),
        ));
    }
    let model = priced_model(&body.model, settings)?;
    let webhook = webhook_url(body.webhook.map(|w| w.url), settings)?;
    let mut validator = validator(settings, &model.0);
    for (i, item) in body.requests.into_iter().enumerate() {
        if let Some(normalized) = validator.item(i as u64 + 1, item) {
            writer.push(&normalized);
        }
    }
    let failed = writer.flush().await.err();
    let submission = conclude(validator, writer, failed, model, body.display_name, body.metadata).await?;
    Ok(Submission { webhook, ..submission })
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
            let input_key = writer.key.clone();
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
            });
        }
    };
    writer.abort().await;
    Err(error.unwrap_or_else(|| ApiError::internal("submission failed")))
}

/// Parse a job id from a path; anything that is not one of ours is 404.
pub fn job_stub(env: &Env, id: &str) -> Result<worker::Stub> {
    let ns: ObjectNamespace = env.durable_object("JOBS").map_err(|e| ApiError::internal(e.to_string()))?;
    let valid = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return Err(ApiError::not_found(format!("no job {id}")));
    }
    ns.id_from_string(id).and_then(|i| i.get_stub()).map_err(|_| ApiError::not_found(format!("no job {id}")))
}
