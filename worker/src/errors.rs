//! One error shape everywhere: `{"error": {"code", "message", "details"?}}`
//! with the matching HTTP status.

use serde::Serialize;
use worker::{Response, Result};

#[derive(Debug, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    /// Sent as `Retry-After` (429s).
    #[serde(skip)]
    pub retry_after_secs: Option<u64>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: &'a ApiError,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), details: None, retry_after_secs: None }
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

    pub fn with_details(mut self, details: serde_json::Value) -> ApiError {
        self.details = Some(details);
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> ApiError {
        self.retry_after_secs = Some(secs);
        self
    }

    pub fn into_response(self) -> Result<Response> {
        let resp = Response::from_json(&Envelope { error: &self })?.with_status(self.status);
        if let Some(secs) = self.retry_after_secs {
            resp.headers().set("retry-after", &secs.to_string())?;
        }
        Ok(resp)
    }
}

impl From<worker::Error> for ApiError {
    fn from(e: worker::Error) -> Self {
        ApiError::internal(e.to_string())
    }
}
