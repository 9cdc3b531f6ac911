//! Carrying out one [`Task`] of the job machine: the I/O, and nothing else.
//! Every function here returns an [`Outcome`] (failures included) and never
//! panics; what it means for the job is decided in core. A shard's Gemini
//! calls all go out with the key the quota gave it.

use super::store::Store;
use crate::objects::account::client as accounts;
use crate::objects::account::protocol::Settle;
use crate::objects::quota::client as quota;
use crate::platform::bindings::{self, BUCKET, results_key};
use crate::platform::config::Settings;
use crate::platform::gemini::Gemini;
use crate::platform::gemini_files::{self, Received, download};
use batchgate_core::gemini::client::Failure;
use batchgate_core::gemini::{File, ListOperationsResponse, Operation};
use batchgate_core::ingest::{Cursor, LineRecord, next_slice, scan_slice, stored_part};
use batchgate_core::job::{Action, Job, Outcome, Progress, Run, Task};
use batchgate_core::quota::AdmitRequest;
use worker::{Bucket, Env, Range, ResponseBody, UploadedPart};

/// A slice of ingestion to store atomically with the outcome.
pub struct SliceWrite {
    pub records: Vec<LineRecord>,
    pub shard: u64,
    /// The multipart upload part they sit in (`(number, etag)`); none: a whole object.
    pub part: Option<(u64, String)>,
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
    bindings::bucket(env)
        .map_err(|e| Failure::Permanent { status: 0, message: format!("R2 binding {BUCKET}: {e}") })
}

/// Carry out `task` for `job` (as stored before the task ran).
pub async fn run(env: &Env, store: &Store, settings: &Settings, job: &Job, task: &Task) -> StepResult {
    let result = match (task.shard.and_then(|s| job.run(s)), &task.action) {
        (_, Action::Settle { charge, standard }) => settle(env, store, job, *charge, *standard).await,
        // Realtime calls take a key per request, from the model's RPM limiter.
        (Some(run), Action::Answer) => super::answer::run(env, store, settings, job, run).await,
        // The quota is ours, not Gemini's: no key is needed to ask it.
        (Some(run), Action::Admit { tokens }) => admit(env, settings, job, run, *tokens).await,
        (Some(run), Action::Release) => release(env, job.id(), run.shard()).await,
        (Some(run), action) => match Gemini::with_key(settings, run.key()) {
            Ok(gemini) => shard_step(env, store, &gemini, settings, job, run, action).await,
            Err(f) => Err(f),
        },
        (None, _) => Err(Failure::Permanent { status: 0, message: "the shard has no run".into() }),
    };
    result.unwrap_or_else(fail)
}

async fn shard_step(
    env: &Env,
    store: &Store,
    gemini: &Gemini,
    settings: &Settings,
    job: &Job,
    run: &Run,
    action: &Action,
) -> Result<StepResult, Failure> {
    match action {
        Action::Admit { .. } | Action::Release | Action::Settle { .. } | Action::Answer => {
            Err(Failure::Permanent { status: 0, message: "not a Gemini step".into() })
        }
        Action::StartUpload => start_upload(gemini, job, run).await,
        Action::ContinueUpload { session_url, offset } => {
            continue_upload(env, store, gemini, settings, run, session_url, *offset).await
        }
        Action::FindBatch => find_batch(gemini, &job.display_name(run)).await,
        Action::CreateBatch { file } => create_batch(gemini, job, run, file).await,
        Action::CancelBatch { batch } => cancel_batch(gemini, batch).await,
        Action::PollBatch { batch } => poll(gemini, batch).await,
        Action::Ingest { results, cursor, size } => {
            ingest(env, store, gemini, settings, job, run.shard(), results, cursor.clone(), *size).await
        }
        Action::DeleteFiles { files } => delete_files(gemini, files).await,
    }
}

fn quota_failure(e: crate::platform::error::ApiError) -> Failure {
    Failure::network(format!("quota object: {}", e.message))
}

/// Ask the QuotaObject for room for the shard's tokens, on one of the keys
/// (the first only, for a job whose requests use uploaded files: a file
/// belongs to the key it was uploaded with).
async fn admit(
    env: &Env,
    settings: &Settings,
    job: &Job,
    run: &Run,
    tokens: u64,
) -> Result<StepResult, Failure> {
    let mut keys = settings.secrets.gemini_keys.ids();
    if job.first_key_only() {
        keys.truncate(1);
    }
    if keys.is_empty() {
        return Err(Failure::network("no Gemini key is configured (GEMINI_API_KEYS or GEMINI_API_KEY)"));
    }
    let ask = AdmitRequest {
        job: job.id().to_string(),
        shard: run.shard(),
        model: batchgate_core::model::bare(job.model()).to_string(),
        tokens,
        cap: settings.shards.caps.of(job.model()),
        max_batches: settings.shards.max_batches,
        keys,
    };
    let answer = quota::admit(env, ask).await.map_err(quota_failure)?;
    Ok(if answer.admitted { Outcome::Admitted { key: answer.key } } else { Outcome::QuotaFull }.into())
}

pub async fn release(env: &Env, job: &str, shard: u64) -> Result<StepResult, Failure> {
    quota::release(env, job, shard).await.map_err(quota_failure)?;
    Ok(Outcome::Released.into())
}

async fn start_upload(gemini: &Gemini, job: &Job, run: &Run) -> Result<StepResult, Failure> {
    let call = gemini.cfg.upload_start(run.spec().bytes, &job.display_name(run));
    let (session_url, _) = gemini_files::start(gemini, &call).await?;
    Ok(Outcome::UploadStarted { session_url }.into())
}

/// Send the next chunk of the input (streamed from R2, never buffered here).
async fn continue_upload(
    env: &Env,
    store: &Store,
    gemini: &Gemini,
    settings: &Settings,
    run: &Run,
    session_url: &str,
    mut offset: u64,
) -> Result<StepResult, Failure> {
    if run.after_a_failure() {
        // After a broken chunk, ask the session what it really holds.
        match gemini_files::query(gemini, session_url).await? {
            Received::Final(file) => return Ok(Outcome::Uploaded { file: file.name }.into()),
            Received::Partial(n) => offset = n,
        }
    }
    let shard = run.spec();
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
    Ok(match gemini_files::send_chunk(gemini, session_url, (offset, len, finalize), stream).await? {
        Received::Final(file) => Outcome::Uploaded { file: file.name },
        Received::Partial(offset) => Outcome::UploadProgress { offset },
    }
    .into())
}

/// `length` (> 0) bytes of the job's input from `offset`, as a stream for a request body.
async fn input_range(
    env: &Env,
    store: &Store,
    offset: u64,
    length: u64,
) -> Result<wasm_bindgen::JsValue, Failure> {
    let object = input_object(env, store, offset, length).await?;
    let body = object.body().ok_or_else(|| Failure::network("R2 returned the input without a body"))?;
    Ok(match body.response_body().map_err(|e| r2_failure("input body", e))? {
        ResponseBody::Stream(s) => s.into(),
        ResponseBody::Body(bytes) => js_sys::Uint8Array::from(bytes.as_slice()).into(),
        ResponseBody::Empty => js_sys::Uint8Array::new_with_length(0).into(),
    })
}

/// `length` bytes of the job's input from `offset`, as R2 holds them.
pub(super) async fn input_object(
    env: &Env,
    store: &Store,
    offset: u64,
    length: u64,
) -> Result<worker::Object, Failure> {
    let key: String = store
        .input_key()
        .map_err(|e| Failure::network(e.to_string()))?
        .ok_or_else(|| Failure::Permanent { status: 0, message: "the job's input is not recorded".into() })?;
    bucket(env)?
        .get(&key)
        .range(Range::OffsetWithLength { offset, length })
        .execute()
        .await
        .map_err(|e| r2_failure("read of the input", e))?
        .ok_or_else(|| Failure::Permanent { status: 0, message: format!("the input {key} is gone from R2") })
}

/// A create whose answer was lost may have made a batch: look for it by its unique display name.
async fn find_batch(gemini: &Gemini, name: &str) -> Result<StepResult, Failure> {
    Ok(match find_batch_named(gemini, name).await? {
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

async fn create_batch(gemini: &Gemini, job: &Job, run: &Run, file: &str) -> Result<StepResult, Failure> {
    let call = gemini.cfg.create_batch(job.model(), &job.display_name(run), file);
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
    shard: u64,
    results: &str,
    cursor: Cursor,
    size: Option<u64>,
) -> Result<StepResult, Failure> {
    let size = match size {
        Some(s) => s,
        None => gemini.json::<File>(&gemini.cfg.get_file(results)).await?.size_bytes,
    };
    let bucket = bucket(env)?;
    let key = results_key(job.id(), shard);
    let Some(slice) = next_slice(&cursor, size, settings.part_bytes) else {
        return complete(store, &bucket, &key, shard).await;
    };
    let upload_key = upload_id_key(shard);
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
    if batchgate_core::media::makes_media(job.model()) {
        super::media::store(&bucket, job.id(), shard, (&bytes, slice.fetch.start), &records).await?;
    }
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
        slice: Some(SliceWrite { records, shard, part: Some((slice.part_number, uploaded.etag())) }),
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
        .account()
        .map_err(|e| Failure::network(e.to_string()))?
        .ok_or_else(|| Failure::network("the job has no account"))?;
    let request = Settle { job: job.id().to_string(), event: "end".into(), charge, standard };
    accounts::settle(env, &account, &request).await.map_err(|e| Failure::network(e.message))?;
    Ok(Outcome::Settled { charge }.into())
}

/// Settle at once (a job deleted before it ended), at what it delivered so far.
pub async fn settle_now(env: &Env, store: &Store, job: &Job) -> Result<(), Failure> {
    let (charge, standard) = job.cost();
    settle(env, store, job, charge, standard).await.map(|_| ())
}

/// Delete the job's Gemini files. A file Gemini refuses to delete for good
/// (gone, or no longer ours to touch) is given up on: it expires at 48 h.
async fn delete_files(gemini: &Gemini, files: &[String]) -> Result<StepResult, Failure> {
    for f in files {
        match gemini_files::delete(gemini, f).await {
            Ok(()) | Err(Failure::Permanent { .. }) => {}
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

/// `DELETE /v1/jobs/:id`: undo what core's purge plan lists: stop Gemini's
/// batches that run, give the quota back, delete every file and object the
/// job made. Best effort: whatever fails here expires on its own (Gemini files
/// at 48 h, unfinished R2 multipart uploads at 7 days).
pub async fn purge(env: &Env, store: &Store, settings: &Settings, job: &Job) {
    let plan = job.purge_plan();
    let keyed = |key: &Option<String>| Gemini::with_key(settings, key.as_deref()).ok();
    for (batch, key) in &plan.cancel_batches {
        if let Some(gemini) = keyed(key) {
            let _ = cancel_batch(&gemini, batch).await;
        }
    }
    for shard in &plan.release_shards {
        let _ = release(env, job.id(), *shard).await;
    }
    for (file, key) in &plan.files {
        if let Some(gemini) = keyed(key) {
            let _ = gemini_files::delete(&gemini, file).await;
        }
    }
    let Ok(bucket) = bucket(env) else { return };
    for shard in &plan.ingesting {
        if let Ok(Some(upload_id)) = store.get::<String>(&upload_id_key(*shard))
            && let Ok(up) = bucket.resume_multipart_upload(results_key(job.id(), *shard), upload_id)
        {
            let _ = up.abort().await;
        }
    }
    let mut keys: Vec<String> = (0..plan.started).map(|s| results_key(job.id(), s)).collect();
    if let Ok(Some(input)) = store.input_key() {
        keys.push(input);
    }
    // R2 deletes up to 1,000 keys a call.
    for chunk in keys.chunks(1_000) {
        let _ = bucket.delete_multiple(chunk.to_vec()).await;
    }
    if batchgate_core::media::makes_media(job.model()) {
        super::media::purge(&bucket, job.id()).await;
    }
}
