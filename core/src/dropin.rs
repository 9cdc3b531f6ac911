//! The drop-in: batchgate as Google's SDKs see Gemini (the worker's `/gemini`
//! routes). A job is a batch `Operation` named `batches/{job id}`; its results
//! are the file `files/batch-{job id}`, in Gemini's line format; a refusal is
//! Gemini's error envelope. The wire types are `gemini`'s, shared with the
//! emulator: this module is only the mapping, where batchgate's states (richer
//! than Gemini's) and codes meet Gemini's.

use crate::gemini::file::{File, FileSource, FileState};
use crate::gemini::operation::{
    BATCH_METADATA_TYPE, BATCH_OUTPUT_TYPE, BatchMetadata, BatchOutput, BatchStats, InlinedResponse,
    InlinedResponses, InputConfigEcho, Operation, OutputEnvelope,
};
use crate::gemini::state::BatchState;
use crate::gemini::status::{Code, ErrorEnvelope, Status};
use crate::job::JobState;
use crate::upload::FileView;
use crate::view::JobView;
use serde_json::{Value, json};
use std::collections::HashMap;

/// A job id: 64 lowercase hex characters.
fn is_job_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `batches/{job id}`.
pub fn batch_name(job: &str) -> String {
    format!("batches/{job}")
}

/// The job a batch name (`batches/{id}` or the bare id) names, if it can be one.
pub fn job_of_batch(name: &str) -> Option<&str> {
    let id = name.strip_prefix("batches/").unwrap_or(name);
    is_job_id(id).then_some(id)
}

/// `files/batch-{job id}`: the job's results, as Gemini names a batch's output file.
pub fn results_file(job: &str) -> String {
    format!("files/batch-{job}")
}

/// The job whose results file `name` (`files/batch-{id}` or `batch-{id}`) is.
pub fn job_of_results_file(name: &str) -> Option<&str> {
    let id = name.strip_prefix("files/").unwrap_or(name).strip_prefix("batch-")?;
    is_job_id(id).then_some(id)
}

/// Gemini's state for the job. Gemini has no states before a batch runs or
/// while results are copied: those are `PENDING` and `RUNNING`, and a batch
/// is done only once its results can be read.
pub fn state(view: &JobView) -> BatchState {
    match view.state {
        JobState::Accepted | JobState::Uploading | JobState::Pending => BatchState::Pending,
        JobState::Running | JobState::Ingesting => BatchState::Running,
        JobState::Succeeded => BatchState::Succeeded,
        JobState::Failed => BatchState::Failed,
        JobState::Cancelled => BatchState::Cancelled,
        JobState::Expired => BatchState::Expired,
    }
}

/// Gemini's counters: a request Gemini returned nothing for counts as failed.
pub fn stats(view: &JobView) -> BatchStats {
    let c = view.counts;
    let failed = c.failed.saturating_add(c.missing);
    BatchStats {
        request_count: view.request_count,
        successful_request_count: c.succeeded,
        failed_request_count: failed,
        pending_request_count: view.request_count.saturating_sub(c.succeeded.saturating_add(failed)),
    }
}

/// Where a job made through the drop-in says how it was made: the key of its metadata.
pub const SOURCE_KEY: &str = "geminiBatch";

/// How a batch was given its requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `inputConfig.requests`; `keyed`: some request named its key in
    /// `metadata.key`, and each answer echoes `{"key"}` as its metadata.
    Inline { keyed: bool },
    /// `inputConfig.fileName`: the uploaded JSONL file.
    File(String),
}

impl Source {
    /// The job's metadata that records it (shown in `/v1/jobs` like any metadata).
    pub fn metadata(&self) -> Value {
        match self {
            Source::Inline { keyed } => json!({SOURCE_KEY: {"inline": true, "keyed": keyed}}),
            Source::File(name) => json!({SOURCE_KEY: {"fileName": name}}),
        }
    }

    /// How the job's batch was made, if through the drop-in.
    pub fn of_job(view: &JobView) -> Option<Source> {
        let source = view.metadata.as_ref()?.get(SOURCE_KEY)?;
        match source.get("fileName").and_then(Value::as_str) {
            Some(name) => Some(Source::File(name.to_string())),
            None => Some(Source::Inline { keyed: source.get("keyed") == Some(&Value::Bool(true)) }),
        }
    }
}

/// The job as the batch `Operation` `batches.get` answers, its output the
/// results file.
pub fn operation(view: &JobView) -> Operation {
    operation_with(view, None)
}

/// The job as the batch `Operation`; `inlined`: its answers inline (a batch
/// made inline, once done), instead of the results file.
pub fn operation_with(view: &JobView, inlined: Option<InlinedResponses>) -> Operation {
    let state = state(view);
    let done = state.is_terminal();
    let output = (done && view.results_ready).then(|| match inlined {
        Some(answers) => BatchOutput { responses_file: None, inlined_responses: Some(answers) },
        None => BatchOutput { responses_file: Some(results_file(&view.id)), inlined_responses: None },
    });
    let input_config = match Source::of_job(view) {
        Some(Source::File(name)) => Some(InputConfigEcho { file_name: Some(name) }),
        _ => None,
    };
    let metadata = BatchMetadata {
        type_url: BATCH_METADATA_TYPE.into(),
        model: crate::model::resource(&view.model),
        display_name: view.display_name.clone(),
        input_config,
        output: output.clone(),
        create_time: Some(view.created_at.clone()),
        end_time: view.finished_at.clone(),
        update_time: Some(view.updated_at.clone()),
        batch_stats: Some(stats(view)),
        state: state.clone(),
        name: batch_name(&view.id),
        priority: None,
    };
    let error = match (&state, &view.error) {
        (BatchState::Failed | BatchState::Expired, Some(e)) => {
            Some(Status::item(Code::Internal, e.message.clone()))
        }
        _ => None,
    };
    Operation {
        name: batch_name(&view.id),
        metadata: Some(metadata),
        done,
        response: output
            .filter(|_| state == BatchState::Succeeded)
            .map(|output| OutputEnvelope { type_url: BATCH_OUTPUT_TYPE.into(), output }),
        error,
    }
}

/// The job's results file as `files.get` shows it: generated, downloadable
/// at `download_uri` (Python's `files.download` wants one on a `File`).
pub fn results_file_resource(view: &JobView, download_uri: String) -> File {
    File {
        name: results_file(&view.id),
        display_name: view.display_name.clone(),
        mime_type: "application/jsonl".into(),
        create_time: view.finished_at.clone().unwrap_or_else(|| view.updated_at.clone()),
        update_time: view.updated_at.clone(),
        download_uri: Some(download_uri),
        state: FileState::Active,
        source: FileSource::Generated,
        ..File::default()
    }
}

/// An account's media file as `files.get` shows it.
pub fn media_file(f: &FileView) -> File {
    File {
        name: f.name.clone(),
        display_name: f.display_name.clone(),
        mime_type: f.mime_type.clone(),
        size_bytes: f.size_bytes,
        create_time: f.created_at.clone(),
        update_time: f.created_at.clone(),
        expiration_time: f.expires_at.clone(),
        uri: f.uri.clone(),
        state: FileState::Active,
        source: FileSource::Uploaded,
        ..File::default()
    }
}

/// A batch made inline answers inline, in the order of its requests: `keys`
/// in input order, `results` the result lines by key (taken out as used). A
/// request without a result line has the error line batchgate writes for it.
pub fn inlined_responses(
    keys: impl IntoIterator<Item = String>,
    results: &mut HashMap<String, Value>,
    keyed: bool,
) -> InlinedResponses {
    let answers = keys
        .into_iter()
        .map(|key| {
            let mut line = results.remove(&key).unwrap_or_else(|| crate::results::missing_value(&key));
            let error = line.get_mut("error").map(Value::take).and_then(|e| serde_json::from_value(e).ok());
            InlinedResponse {
                response: line.get_mut("response").map(Value::take),
                error,
                metadata: keyed.then(|| json!({"key": key})),
            }
        })
        .collect();
    InlinedResponses { inlined_responses: answers }
}

/// A `batches.create` (`models/{model}:batchGenerateContent`) body, as batchgate takes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Create {
    pub display_name: Option<String>,
    pub source: Source,
    /// Inline requests as batchgate's lines (`{key?, request}`); empty for a file.
    pub lines: Vec<Value>,
}

/// A field in either spelling the SDKs send (`displayName` / `display_name`).
fn field<'a>(v: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    v.get(camel).or_else(|| v.get(snake))
}

/// The most requests a batch made inline may hold. Its answers come back in
/// `batches.get`, one built per request on every poll, so the count is
/// bounded; a bigger batch goes in a JSONL file (`src="files/…"`). Gemini caps
/// inline batches at 20 MB of requests.
pub const MAX_INLINE_REQUESTS: usize = 20_000;

/// Read a create body: `{"batch": {displayName?, inputConfig: {fileName} |
/// {requests: {requests: [{request, metadata?: {key?}}]}}}}`. An inline
/// request's `metadata.key` becomes its key; without one it is `line-N`.
/// The requests are moved out of `body`, not copied: it may be megabytes.
pub fn parse_create(mut body: Value) -> Result<Create, String> {
    let batch = body.get_mut("batch").ok_or("the body has no `batch`")?;
    let display_name = match field(batch, "displayName", "display_name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("`batch.displayName` is not a string".into()),
    };
    crate::submit::check_display_name(display_name.as_deref())?;
    let input_key = if batch.get("inputConfig").is_some() { "inputConfig" } else { "input_config" };
    let input = batch.get_mut(input_key).ok_or("`batch.inputConfig` is required")?;
    let file = field(input, "fileName", "file_name").cloned();
    match (file, input.get_mut("requests")) {
        (Some(Value::String(name)), None) => {
            Ok(Create { display_name, source: Source::File(name), lines: vec![] })
        }
        (None, Some(requests)) => {
            let items = requests
                .get_mut("requests")
                .and_then(Value::as_array_mut)
                .ok_or("`batch.inputConfig.requests.requests` must be a list")?;
            if items.len() > MAX_INLINE_REQUESTS {
                return Err(format!(
                    "`batch.inputConfig.requests.requests` holds {} requests; at most {MAX_INLINE_REQUESTS} go inline (upload a JSONL file and name it in `fileName`)",
                    items.len()
                ));
            }
            let mut lines = Vec::with_capacity(items.len());
            let mut keyed = false;
            for (i, item) in items.iter_mut().enumerate() {
                let request = item.get_mut("request").map(Value::take).ok_or_else(|| {
                    format!("`batch.inputConfig.requests.requests[{i}].request` is required")
                })?;
                let key = item.get("metadata").and_then(|m| m.get("key")).and_then(Value::as_str);
                keyed |= key.is_some();
                lines.push(match key {
                    Some(key) => json!({"key": key, "request": request}),
                    None => json!({"request": request}),
                });
            }
            Ok(Create { display_name, source: Source::Inline { keyed }, lines })
        }
        (Some(_), None) => Err("`batch.inputConfig.fileName` is not a string".into()),
        _ => Err("`batch.inputConfig` names either `fileName` or `requests`".into()),
    }
}

/// `Some(keyed)` when `batches.get` answers with the job's results inline: a
/// batch made inline, ended, its results stored, and no bigger than an inline
/// batch may be (a job made through `/v1/jobs` may carry the drop-in's
/// metadata too: its size is not the create's to have checked).
pub fn answers_inline(view: &JobView) -> Option<bool> {
    match Source::of_job(view)? {
        Source::Inline { keyed }
            if view.results_ready
                && state(view).is_terminal()
                && view.request_count <= MAX_INLINE_REQUESTS as u64 =>
        {
            Some(keyed)
        }
        _ => None,
    }
}

/// batchgate's refusal (`status`, machine `code`, message) as Gemini's: the
/// HTTP status and envelope Google's SDKs raise as theirs. batchgate's code
/// travels as the `reason` of an `ErrorInfo` detail (domain `batchgate`).
/// Credits too low is `FAILED_PRECONDITION` (400): it will not pass by
/// retrying, and Gemini has no payment status.
pub fn refusal(status: u16, code: &str, message: &str) -> (u16, ErrorEnvelope) {
    let (http, name) = match (status, code) {
        (_, "insufficient_credits") => (400, "FAILED_PRECONDITION"),
        // Gemini: a model it does not serve is not found.
        (_, "unpriced_model" | "invalid_model") => (404, "NOT_FOUND"),
        (400 | 411 | 413 | 415, _) => (400, "INVALID_ARGUMENT"),
        (401, _) => (401, "UNAUTHENTICATED"),
        (403, _) => (403, "PERMISSION_DENIED"),
        (404 | 410, _) => (404, "NOT_FOUND"),
        (409, _) => (409, "ABORTED"),
        (429, _) => (429, "RESOURCE_EXHAUSTED"),
        (501, _) => (501, "UNIMPLEMENTED"),
        (502 | 503, _) => (503, "UNAVAILABLE"),
        (504, _) => (504, "DEADLINE_EXCEEDED"),
        _ => (500, "INTERNAL"),
    };
    let envelope = ErrorEnvelope {
        error: Status {
            code: i32::from(http),
            message: message.to_string(),
            status: Some(name.to_string()),
            details: vec![json!({
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": code.to_ascii_uppercase(),
                "domain": "batchgate",
            })],
        },
    };
    (http, envelope)
}

pub mod count;
pub mod upload;

#[cfg(test)]
mod tests;
