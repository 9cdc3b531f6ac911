//! The rules of media uploads (PDFs, images, audio) proxied to the Gemini
//! Files API: which types are allowed, and whether a chunk of a resumable
//! session may be forwarded. The worker streams bytes; every decision is here.

use serde::{Deserialize, Serialize};

/// Gemini's cap on one file.
pub const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// The MIME types Gemini reads as media, allowed unless the operator says otherwise.
pub const DEFAULT_MIME_TYPES: &[&str] = &[
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/heic",
    "image/heif",
    "audio/wav",
    "audio/mp3",
    "audio/mpeg",
    "audio/aiff",
    "audio/aac",
    "audio/ogg",
    "audio/flac",
    "video/mp4",
    "video/mpeg",
    "video/quicktime",
    "video/webm",
    "text/plain",
    "text/csv",
    "text/markdown",
    "text/html",
    "application/json",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadRules {
    pub mime_types: Vec<String>,
    /// Chunks (except the last) are whole multiples of this (Gemini's granularity).
    pub granularity: u64,
    /// The largest chunk one request may carry (a Worker request body is ≤ 100 MB).
    pub max_chunk: u64,
    pub max_file: u64,
}

impl Default for UploadRules {
    fn default() -> Self {
        UploadRules {
            mime_types: DEFAULT_MIME_TYPES.iter().map(|m| m.to_string()).collect(),
            granularity: 8 * 1024 * 1024,
            max_chunk: 64 * 1024 * 1024,
            max_file: MAX_FILE_BYTES,
        }
    }
}

/// Why an upload or a chunk is refused; each maps to one 4xx.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UploadError {
    /// 415
    MimeType { mime: String },
    /// 413
    TooLarge { size: u64, max: u64 },
    /// 400: a size that is missing, zero or not a number.
    Size(String),
    /// 400: an unreadable `Content-Range`.
    Range(String),
    /// 409: the chunk does not start where the session is; resume from `received`.
    Offset { start: u64, received: u64 },
    /// 400: the range's total differs from the declared size.
    Total { total: u64, declared: u64 },
    /// 400: a chunk that is not a multiple of the granularity and not the last.
    Granularity { len: u64, granularity: u64 },
    /// 413: a chunk larger than one request may carry.
    ChunkTooLarge { len: u64, max: u64 },
    /// 400: the body's length differs from the range.
    Length { range: u64, body: u64 },
    /// 409: the session has already ended.
    Ended,
}

impl UploadError {
    pub fn status(&self) -> u16 {
        match self {
            UploadError::MimeType { .. } => 415,
            UploadError::TooLarge { .. } | UploadError::ChunkTooLarge { .. } => 413,
            UploadError::Offset { .. } | UploadError::Ended => 409,
            _ => 400,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            UploadError::MimeType { .. } => "unsupported_mime_type",
            UploadError::TooLarge { .. } => "file_too_large",
            UploadError::Size(_) => "invalid_size",
            UploadError::Range(_) => "invalid_content_range",
            UploadError::Offset { .. } => "wrong_offset",
            UploadError::Total { .. } => "size_mismatch",
            UploadError::Granularity { .. } => "invalid_chunk_size",
            UploadError::ChunkTooLarge { .. } => "chunk_too_large",
            UploadError::Length { .. } => "length_mismatch",
            UploadError::Ended => "upload_ended",
        }
    }

    pub fn message(&self) -> String {
        match self {
            UploadError::MimeType { mime } => format!("files of type {mime:?} are not accepted"),
            UploadError::TooLarge { size, max } => format!("{size} bytes is more than the {max} allowed"),
            UploadError::Size(why) | UploadError::Range(why) => why.clone(),
            UploadError::Offset { start, received } => {
                format!(
                    "the chunk starts at {start} but the upload holds {received} bytes; resume from {received}"
                )
            }
            UploadError::Total { total, declared } => {
                format!("Content-Range says the file is {total} bytes; the session was opened for {declared}")
            }
            UploadError::Granularity { len, granularity } => {
                format!(
                    "a chunk of {len} bytes: every chunk but the last must be a multiple of {granularity}"
                )
            }
            UploadError::ChunkTooLarge { len, max } => {
                format!("a chunk of {len} bytes; at most {max} per request")
            }
            UploadError::Length { range, body } => {
                format!("Content-Range covers {range} bytes but the body has {body}")
            }
            UploadError::Ended => "this upload has already ended".into(),
        }
    }
}

impl UploadRules {
    /// Check a new upload's type and size (the MIME parameters, e.g.
    /// `; charset=utf-8`, are ignored).
    pub fn check_file(&self, mime: &str, size: u64) -> Result<String, UploadError> {
        let essence = mime.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        if !self.mime_types.iter().any(|m| m.eq_ignore_ascii_case(&essence)) {
            return Err(UploadError::MimeType { mime: mime.to_string() });
        }
        if size == 0 {
            return Err(UploadError::Size("the file is empty".into()));
        }
        if size > self.max_file {
            return Err(UploadError::TooLarge { size, max: self.max_file });
        }
        Ok(essence)
    }

    /// Whether a chunk `range` with a body of `body_len` bytes may be forwarded
    /// to a session opened for `declared` bytes that holds `received`.
    pub fn check_chunk(
        &self,
        range: ContentRange,
        body_len: Option<u64>,
        declared: u64,
        received: u64,
    ) -> Result<Chunk, UploadError> {
        if range.total != declared {
            return Err(UploadError::Total { total: range.total, declared });
        }
        if range.start != received {
            return Err(UploadError::Offset { start: range.start, received });
        }
        let len = range.end_inclusive + 1 - range.start;
        if let Some(body) = body_len.filter(|b| *b != len) {
            return Err(UploadError::Length { range: len, body });
        }
        if len > self.max_chunk {
            return Err(UploadError::ChunkTooLarge { len, max: self.max_chunk });
        }
        let last = range.end_inclusive + 1 == declared;
        if !last && !len.is_multiple_of(self.granularity.max(1)) {
            return Err(UploadError::Granularity { len, granularity: self.granularity });
        }
        Ok(Chunk { offset: range.start, len, last })
    }
}

/// `Content-Range: bytes start-end/total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentRange {
    pub start: u64,
    pub end_inclusive: u64,
    pub total: u64,
}

impl ContentRange {
    pub fn parse(header: &str) -> Result<ContentRange, UploadError> {
        let bad = || UploadError::Range(format!("Content-Range {header:?} is not \"bytes start-end/total\""));
        let spec = header.trim().strip_prefix("bytes ").ok_or_else(bad)?;
        let (range, total) = spec.split_once('/').ok_or_else(bad)?;
        let (start, end) = range.split_once('-').ok_or_else(bad)?;
        let num = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
        let (start, end_inclusive, total) = (num(start)?, num(end)?, num(total)?);
        if end_inclusive < start || end_inclusive >= total {
            return Err(bad());
        }
        Ok(ContentRange { start, end_inclusive, total })
    }
}

/// A chunk to forward: Gemini's offset, its length, and whether it finalizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub offset: u64,
    pub len: u64,
    pub last: bool,
}

/// A file this account uploaded, as `GET /v1/files` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnedFile {
    /// `files/{id}`
    pub name: String,
    pub uri: String,
    pub mime_type: String,
    pub size_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub created_ms: u64,
    pub expires_ms: u64,
}

/// Gemini deletes uploaded files this long after creation.
pub const FILE_LIFETIME_MS: u64 = 48 * 3_600_000;

impl OwnedFile {
    /// What Gemini answered for a finished upload.
    pub fn from_gemini(f: &crate::gemini::File, now_ms: u64) -> OwnedFile {
        let parse = |t: &str| crate::gemini::timestamp::parse_millis(t).and_then(|ms| u64::try_from(ms).ok());
        let created_ms = parse(&f.create_time).unwrap_or(now_ms);
        OwnedFile {
            name: f.name.clone(),
            uri: f.uri.clone(),
            mime_type: f.mime_type.clone(),
            size_bytes: f.size_bytes,
            display_name: f.display_name.clone(),
            created_ms,
            expires_ms: parse(&f.expiration_time).unwrap_or(created_ms + FILE_LIFETIME_MS),
        }
    }

    /// As the API shows it.
    pub fn view(&self) -> FileView {
        let ts = |ms: u64| crate::gemini::timestamp::format_nanos((ms as i64).saturating_mul(1_000_000));
        FileView {
            name: self.name.clone(),
            uri: self.uri.clone(),
            mime_type: self.mime_type.clone(),
            size_bytes: self.size_bytes,
            display_name: self.display_name.clone(),
            created_at: ts(self.created_ms),
            expires_at: ts(self.expires_ms),
        }
    }
}

/// A file as users see it (`/v1/files`, and an upload session's finished file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct FileView {
    /// `files/{id}`: what a request's `fileData.fileUri` may name.
    pub name: String,
    pub uri: String,
    pub mime_type: String,
    pub size_bytes: u64,
    pub display_name: Option<String>,
    pub created_at: String,
    /// Gemini deletes the file then (48 hours after the upload).
    pub expires_at: String,
}

/// Every `fileData.fileUri` in a `GenerateContentRequest`, as `files/{id}`
/// names (URIs that are not Gemini files, e.g. `gs://`, are left to Gemini).
pub fn referenced_files(request: &serde_json::Value) -> Vec<String> {
    use crate::gemini::request::field;
    let mut out = vec![];
    let system = field(request, "systemInstruction");
    let contents = field(request, "contents").and_then(|c| c.as_array()).into_iter().flatten();
    for content in contents.chain(system) {
        for part in field(content, "parts").and_then(|p| p.as_array()).into_iter().flatten() {
            let uri = field(part, "fileData").and_then(|d| field(d, "fileUri")).and_then(|u| u.as_str());
            if let Some(name) = uri.and_then(canonical_file_name) {
                out.push(name);
            }
        }
    }
    out
}

/// The `host[:port]` of a `fileUri` written as an http(s) URL (everything
/// between the scheme and the path, userinfo included, so `user@host` is no host
/// of Gemini's); none for `files/{id}`.
pub fn uri_host(uri: &str) -> Option<&str> {
    let rest = uri.strip_prefix("https://").or_else(|| uri.strip_prefix("http://"))?;
    Some(rest.split_once('/').map_or(rest, |(host, _)| host))
}

/// The `files/{id}` a `fileData.fileUri` names, when it names one in canonical
/// form: `files/{id}` or `http(s)://{host}/v1beta/files/{id}` (or `/v1/`), with
/// a valid id and nothing after it. Any other spelling (`Files/…`,
/// `files%2F…`, a query) is no file of ours.
pub fn canonical_file_name(uri: &str) -> Option<String> {
    let path = match uri.strip_prefix("https://").or_else(|| uri.strip_prefix("http://")) {
        Some(rest) => {
            let (_host, path) = rest.split_once('/')?;
            path.strip_prefix("v1beta/").or_else(|| path.strip_prefix("v1/"))?
        }
        None => uri,
    };
    let id = path.strip_prefix("files/")?;
    crate::gemini::file::valid_resource_id(id).then(|| format!("files/{id}"))
}

#[cfg(test)]
mod tests;
