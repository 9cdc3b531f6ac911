//! Google's resumable upload protocol as the SDKs speak it to `/gemini`
//! (`X-Goog-Upload-*`): what a start asks for, what a chunk's command says,
//! and which files are batch inputs (kept by batchgate) rather than media
//! (sent on to Gemini's Files API).

use crate::gemini::file::{File, FileSource, FileState};
use serde_json::Value;

/// Gemini's largest file.
pub const MAX_FILE_BYTES: u64 = 2 << 30;
/// The chunk size the SDKs send (and Google's granularity).
pub const GRANULARITY: u64 = 8 << 20;

/// A JSONL file of batch requests: its MIME type as the docs, the SDKs and
/// users spell it (`jsonl` bare, as the docs pass it), or a name ending `.jsonl`.
pub fn is_batch_input(mime: &str, name: Option<&str>) -> bool {
    let mime = mime.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let jsonl = [
        "jsonl",
        "application/jsonl",
        "application/json-lines",
        "application/x-ndjson",
        "application/x-jsonlines",
        "text/jsonl",
    ];
    jsonl.contains(&mime.as_str()) || name.is_some_and(|n| n.to_ascii_lowercase().ends_with(".jsonl"))
}

/// What an upload's start says about its file: the headers first, then the
/// body's `file` (snake_case from Python, camelCase from JS, size as a
/// number or a string).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Start {
    pub size: u64,
    pub mime_type: String,
    pub display_name: Option<String>,
}

pub fn start(
    header_size: Option<&str>,
    header_type: Option<&str>,
    file_name: Option<&str>,
    body: &Value,
) -> Result<Start, String> {
    let file = body.get("file").unwrap_or(&Value::Null);
    let field = |camel: &str, snake: &str| file.get(camel).or_else(|| file.get(snake));
    let size = match header_size {
        Some(h) => h
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("X-Goog-Upload-Header-Content-Length {h:?} is not a size"))?,
        None => match field("sizeBytes", "size_bytes") {
            Some(Value::Number(n)) => n.as_u64().ok_or("file.sizeBytes is not a size")?,
            Some(Value::String(s)) => s.parse().map_err(|_| "file.sizeBytes is not a size")?,
            _ => return Err("the upload's size is missing (X-Goog-Upload-Header-Content-Length)".into()),
        },
    };
    if size == 0 {
        return Err("the file is empty".into());
    }
    if size > MAX_FILE_BYTES {
        return Err(format!("a file is at most {MAX_FILE_BYTES} bytes; this one is {size}"));
    }
    let mime_type = header_type
        .map(str::to_string)
        .or_else(|| field("mimeType", "mime_type").and_then(Value::as_str).map(str::to_string))
        .ok_or("the upload's MIME type is missing (X-Goog-Upload-Header-Content-Type)")?;
    let display_name = field("displayName", "display_name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| file_name.map(str::to_string));
    crate::submit::check_display_name(display_name.as_deref())?;
    Ok(Start { size, mime_type, display_name })
}

/// `X-Goog-Upload-Command`: a comma-separated list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Command {
    pub upload: bool,
    pub finalize: bool,
    pub query: bool,
    pub cancel: bool,
}

pub fn command(header: &str) -> Result<Command, String> {
    let mut c = Command::default();
    for word in header.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        match word.to_ascii_lowercase().as_str() {
            "upload" => c.upload = true,
            "finalize" => c.finalize = true,
            "query" => c.query = true,
            "cancel" => c.cancel = true,
            other => return Err(format!("unknown X-Goog-Upload-Command {other:?}")),
        }
    }
    if c == Command::default() {
        return Err("X-Goog-Upload-Command is missing".into());
    }
    Ok(c)
}

/// How long a batch input file is kept, as Gemini keeps uploaded files.
pub const FILE_LIFETIME_MS: u64 = 48 * 3_600_000;

/// A batch input file batchgate keeps, as `files.get` shows it, made at `now_ms`.
pub fn input_file(name: &str, start: &Start, now_ms: u64) -> File {
    let at = |ms: u64| {
        crate::gemini::timestamp::format_nanos(
            i64::try_from(ms).unwrap_or(i64::MAX).saturating_mul(1_000_000),
        )
    };
    File {
        name: name.to_string(),
        display_name: start.display_name.clone(),
        mime_type: start.mime_type.clone(),
        size_bytes: start.size,
        create_time: at(now_ms),
        update_time: at(now_ms),
        expiration_time: at(now_ms.saturating_add(FILE_LIFETIME_MS)),
        state: FileState::Active,
        source: FileSource::Uploaded,
        ..File::default()
    }
}

/// Whether `file` has expired at `now_ms` (past its `expirationTime`; a time
/// that does not read counts as expired: refuse rather than guess).
pub fn expired(file: &File, now_ms: u64) -> bool {
    crate::gemini::timestamp::parse_millis(&file.expiration_time)
        .is_none_or(|until| i64::try_from(now_ms).unwrap_or(i64::MAX) >= until)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_input_file_lives_forty_eight_hours() {
        let start = Start { size: 3, mime_type: "jsonl".into(), display_name: None };
        let made = 1_800_000_000_000;
        let f = input_file("files/input-1", &start, made);
        assert!(!expired(&f, made) && !expired(&f, made + FILE_LIFETIME_MS - 1));
        assert!(expired(&f, made + FILE_LIFETIME_MS));
        assert!(expired(&File { expiration_time: "soon".into(), ..f }, made), "unreadable: refused");
    }

    #[test]
    fn jsonl_in_any_spelling_is_a_batch_input_and_media_is_not() {
        for (mime, name) in [
            ("jsonl", None),
            ("application/jsonl", None),
            ("application/x-ndjson; charset=utf-8", None),
            ("application/json", Some("reqs.JSONL")),
        ] {
            assert!(is_batch_input(mime, name), "{mime} {name:?}");
        }
        for (mime, name) in
            [("application/pdf", None), ("image/png", Some("a.png")), ("application/json", None)]
        {
            assert!(!is_batch_input(mime, name), "{mime}");
        }
    }

    #[test]
    fn a_start_reads_the_headers_then_either_spelling_of_the_body() {
        let python = json!({"file": {"display_name": "reqs", "mime_type": "jsonl", "size_bytes": 202}});
        let s = start(None, None, None, &python).unwrap();
        assert_eq!(s, Start { size: 202, mime_type: "jsonl".into(), display_name: Some("reqs".into()) });
        let js = json!({"file": {"displayName": "reqs", "mimeType": "jsonl", "sizeBytes": "202"}});
        assert_eq!(start(None, None, None, &js).unwrap(), s);
        let headers = start(Some("10"), Some("application/pdf"), Some("a.pdf"), &json!({})).unwrap();
        assert_eq!(
            headers,
            Start { size: 10, mime_type: "application/pdf".into(), display_name: Some("a.pdf".into()) }
        );
    }

    #[test]
    fn a_start_without_size_or_type_or_over_two_gigabytes_is_refused() {
        assert!(start(None, Some("jsonl"), None, &json!({})).unwrap_err().contains("size"));
        assert!(start(Some("5"), None, None, &json!({})).unwrap_err().contains("MIME"));
        assert!(start(Some("x"), Some("jsonl"), None, &json!({})).unwrap_err().contains("not a size"));
        assert!(start(Some("0"), Some("jsonl"), None, &json!({})).unwrap_err().contains("empty"));
        let long = json!({"file": {"displayName": "n".repeat(513)}});
        assert!(start(Some("5"), Some("jsonl"), None, &long).unwrap_err().contains("at most 512"));
        let big = (MAX_FILE_BYTES + 1).to_string();
        assert!(start(Some(&big), Some("jsonl"), None, &json!({})).unwrap_err().contains("at most"));
    }

    #[test]
    fn commands_are_comma_separated_words() {
        assert_eq!(command("upload").unwrap(), Command { upload: true, ..Command::default() });
        assert_eq!(
            command("upload, finalize").unwrap(),
            Command { upload: true, finalize: true, ..Command::default() }
        );
        assert_eq!(command("query").unwrap(), Command { query: true, ..Command::default() });
        assert!(command("").is_err() && command("upload, shred").is_err());
    }
}
