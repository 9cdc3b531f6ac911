//! `POST /_bench/copy?file=files/…` — only when `BENCH_ROUTES = "true"`: the
//! baseline of the ingestion benchmark. It moves a Gemini results file into R2
//! exactly as ingestion does (ranged reads, the same part size, multipart) but
//! without scanning or indexing a line, and reports how long that took.

use crate::config::{Settings, gemini_key};
use crate::errors::ApiError;
use crate::gemini::Gemini;
use crate::job_object::now_ms;
use crate::steps::{BUCKET, download};
use batchgate_core::gemini::File;
use worker::{Env, Response};

pub fn enabled(env: &Env) -> bool {
    env.var("BENCH_ROUTES").map(|v| v.to_string() == "true").unwrap_or(false)
}

pub async fn copy(env: &Env, file: &str) -> Result<Response, ApiError> {
    let settings = Settings::from_env(env);
    let gemini = Gemini::new(settings.gemini.clone(), gemini_key(env), settings.gemini_timeout_ms);
    let fail = |e: batchgate_core::gemini::client::Failure| ApiError::internal(format!("{e:?}"));
    let started = now_ms();
    let size = gemini.json::<File>(&gemini.cfg.get_file(file)).await.map_err(fail)?.size_bytes;
    let bucket = env.bucket(BUCKET)?;
    let key = format!("bench/copy-{started}");
    let upload = bucket.create_multipart_upload(key.clone()).execute().await?;
    let mut parts = Vec::new();
    let mut offset = 0;
    while offset < size {
        let end = (offset + settings.part_bytes).min(size);
        let bytes = download(&gemini, file, offset, end).await.map_err(fail)?;
        let number = u16::try_from(parts.len() + 1).map_err(|_| ApiError::internal("too many parts"))?;
        parts.push(upload.upload_part(number, bytes).await?);
        offset = end;
    }
    upload.complete(parts).await?;
    let ms = now_ms() - started;
    let _ = bucket.delete(key).await;
    Ok(Response::from_json(&serde_json::json!({"bytes": size, "ms": ms}))?)
}
