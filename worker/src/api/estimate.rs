//! `POST /v1/estimate`: the quote a submission would get (standard and batch
//! cost, the saving), from the same validation and estimate as a submit.
//! Nothing is stored or reserved.

use super::jobs::submit::{JsonSubmission, invalid, priced_model, validator};
use super::jobs::{check_files, quote};
use super::{Ctx, Result, auth, ok};
use crate::objects::account::client as accounts;
use batchgate_core::pricing::Quote;
use serde::Serialize;
use worker::{Request, Response};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Estimate {
    model: String,
    request_count: u64,
    /// The Gemini batches it would run as (over the file size or token quota: several).
    shards: usize,
    unit: &'static str,
    quote: Quote,
    balance: i64,
    affordable: bool,
}

pub async fn handle(mut req: Request, cx: &Ctx<'_>) -> Result<Response> {
    let account = auth::account(&req, cx.settings)?;
    let body: JsonSubmission = crate::platform::body::json(
        &mut req,
        cx.settings.max_json_body_bytes,
        "the estimate body",
        "a submission {model, requests}",
    )
    .await?;
    let (model, price) = priced_model(&body.model, cx.settings)?;
    let mut validator = validator(cx.settings, &model);
    for (i, item) in body.requests.into_iter().enumerate() {
        validator.item(i as u64 + 1, item);
    }
    let mut summary = validator.finish().map_err(|(count, errors)| invalid(count, errors))?;
    let files = check_files(cx, &account, &summary.files).await?;
    summary.tokens.input = summary.tokens.input.saturating_add(files);
    let quote = quote(&price, &summary.tokens)?;
    let balance = accounts::summary(cx.env, &account).await?.balance;
    ok(&Estimate {
        model,
        request_count: summary.count,
        shards: summary.shards.len(),
        unit: "microcredits",
        affordable: balance >= quote.batch,
        quote,
        balance,
    })
}
