//! Errors as the API returns them: the `google.rpc.Status` envelope with the
//! matching HTTP status.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use batchgate_core::gemini::{Code, ErrorEnvelope};
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub envelope: ErrorEnvelope,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError { envelope: ErrorEnvelope::new(code, message), headers: vec![] }
    }

    /// An error for an arbitrary HTTP status (fault injection).
    pub fn http(status: u16, message: impl Into<String>) -> ApiError {
        let mut e = ApiError::new(Code::from_http_status(status), message);
        e.envelope.error.code = i32::from(status);
        e
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::InvalidArgument, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::NotFound, message)
    }

    pub fn exhausted(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::ResourceExhausted, message).with_detail(json!({
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{"description": "Learn more about Gemini API quotas",
                       "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]
        }))
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> ApiError {
        self.envelope = self.envelope.with_detail(detail);
        self
    }

    pub fn with_field_violation(self, field: &str, description: String) -> ApiError {
        self.with_detail(json!({
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": field, "description": description}]
        }))
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> ApiError {
        if let Ok(v) = HeaderValue::from_str(&value) {
            self.headers.push((HeaderName::from_static(name), v));
        }
        self
    }

    pub fn message(&self) -> &str {
        &self.envelope.error.message
    }

    pub fn status(&self) -> StatusCode {
        u16::try_from(self.envelope.error.code)
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut resp = (status, axum::Json(self.envelope)).into_response();
        for (k, v) in self.headers {
            resp.headers_mut().insert(k, v);
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Parse a JSON body; malformed JSON is a 400 as on the real server.
pub fn parse_json(body: &[u8]) -> ApiResult<serde_json::Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("Invalid JSON payload received. {e}")))
}
