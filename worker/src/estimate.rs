//! `POST /v1/estimate`: the quote a submission would get (standard and batch
//! cost, the saving), from the same validation and estimate as a submit.
//! Nothing is stored or reserved.

use crate::accounts;
use crate::config::Settings;
use crate::errors::ApiError;
use crate::submit::{JsonSubmission, invalid, priced_model};
use serde_json::json;
use worker::{Env, Request, Response};

pub async fn handle(mut req: Request, env: &Env, account: &str) -> Result<Response, ApiError> {
    let settings = Settings::from_env(env);
    let body: JsonSubmission = crate::body::json(
        &mut req,
        settings.max_json_body_bytes,
        "the estimate body",
        "a submission {model, requests}",
    )
    .await?;
    let (model, price) = priced_model(&body.model, &settings)?;
    let mut validator = crate::submit::validator(&settings, &model);
    for (i, item) in body.requests.into_iter().enumerate() {
        validator.item(i as u64 + 1, item);
    }
    let mut summary = validator.finish().map_err(|(count, errors)| invalid(count, errors))?;
    let files = crate::submit::check_files(env, &settings, account, &summary.files).await?;
    summary.tokens.input = summary.tokens.input.saturating_add(files);
    let quote = crate::submit::quote(&price, &summary.tokens)?;
    let balance = accounts::summary(env, account).await?.balance;
    Ok(Response::from_json(&json!({
        "model": model,
        "requestCount": summary.count,
        // The Gemini batches it would run as (over the file size or token quota: several).
        "shards": summary.shards.len(),
        "unit": "microcredits",
        "quote": quote,
        "balance": balance,
        "affordable": balance >= quote.batch,
    }))?)
}
