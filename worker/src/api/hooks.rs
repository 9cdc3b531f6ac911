//! `POST /hooks/gemini`: Gemini's batch webhooks in. A message is accepted
//! only with a valid Standard Webhooks signature under `GEMINI_WEBHOOK_SECRET`
//! and a timestamp within `GEMINI_WEBHOOK_TOLERANCE_SECS`; a `webhook-id`
//! already seen is acknowledged and not acted on again (the JobObject keeps
//! the ids). An accepted event wakes the batch's JobObject, which polls at once
//! instead of on its schedule: the event is a hint, polling stays the truth
//! and the fallback when webhooks are late or never configured.

use super::{Ctx, Result, ok};
use crate::objects::job::client::JobRef;
use crate::objects::job::protocol::Wake;
use crate::platform::body;
use crate::platform::clock::now_ms;
use crate::platform::error::ApiError;
use batchgate_core::gemini_hook;
use batchgate_core::webhook::{Secret, WebhookError};
use serde::Serialize;
use worker::{Request, Response};

#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub(crate) struct Accepted {
    accepted: bool,
    woken: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicate: Option<bool>,
}

const NOTHING_TO_WAKE: Accepted = Accepted { accepted: true, woken: false, duplicate: None };

fn header(req: &Request, name: &str) -> String {
    req.headers().get(name).ok().flatten().unwrap_or_default()
}

pub async fn receive(mut req: Request, cx: &Ctx<'_>) -> Result<Response> {
    let Some(text) = &cx.settings.secrets.gemini_webhook_secret else {
        return Err(ApiError::not_found("Gemini webhooks are not configured (GEMINI_WEBHOOK_SECRET)"));
    };
    let key = Secret::parse(text)
        .map_err(|_| ApiError::internal("GEMINI_WEBHOOK_SECRET is not a whsec_ secret"))?;
    // Bodies bigger than this are not batch events.
    let body = body::read(&mut req, body::SMALL, "a batch event").await?;
    let id = header(&req, "webhook-id");
    let (timestamp, signature) = (header(&req, "webhook-timestamp"), header(&req, "webhook-signature"));
    let tolerance = i64::try_from(cx.settings.gemini_webhook_tolerance_secs).unwrap_or(i64::MAX);
    let now_s = i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX);
    key.verify((&id, &timestamp, &signature), &body, now_s, tolerance).map_err(|e| match e {
        WebhookError::MissingHeader(h) => ApiError::new(400, "missing_header", format!("{h} is required")),
        WebhookError::Timestamp => ApiError::new(
            401,
            "stale_timestamp",
            format!("webhook-timestamp is not within {tolerance} s of now"),
        ),
        _ => ApiError::new(401, "invalid_signature", "webhook-signature does not match"),
    })?;
    let event = gemini_hook::parse(&body).map_err(|m| ApiError::bad_request("invalid_event", m))?;
    // Signed, but about a batch batchgate did not make, or a display name in
    // our format that is not one of our ids: nothing to wake.
    let Some(job) = event.job.and_then(|job| JobRef::named(cx.env, &job).ok()) else {
        return ok(&NOTHING_TO_WAKE);
    };
    let wake = Wake { webhook_id: id, batch: event.batch, kind: event.kind };
    let answer = job.ask("", &wake).await?;
    ok(&Accepted { accepted: true, woken: answer.woken, duplicate: Some(answer.duplicate) })
}
