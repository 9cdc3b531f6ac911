//! Carrying out one [`Action`] of the job machine: the I/O, and nothing else.
//! Every function here returns an [`Outcome`] (failures included) and never
//! panics; what it means for the job is decided in core.

use crate::accounts::{self, SettleRequest};
use crate::config::Settings;
use crate::gemini::{Gemini, with_timeout};
use crate::job_object::results_key;
use crate::job_store::Store;
use crate::{internal, quota_object};
use batchgate_core::gemini::client::{Failure, failure, finalized_file};
use batchgate_core::gemini::{File, ListOperationsResponse, Operation};
use batchgate_core::ingest::{Cursor, LineRecord, next_slice, scan_slice, stored_part};
use batchgate_core::job::{Action, Job, Outcome, Progress};
use batchgate_core::quota::{Admission, AdmitRequest};
use futures_util::StreamExt;
use worker::{Bucket, Env, Range, ResponseBody, UploadedPart};

pub const BUCKET: &str = "BLOBS";

/// A slice of ingestion to store atomically with the outcome.
pub struct SliceWrite {
    pub records: Vec<LineRecord>,
    pub shard: u64,
    pub part_number: u64,
    pub etag: String,
}

pub struct StepResult {
    pub outcome: Outcome,
    pub slice: Option<SliceWrite>,
}

impl From<Outcome> for StepResult {
    fn from(outcome: Outcome) -> Self {
        StepResult { outcome, slice: None }
    }
}

fn fail(f: Failure) -> StepResult {
    Outcome::Failed(f).into()
}

fn r2_failure(what: &str, e: worker::Error) -> Failure {
    Failure::network(format!("R2 {what}: {e}"))
}

fn bucket(env: &Env) -> Result<Bucket, Failure> {
    env.bucket(BUCKET)
        .map_err(|e| Failure::Permanent { status: 0, message: format!("R2 binding {BUCKET}: {e}") })
}

pub async fn run(
    env: &Env,
    store: &Store,
    gemini: &Gemini,
    settings: &Settings,
    job: &Job,
    action: Action,
) -> StepResult {
    let result = match action {
        Action::Admit { tokens } => admit(env, settings, job, tokens).await,
        Action::Release => release(env, job).await,
        Action::StartUpload => start_upload(gemini, job).await,
        Action::ContinueUpload { session_url, offset } => {
            continue_upload(env, store, gemini, settings, job, &session_url, offset).await
        }
        Action::FindBatch => find_batch(gemini, job).await,
        Action::CreateBatch { file } => create_batch(gemini, job, &file).await,
        Action::CancelBatch { batch } => cancel_batch(gemini, &batch).await,
        Action::PollBatch { batch } => poll(gemini, &batch).await,
        Action::Ingest { results, cursor, size } => {
            ingest(env, store, gemini, settings, job, &results, cursor, size).await
        }
        Action::DeleteFiles { files } => delete_files(gemini, &files).await,
        Action::Settle { charge, standard } => settle(env, store, job, charge, standard).await,
        Action::Wait { .. } | Action::Finished => Ok(Outcome::FilesDeleted.into()),
    };
    result.unwrap_or_else(fail)
}

/// Ask the model's QuotaObject for room for the current shard's tokens.
async fn admit(env: &Env, settings: &Settings, job: &Job, tokens: u64) -> Result<StepResult, Failure> {
    let ask = AdmitRequest {
        job: job.id.clone(),
        shard: job.shard,
        tokens,
        cap: settings.shards.caps.of(&job.model),
    };
    let answer: Admission = quota_call(env, &job.model, "/admit", &ask).await?;
    Ok(if answer.admitted { Outcome::Admitted } else { Outcome::QuotaFull }.into())
}

async fn release(env: &Env, job: &Job) -> Result<StepResult, Failure> {
    let release = quota_object::Release { job: job.id.clone(), shard: job.shard };
    let _: serde_json::Value = quota_call(env, &job.model, "/release", &release).await?;
    Ok(Outcome::Released.into())
}

async fn quota_call<T: serde::de::DeserializeOwned>(
    env: &Env,
    model: &str,
    path: &str,
    body: &impl serde::Serialize,
) -> Result<T, Failure> {
    let stub = quota_object::stub(env, model).map_err(|e| Failure::network(format!("quota object: {e}")))?;
    let body = serde_json::to_string(body).map_err(|e| Failure::network(e.to_string()))?;
    internal::call_json::<T>(&stub, worker::Method::Post, path, "", Some(body))
        .await
        .map_err(|e| Failure::network(format!("quota object: {}", e.message)))?
        .ok_or_else(|| Failure::network("quota object: no answer"))
}

async fn start_upload(gemini: &Gemini, job: &Job) -> Result<StepResult, Failure> {
    let call = gemini.cfg.upload_start(job.shard_spec().bytes, &job.gemini_display_name());
    let (resp, _) = gemini.ok_text(&call, None).await?;
    let url = resp
        .headers()
        .get("x-goog-upload-url")
        .ok()
        .flatten()
        .ok_or_else(|| Failure::network("upload start answered without X-Goog-Upload-URL"))?;
    Ok(Outcome::UploadStarted { session_url: gemini.cfg.session_url(&url) }.into())
}

/// Send the next chunk of the input (streamed from R2, never buffered here).
async fn continue_upload(
    env: &Env,
    store: &Store,
    gemini: &Gemini,
    settings: &Settings,
    job: &Job,
    session_url: &str,
    mut offset: u64,
) -> Result<StepResult, Failure> {
    if job.retries > 0 {
        // After a broken chunk, ask the session what it really holds.
        let mut resp = gemini.send(&gemini.cfg.upload_query(session_url), None).await?;
        let status = resp.headers().get("x-goog-upload-status").ok().flatten().unwrap_or_default();
        let text = gemini.text(&mut resp).await?;
        if resp.status_code() != 200 {
            return Err(failure(resp.status_code(), &text));
        }
        if status == "final" {
            return Ok(Outcome::Uploaded { file: finalized_file(&text)?.name }.into());
        }
        if let Some(n) =
            resp.headers().get("x-goog-upload-size-received").ok().flatten().and_then(|v| v.parse().ok())
        {
            offset = n;
        }
    }
    let shard = job.shard_spec();
    let total = shard.bytes;
    let len = settings.upload_chunk_bytes.min(total.saturating_sub(offset));
    let finalize = offset + len >= total;
    let stream = if len == 0 {
        // The session holds every byte but was never finalized (the connection
        // broke after the last byte, before the answer): finalize with an empty
        // chunk. R2 refuses an empty range at the object's end.
        js_sys::Uint8Array::new_with_length(0).into()
    } else {
        input_range(env, store, shard.offset + offset, len).await?
    };
    let call = gemini.cfg.upload_chunk(session_url, offset, len, finalize);
    let mut resp = gemini.send(&call, Some(stream)).await?;
    let text = gemini.text(&mut resp).await?;
    let received =
        resp.headers().get("x-goog-upload-size-received").ok().flatten().and_then(|v| v.parse().ok());
    match (resp.status_code(), finalize) {
        (200, true) => Ok(Outcome::Uploaded { file: finalized_file(&text)?.name }.into()),
        (200, false) => Ok(Outcome::UploadProgress { offset: offset + len }.into()),
        // The session holds a different amount than we thought: continue from there.
        (400, _) if received.is_some_and(|r: u64| r != offset) => {
            Ok(Outcome::UploadProgress { offset: received.unwrap_or(offset) }.into())
        }
        (status, _) => Err(failure(status, &text)),
    }
}

/// `length` (> 0) bytes of the job's input from `offset`, as a stream for a request body.
async fn input_range(
    env: &Env,
    store: &Store,
    offset: u64,
    length: u64,
) -> Result<wasm_bindgen::JsValue, Failure> {
    let key: String = store
        .get("inputKey")
        .map_err(|e| Failure::network(e.to_string()))?
        .ok_or_else(|| Failure::Permanent { status: 0, message: "the job's input is not recorded".into() })?;
    let object = bucket(env)?
        .get(&key)
        .range(Range::OffsetWithLength { offset, length })
        .execute()
        .await
        .map_err(|e| r2_failure("read of the input", e))?
        .ok_or_else(|| Failure::Permanent {
            status: 0,
            message: format!("the input {key} is gone from R2"),
        })?;
    let body = object.body().ok_or_else(|| Failure::network("R2 returned the input without a body"))?;
    Ok(match body.response_body().map_err(|e| r2_failure("input body", e))? {
        ResponseBody::Stream(s) => s.into(),
        ResponseBody::Body(bytes) => js_sys::Uint8Array::from(bytes.as_slice()).into(),
        ResponseBody::Empty => js_sys::Uint8Array::new_with_length(0).into(),
    })
}

/// A create whose answer was lost may have made a batch: look for it by its unique display name.
async fn find_batch(gemini: &Gemini, job: &Job) -> Result<StepResult, Failure> {
    Ok(match find_batch_named(gemini, &job.gemini_display_name()).await? {
        Some(batch) => Outcome::BatchFound { batch }.into(),
        None => Outcome::BatchAbsent.into(),
    })
}

/// The batch Gemini holds under this (unique) display name, if any.
pub async fn find_batch_named(gemini: &Gemini, wanted: &str) -> Result<Option<String>, Failure> {
    let mut token: Option<String> = None;
    for _ in 0..50 {
        let page: ListOperationsResponse = gemini.json(&gemini.cfg.list_batches(token.as_deref())).await?;
        let found = page
            .operations
            .iter()
            .find(|op| op.metadata.as_ref().and_then(|m| m.display_name.as_deref()) == Some(wanted));
        if let Some(op) = found {
            return Ok(Some(op.name.clone()));
        }
        match page.next_page_token.filter(|t| !t.is_empty()) {
            Some(t) => token = Some(t),
            None => return Ok(None),
        }
    }
    Err(Failure::network("the batch list did not end"))
}

async fn create_batch(gemini: &Gemini, job: &Job, file: &str) -> Result<StepResult, Failure> {
    let call = gemini.cfg.create_batch(&job.model, &job.gemini_display_name(), file);
    let op: Operation = gemini.json(&call).await?;
    Ok(Outcome::Created { batch: op.name }.into())
}

async fn cancel_batch(gemini: &Gemini, batch: &str) -> Result<StepResult, Failure> {
    match gemini.ok_text(&gemini.cfg.cancel_batch(batch), None).await {
        // Gemini refusing (already ended) is fine: polling shows the end.
        Ok(_) | Err(Failure::Permanent { .. }) => Ok(Outcome::CancelSent.into()),
        Err(f) => Err(f),
    }
}

async fn poll(gemini: &Gemini, batch: &str) -> Result<StepResult, Failure> {
    let op: Operation = gemini.json(&gemini.cfg.get_batch(batch)).await?;
    let stats = op.stats();
    Ok(Outcome::Polled {
        state: op.state(),
        progress: Progress {
            succeeded: stats.successful_request_count,
            failed: stats.failed_request_count,
            pending: stats.pending_request_count,
        },
        results_file: op.output().and_then(|o| o.responses_file.clone()),
        error: op.error.map(|e| e.message).filter(|m| !m.is_empty()),
    }
    .into())
}

/// One slice of the results: read a byte range from Gemini, index its lines,
/// store it as one R2 part.
#[allow(clippy::too_many_arguments)]
async fn ingest(
    env: &Env,
    store: &Store,
    gemini: &Gemini,
    settings: &Settings,
    job: &Job,
    results: &str,
    cursor: Cursor,
    size: Option<u64>,
) -> Result<StepResult, Failure> {
    let size = match size {
        Some(s) => s,
        None => gemini.json::<File>(&gemini.cfg.get_file(results)).await?.size_bytes,
    };
    let bucket = bucket(env)?;
    let key = results_key(&job.id, job.shard);
    let Some(slice) = next_slice(&cursor, size, settings.part_bytes) else {
        return complete(store, &bucket, &key, job.shard).await;
    };
    let upload_key = upload_id_key(job.shard);
    let upload_id = match store.get::<String>(&upload_key).map_err(|e| Failure::network(e.to_string()))? {
        Some(id) => id,
        None => {
            let up = bucket
                .create_multipart_upload(key.clone())
                .execute()
                .await
                .map_err(|e| r2_failure("multipart start", e))?;
            let id = up.upload_id().await;
            store.put(&upload_key, &id).map_err(|e| Failure::network(e.to_string()))?;
            id
        }
    };
    let bytes = download(gemini, results, slice.fetch.start, slice.fetch.end).await?;
    let (records, next) = scan_slice(&cursor, &slice, &bytes, settings.max_line_bytes);
    let part = stored_part(&slice, &bytes);
    let upload =
        bucket.resume_multipart_upload(key, upload_id).map_err(|e| r2_failure("multipart resume", e))?;
    let part_number = u16::try_from(slice.part_number).map_err(|_| Failure::Permanent {
        status: 0,
        message: "results need more than 10,000 parts".into(),
    })?;
    let uploaded = upload.upload_part(part_number, part).await.map_err(|e| r2_failure("part upload", e))?;
    Ok(StepResult {
        outcome: Outcome::IngestProgress { cursor: next, size },
        slice: Some(SliceWrite {
            records,
            shard: job.shard,
            part_number: slice.part_number,
            etag: uploaded.etag(),
        }),
    })
}

/// Where the id of shard `shard`'s results multipart upload is kept.
fn upload_id_key(shard: u64) -> String {
    match shard {
        0 => "uploadId".into(),
        n => format!("uploadId-{n}"),
    }
}

async fn complete(store: &Store, bucket: &Bucket, key: &str, shard: u64) -> Result<StepResult, Failure> {
    let upload_id: Option<String> =
        store.get(&upload_id_key(shard)).map_err(|e| Failure::network(e.to_string()))?;
    let Some(upload_id) = upload_id else {
        // An empty results file: nothing was uploaded.
        bucket.put(key, Vec::new()).execute().await.map_err(|e| r2_failure("put", e))?;
        return Ok(Outcome::Ingested.into());
    };
    let parts: Vec<UploadedPart> = store
        .parts(shard)
        .map_err(|e| Failure::network(e.to_string()))?
        .into_iter()
        .map(|(n, etag)| UploadedPart::new(n, etag))
        .collect();
    let upload =
        bucket.resume_multipart_upload(key, upload_id).map_err(|e| r2_failure("multipart resume", e))?;
    match upload.complete(parts).await {
        Ok(_) => Ok(Outcome::Ingested.into()),
        // Already completed by a previous attempt whose outcome was lost?
        Err(e) => match bucket.head(key).await {
            Ok(Some(_)) => Ok(Outcome::Ingested.into()),
            _ => Err(r2_failure("multipart complete", e)),
        },
    }
}

/// Bytes `[start, end)` of a results file. A server that ignores `Range` and
/// sends the whole file is read through, keeping only the wanted bytes.
pub(crate) async fn download(gemini: &Gemini, name: &str, start: u64, end: u64) -> Result<Vec<u8>, Failure> {
    let mut resp = gemini.send(&gemini.cfg.download(name, start, end), None).await?;
    let status = resp.status_code();
    if status != 200 && status != 206 {
        let text = gemini.text(&mut resp).await?;
        return Err(failure(status, &text));
    }
    let skip = if status == 200 { start } else { 0 };
    let want = usize::try_from(end - start).unwrap_or(usize::MAX);
    let mut out = Vec::with_capacity(want);
    let mut seen = 0u64;
    let mut stream = resp.stream().map_err(|e| Failure::network(e.to_string()))?;
    while out.len() < want {
        let next = with_timeout(120_000, stream.next(), || ()).await;
        let chunk = match next {
            None => return Err(Failure::network("the results download stalled")),
            Some(None) => break,
            Some(Some(Err(e))) => return Err(Failure::network(format!("the results download broke: {e}"))),
            Some(Some(Ok(c))) => c,
        };
        let chunk_start = seen;
        seen += chunk.len() as u64;
        if seen <= skip {
            continue;
        }
        let from = usize::try_from(skip.saturating_sub(chunk_start)).unwrap_or(0);
        let take = want - out.len();
        out.extend(chunk.iter().skip(from).take(take));
    }
    if out.len() != want {
        return Err(Failure::network(format!(
            "the results download ended after {} of {want} bytes",
            out.len()
        )));
    }
    Ok(out)
}

/// Charge the job's account for what was delivered and release the rest of
/// its reservation. The ledger ignores a repeat, so this can run again after
/// a lost answer.
async fn settle(
    env: &Env,
    store: &Store,
    job: &Job,
    charge: i64,
    standard: i64,
) -> Result<StepResult, Failure> {
    let account: String = store
        .get("account")
        .map_err(|e| Failure::network(e.to_string()))?
        .ok_or_else(|| Failure::network("the job has no account"))?;
    let request = SettleRequest { job: job.id.clone(), event: "end".into(), charge, standard };
    accounts::settle(env, &account, &request).await.map_err(|e| Failure::network(e.message))?;
    Ok(Outcome::Settled { charge }.into())
}

/// Settle at once (a job deleted before it ended), at what it delivered so far.
pub async fn settle_now(env: &Env, store: &Store, job: &Job) -> Result<(), Failure> {
    let (charge, standard) = job.cost();
    settle(env, store, job, charge, standard).await.map(|_| ())
}

async fn delete_files(gemini: &Gemini, files: &[String]) -> Result<StepResult, Failure> {
    for f in files {
        match gemini.ok_text(&gemini.cfg.delete_file(f), None).await {
            Ok(_) | Err(Failure::Permanent { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Outcome::FilesDeleted.into())
}

/// Cancel a batch no job owns any more; true once Gemini has it cancelled or
/// ended (a batch already finished cannot be cancelled, and costs no more).
pub async fn cancel_orphan(gemini: &Gemini, batch: &str) -> bool {
    cancel_batch(gemini, batch).await.is_ok()
}

/// `DELETE /v1/jobs/:id`: stop Gemini's batch if it runs, delete every file and
/// object the job made. Best effort: whatever fails here expires on its own
/// (Gemini files at 48 h, unfinished R2 multipart uploads at 7 days).
pub async fn purge(env: &Env, store: &Store, gemini: &Gemini, job: &Job) {
    if let (Some(batch), false) = (&job.batch, job.state().is_terminal()) {
        let _ = cancel_batch(gemini, batch).await;
    }
    if job.quota_held || !job.state().is_terminal() {
        let _ = release(env, job).await;
    }
    let mut files: Vec<String> = job.input_file.iter().chain(&job.stale_files).cloned().collect();
    if let batchgate_core::job::Phase::Ingesting { results, .. } = &job.phase {
        files.push(results.clone());
    }
    let _ = delete_files(gemini, &files).await;
    let Ok(bucket) = bucket(env) else { return };
    let current = results_key(&job.id, job.shard);
    let completed = bucket.head(current.clone()).await.map(|h| h.is_some());
    if let (Ok(Some(upload_id)), Ok(false)) = (store.get::<String>(&upload_id_key(job.shard)), completed)
        && let Ok(up) = bucket.resume_multipart_upload(current, upload_id)
    {
        let _ = up.abort().await;
    }
    let mut keys: Vec<String> = (0..=job.shard).map(|s| results_key(&job.id, s)).collect();
    if let Ok(Some(input)) = store.get::<String>("inputKey") {
        keys.push(input);
    }
    for k in keys {
        let _ = bucket.delete(k).await;
    }
}
