//! Schemas for what the worker passes through without a Rust type of its own
//! (Gemini's requests and answers, result lines, Gemini's webhook events).
//! They exist only to be described; the worker reads these as JSON values.

#![allow(dead_code)]

use schemars::JsonSchema;
use serde_json::{Map, Value};

/// A Gemini `GenerateContentRequest` (`contents`, `generationConfig`,
/// `systemInstruction`, …), in either spelling of its field names; checked
/// field by field, and an unknown field is refused with its path.
#[derive(JsonSchema)]
#[schemars(extend("additionalProperties" = true))]
pub struct GenerateContentRequest {
    pub contents: Vec<Map<String, Value>>,
}

/// A Gemini `GenerateContentResponse`, as Gemini answered it.
#[derive(JsonSchema)]
#[schemars(extend("additionalProperties" = true))]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidates: Option<Vec<Map<String, Value>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_metadata: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
}

/// One request of a job: a JSON array item, or one line of NDJSON.
#[derive(JsonSchema)]
pub struct SubmitLine {
    /// Unique in the job; `line-N` (1-based) when absent.
    #[serde(default)]
    pub key: Option<String>,
    pub request: GenerateContentRequest,
}

/// One line of a job's results: the request's answer or its error, by key.
#[derive(JsonSchema)]
pub struct ResultLine {
    pub key: String,
    /// Media parts' `inlineData.data` are replaced by
    /// `{url: "/v1/jobs/{id}/results/{key}/media/{n}", bytes}` unless `inlineMedia=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<GenerateContentResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<batchgate_core::gemini::status::Status>,
}

/// A Gemini batch webhook event (Standard Webhooks).
#[derive(JsonSchema)]
pub struct GeminiHookEvent {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub data: GeminiHookData,
}

#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GeminiHookData {
    /// `batches/{id}`.
    pub name: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// What batchgate POSTs to a job's `webhook.url` once it ends and is charged,
/// signed with the account's webhook secret (Standard Webhooks headers
/// `webhook-id`, `webhook-timestamp`, `webhook-signature`).
#[derive(JsonSchema)]
pub struct JobWebhook {
    /// `job.succeeded`, `job.failed`, `job.expired` or `job.cancelled`.
    #[serde(rename = "type")]
    pub kind: String,
    pub timestamp: String,
    pub data: batchgate_core::view::JobView,
}
