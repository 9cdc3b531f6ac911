//! A job's results file downloaded through the Gemini drop-in (served from
//! R2 for as long as the job is kept, past Gemini's 48 hours), and `countTokens`.

use crate::api::{Ctx, Result};
use crate::objects::job::client::JobRef;
use crate::platform::error::ApiError;
use crate::platform::gemini::{Exchange, Gemini};
use batchgate_core::dropin;
use worker::{Request, Response};

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

/// `models/{model}:countTokens`: asked of Gemini with one of the deployment's
/// keys (Gemini bills no tokens for counting); nothing is charged.
pub async fn count_tokens(mut req: Request, cx: &Ctx<'_>, model: &str) -> Result<Response> {
    let body =
        crate::platform::body::read(&mut req, cx.settings.max_json_body_bytes, "a countTokens request")
            .await?;
    let model = batchgate_core::model::bare(model);
    crate::api::jobs::submit::priced_model(model, cx.settings)?;
    let gemini = Gemini::with_key(cx.settings, None)
        .map_err(|f| ApiError::new(503, "gemini_unavailable", format!("{f:?}")))?;
    let body = String::from_utf8(body)
        .map_err(|_| ApiError::bad_request("invalid_json", "the body is not UTF-8"))?;
    match gemini.exchange(&cx.settings.gemini.count_tokens(model, body), None).await {
        Exchange::Answered(mut answer) => {
            let status = answer.status_code();
            let text = gemini.text(&mut answer).await.unwrap_or_default();
            let resp = Response::ok(text)?.with_status(status);
            resp.headers().set("content-type", "application/json")?;
            Ok(resp)
        }
        Exchange::Failed(f) => Err(ApiError::new(502, "gemini_unreachable", format!("{f:?}"))),
        Exchange::TimedOut(_) => Err(ApiError::new(504, "gemini_timeout", "Gemini did not answer in time")),
    }
}
