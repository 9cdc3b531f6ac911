//! `models.batchGenerateContent` and `batches.get/list/cancel/delete`, plus the
//! step that writes a finished batch's results.

use crate::error::{ApiError, ApiResult, parse_json};
use crate::fields::{check_generate_request, check_known};
use crate::http::{Page, page};
use crate::model::field;
use crate::results::{self, LineRules};
use crate::store::{BatchEntry, FileEntry, Hold, InlineRequest, Input, Phase};
use crate::{Emulator, lock};
use axum::Json;
use batchgate_core::gemini::file::file_id;
use batchgate_core::gemini::operation::batch_id;
use batchgate_core::gemini::timestamp::format_nanos;
use batchgate_core::gemini::{
    BatchOutput, BatchState, BatchStats, Code, File, FileSource, FileState, InlinedResponses,
    ListOperationsResponse, Operation, Status,
};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;

const BATCH_FIELDS: &[&str] = &[
    "model",
    "name",
    "displayName",
    "inputConfig",
    "output",
    "createTime",
    "endTime",
    "updateTime",
    "batchStats",
    "state",
    "priority",
    "webhookConfig",
];

impl Emulator {
    pub(crate) fn known_model(&self, model: &str, method: &str) -> ApiResult<()> {
        if self.config().models.iter().any(|m| m == model) {
            return Ok(());
        }
        Err(ApiError::not_found(format!(
            "models/{model} is not found for API version v1beta, or is not supported for {method}. \
             Call ListModels to see the list of available models and their supported methods."
        )))
    }

    pub(crate) async fn create_batch(
        self: &Arc<Self>,
        model: &str,
        body: &[u8],
    ) -> ApiResult<Json<Operation>> {
        self.known_model(model, "batchGenerateContent")?;
        let cfg = self.config();
        let root = parse_json(body)?;
        let root = root
            .as_object()
            .ok_or_else(|| ApiError::invalid("Invalid JSON payload received. Expected an object."))?;
        check_known(root, &["batch"], "")?;
        let batch = root
            .get("batch")
            .and_then(Value::as_object)
            .ok_or_else(|| ApiError::invalid("* BatchGenerateContentRequest.batch: batch is required"))?;
        check_known(batch, BATCH_FIELDS, "batch")?;
        let batch_v = Value::Object(batch.clone());
        let display_name = field(&batch_v, "displayName").and_then(Value::as_str).map(String::from);
        let priority =
            field(&batch_v, "priority").and_then(|p| p.as_u64().or_else(|| p.as_str()?.parse().ok()));
        let input_config = field(&batch_v, "inputConfig").and_then(Value::as_object).ok_or_else(|| {
            ApiError::invalid("* GenerateContentBatch.input_config: input_config is required")
        })?;
        check_known(input_config, &["fileName", "requests"], "batch.input_config")?;
        let ic = Value::Object(input_config.clone());
        let (input, scan) = match (field(&ic, "fileName"), field(&ic, "requests")) {
            (Some(name), None) => self.file_input(name).await?,
            (None, Some(requests)) => {
                if body.len() as u64 > cfg.max_inline_batch_bytes {
                    return Err(ApiError::invalid(format!(
                        "Request payload size exceeds the limit: {} bytes. Use a file for batches over 20 MB.",
                        cfg.max_inline_batch_bytes
                    )));
                }
                inline_input(requests)?
            }
            _ => {
                return Err(ApiError::invalid(
                    "* GenerateContentBatch.input_config: exactly one of file_name or requests must be set",
                ));
            }
        };
        let now = self.now_ns();
        let mut store = lock(&self.store);
        if store.active_batches() >= cfg.max_concurrent_batches {
            return Err(ApiError::exhausted(format!(
                "You have reached the maximum number of concurrent batch jobs ({}).",
                cfg.max_concurrent_batches
            )));
        }
        let enqueued = store.enqueued_tokens(model);
        let cap = cfg.token_cap(model);
        if enqueued + scan.prompt_tokens > cap {
            return Err(ApiError::exhausted(format!(
                "Enqueued token limit exceeded for model {model}: {enqueued} tokens enqueued, this batch \
                 needs {}, the limit is {cap}.",
                scan.prompt_tokens
            )));
        }
        let id = store.new_id(36);
        let seq = store.next_seq();
        let pending_until_ns = now + crate::clock::secs_to_ns(cfg.pending_secs);
        let entry = BatchEntry {
            id: id.clone(),
            model: model.to_string(),
            display_name,
            input,
            request_count: scan.lines,
            prompt_tokens: scan.prompt_tokens,
            priority,
            create_ns: now,
            update_ns: now,
            end_ns: None,
            pending_until_ns,
            running_until_ns: pending_until_ns + crate::clock::secs_to_ns(cfg.running_secs),
            phase: Phase::Pending,
            hold: cfg.stick_new_batches.then_some(Hold::Pending),
            fail_keys: HashSet::new(),
            output: None,
            final_stats: BatchStats::default(),
            error: None,
            seq,
        };
        let op = entry.operation(now, &cfg, true);
        store.batches.insert(id, entry);
        // The highest enqueued total each model reached (tests check a governor against it).
        let total = enqueued + scan.prompt_tokens;
        let peak = store.peak_enqueued.entry(model.to_string()).or_default();
        *peak = (*peak).max(total);
        Ok(Json(op))
    }

    /// A `fileName` input: the file must exist; its lines are counted once.
    async fn file_input(&self, name: &Value) -> ApiResult<(Input, crate::store::Scan)> {
        let name = name
            .as_str()
            .ok_or_else(|| ApiError::invalid("Invalid value at 'batch.input_config.file_name'"))?;
        let id = file_id(name).ok_or_else(|| ApiError::invalid(format!("Invalid file name {name:?}.")))?;
        let (path, cached) = {
            let mut effects = vec![];
            let mut store = lock(&self.store);
            let f = store.file(id, self.now_ns(), &mut effects).ok_or_else(|| {
                ApiError::not_found(format!("File files/{id} not found or not accessible."))
            })?;
            (f.path.clone(), f.scan)
        };
        let scan = match cached {
            Some(s) => s,
            None => {
                let p = path.clone();
                let scan = tokio::task::spawn_blocking(move || results::scan_input(&p))
                    .await
                    .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?
                    .map_err(|e| ApiError::new(Code::Internal, format!("Could not read files/{id}: {e}")))?;
                if let Some(f) = lock(&self.store).files.get_mut(id) {
                    f.scan = Some(scan);
                }
                scan
            }
        };
        if scan.lines == 0 {
            return Err(ApiError::invalid(format!("The input file files/{id} contains no requests.")));
        }
        Ok((Input::File { name: format!("files/{id}"), path }, scan))
    }

    pub(crate) fn get_batch(&self, name: &str) -> ApiResult<Operation> {
        let cfg = self.config();
        let store = lock(&self.store);
        let b = store.batches.get(batch_name(name)?).ok_or_else(|| batch_not_found(name))?;
        Ok(b.operation(self.now_ns(), &cfg, true))
    }

    pub(crate) fn list_batches(&self, page_req: Page) -> ListOperationsResponse {
        let cfg = self.config();
        if cfg.list_requires_page_size && page_req.size.is_none() {
            return ListOperationsResponse::default();
        }
        let now = self.now_ns();
        let store = lock(&self.store);
        let mut all: Vec<&BatchEntry> = store.batches.values().collect();
        all.sort_by_key(|b| std::cmp::Reverse(b.seq));
        let (items, next) = page(&all, page_req, |b| b.seq);
        ListOperationsResponse {
            operations: items.into_iter().map(|b| b.operation(now, &cfg, false)).collect(),
            next_page_token: next,
        }
    }

    pub(crate) fn cancel_batch(self: &Arc<Self>, name: &str) -> ApiResult<Json<Value>> {
        let cfg = self.config();
        let now = self.now_ns();
        let mut effects = vec![];
        {
            let mut store = lock(&self.store);
            let b = store.batches.get_mut(batch_name(name)?).ok_or_else(|| batch_not_found(name))?;
            match b.phase {
                Phase::Pending => {
                    b.finish(BatchState::Cancelled, now, Some(cancel_status(&cfg)));
                    effects.push(crate::store::Effect::Terminal { id: b.id.clone() });
                }
                Phase::Running => {
                    let done = b.lines_processed_by(now);
                    b.start_finishing(BatchState::Cancelled, Some(done), &mut effects);
                }
                Phase::Finishing { .. } | Phase::Done(_) => {}
            }
        }
        self.run_effects(effects);
        Ok(Json(json!({})))
    }

    pub(crate) fn delete_batch(&self, name: &str) -> ApiResult<Json<Value>> {
        let mut store = lock(&self.store);
        store.batches.remove(batch_name(name)?).ok_or_else(|| batch_not_found(name))?;
        Ok(Json(json!({})))
    }

    /// Write the results of batch `id` and finish it as `target`.
    pub(crate) async fn generate(self: Arc<Self>, id: String, target: BatchState, limit: Option<u64>) {
        let cfg = self.config();
        let (input, rules, seq) = {
            let store = lock(&self.store);
            let Some(b) = store.batches.get(&id) else { return };
            let mut fail_keys = b.fail_keys.clone();
            fail_keys.extend(cfg.fail_keys.iter().cloned());
            let rules = LineRules {
                model: b.model.clone(),
                fail_keys,
                error_rate: cfg.line_error_rate,
                seed: cfg.seed,
                error_code: cfg.line_error_code,
                cancelled_from: limit,
                keep_lines: cfg.keep_lines,
                pad_bytes: cfg.answer_pad_bytes,
            };
            (b.input.clone(), rules, b.seq)
        };
        let shuffle = cfg.shuffle_results.then_some(cfg.seed ^ seq);
        let omit_final_newline = cfg.omit_final_newline;
        let out_name = format!("batch-{id}");
        let out_path = self.files_dir().join(&out_name);
        let outcome = match input {
            Input::Inline(requests) => {
                let (responses, counts) = results::inline_results(&requests, &rules, shuffle);
                Ok((
                    BatchOutput {
                        responses_file: None,
                        inlined_responses: Some(InlinedResponses { inlined_responses: responses }),
                    },
                    counts,
                    None,
                ))
            }
            Input::File { path, .. } => {
                let dest = out_path.clone();
                tokio::task::spawn_blocking(move || {
                    let counts = results::write_file_results(&path, &dest, &rules, shuffle)?;
                    if omit_final_newline {
                        results::drop_final_newline(&dest)?;
                    }
                    Ok(counts)
                })
                .await
                .map_err(std::io::Error::other)
                .and_then(|r| r)
                .map(|counts| {
                    let out = BatchOutput {
                        responses_file: Some(format!("files/{out_name}")),
                        inlined_responses: None,
                    };
                    (out, counts, Some(out_path.clone()))
                })
            }
        };
        let now = self.now_ns();
        let mut effects = vec![];
        {
            let mut store = lock(&self.store);
            let Some(b) = store.batches.get_mut(&id) else { return };
            if !matches!(b.phase, Phase::Finishing { .. }) {
                return;
            }
            match outcome {
                Ok((output, counts, file_path)) => {
                    b.final_stats = BatchStats {
                        request_count: b.request_count,
                        successful_request_count: counts.ok,
                        failed_request_count: counts.failed,
                        pending_request_count: b.request_count.saturating_sub(counts.ok + counts.failed),
                    };
                    b.output = Some(output);
                    b.phase = Phase::Done(target.clone());
                    b.end_ns = Some(now);
                    b.update_ns = now;
                    if target == BatchState::Cancelled {
                        b.error = Some(cancel_status(&cfg));
                    }
                    effects.push(crate::store::Effect::Terminal { id: id.clone() });
                    if let Some(path) = file_path {
                        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                        let seq = store.next_seq();
                        let entry =
                            generated_file(&out_name, path, size, now, seq, &cfg, &self.public_base());
                        store.files.insert(out_name, entry);
                    }
                }
                Err(e) => {
                    b.finish(
                        BatchState::Failed,
                        now,
                        Some(Status::item(Code::Internal, format!("Batch failed: {e}"))),
                    );
                    effects.push(crate::store::Effect::Terminal { id: id.clone() });
                }
            }
        }
        self.run_effects(effects);
    }

    /// `/_emulator/batches/{id}/state`: force a state (tests of every path).
    pub(crate) fn force_state(
        self: &Arc<Self>,
        id: &str,
        state: &BatchState,
        error: Option<Status>,
        partial_results: Option<u64>,
    ) -> ApiResult<()> {
        let cfg = self.config();
        let now = self.now_ns();
        let mut effects = vec![];
        {
            let mut store = lock(&self.store);
            let b = store.batches.get_mut(id).ok_or_else(|| batch_not_found(id))?;
            if matches!(b.phase, Phase::Done(_) | Phase::Finishing { .. }) {
                return Err(ApiError::new(Code::FailedPrecondition, format!("batch {id} has already ended")));
            }
            let ends = matches!(state, BatchState::Failed | BatchState::Expired | BatchState::Cancelled);
            match state {
                _ if ends && partial_results.is_some() => {
                    b.error = error;
                    b.start_finishing(state.clone(), partial_results, &mut effects);
                }
                BatchState::Pending => b.hold = Some(Hold::Pending),
                BatchState::Running => {
                    b.hold = Some(Hold::Running);
                    b.phase = Phase::Running;
                    b.update_ns = now;
                }
                BatchState::Succeeded => b.start_finishing(BatchState::Succeeded, None, &mut effects),
                BatchState::Cancelled => {
                    b.finish(BatchState::Cancelled, now, Some(cancel_status(&cfg)));
                    effects.push(crate::store::Effect::Terminal { id: id.to_string() });
                }
                BatchState::Failed | BatchState::Expired => {
                    let error = match state {
                        BatchState::Failed => Some(error.unwrap_or_else(|| {
                            Status::item(Code::Internal, format!("Batch {id} failed without error."))
                        })),
                        _ => error,
                    };
                    b.finish(state.clone(), now, error);
                    effects.push(crate::store::Effect::Terminal { id: id.to_string() });
                }
                other => return Err(ApiError::invalid(format!("cannot force state {}", other.as_wire()))),
            }
        }
        self.run_effects(effects);
        Ok(())
    }

    /// Lift a hold; the batch carries on from now with the configured durations.
    pub(crate) fn release(self: &Arc<Self>, id: &str) -> ApiResult<()> {
        let cfg = self.config();
        let now = self.now_ns();
        {
            let mut store = lock(&self.store);
            let b = store.batches.get_mut(id).ok_or_else(|| batch_not_found(id))?;
            let was = b.hold.take();
            if was == Some(Hold::Pending) || b.phase == Phase::Pending {
                b.pending_until_ns = now + crate::clock::secs_to_ns(cfg.pending_secs);
                b.running_until_ns = b.pending_until_ns + crate::clock::secs_to_ns(cfg.running_secs);
            } else if was == Some(Hold::Running) {
                b.pending_until_ns = now;
                b.running_until_ns = now + crate::clock::secs_to_ns(cfg.running_secs);
            }
        }
        self.tick();
        Ok(())
    }

    pub(crate) fn fail_lines(&self, id: &str, keys: Vec<String>) -> ApiResult<()> {
        let mut store = lock(&self.store);
        let b = store.batches.get_mut(id).ok_or_else(|| batch_not_found(id))?;
        b.fail_keys.extend(keys);
        Ok(())
    }
}

fn inline_input(requests: &Value) -> ApiResult<(Input, crate::store::Scan)> {
    let wrapper = requests
        .as_object()
        .ok_or_else(|| ApiError::invalid("Invalid value at 'batch.input_config.requests'"))?;
    check_known(wrapper, &["requests"], "batch.input_config.requests")?;
    let list =
        wrapper.get("requests").and_then(Value::as_array).filter(|l| !l.is_empty()).ok_or_else(|| {
            ApiError::invalid(
                "* GenerateContentBatch.input_config.requests: at least one request is required",
            )
        })?;
    let mut out = Vec::with_capacity(list.len());
    let mut scan = crate::store::Scan::default();
    for (i, item) in list.iter().enumerate() {
        let at = format!("batch.input_config.requests.requests[{i}]");
        let obj = item.as_object().ok_or_else(|| ApiError::invalid(format!("Invalid value at '{at}'")))?;
        check_known(obj, &["request", "metadata"], &at)?;
        let request = obj.get("request").cloned().unwrap_or(Value::Null);
        check_generate_request(&request, &format!("{at}.request"))?;
        scan.lines += 1;
        scan.prompt_tokens += crate::model::prompt_tokens(&request).unwrap_or(0);
        out.push(InlineRequest { request, metadata: obj.get("metadata").cloned() });
    }
    Ok((Input::Inline(out), scan))
}

fn generated_file(
    name: &str,
    path: std::path::PathBuf,
    size: u64,
    now: i64,
    seq: u64,
    cfg: &crate::config::Config,
    base: &str,
) -> FileEntry {
    let expire_ns = now + crate::clock::secs_to_ns(cfg.file_ttl_secs);
    FileEntry {
        file: File {
            name: format!("files/{name}"),
            display_name: None,
            mime_type: "application/jsonl".into(),
            size_bytes: size,
            create_time: format_nanos(now),
            update_time: format_nanos(now),
            expiration_time: format_nanos(expire_ns),
            sha256_hash: String::new(),
            uri: format!("{base}/v1beta/files/{name}"),
            download_uri: Some(format!("{base}/download/v1beta/files/{name}:download?alt=media")),
            state: FileState::Active,
            source: FileSource::Generated,
            error: None,
        },
        path,
        create_ns: now,
        expire_ns,
        seq,
        scan: None,
    }
}

fn cancel_status(cfg: &crate::config::Config) -> Status {
    Status { code: cfg.cancel_error_code, message: "Batch was cancelled.".into(), ..Default::default() }
}

fn batch_name(name: &str) -> ApiResult<&str> {
    batch_id(name).ok_or_else(|| ApiError::invalid(format!("Invalid batch name {name:?}.")))
}

fn batch_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("Batch {name} not found."))
}
