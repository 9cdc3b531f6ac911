//! Media in answers stored on their own as results are stored (an image
//! model's pictures, a TTS model's audio), so `GET …/media/:n` serves an R2
//! object instead of decoding megabytes of base64 from the line. The stored
//! line keeps Gemini's answer as it came; lines are served with the media
//! linked (core's `media`).

use crate::platform::bindings::{media_key, media_prefix};
use batchgate_core::gemini::client::Failure;
use batchgate_core::ingest::{LineRecord, line_number};
use batchgate_core::media;
use worker::{Bucket, HttpMetadata};

/// Store the media of the lines `records` index in `bytes` (which begin at
/// `base` in the shard's results). Repeating it writes the same objects again.
pub async fn store(
    bucket: &Bucket,
    job: &str,
    shard: u64,
    (bytes, base): (&[u8], u64),
    records: &[LineRecord],
) -> Result<(), Failure> {
    for r in records {
        let from = usize::try_from(r.offset.saturating_sub(base)).unwrap_or(usize::MAX);
        let to = from.saturating_add(usize::try_from(r.len).unwrap_or(usize::MAX));
        let Some(line) = bytes.get(from..to).filter(|l| media::may_have_media(l)) else { continue };
        for (n, (mime, data)) in media::all_media(line).into_iter().enumerate() {
            let metadata = HttpMetadata { content_type: Some(mime), ..HttpMetadata::default() };
            bucket
                .put(media_key(job, line_number(shard, r.number), n), data)
                .http_metadata(metadata)
                .execute()
                .await
                .map_err(|e| Failure::network(format!("R2 write of an answer's media: {e}")))?;
        }
    }
    Ok(())
}

/// Delete every media object of the job (pages of 1,000, as R2 lists them).
pub async fn purge(bucket: &Bucket, job: &str) {
    for _ in 0..1_000 {
        let Ok(page) = bucket.list().prefix(media_prefix(job)).execute().await else { return };
        let keys: Vec<String> = page.objects().iter().map(|o| o.key()).collect();
        if keys.is_empty() || bucket.delete_multiple(keys).await.is_err() {
            return;
        }
        if !page.truncated() {
            return;
        }
    }
}
