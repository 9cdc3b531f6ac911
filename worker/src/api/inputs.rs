//! `/v1/inputs`: a job's NDJSON sent in resumable parts, for jobs larger than
//! one request body may be (Cloudflare refuses bodies over 100 MB). Each part
//! is validated as it streams (line numbers and keys count across parts) and
//! stored in R2; `POST /v1/jobs {"model", "input": ID}` makes the job.

use super::jobs::input::InputWriter;
use super::jobs::lines::{Fed, Feed};
use super::jobs::submit::invalid;
use super::uploads::drain;
use super::{Ctx, Result, auth, forwarded, ok};
use crate::objects::input::client::{self as input_client, InputRef};
use crate::objects::input::protocol::{
    AdmitPart, CommitPart, DeleteInput, GetInput, Input, InputPhase, PartAdmitted,
};
use crate::platform::bindings;
use crate::platform::clock::now_ms;
use crate::platform::error::ApiError;
use batchgate_core::input::{InputError, MAX_INPUT_BYTES, PartRange, ends_whole};
use batchgate_core::submit::Validator;
use futures_util::StreamExt;
use serde::Deserialize;
use worker::{ByteStream, Request, Response};

#[derive(Deserialize, Default)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct NewInput {
    #[serde(default)]
    size: Option<u64>,
}

/// `POST /v1/inputs` `{"size"?}`: a new input (201, `Location`).
pub async fn open(mut req: Request, cx: &Ctx<'_>) -> Result<Response> {
    let account = auth::account(&req, cx.settings)?;
    let bytes = crate::platform::body::read(&mut req, crate::platform::body::SMALL, "an input").await?;
    let body: NewInput = if bytes.iter().all(u8::is_ascii_whitespace) {
        NewInput::default()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request("invalid_json", format!("expected {{\"size\"?}}: {e}")))?
    };
    if body.size.is_some_and(|s| s == 0 || s > MAX_INPUT_BYTES) {
        return Err(ApiError::bad_request(
            "invalid_size",
            format!("size is the input's bytes: from 1 to {MAX_INPUT_BYTES}"),
        ));
    }
    let input = Input {
        id: input_client::new_id(cx.env)?,
        account,
        phase: InputPhase::Open,
        size: body.size,
        last_ms: now_ms(),
        idle_ms: cx.settings.inputs.idle_ms,
        max_part_bytes: cx.settings.inputs.max_part_bytes,
        max_requests: cx.settings.limits.max_requests,
    };
    let view = input_client::open(cx.env, &input).await?;
    let resp = forwarded(view)?.with_status(201);
    resp.headers().set("location", &crate::paths::input(&input.id))?;
    Ok(resp)
}

/// `PUT /v1/inputs/:id` with `Content-Range` and NDJSON lines: one part.
pub async fn part(mut req: Request, cx: &Ctx<'_>, id: &str) -> Result<Response> {
    let account = auth::account(&req, cx.settings)?;
    let input = InputRef::named(cx.env, id)?;
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let body_len = header("content-length").and_then(|v| v.trim().parse().ok());
    let admitted =
        match PartRange::parse(&header("content-range").unwrap_or_default()).map_err(ApiError::from) {
            Ok(range) => input.admit(&account, &AdmitPart { range, body_len }).await.map(|a| (range, a)),
            Err(e) => Err(e),
        };
    let (range, number, lines_before, key) = match admitted {
        Ok((range, PartAdmitted::Take { number, lines_before, key })) => (range, number, lines_before, key),
        Ok((_, PartAdmitted::Replay(counts))) => {
            drain(&mut req).await;
            return ok(&counts);
        }
        Err(e) => {
            drain(&mut req).await;
            return Err(e);
        }
    };
    let mut writer = InputWriter::at(cx.env, cx.settings, key.clone())?;
    let mut validator = Validator::new(cx.settings.limits.clone()).with_estimate(cx.settings.estimate);
    let mut body = super::jobs::submit::body_stream(&mut req)?;
    let fed = stream_part(&mut body, cx, (range, lines_before), &mut validator, &mut writer).await;
    let checked = fed.and_then(|fed| match validator.finish() {
        Ok(_) => Ok(fed),
        Err((count, errors)) => Err(invalid(count, errors)),
    });
    let fed = match checked {
        Ok(fed) => fed,
        Err(e) => {
            // Read to the end, so the client hears the refusal rather than a reset.
            while let Some(Ok(_)) = body.next().await {}
            writer.abort().await;
            return Err(e);
        }
    };
    writer.finish().await?;
    let commit = CommitPart { number, range, object: key.clone(), lines: fed.lines, keys: fed.keys };
    let answer = input.commit(&account, &commit).await;
    // Refused (a key another part has), or another attempt at this part
    // committed first: this attempt's object is not the part's. After a 5xx
    // the part may have been recorded: its object stays (the input's own
    // deletion removes it if it was not).
    let not_the_part = match &answer {
        Ok((_, kept)) => !kept,
        Err(e) => e.status < 500,
    };
    if not_the_part && let Ok(bucket) = bindings::bucket(cx.env) {
        let _ = bucket.delete(key).await;
    }
    ok(&answer?.0)
}

/// Stream the part's body through the validator, and the bytes as sent into
/// R2 (a job made of the input reads exactly the user's lines again, with its
/// model, so its errors name the same lines). A body longer than its range is
/// refused as soon as it passes it.
async fn stream_part(
    body: &mut ByteStream,
    cx: &Ctx<'_>,
    (range, lines_before): (PartRange, u64),
    validator: &mut Validator,
    writer: &mut InputWriter,
) -> Result<Fed> {
    let mut feed = Feed::new(cx.settings, validator, None).for_part(lines_before);
    let mut sent = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request("unreadable_body", format!("the part broke off: {e}")))?;
        sent = sent.saturating_add(chunk.len() as u64);
        if sent > range.bytes() {
            return Err(ApiError::from(InputError::Length { range: range.bytes(), body: sent }));
        }
        feed.chunk(&chunk).await?;
        writer.push(&chunk);
        writer.flush().await?;
    }
    let fed = feed.finish();
    if fed.bytes != range.bytes() {
        return Err(ApiError::from(InputError::Length { range: range.bytes(), body: fed.bytes }));
    }
    ends_whole(&range, fed.last_byte).map_err(ApiError::from)?;
    Ok(fed)
}

/// `GET /v1/inputs/:id`.
pub async fn get(req: &Request, cx: &Ctx<'_>, id: &str) -> Result<Response> {
    let account = auth::account(req, cx.settings)?;
    forwarded(InputRef::named(cx.env, id)?.forward(&account, &GetInput).await?)
}

/// `DELETE /v1/inputs/:id`: its parts are deleted.
pub async fn delete(req: &Request, cx: &Ctx<'_>, id: &str) -> Result<Response> {
    let account = auth::account(req, cx.settings)?;
    forwarded(InputRef::named(cx.env, id)?.forward(&account, &DeleteInput).await?)
}
