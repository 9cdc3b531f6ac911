//! Every Gemini call batchgate makes, as data: method, URL, headers, body. The
//! worker adds the API key header when it sends them (so no value here ever
//! carries the key) and hands the answers back to the parsers below.

use super::file::File;
use super::status::ErrorEnvelope;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GeminiConfig {
    /// `https://generativelanguage.googleapis.com`, or the emulator.
    pub base_url: String,
    /// `v1beta` (the Batch API reference) or `v1`.
    pub api_version: String,
    /// MIME type declared for uploaded JSONL (a known-flaky area: configurable).
    pub jsonl_mime: String,
    /// Follow the upload session URL as returned, or move it onto `base_url`
    /// (needed behind proxies and emulators; harmless for Google).
    pub rewrite_upload_url: bool,
}

impl Default for GeminiConfig {
    fn default() -> Self {
        GeminiConfig {
            base_url: "https://generativelanguage.googleapis.com".into(),
            api_version: "v1beta".into(),
            jsonl_mime: "application/jsonl".into(),
            rewrite_upload_url: true,
        }
    }
}

impl GeminiConfig {
    /// The hosts a request's `fileUri` may name: Google's (a file's own URI
    /// names it, also behind a proxy) and `base_url`'s (the emulator's).
    pub fn file_hosts(&self) -> Vec<String> {
        let google = "generativelanguage.googleapis.com".to_string();
        let base = crate::upload::uri_host(&self.base_url).map(str::to_ascii_lowercase);
        std::iter::once(google.clone()).chain(base.filter(|b| *b != google)).collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<String>,
}

impl Call {
    fn new(method: &'static str, url: String) -> Call {
        Call { method, url, headers: vec![("content-type", "application/json".into())], body: None }
    }

    fn json(mut self, body: serde_json::Value) -> Call {
        self.body = Some(body.to_string());
        self
    }
}

/// The header that carries the API key (added by the adapter, never logged).
pub const API_KEY_HEADER: &str = "x-goog-api-key";

impl GeminiConfig {
    fn base(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }

    fn api(&self, path: &str) -> String {
        format!("{}/{}/{path}", self.base(), self.api_version)
    }

    /// Start a resumable upload of `size` bytes of JSONL.
    pub fn upload_start(&self, size: u64, display_name: &str) -> Call {
        self.upload_start_typed(size, &self.jsonl_mime, display_name)
    }

    /// Start a resumable upload of `size` bytes of `mime` (media).
    pub fn upload_start_typed(&self, size: u64, mime: &str, display_name: &str) -> Call {
        let mut c = Call::new("POST", format!("{}/upload/{}/files", self.base(), self.api_version))
            .json(json!({"file": {"displayName": display_name}}));
        c.headers.extend([
            ("x-goog-upload-protocol", "resumable".into()),
            ("x-goog-upload-command", "start".into()),
            ("x-goog-upload-header-content-length", size.to_string()),
            ("x-goog-upload-header-content-type", mime.to_string()),
        ]);
        c
    }

    /// Abandon an upload session (an idle one expiring).
    pub fn upload_cancel(&self, session_url: &str) -> Call {
        Call {
            method: "POST",
            url: session_url.to_string(),
            headers: vec![("x-goog-upload-command", "cancel".into())],
            body: None,
        }
    }

    /// The session URL to use, per the rewrite policy.
    pub fn session_url(&self, returned: &str) -> String {
        if !self.rewrite_upload_url {
            return returned.to_string();
        }
        match returned.split_once("://").and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..])) {
            Some(path_and_query) => format!("{}{path_and_query}", self.base()),
            None => returned.to_string(),
        }
    }

    /// Headers of one chunk at `offset`; the body is the bytes themselves.
    pub fn upload_chunk(&self, session_url: &str, offset: u64, len: u64, finalize: bool) -> Call {
        Call {
            method: "POST",
            url: session_url.to_string(),
            headers: vec![
                ("x-goog-upload-command", if finalize { "upload, finalize" } else { "upload" }.into()),
                ("x-goog-upload-offset", offset.to_string()),
                ("content-length", len.to_string()),
            ],
            body: None,
        }
    }

    /// Ask a session how many bytes it holds (to resume after a broken chunk).
    pub fn upload_query(&self, session_url: &str) -> Call {
        Call {
            method: "POST",
            url: session_url.to_string(),
            headers: vec![("x-goog-upload-command", "query".into())],
            body: None,
        }
    }

    pub fn create_batch(&self, model: &str, display_name: &str, file_name: &str) -> Call {
        Call::new("POST", self.api(&format!("{}:batchGenerateContent", crate::model::resource(model))))
            .json(json!({"batch": {"displayName": display_name, "inputConfig": {"fileName": file_name}}}))
    }

    /// A realtime call: `body` is the user's request, checked and bounded
    /// (`maxOutputTokens` written in); streamed answers come as server-sent events.
    pub fn generate(&self, model: &str, body: String, stream: bool) -> Call {
        let method = if stream { "streamGenerateContent?alt=sse" } else { "generateContent" };
        let mut call = Call::new("POST", self.api(&format!("{}:{method}", crate::model::resource(model))));
        call.body = Some(body);
        call
    }

    /// `models/{model}:countTokens`: free at Gemini (no usage is billed).
    pub fn count_tokens(&self, model: &str, body: String) -> Call {
        let mut call = Call::new("POST", self.api(&format!("{}:countTokens", crate::model::resource(model))));
        call.body = Some(body);
        call
    }

    pub fn get_batch(&self, name: &str) -> Call {
        Call::new("GET", self.api(name))
    }

    /// Always with `pageSize`: without it the list came back empty (python-genai #1250).
    pub fn list_batches(&self, page_token: Option<&str>) -> Call {
        let mut url = self.api("batches?pageSize=100");
        if let Some(t) = page_token {
            url.push_str("&pageToken=");
            url.push_str(&urlencode(t));
        }
        Call::new("GET", url)
    }

    pub fn cancel_batch(&self, name: &str) -> Call {
        Call::new("POST", self.api(&format!("{name}:cancel")))
    }

    pub fn delete_batch(&self, name: &str) -> Call {
        Call::new("DELETE", self.api(name))
    }

    pub fn get_file(&self, name: &str) -> Call {
        Call::new("GET", self.api(name))
    }

    pub fn delete_file(&self, name: &str) -> Call {
        Call::new("DELETE", self.api(name))
    }

    /// Bytes `[start, end)` of a results file (the emulator and Google's media
    /// downloads honour `Range`; a 200 means the whole body, which callers skip through).
    pub fn download(&self, name: &str, start: u64, end: u64) -> Call {
        let mut c = Call::new("GET", self.api(&format!("{name}:download?alt=media")));
        c.headers = vec![("range", format!("bytes={start}-{}", end.saturating_sub(1)))];
        c
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// How a failed call should be treated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Worth retrying later (429, 5xx, timeouts, broken connections).
    Transient { message: String, retry_after_ms: Option<u64> },
    /// Retrying will not help (400, 403, 404…).
    Permanent { status: u16, message: String },
}

impl Failure {
    pub fn network(message: impl Into<String>) -> Failure {
        Failure::Transient { message: message.into(), retry_after_ms: None }
    }
}

/// Classify a non-200 answer, reading the Google error envelope when there is one.
///
/// A refused key comes back as status 401 whatever Gemini sent: a 401, or an
/// answer whose `ErrorInfo` names the key or its project (`API_KEY_INVALID`,
/// `API_KEY_EXPIRED`, `SERVICE_DISABLED`, `CONSUMER_SUSPENDED`: how Gemini
/// answers a deleted, rotated or disabled key). A bare 403 is not one: Gemini
/// also answers it for a file it cannot find, and a key taken out of rotation
/// for that would strand every batch on it.
pub fn failure(status: u16, body: &str) -> Failure {
    let envelope: Option<ErrorEnvelope> = serde_json::from_slice(body.as_bytes()).ok();
    let message = envelope
        .as_ref()
        .map(|e| format!("{} {}: {}", status, e.error.status.as_deref().unwrap_or(""), e.error.message))
        .unwrap_or_else(|| format!("HTTP {status}: {}", body.chars().take(200).collect::<String>()));
    let key_refused = status == 401 || envelope.as_ref().is_some_and(ErrorEnvelope::refuses_the_key);
    match status {
        408 | 429 | 500 | 502 | 503 | 504 => {
            Failure::Transient { message, retry_after_ms: envelope.and_then(|e| e.retry_delay_ms()) }
        }
        _ if key_refused => Failure::Permanent { status: 401, message },
        _ => Failure::Permanent { status, message },
    }
}

/// The final chunk's answer: `{"file": File}`, or — seen on HTTP 200 — an
/// `{"error": …}` body instead (python-genai #1547).
pub fn finalized_file(body: &str) -> Result<File, Failure> {
    #[derive(Deserialize)]
    struct Reply {
        file: Option<File>,
        error: Option<super::status::Status>,
    }
    match serde_json::from_slice::<Reply>(body.as_bytes()) {
        Ok(Reply { file: Some(f), error: None }) => Ok(f),
        Ok(Reply { error: Some(e), .. }) => Err(Failure::Permanent {
            status: 400,
            message: format!("upload finalize refused: {}", e.message),
        }),
        _ => Err(Failure::network(format!(
            "upload finalize answered without a file: {}",
            body.chars().take(200).collect::<String>()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> GeminiConfig {
        GeminiConfig { base_url: "http://127.0.0.1:8765/".into(), ..GeminiConfig::default() }
    }

    #[test]
    fn file_urls_may_name_google_and_the_configured_base() {
        assert_eq!(cfg().file_hosts(), ["generativelanguage.googleapis.com", "127.0.0.1:8765"]);
        assert_eq!(GeminiConfig::default().file_hosts(), ["generativelanguage.googleapis.com"]);
        let proxy = GeminiConfig { base_url: "https://Gateway.example/v1/acct/google-ai".into(), ..cfg() };
        assert_eq!(proxy.file_hosts(), ["generativelanguage.googleapis.com", "gateway.example"]);
    }

    #[test]
    fn calls_follow_the_protocol_and_never_carry_the_key() {
        let c = cfg().create_batch("models/gemini-2.5-flash", "batchgate-j1", "files/abc");
        assert_eq!(c.url, "http://127.0.0.1:8765/v1beta/models/gemini-2.5-flash:batchGenerateContent");
        assert_eq!(
            c.body.as_deref(),
            Some(r#"{"batch":{"displayName":"batchgate-j1","inputConfig":{"fileName":"files/abc"}}}"#)
        );
        let s = cfg().upload_start(42, "input");
        assert!(s.headers.contains(&("x-goog-upload-header-content-length", "42".into())));
        assert_eq!(
            cfg().download("files/batch-x", 10, 20).headers,
            vec![("range", "bytes=10-19".to_string())]
        );
        assert_eq!(
            cfg().list_batches(Some("a b")).url,
            "http://127.0.0.1:8765/v1beta/batches?pageSize=100&pageToken=a%20b"
        );
        for call in [s, c, cfg().get_batch("batches/x")] {
            assert!(call.headers.iter().all(|(k, _)| *k != API_KEY_HEADER));
        }
    }

    #[test]
    fn session_urls_are_moved_onto_the_configured_base() {
        let u = "https://generativelanguage.googleapis.com/upload/v1beta/files?upload_id=x&upload_protocol=resumable";
        assert_eq!(
            cfg().session_url(u),
            "http://127.0.0.1:8765/upload/v1beta/files?upload_id=x&upload_protocol=resumable"
        );
        let follow = GeminiConfig { rewrite_upload_url: false, ..cfg() };
        assert_eq!(follow.session_url(u), u);
    }

    #[test]
    fn failures_are_classified_and_retry_info_is_kept() {
        let body = r#"{"error":{"code":429,"message":"slow","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"7s"}]}}"#;
        assert_eq!(
            failure(429, body),
            Failure::Transient { message: "429 RESOURCE_EXHAUSTED: slow".into(), retry_after_ms: Some(7000) }
        );
        assert!(matches!(failure(503, "<html>"), Failure::Transient { .. }));
        assert!(matches!(failure(400, "{}"), Failure::Permanent { status: 400, .. }));
    }

    #[test]
    fn a_refused_key_reads_as_401_whichever_way_gemini_says_it() {
        let invalid = r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#;
        let disabled = r#"{"error":{"code":403,"message":"Generative Language API has not been used in project 1 before or it is disabled.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"SERVICE_DISABLED"}]}}"#;
        for (status, body) in [(400, invalid), (403, disabled), (401, "{}")] {
            assert!(
                matches!(failure(status, body), Failure::Permanent { status: 401, .. }),
                "{status} {body}"
            );
        }
        let bad_request = r#"{"error":{"code":400,"message":"bad model","status":"INVALID_ARGUMENT"}}"#;
        assert!(matches!(failure(400, bad_request), Failure::Permanent { status: 400, .. }));
        // Gemini's 403 for a file it cannot find (or not ours) says nothing of the key.
        let no_file = r#"{"error":{"code":403,"message":"You do not have permission to access the File x or it may not exist.","status":"PERMISSION_DENIED"}}"#;
        assert!(matches!(failure(403, no_file), Failure::Permanent { status: 403, .. }));
    }

    #[test]
    fn finalize_errors_on_200_are_failures() {
        assert!(finalized_file(r#"{"file":{"name":"files/a","state":"ACTIVE"}}"#).is_ok());
        assert!(matches!(
            finalized_file(r#"{"error":{"code":400,"message":"Unsupported MIME type: jsonl"}}"#),
            Err(Failure::Permanent { .. })
        ));
        assert!(matches!(finalized_file(""), Err(Failure::Transient { .. })));
    }
}
