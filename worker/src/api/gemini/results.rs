//! A job's results file downloaded through the Gemini drop-in (served from
//! R2 for as long as the job is kept, past Gemini's 48 hours).

use crate::api::{Ctx, Result};
use crate::objects::job::client::JobRef;
use crate::platform::error::ApiError;
use batchgate_core::dropin;
use worker::Response;

/// `files/{name}:download?alt=media`: only results files (Gemini serves no
/// uploaded file's bytes either).
pub async fn download(cx: &Ctx<'_>, account: &str, name: &str) -> Result<Response> {
    let id = dropin::job_of_results_file(name)
        .ok_or_else(|| ApiError::not_found(format!("files/{name} is not a batch's results file")))?;
    let job = JobRef::named(cx.env, id)?;
    let resp = crate::api::results::results_file(cx.env, job, account.to_string()).await?;
    resp.headers().set("content-type", "application/octet-stream")?;
    Ok(resp)
}
