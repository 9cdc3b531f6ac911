//! `/gemini`: Google's own SDKs talk to batchgate unchanged (issue 23). Point
//! `google-genai` or `@google/genai` at `https://<worker>/gemini` with a
//! batchgate token as the API key, and `batches.*`, `files.download` of the
//! results, `models.generate_content` and `count_tokens` run as batchgate
//! jobs and realtime calls: the same accounts, credits, shards and results.
//! Every answer is in Gemini's shapes (core's `gemini` types, mapped by
//! `batchgate_core::dropin`); every refusal in Gemini's error envelope.

mod batches;
mod files;
mod results;
mod upload;

use super::{Ctx, Result};
use crate::platform::error::ApiError;
use batchgate_core::dropin;
use worker::{Method, Request, Response};

/// A Gemini resource path after `/gemini`, in either API version.
pub async fn route(req: Request, cx: &Ctx<'_>, path: &[&str]) -> worker::Result<Response> {
    match answer(req, cx, path).await {
        Ok(resp) => Ok(resp),
        Err(e) => refusal(&e),
    }
}

async fn answer(req: Request, cx: &Ctx<'_>, path: &[&str]) -> Result<Response> {
    let method = req.method();
    if let (Method::Post, ["upload", version, "files"]) = (&method, path)
        && is_version(version)
    {
        // The upload URL's secret stands for the key (Python's SDK sends none with chunks).
        return match crate::platform::query::Query::of(&req).get("upload_id") {
            Some(secret) => upload::chunk(req, cx, &secret).await,
            None => {
                let account = super::auth::account_of_api_key(&req, cx.settings)?;
                upload::start(req, cx, account, version).await
            }
        };
    }
    let (download, rest) = match path {
        ["download", version, rest @ ..] if is_version(version) => (true, rest),
        [version, rest @ ..] if is_version(version) => (false, rest),
        _ => return Err(ApiError::not_found("Gemini paths start with /gemini/v1beta or /gemini/v1")),
    };
    let account = super::auth::account_of_api_key(&req, cx.settings)?;
    match (method, rest) {
        (Method::Post, ["models", call]) => {
            let (model, verb) = call.split_once(':').ok_or_else(|| no_method(call))?;
            match verb {
                "batchGenerateContent" => batches::create(req, cx, &account, model).await,
                "generateContent" => generate(req, cx, account, model, false).await,
                "streamGenerateContent" => generate(req, cx, account, model, true).await,
                "countTokens" => count_tokens(req, cx, &account, model).await,
                _ => Err(no_method(call)),
            }
        }
        (Method::Get, ["batches"]) => batches::list(&req, cx, &account).await,
        (Method::Get, ["batches", id]) => batches::get(cx, &account, id).await,
        (Method::Post, ["batches", call]) => match call.split_once(':') {
            Some((id, "cancel")) => batches::cancel(cx, &account, id).await,
            _ => Err(no_method(call)),
        },
        (Method::Delete, ["batches", id]) => batches::delete(cx, &account, id).await,
        (Method::Get, ["files"]) if !download => files::list(&req, cx, &account).await,
        (Method::Get, ["files", call]) => match call.split_once(':') {
            Some((file, "download")) => results::download(cx, &account, file).await,
            None if !download => files::get(&req, cx, &account, call).await,
            _ => Err(no_method(call)),
        },
        (Method::Delete, ["files", name]) if !download => files::delete(cx, &account, name).await,
        _ => Err(ApiError::not_found(format!("batchgate does not serve {} {}", req.method(), req.path()))),
    }
}

fn is_version(v: &str) -> bool {
    matches!(v, "v1beta" | "v1")
}

fn no_method(call: &str) -> ApiError {
    ApiError::not_found(format!("no method {call:?} here"))
}

/// `models/{model}:generateContent` (and `streamGenerateContent?alt=sse`):
/// the realtime lane, its body the `GenerateContentRequest` itself.
async fn generate(
    mut req: Request,
    cx: &Ctx<'_>,
    account: String,
    model: &str,
    stream: bool,
) -> Result<Response> {
    let request: serde_json::Value = crate::platform::body::json(
        &mut req,
        cx.settings.max_json_body_bytes,
        "a request",
        "GenerateContentRequest",
    )
    .await?;
    let model = batchgate_core::model::bare(model);
    super::generate::call(cx, account, model, request, stream).await
}

/// `models/{model}:countTokens`, its body read through the cap.
async fn count_tokens(mut req: Request, cx: &Ctx<'_>, account: &str, model: &str) -> Result<Response> {
    let body: serde_json::Value = crate::platform::body::json(
        &mut req,
        cx.settings.max_json_body_bytes,
        "a request",
        "CountTokensRequest",
    )
    .await?;
    super::generate::count_tokens(cx, account, batchgate_core::model::bare(model), body).await
}

/// batchgate's refusal in Gemini's envelope (`dropin::refusal`).
fn refusal(e: &ApiError) -> worker::Result<Response> {
    let (status, envelope) = dropin::refusal(e.status, &e.code, &e.message);
    let resp = Response::from_json(&envelope)?.with_status(status);
    if let Some(secs) = e.retry_after_secs {
        resp.headers().set("retry-after", &secs.to_string())?;
    }
    Ok(resp)
}
