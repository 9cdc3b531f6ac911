//! A job (or an estimate) made from an input sent in parts: its parts read
//! from R2 in order, as one stream of lines, through the submission's
//! validator (with the job's model, which the parts were not checked against).

use super::input::InputWriter;
use super::lines::Feed;
use crate::api::{Ctx, Result};
use crate::platform::bindings;
use crate::platform::error::ApiError;
use batchgate_core::submit::Validator;
use futures_util::StreamExt;

/// Feed the parts at `keys` to `validator`, and the normalized lines to `writer`.
pub async fn feed_parts(
    cx: &Ctx<'_>,
    keys: &[String],
    validator: &mut Validator,
    writer: Option<&mut InputWriter>,
) -> Result<()> {
    let bucket = bindings::bucket(cx.env)?;
    let gone = || ApiError::new(410, "input_gone", "a part of the input is no longer stored");
    let mut feed = Feed::new(cx.settings, validator, writer);
    for key in keys {
        let object = bucket.get(key).execute().await?.ok_or_else(gone)?;
        let mut body = object.body().ok_or_else(gone)?.stream()?;
        while let Some(chunk) = body.next().await {
            feed.chunk(&chunk?).await?;
        }
    }
    feed.finish();
    Ok(())
}
