//! The resumable upload protocol of `/upload/v1beta/files`: `start` returns an
//! absolute session URL pointing back at this server; `upload` / `upload,
//! finalize` append bytes at a checked offset, streamed straight to disk;
//! `query` reports the bytes received so a client can resume; `cancel` drops it.

use crate::error::{ApiError, ApiResult, parse_json};
use crate::fields::check_known;
use crate::model::field;
use crate::store::FileEntry;
use crate::{Emulator, lock};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use batchgate_core::gemini::file::{MAX_CLIENT_ID_LEN, valid_resource_id};
use batchgate_core::gemini::timestamp::format_nanos;
use batchgate_core::gemini::{Code, ErrorEnvelope, File, FileSource, FileState};
use futures_util::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;

#[derive(Debug, PartialEq)]
enum Phase {
    Active,
    Final(Box<File>),
    Cancelled,
}

#[derive(Debug)]
pub struct Session {
    display_name: Option<String>,
    mime: String,
    declared: Option<u64>,
    received: u64,
    path: PathBuf,
    /// Running hash of the bytes so far; `None` once bytes were rolled back, in
    /// which case finalize hashes the file from disk.
    hasher: Option<Sha256>,
    requested_id: Option<String>,
    phase: Phase,
}

#[derive(Default)]
pub struct Sessions(pub(crate) Mutex<HashMap<String, Arc<tokio::sync::Mutex<Session>>>>);

impl Sessions {
    fn get(&self, id: &str) -> Option<Arc<tokio::sync::Mutex<Session>>> {
        lock(&self.0).get(id).cloned()
    }

    pub fn clear(&self) {
        lock(&self.0).clear();
    }
}

const FILE_FIELDS: &[&str] = &[
    "name",
    "displayName",
    "mimeType",
    "sizeBytes",
    "createTime",
    "updateTime",
    "expirationTime",
    "sha256Hash",
    "uri",
    "downloadUri",
    "state",
    "source",
    "error",
    "videoMetadata",
];

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

fn commands(h: &HeaderMap) -> Vec<String> {
    header(h, "x-goog-upload-command")
        .unwrap_or_default()
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .collect()
}

fn with_status(resp: impl IntoResponse, status: &str, received: Option<u64>) -> Response {
    let mut r = resp.into_response();
    r.headers_mut().insert(
        "x-goog-upload-status",
        HeaderValue::from_str(status).unwrap_or(HeaderValue::from_static("active")),
    );
    if let Some(n) = received {
        r.headers_mut().insert("x-goog-upload-size-received", HeaderValue::from(n));
    }
    r
}

fn parse_u64(v: Option<&Value>) -> Option<u64> {
    v.and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
}

impl Emulator {
    /// `session_base` is the absolute URL of the start request, without its query.
    pub(crate) async fn upload(
        self: &Arc<Self>,
        session_base: &str,
        query: &HashMap<String, String>,
        headers: &HeaderMap,
        body: Body,
    ) -> ApiResult<Response> {
        match query.get("upload_id") {
            Some(id) => self.upload_chunk(id, headers, body).await,
            None => {
                let bytes = axum::body::to_bytes(body, 1 << 20)
                    .await
                    .map_err(|_| ApiError::invalid("The upload start request body is too large."))?;
                self.upload_start(session_base, headers, &bytes)
            }
        }
    }

    fn upload_start(&self, session_base: &str, headers: &HeaderMap, body: &[u8]) -> ApiResult<Response> {
        let protocol = header(headers, "x-goog-upload-protocol").unwrap_or_default();
        if !protocol.eq_ignore_ascii_case("resumable") {
            return Err(ApiError::invalid(format!(
                "Unsupported upload protocol {protocol:?}: send X-Goog-Upload-Protocol: resumable."
            )));
        }
        if !commands(headers).iter().any(|c| c == "start") {
            return Err(ApiError::invalid("X-Goog-Upload-Command must be \"start\" to begin an upload."));
        }
        let cfg = self.config();
        let root = parse_json(body)?;
        let root = root.as_object().cloned().unwrap_or_default();
        check_known(&root, &["file"], "")?;
        let file = root.get("file").cloned().unwrap_or(json!({}));
        if let Some(obj) = file.as_object() {
            check_known(obj, FILE_FIELDS, "file")?;
        }
        let declared = header(headers, "x-goog-upload-header-content-length")
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ApiError::invalid(format!("Invalid X-Goog-Upload-Header-Content-Length {v:?}."))
                })
            })
            .transpose()?
            .or_else(|| parse_u64(field(&file, "sizeBytes")));
        if declared.is_some_and(|d| d > cfg.max_file_bytes) {
            return Err(ApiError::invalid(format!(
                "File size exceeds the maximum allowed size of {} bytes.",
                cfg.max_file_bytes
            )));
        }
        let mime = header(headers, "x-goog-upload-header-content-type")
            .map(String::from)
            .or_else(|| field(&file, "mimeType").and_then(Value::as_str).map(String::from))
            .unwrap_or_else(|| "application/octet-stream".into());
        let requested_id = match field(&file, "name").and_then(Value::as_str) {
            None => None,
            Some(n) => {
                let id = n.strip_prefix("files/").unwrap_or(n);
                if !valid_resource_id(id) || id.len() > MAX_CLIENT_ID_LEN {
                    return Err(ApiError::invalid(format!(
                        "Invalid file name {n:?}: ids are [a-z0-9-], at most 40 chars."
                    )));
                }
                if lock(&self.store).files.contains_key(id) {
                    return Err(ApiError::http(409, format!("File files/{id} already exists.")));
                }
                Some(id.to_string())
            }
        };
        let upload_id = lock(&self.store).random_token(40);
        let session = Session {
            display_name: field(&file, "displayName").and_then(Value::as_str).map(String::from),
            mime,
            declared,
            received: 0,
            path: self.data_dir.join("uploads").join(&upload_id),
            hasher: Some(Sha256::new()),
            requested_id,
            phase: Phase::Active,
        };
        lock(&self.uploads.0).insert(upload_id.clone(), Arc::new(tokio::sync::Mutex::new(session)));
        let url = format!("{session_base}?upload_id={upload_id}&upload_protocol=resumable");
        let mut resp = with_status(StatusCode::OK, "active", None);
        let h = resp.headers_mut();
        for (k, v) in [
            ("x-goog-upload-url", url),
            ("x-goog-upload-chunk-granularity", cfg.chunk_granularity.to_string()),
            ("x-guploader-uploadid", upload_id),
        ] {
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(k, v);
            }
        }
        Ok(resp)
    }

    async fn upload_chunk(
        self: &Arc<Self>,
        id: &str,
        headers: &HeaderMap,
        body: Body,
    ) -> ApiResult<Response> {
        let session = self.uploads.get(id).ok_or_else(|| ApiError::not_found("No such upload session."))?;
        let mut s = session.lock().await;
        let cmds = commands(headers);
        let has = |c: &str| cmds.iter().any(|x| x == c);
        match &s.phase {
            Phase::Final(file) => {
                // A retried finalize whose answer was lost gets the same file again.
                return Ok(with_status(axum::Json(FileReply { file }), "final", Some(s.received)));
            }
            Phase::Cancelled => {
                return Ok(with_status(ApiError::invalid("The upload was cancelled."), "cancelled", None));
            }
            Phase::Active => {}
        }
        if has("cancel") {
            s.phase = Phase::Cancelled;
            let _ = tokio::fs::remove_file(&s.path).await;
            return Ok(with_status(StatusCode::OK, "cancelled", None));
        }
        if has("query") {
            return Ok(with_status(StatusCode::OK, "active", Some(s.received)));
        }
        if !has("upload") && !has("finalize") {
            return Err(ApiError::invalid(format!("Unknown X-Goog-Upload-Command {cmds:?}.")));
        }
        let offset: u64 = header(headers, "x-goog-upload-offset")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ApiError::invalid("X-Goog-Upload-Offset is required."))?;
        if offset != s.received {
            let e = ApiError::invalid(format!(
                "Invalid X-Goog-Upload-Offset {offset}: the server has received {} bytes.",
                s.received
            ));
            return Ok(with_status(e, "active", Some(s.received)));
        }
        let finalize = has("finalize");
        if has("upload")
            && let Err(e) = self.append(&mut s, headers, body, finalize).await
        {
            return Ok(with_status(e, "active", Some(s.received)));
        }
        if !finalize {
            return Ok(with_status(StatusCode::OK, "active", Some(s.received)));
        }
        self.finalize(&mut s).await
    }

    /// Stream one chunk onto the session's file. A broken connection keeps the
    /// bytes that arrived; a chunk that breaks a rule is rolled back whole.
    async fn append(
        &self,
        s: &mut Session,
        headers: &HeaderMap,
        body: Body,
        finalize: bool,
    ) -> ApiResult<()> {
        let cfg = self.config();
        let limit = s.declared.unwrap_or(cfg.max_file_bytes).min(cfg.max_file_bytes);
        let announced: Option<u64> = header(headers, "content-length").and_then(|v| v.parse().ok());
        let granularity_ok = |n: u64| {
            finalize || !cfg.enforce_chunk_granularity || n.is_multiple_of(cfg.chunk_granularity.max(1))
        };
        if let Some(n) = announced {
            if s.received + n > limit {
                return Err(ApiError::invalid(format!(
                    "The chunk would bring the upload to {} bytes, past the declared size of {limit}.",
                    s.received + n
                )));
            }
            if !granularity_ok(n) {
                return Err(ApiError::invalid(format!(
                    "Non-final chunks must be a multiple of {} bytes; this one is {n}.",
                    cfg.chunk_granularity
                )));
            }
        }
        let start = s.received;
        let mut f = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&s.path)
            .await
            .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
        let mut stream = body.into_data_stream();
        let mut broke = None;
        while let Some(next) = stream.next().await {
            let bytes = match next {
                Ok(b) => b,
                Err(e) => {
                    broke = Some(e.to_string());
                    break;
                }
            };
            if s.received + bytes.len() as u64 > limit {
                self.roll_back(s, &mut f, start).await;
                return Err(ApiError::invalid(format!(
                    "The upload is larger than its declared size of {limit} bytes."
                )));
            }
            f.write_all(&bytes).await.map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
            if let Some(h) = s.hasher.as_mut() {
                h.update(&bytes);
            }
            s.received += bytes.len() as u64;
        }
        f.flush().await.map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
        if let Some(e) = broke {
            return Err(ApiError::invalid(format!(
                "The connection broke mid-chunk ({e}); query the offset and resume."
            )));
        }
        if !granularity_ok(s.received - start) {
            let n = s.received - start;
            self.roll_back(s, &mut f, start).await;
            return Err(ApiError::invalid(format!(
                "Non-final chunks must be a multiple of {} bytes; this one is {n}.",
                cfg.chunk_granularity
            )));
        }
        Ok(())
    }

    async fn roll_back(&self, s: &mut Session, f: &mut tokio::fs::File, to: u64) {
        let _ = f.set_len(to).await;
        s.received = to;
        s.hasher = None;
    }

    async fn finalize(self: &Arc<Self>, s: &mut Session) -> ApiResult<Response> {
        let cfg = self.config();
        if let Some(d) = s.declared
            && s.received != d
        {
            let e = ApiError::invalid(format!(
                "Upload size mismatch: received {} bytes but X-Goog-Upload-Header-Content-Length declared {d}.",
                s.received
            ));
            return Ok(with_status(e, "active", Some(s.received)));
        }
        let injected = lock(&self.faults).take("POST", "/upload/v1beta/files", None, true);
        let mime_refused = cfg.allowed_mime_types.as_ref().is_some_and(|l| !l.iter().any(|m| m == &s.mime));
        if injected.is_some() || mime_refused {
            // The real anomaly: HTTP 200, status final, and an error instead of a file.
            let message = match injected {
                Some(crate::faults::FaultKind::FinalizeError { message: Some(m) }) => m,
                _ => format!("Unsupported MIME type: {}", s.mime),
            };
            s.phase = Phase::Cancelled;
            let _ = tokio::fs::remove_file(&s.path).await;
            return Ok(with_status(
                axum::Json(ErrorEnvelope::new(Code::InvalidArgument, message)),
                "final",
                None,
            ));
        }
        let hex = match s.hasher.take() {
            Some(h) => to_hex(&h.finalize()),
            None => {
                let p = s.path.clone();
                tokio::task::spawn_blocking(move || hash_file(&p))
                    .await
                    .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?
                    .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?
            }
        };
        let now = self.now_ns();
        let (id, seq) = {
            let mut store = lock(&self.store);
            let id = match &s.requested_id {
                Some(id) if !store.files.contains_key(id) => id.clone(),
                Some(id) => return Err(ApiError::http(409, format!("File files/{id} already exists."))),
                None => store.new_id(12),
            };
            (id, store.next_seq())
        };
        let dest = self.files_dir().join(&id);
        if s.received == 0 {
            tokio::fs::write(&s.path, b"").await.map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
        }
        tokio::fs::rename(&s.path, &dest).await.map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
        let expire_ns = now + crate::clock::secs_to_ns(cfg.file_ttl_secs);
        let base = self.public_base();
        let file = File {
            name: format!("files/{id}"),
            display_name: s.display_name.clone(),
            mime_type: s.mime.clone(),
            size_bytes: s.received,
            create_time: format_nanos(now),
            update_time: format_nanos(now),
            expiration_time: format_nanos(expire_ns),
            sha256_hash: base64::engine::general_purpose::STANDARD.encode(hex.as_bytes()),
            uri: format!("{base}/v1beta/files/{id}"),
            download_uri: None,
            state: FileState::Active,
            source: FileSource::Uploaded,
            error: None,
        };
        lock(&self.store).files.insert(
            id,
            FileEntry { file: file.clone(), path: dest, create_ns: now, expire_ns, seq, scan: None },
        );
        s.phase = Phase::Final(Box::new(file.clone()));
        Ok(with_status(axum::Json(FileReply { file: &file }), "final", Some(s.received)))
    }
}

/// `{"file": File}` with the file's fields in the server's order.
#[derive(serde::Serialize)]
struct FileReply<'a> {
    file: &'a File,
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash_file(path: &std::path::Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(to_hex(&h.finalize()))
}
