//! A call as data: method, path (with its query), headers and body; and the
//! answer read into the bytes of a 2xx or the API's error.

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    None,
    /// JSON text, sent as `application/json`.
    Json(String),
    /// NDJSON bytes, sent as `application/x-ndjson`.
    Ndjson(Vec<u8>),
    /// Bytes `start..end` of the caller's data (a `Blob`, a file), sent as they are.
    Range {
        start: u64,
        end: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// From the endpoint's root, query included: `/v1/jobs?limit=5`.
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

impl Request {
    pub fn new(method: Method, path: impl Into<String>) -> Request {
        Request { method, path: path.into(), headers: vec![], body: Body::None }
    }

    pub fn get(path: impl Into<String>) -> Request {
        Request::new(Method::Get, path)
    }

    pub fn post(path: impl Into<String>, json: impl Into<String>) -> Request {
        Request::new(Method::Post, path).body(Body::Json(json.into()))
    }

    pub fn body(mut self, body: Body) -> Request {
        self.body = body;
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Request {
        self.headers.push((name, value.into()));
        self
    }

    /// The `content-type` its body is sent with, if it has one to declare.
    pub fn content_type(&self) -> Option<&'static str> {
        match self.body {
            Body::Json(_) => Some("application/json"),
            Body::Ndjson(_) => Some("application/x-ndjson"),
            Body::None | Body::Range { .. } => None,
        }
    }
}

/// Every failure a client reports: the API's own (`status` > 0, `code` from
/// the API), no answer at all (`network_error`, status 0), and the client's
/// local refusals (`invalid_argument`, `invalid_requests`, `aborted`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientError {
    pub code: String,
    pub message: String,
    pub status: u16,
    /// JSON text: the API error's `details`, or the client's own.
    pub details: Option<String>,
}

pub const NETWORK_ERROR: &str = "network_error";
pub const ABORTED: &str = "aborted";
pub const INVALID_ARGUMENT: &str = "invalid_argument";

impl ClientError {
    pub fn new(code: &str, message: impl Into<String>, status: u16) -> ClientError {
        ClientError { code: code.into(), message: message.into(), status, details: None }
    }

    pub fn with_details(mut self, details: &Value) -> ClientError {
        self.details = Some(details.to_string());
        self
    }

    pub fn invalid_argument(message: impl Into<String>) -> ClientError {
        ClientError::new(INVALID_ARGUMENT, message, 0)
    }

    /// The request got no answer (offline, refused, dropped): `cause` says how.
    pub fn network(cause: &str) -> ClientError {
        ClientError::new(NETWORK_ERROR, ["the request got no answer: ", cause].concat(), 0)
    }

    pub fn aborted(what: &str) -> ClientError {
        ClientError::new(ABORTED, [what, " was aborted"].concat(), 0)
    }

    pub fn is_network(&self) -> bool {
        self.code == NETWORK_ERROR
    }
}

pub fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// `Ok` for a 2xx; otherwise the API's `{"error": {code, message, details}}`,
/// or, when the body is not that (a proxy's page), `http_error` quoting it.
pub fn check(status: u16, body: &[u8]) -> Result<(), ClientError> {
    if is_success(status) {
        return Ok(());
    }
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error = &value["error"];
    let message = match error["message"].as_str() {
        Some(m) => m.to_string(),
        None => ["HTTP ", &status.to_string(), ": ", &String::from_utf8_lossy(body)].concat(),
    };
    let code = error["code"].as_str().unwrap_or("http_error");
    let mut e = ClientError::new(code, message, status);
    if !error["details"].is_null() {
        e = e.with_details(&error["details"]);
    }
    Err(e)
}

/// The body of a 2xx answer, as it came: a client need not parse what it
/// only hands on.
pub fn read(status: u16, body: &[u8]) -> Result<&[u8], ClientError> {
    check(status, body).map(|()| body)
}

/// A 2xx answer parsed, for the calls whose answer the client itself reads.
pub fn read_value(status: u16, body: &[u8]) -> Result<Value, ClientError> {
    check(status, body)?;
    serde_json::from_slice(body).map_err(|e| {
        ClientError::new("invalid_answer", ["the answer is not JSON: ", &e.to_string()].concat(), status)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_unreadable_errors_and_successes_are_told_apart() {
        let e = check(404, br#"{"error":{"code":"not_found","message":"no such job","details":{"id":"j"}}}"#);
        assert_eq!(
            e,
            Err(ClientError {
                code: "not_found".into(),
                message: "no such job".into(),
                status: 404,
                details: Some(r#"{"id":"j"}"#.into()),
            })
        );
        let proxy = check(502, b"<html>bad gateway</html>").unwrap_err();
        assert_eq!((proxy.code.as_str(), proxy.status), ("http_error", 502));
        assert!(proxy.message.contains("bad gateway") && proxy.message.starts_with("HTTP 502"));
        assert!(!proxy.is_network());
        assert_eq!(read(204, b""), Ok(&b""[..]));
        assert!(read_value(200, b"not json").is_err_and(|e| e.code == "invalid_answer"));
        let n = ClientError::network("fetch failed");
        assert!(n.is_network() && n.status == 0 && n.message.contains("fetch failed"));
    }
}
