//! One error shape everywhere: `{"error": {"code", "message", "details"?}}`
//! with the matching HTTP status. An object's refusal crosses the internal
//! protocol in the same shape and reaches the user unchanged.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use worker::{Response, Result};

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(rename = "Error"))]
pub struct ApiError {
    #[serde(skip)]
    pub status: u16,
    pub code: Cow<'static, str>,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    /// Sent as `Retry-After` (429s).
    #[serde(skip)]
    pub retry_after_secs: Option<u64>,
}

#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(rename = "ErrorEnvelope"))]
pub(crate) struct Envelope<'a> {
    error: &'a ApiError,
}

#[derive(Deserialize)]
struct Received {
    error: ApiError,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: Cow::Borrowed(code),
            message: message.into(),
            details: None,
            retry_after_secs: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(400, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, "not_found", message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "internal", message)
    }

    /// Details, typed: any `Serialize` value (a struct that names its fields).
    pub fn with_details(mut self, details: impl Serialize) -> ApiError {
        self.details = serde_json::to_value(details).ok();
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> ApiError {
        self.retry_after_secs = Some(secs);
        self
    }

    pub fn into_response(self) -> Result<Response> {
        let resp = json_response(self.status, serde_json::to_vec(&Envelope { error: &self })?)?;
        if let Some(secs) = self.retry_after_secs {
            resp.headers().set("retry-after", &secs.to_string())?;
        }
        Ok(resp)
    }

    /// An error envelope an object answered with `status`, as it was made.
    pub fn from_envelope(status: u16, body: &[u8], retry_after: Option<u64>) -> Option<ApiError> {
        let Received { error } = serde_json::from_slice(body).ok()?;
        Some(ApiError { status, retry_after_secs: retry_after, ..error })
    }
}

/// `status` with `json` as the body. Answers are serialized by their (generic)
/// callers and built here once, so each type adds only its serde code.
pub fn json_response(status: u16, json: Vec<u8>) -> Result<Response> {
    let resp = Response::from_bytes(json)?.with_status(status);
    resp.headers().set("content-type", "application/json")?;
    Ok(resp)
}

/// A refusal by core's upload rules, as the user gets it.
impl From<batchgate_core::upload::UploadError> for ApiError {
    fn from(e: batchgate_core::upload::UploadError) -> Self {
        ApiError::new(e.status(), e.code(), e.message())
    }
}

/// A refusal by core's input rules, as the user gets it.
impl From<batchgate_core::input::InputError> for ApiError {
    fn from(e: batchgate_core::input::InputError) -> Self {
        ApiError::new(e.status(), e.code(), e.message())
    }
}

impl From<worker::Error> for ApiError {
    fn from(e: worker::Error) -> Self {
        ApiError::internal(e.to_string())
    }
}
