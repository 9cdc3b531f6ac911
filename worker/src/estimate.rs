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
    let bytes = req.bytes().await.map_err(|e| ApiError::bad_request("unreadable_body", e.to_string()))?;
    if bytes.len() as u64 > settings.max_json_body_bytes {
        return Err(ApiError::new(413, "body_too_large", "the estimate body is too large"));
    }
    let body: JsonSubmission = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not a valid submission: {e}"))
    })?;
    let (model, price) = priced_model(&body.model, &settings)?;
    let mut validator = crate::submit::validator(&settings, &model);
    for (i, item) in body.requests.into_iter().enumerate() {
        validator.item(i as u64 + 1, item);
    }
    let summary = validator.finish().map_err(|(count, errors)| invalid(count, errors))?;
    let quote = price.quote(&summary.tokens);
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
