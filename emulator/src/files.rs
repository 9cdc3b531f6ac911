//! `files.get/list/delete` and media download on both paths the clients use
//! (`/v1beta/files/{id}:download` and `/download/v1beta/files/{id}:download`),
//! streamed from disk with `Range` support.

use crate::error::{ApiError, ApiResult};
use crate::http::{Page, page};
use crate::{Emulator, lock};
use axum::Json;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use batchgate_core::gemini::file::file_id;
use batchgate_core::gemini::{Code, File, FileSource, ListFilesResponse};
use serde_json::json;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

pub const GOOGLE_BASE: &str = "https://generativelanguage.googleapis.com";

impl Emulator {
    fn live_file(self: &Arc<Self>, name: &str) -> ApiResult<(File, std::path::PathBuf)> {
        let id = file_id(name).ok_or_else(|| ApiError::invalid(format!("Invalid file name {name:?}.")))?;
        let mut effects = vec![];
        let found = {
            let mut store = lock(&self.store);
            store.file(id, self.now_ns(), &mut effects).map(|f| (f.file.clone(), f.path.clone()))
        };
        self.run_effects(effects);
        found.ok_or_else(|| {
            ApiError::new(
                Code::PermissionDenied,
                format!("You do not have permission to access the File {id} or it may not exist."),
            )
        })
    }

    pub(crate) fn get_file(self: &Arc<Self>, name: &str) -> ApiResult<Json<File>> {
        Ok(Json(self.live_file(name)?.0))
    }

    pub(crate) fn list_files(self: &Arc<Self>, page_req: Page) -> Json<ListFilesResponse> {
        self.tick();
        let store = lock(&self.store);
        let mut all: Vec<_> = store.files.values().collect();
        all.sort_by_key(|f| std::cmp::Reverse(f.seq));
        let (items, next) = page(&all, page_req, |f| f.seq);
        Json(ListFilesResponse {
            files: items.into_iter().map(|f| f.file.clone()).collect(),
            next_page_token: next,
        })
    }

    pub(crate) fn delete_file(self: &Arc<Self>, name: &str) -> ApiResult<Json<serde_json::Value>> {
        let (file, _) = self.live_file(name)?;
        let id = file.name.trim_start_matches("files/").to_string();
        if let Some(f) = lock(&self.store).files.remove(&id) {
            let _ = std::fs::remove_file(&f.path);
        }
        Ok(Json(json!({})))
    }

    pub(crate) async fn download(self: &Arc<Self>, name: &str, headers: &HeaderMap) -> ApiResult<Response> {
        let (file, path) = self.live_file(name)?;
        if file.source != FileSource::Generated && !self.config().download_uploaded_files {
            return Err(ApiError::new(Code::FailedPrecondition, "Only generated files can be downloaded."));
        }
        let size = file.size_bytes;
        let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).map(|r| parse_range(r, size));
        let (start, end, status) = match range {
            None => (0, size, StatusCode::OK),
            Some(Some((s, e))) => (s, e, StatusCode::PARTIAL_CONTENT),
            Some(None) => {
                return Ok((
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{size}"))],
                )
                    .into_response());
            }
        };
        let mut f = tokio::fs::File::open(&path)
            .await
            .map_err(|e| ApiError::new(Code::Internal, format!("file bytes unavailable: {e}")))?;
        f.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
        let body = Body::from_stream(ReaderStream::with_capacity(f.take(end - start), 256 * 1024));
        let mut resp = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, file.mime_type.as_str())
            .header(header::CONTENT_LENGTH, end - start)
            .header(header::ACCEPT_RANGES, "bytes");
        if status == StatusCode::PARTIAL_CONTENT {
            resp =
                resp.header(header::CONTENT_RANGE, format!("bytes {start}-{}/{size}", end.saturating_sub(1)));
        }
        resp.body(body).map_err(|e| ApiError::new(Code::Internal, e.to_string()))
    }
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` → half-open `[start, end)`; `None` if unsatisfiable.
fn parse_range(spec: &str, size: u64) -> Option<(u64, u64)> {
    let r = spec.trim().strip_prefix("bytes=")?;
    let (a, b) = r.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (size.saturating_sub(n), size)
        }
        (s, "") => (s.parse().ok()?, size),
        (s, e) => (s.parse().ok()?, e.parse::<u64>().ok()?.saturating_add(1).min(size)),
    };
    (start < end && start < size).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 10)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 100)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 100)));
        assert_eq!(parse_range("bytes=95-200", 100), Some((95, 100)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }
}
