//! `POST /_bench/copy?file=files/{id}` (admin, only with `BENCH_ROUTES=true`):
//! copies a Gemini file into R2 the way ingestion does (the same ranged
//! download, the same part size, multipart) but without scanning or indexing
//! a line, and reports how long that took.

use super::{Ctx, Result, auth, ok};
use crate::platform::bindings;
use crate::platform::clock::now_ms;
use crate::platform::error::ApiError;
use crate::platform::gemini::Gemini;
use crate::platform::gemini_files::download;
use crate::platform::query::Query;
use batchgate_core::gemini::File;
use serde::Serialize;
use worker::{Request, Response};

#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub(crate) struct Copied {
    bytes: u64,
    ms: u64,
}

pub async fn copy(req: &Request, cx: &Ctx<'_>) -> Result<Response> {
    auth::admin(req, cx.settings)?;
    let file = Query::of(req).get("file").unwrap_or_default();
    let id = file.strip_prefix("files/").unwrap_or_default();
    if !batchgate_core::gemini::file::valid_resource_id(id) {
        return Err(ApiError::bad_request("invalid_file", "file must be files/{id}"));
    }
    let gemini = Gemini::new(cx.settings);
    let fail = |e: batchgate_core::gemini::client::Failure| ApiError::internal(format!("{e:?}"));
    let started = now_ms();
    let size = gemini.json::<File>(&gemini.cfg.get_file(&file)).await.map_err(fail)?.size_bytes;
    let bucket = bindings::bucket(cx.env)?;
    let key = bindings::bench_key(started);
    let upload = bucket.create_multipart_upload(key.clone()).execute().await?;
    let mut parts = Vec::new();
    let mut offset = 0;
    while offset < size {
        let end = (offset + cx.settings.part_bytes).min(size);
        let bytes = download(&gemini, &file, offset, end).await.map_err(fail)?;
        let number = u16::try_from(parts.len() + 1).map_err(|_| ApiError::internal("too many parts"))?;
        parts.push(upload.upload_part(number, bytes).await?);
        offset = end;
    }
    upload.complete(parts).await?;
    let ms = now_ms().saturating_sub(started);
    let _ = bucket.delete(key).await;
    ok(&Copied { bytes: size, ms })
}
