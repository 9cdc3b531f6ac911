//! `google.rpc.Status`: per-item errors (`{code, message, details?}`) and the
//! HTTP error envelope (`{"error": {code, message, status, details?}}`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// gRPC canonical codes used by the Gemini API, with their HTTP mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Cancelled = 1,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Internal = 13,
    Unavailable = 14,
    Unauthenticated = 16,
}

impl Code {
    /// The `status` string of the HTTP error envelope.
    pub fn name(self) -> &'static str {
        match self {
            Code::Cancelled => "CANCELLED",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// The HTTP status the API answers with for this code.
    pub fn http_status(self) -> u16 {
        match self {
            Code::Cancelled => 499,
            Code::InvalidArgument | Code::FailedPrecondition => 400,
            Code::DeadlineExceeded => 504,
            Code::NotFound => 404,
            Code::PermissionDenied => 403,
            Code::ResourceExhausted => 429,
            Code::Internal => 500,
            Code::Unavailable => 503,
            Code::Unauthenticated => 401,
        }
    }

    /// The code for an HTTP status, as the envelope's `status` field would say.
    pub fn from_http_status(status: u16) -> Code {
        match status {
            400 => Code::InvalidArgument,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::NotFound,
            429 => Code::ResourceExhausted,
            499 => Code::Cancelled,
            503 => Code::Unavailable,
            504 => Code::DeadlineExceeded,
            _ => Code::Internal,
        }
    }
}

/// `google.rpc.Status`. Inside the HTTP envelope `code` is the HTTP status and
/// `status` the canonical name; in per-item errors `code` is the gRPC code and
/// `status` is absent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Status {
    #[serde(default)]
    pub code: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<Value>,
}

impl Status {
    /// A per-item (or operation) error: gRPC code, no `status` string.
    pub fn item(code: Code, message: impl Into<String>) -> Status {
        Status { code: code as i32, message: message.into(), status: None, details: vec![] }
    }
}

/// `{"error": Status}` as returned with every non-200 HTTP response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    pub error: Status,
}

impl ErrorEnvelope {
    pub fn new(code: Code, message: impl Into<String>) -> ErrorEnvelope {
        ErrorEnvelope {
            error: Status {
                code: i32::from(code.http_status()),
                message: message.into(),
                status: Some(code.name().to_string()),
                details: vec![],
            },
        }
    }

    pub fn with_detail(mut self, detail: Value) -> ErrorEnvelope {
        self.error.details.push(detail);
        self
    }

    /// The API key itself was refused: `UNAUTHENTICATED`, or an `ErrorInfo`
    /// reason naming the key or its project (`API_KEY_INVALID`,
    /// `API_KEY_EXPIRED`, `SERVICE_DISABLED`, `CONSUMER_SUSPENDED`, …).
    pub fn refuses_the_key(&self) -> bool {
        let names_key =
            |r: &str| r.starts_with("API_KEY_") || r == "SERVICE_DISABLED" || r == "CONSUMER_SUSPENDED";
        let reason_names_key =
            self.error.details.iter().any(|d| d.get("reason").and_then(Value::as_str).is_some_and(names_key));
        self.error.status.as_deref() == Some("UNAUTHENTICATED") || reason_names_key
    }

    /// The retry delay a 429 may carry in a `google.rpc.RetryInfo` detail, in ms.
    pub fn retry_delay_ms(&self) -> Option<u64> {
        self.error.details.iter().find_map(|d| {
            let is_retry_info =
                d.get("@type").and_then(Value::as_str) == Some("type.googleapis.com/google.rpc.RetryInfo");
            let delay = d.get("retryDelay")?.as_str()?;
            if !is_retry_info {
                return None;
            }
            crate::gemini::timestamp::seconds_to_ms(delay.strip_suffix('s')?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_matches_the_real_429_shape() {
        let e = ErrorEnvelope::new(Code::ResourceExhausted, "quota");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}})
        );
    }

    #[test]
    fn item_errors_have_no_status_string() {
        let s = Status::item(Code::InvalidArgument, "bad part");
        assert_eq!(serde_json::to_value(&s).unwrap(), json!({"code": 3, "message": "bad part"}));
        let minimal: Status = serde_json::from_value(json!({"code": 1})).unwrap();
        assert_eq!(minimal.code, 1);
    }

    #[test]
    fn retry_info_is_read_in_milliseconds() {
        let e = ErrorEnvelope::new(Code::ResourceExhausted, "slow down")
            .with_detail(json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}));
        assert_eq!(e.retry_delay_ms(), Some(1500));
        assert_eq!(ErrorEnvelope::new(Code::Internal, "x").retry_delay_ms(), None);
    }
}
