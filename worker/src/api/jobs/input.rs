//! A submission's normalized input, written to R2 as it is validated: fixed-size
//! multipart parts (memory stays at about one part), one plain put for small
//! inputs, aborted when the submission is refused.

use crate::api::Result;
use crate::platform::bindings;
use crate::platform::config::Settings;
use crate::platform::error::ApiError;
use crate::platform::random;
use worker::{Bucket, Env, MultipartUpload, UploadedPart};

fn r2(e: worker::Error) -> ApiError {
    ApiError::new(503, "storage_unavailable", format!("storing the input failed: {e}"))
}

/// The normalized input, written as R2 multipart parts of exactly `part_bytes`.
pub struct InputWriter {
    bucket: Bucket,
    key: String,
    part_bytes: usize,
    pending: Vec<u8>,
    upload: Option<MultipartUpload>,
    parts: Vec<UploadedPart>,
    total: u64,
}

impl InputWriter {
    /// A new input object for job `job_id` (a fresh key per attempt: a racing
    /// retry never overwrites the input a job uses).
    pub fn new(env: &Env, settings: &Settings, job_id: &str) -> Result<InputWriter> {
        InputWriter::at(env, settings, bindings::input_key(job_id, random::u64()?))
    }

    /// An input object at `key` (a part of `/v1/inputs`).
    pub fn at(env: &Env, settings: &Settings, key: String) -> Result<InputWriter> {
        Ok(InputWriter {
            bucket: bindings::bucket(env)?,
            key,
            part_bytes: usize::try_from(settings.part_bytes).unwrap_or(8 << 20),
            pending: Vec::new(),
            upload: None,
            parts: Vec::new(),
            total: 0,
        })
    }

    pub fn push(&mut self, line: &[u8]) {
        self.pending.extend_from_slice(line);
        self.total += line.len() as u64;
    }

    /// Store every full part waiting in `pending`.
    pub async fn flush(&mut self) -> Result<()> {
        while self.pending.len() >= self.part_bytes {
            let rest = self.pending.split_off(self.part_bytes);
            let part = std::mem::replace(&mut self.pending, rest);
            self.upload_part(part).await?;
        }
        Ok(())
    }

    async fn upload_part(&mut self, part: Vec<u8>) -> Result<()> {
        if self.upload.is_none() {
            self.upload =
                Some(self.bucket.create_multipart_upload(self.key.clone()).execute().await.map_err(r2)?);
        }
        let number = u16::try_from(self.parts.len() + 1)
            .map_err(|_| ApiError::new(413, "too_large", "input too large"))?;
        if let Some(up) = &self.upload {
            self.parts.push(up.upload_part(number, part).await.map_err(r2)?);
        }
        Ok(())
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub async fn finish(mut self) -> Result<u64> {
        match self.upload.take() {
            // Small inputs: one plain put.
            None => {
                self.bucket
                    .put(self.key.clone(), std::mem::take(&mut self.pending))
                    .execute()
                    .await
                    .map_err(r2)?;
            }
            Some(up) => {
                if !self.pending.is_empty() {
                    let last = std::mem::take(&mut self.pending);
                    self.upload = Some(up);
                    self.upload_part(last).await?;
                    let Some(up) = self.upload.take() else {
                        return Err(ApiError::internal("lost the upload"));
                    };
                    up.complete(std::mem::take(&mut self.parts)).await.map_err(r2)?;
                } else {
                    up.complete(std::mem::take(&mut self.parts)).await.map_err(r2)?;
                }
            }
        }
        Ok(self.total)
    }

    pub async fn abort(mut self) {
        if let Some(up) = self.upload.take() {
            let _ = up.abort().await;
        }
    }
}
