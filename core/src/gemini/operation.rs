//! Batches are long-running `Operation`s named `batches/{id}` whose metadata is a
//! `GenerateContentBatch`.

use super::int64;
use super::state::BatchState;
use super::status::Status;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const BATCH_METADATA_TYPE: &str =
    "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch";
pub const BATCH_OUTPUT_TYPE: &str =
    "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput";

/// `GET /v1beta/batches/{id}` answer. `done` is absent until terminal.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BatchMetadata>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<OutputEnvelope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Status>,
}

impl Operation {
    pub fn state(&self) -> BatchState {
        self.metadata.as_ref().map(|m| m.state.clone()).unwrap_or_default()
    }

    /// Terminal when the state says so or `done` is set.
    pub fn is_terminal(&self) -> bool {
        self.done || self.state().is_terminal()
    }

    pub fn stats(&self) -> BatchStats {
        self.metadata.as_ref().and_then(|m| m.batch_stats.clone()).unwrap_or_default()
    }

    /// Results: `metadata.output` first (what the SDKs read), then `response`.
    pub fn output(&self) -> Option<&BatchOutput> {
        self.metadata.as_ref().and_then(|m| m.output.as_ref()).or(self.response.as_ref().map(|r| &r.output))
    }
}

/// `GenerateContentBatch` as carried in `metadata`. Field order follows the captures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchMetadata {
    #[serde(rename = "@type", default)]
    pub type_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_config: Option<InputConfigEcho>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<BatchOutput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_stats: Option<BatchStats>,
    #[serde(default)]
    pub state: BatchState,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, with = "int64::opt_string", skip_serializing_if = "Option::is_none")]
    pub priority: Option<u64>,
}

/// Only file input is echoed (`{"fileName": "files/..."}`); inline input is not.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputConfigEcho {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
}

/// Four int64 counters, strings on the wire, zeros omitted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchStats {
    #[serde(default, with = "int64::string", skip_serializing_if = "int64::is_zero")]
    pub request_count: u64,
    #[serde(default, with = "int64::string", skip_serializing_if = "int64::is_zero")]
    pub successful_request_count: u64,
    #[serde(default, with = "int64::string", skip_serializing_if = "int64::is_zero")]
    pub failed_request_count: u64,
    #[serde(default, with = "int64::string", skip_serializing_if = "int64::is_zero")]
    pub pending_request_count: u64,
}

/// `GenerateContentBatchOutput`: a results file or inline responses.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchOutput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responses_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inlined_responses: Option<InlinedResponses>,
}

/// The double nesting is real: `inlinedResponses.inlinedResponses[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InlinedResponses {
    #[serde(default)]
    pub inlined_responses: Vec<InlinedResponse>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InlinedResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

/// The top-level `response` of a succeeded operation: `@type` plus the output.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct OutputEnvelope {
    #[serde(rename = "@type")]
    pub type_url: String,
    #[serde(flatten)]
    pub output: BatchOutput,
}

/// Read field by field: serde's reader for `flatten` buffers the whole
/// object into its `Content` tree first (code in every wasm that reads
/// operations), and the output's two fields are all there is to it.
impl<'de> Deserialize<'de> for OutputEnvelope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<OutputEnvelope, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Flat {
            #[serde(rename = "@type", default)]
            type_url: String,
            #[serde(default)]
            responses_file: Option<String>,
            #[serde(default)]
            inlined_responses: Option<InlinedResponses>,
        }
        let f = Flat::deserialize(d)?;
        let output = BatchOutput { responses_file: f.responses_file, inlined_responses: f.inlined_responses };
        Ok(OutputEnvelope { type_url: f.type_url, output })
    }
}

/// `GET /v1beta/batches` answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListOperationsResponse {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<Operation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// `batches/abc` → `abc`.
pub fn batch_id(name: &str) -> Option<&str> {
    let id = name.strip_prefix("batches/").unwrap_or(name);
    super::file::valid_resource_id(id).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn real_file_succeeded() -> Value {
        json!({
          "name": "batches/leg9wy9p5df66syjxke2eq4xfjqcwp47ejv3",
          "metadata": {
            "@type": BATCH_METADATA_TYPE,
            "model": "models/gemini-2.5-flash",
            "displayName": "my batch name",
            "inputConfig": {"fileName": "files/frh6ua11nk3o"},
            "output": {"responsesFile": "files/batch-leg9wy9p5df66syjxke2eq4xfjqcwp47ejv3"},
            "createTime": "2026-01-06T11:09:11.943530657Z",
            "endTime": "2026-01-06T11:10:19.736868930Z",
            "updateTime": "2026-01-06T11:10:19.736868797Z",
            "batchStats": {"requestCount": "2", "successfulRequestCount": "2"},
            "state": "BATCH_STATE_SUCCEEDED",
            "name": "batches/leg9wy9p5df66syjxke2eq4xfjqcwp47ejv3"
          },
          "done": true,
          "response": {
            "@type": BATCH_OUTPUT_TYPE,
            "responsesFile": "files/batch-leg9wy9p5df66syjxke2eq4xfjqcwp47ejv3"
          }
        })
    }

    #[test]
    fn real_succeeded_operation_round_trips() {
        let real = real_file_succeeded();
        let op: Operation = serde_json::from_value(real.clone()).unwrap();
        assert!(op.is_terminal());
        assert_eq!(op.stats().successful_request_count, 2);
        assert_eq!(
            op.output().and_then(|o| o.responses_file.as_deref()),
            Some("files/batch-leg9wy9p5df66syjxke2eq4xfjqcwp47ejv3")
        );
        assert_eq!(serde_json::to_value(&op).unwrap(), real);
        // Field order as the server writes it: `@type` leads the metadata.
        let text = serde_json::to_string(&op).unwrap();
        assert!(text.starts_with(r#"{"name":"batches/leg9"#) && text.contains(r#""metadata":{"@type""#));
    }

    #[test]
    fn pending_operation_omits_done_and_zero_counters() {
        let op = Operation {
            name: "batches/x".into(),
            metadata: Some(BatchMetadata {
                type_url: BATCH_METADATA_TYPE.into(),
                state: BatchState::Pending,
                batch_stats: Some(BatchStats {
                    request_count: 3,
                    pending_request_count: 3,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = serde_json::to_value(&op).unwrap();
        assert!(v.get("done").is_none());
        assert_eq!(v["metadata"]["batchStats"], json!({"requestCount": "3", "pendingRequestCount": "3"}));
        assert!(!op.is_terminal());
    }

    #[test]
    fn sdk_style_states_and_numeric_counters_are_accepted() {
        let op: Operation = serde_json::from_value(json!({
            "name": "batches/x",
            "metadata": {"state": "JOB_STATE_RUNNING", "batchStats": {"requestCount": 7}}
        }))
        .unwrap();
        assert_eq!(op.state(), BatchState::Running);
        assert_eq!(op.stats().request_count, 7);
    }

    #[test]
    fn output_falls_back_to_the_top_level_response() {
        let op: Operation = serde_json::from_value(json!({
            "name": "batches/x", "done": true,
            "response": {"@type": BATCH_OUTPUT_TYPE, "inlinedResponses": {"inlinedResponses": [
                {"response": {"candidates": []}, "metadata": {"key": "a"}},
                {"error": {"code": 3, "message": "bad"}, "metadata": {"key": "b"}}
            ]}}
        }))
        .unwrap();
        let inl = &op.output().unwrap().inlined_responses.as_ref().unwrap().inlined_responses;
        assert_eq!(inl.len(), 2);
        assert_eq!(inl[1].error.as_ref().map(|e| e.code), Some(3));
    }
}
