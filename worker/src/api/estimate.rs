//! `POST /v1/estimate`: the quote a submission would get (standard and batch
//! cost, the saving), from the same validation and estimate as a submit.
//! Nothing is stored or reserved.

use super::jobs::lines::Feed;
use super::jobs::submit::{body_stream, feed_body, invalid, priced_model, read_json_body, validator};
use super::jobs::{check_files, feed_parts, quote};
use super::{Ctx, Result, auth, ok};
use crate::objects::account::client as accounts;
use crate::objects::input::client::InputRef;
use crate::platform::error::ApiError;
use crate::platform::query::Query;
use batchgate_core::pricing::Quote;
use serde::Serialize;
use worker::{Request, Response};

#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub(crate) struct Estimate {
    model: String,
    request_count: u64,
    /// The Gemini batches it would run as (over the file size or token quota: several).
    shards: usize,
    unit: &'static str,
    quote: Quote,
    balance: i64,
    affordable: bool,
}

/// `POST /v1/estimate` with any body `POST /v1/jobs` takes: JSON with
/// `requests` or `input`, or NDJSON with `?model=`.
pub async fn handle(mut req: Request, cx: &Ctx<'_>) -> Result<Response> {
    let account = auth::account(&req, cx.settings)?;
    let content_type = req.headers().get("content-type").ok().flatten().unwrap_or_default();
    let (model, price, validator) = if content_type.contains("ndjson") || content_type.contains("jsonl") {
        let model = Query::of(&req).get("model").ok_or_else(|| {
            ApiError::bad_request("missing_model", "NDJSON estimates name the model in ?model=")
        })?;
        let (model, price) = priced_model(&model, cx.settings)?;
        let mut validator = validator(cx.settings, &model);
        let mut body = body_stream(&mut req)?;
        feed_body(&mut body, Feed::new(cx.settings, &mut validator, None)).await?;
        (model, price, validator)
    } else {
        let body = read_json_body(&mut req, cx.settings).await?;
        let (model, price) = priced_model(&body.model, cx.settings)?;
        let mut validator = validator(cx.settings, &model);
        match &body.input {
            Some(id) => {
                let parts = InputRef::named(cx.env, id)?.parts(&account).await?;
                feed_parts(cx, &parts.keys, &mut validator, None).await?;
            }
            None => {
                for (i, item) in body.requests.unwrap_or_default().into_iter().enumerate() {
                    validator.item(i as u64 + 1, item);
                }
            }
        }
        (model, price, validator)
    };
    let mut summary = validator.finish().map_err(|(count, errors)| invalid(count, errors))?;
    let files = check_files(cx, &account, &summary).await?;
    summary.tokens.add(&files);
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
