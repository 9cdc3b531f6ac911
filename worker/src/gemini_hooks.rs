//! `POST /hooks/gemini`: Gemini's batch webhooks in. A message is accepted
//! only with a valid Standard Webhooks signature under `GEMINI_WEBHOOK_SECRET`
//! and a timestamp within `GEMINI_WEBHOOK_TOLERANCE_SECS`; a `webhook-id`
//! already seen is acknowledged and not acted on again (the JobObject keeps
//! the ids). An accepted event wakes the batch's JobObject, which polls at once
//! instead of on its schedule: the event is a hint, polling stays the truth
//! and the fallback when webhooks are late or never configured.

use crate::config::secret;
use crate::errors::ApiError;
use crate::internal;
use crate::job_object::now_ms;
use batchgate_core::gemini_hook;
use batchgate_core::webhook::{Secret, WebhookError};
use serde_json::json;
use worker::{Env, Method, Request, Response};

type Result<T> = std::result::Result<T, ApiError>;

/// Bodies bigger than this are not batch events.
const MAX_BODY: u64 = crate::body::SMALL;

fn header(req: &Request, name: &str) -> String {
    req.headers().get(name).ok().flatten().unwrap_or_default()
}

pub async fn receive(mut req: Request, env: &Env) -> Result<Response> {
    let Some(text) = secret(env, "GEMINI_WEBHOOK_SECRET") else {
        return Err(ApiError::not_found("Gemini webhooks are not configured (GEMINI_WEBHOOK_SECRET)"));
    };
    let key = Secret::parse(&text)
        .map_err(|_| ApiError::internal("GEMINI_WEBHOOK_SECRET is not a whsec_ secret"))?;
    let body = crate::body::read(&mut req, MAX_BODY, "a batch event").await?;
    let id = header(&req, "webhook-id");
    let (timestamp, signature) = (header(&req, "webhook-timestamp"), header(&req, "webhook-signature"));
    let tolerance = crate::config::num(env, "GEMINI_WEBHOOK_TOLERANCE_SECS", 300) as i64;
    let now_s = (now_ms() / 1000) as i64;
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
    let Some(job) = event.job else {
        // Signed, but about a batch batchgate did not make: nothing to wake.
        return Ok(Response::from_json(&json!({"accepted": true, "woken": false}))?);
    };
    let jobs = env.durable_object("JOBS")?;
    // A display name in our format that is not one of our ids: nothing to wake.
    let Ok(stub) = jobs.id_from_string(&job).and_then(|id| id.get_stub()) else {
        return Ok(Response::from_json(&json!({"accepted": true, "woken": false}))?);
    };
    let wake = json!({"webhookId": id, "batch": event.batch, "kind": event.kind}).to_string();
    let answer: Option<Woken> = internal::call_json(&stub, Method::Post, "/wake", "", Some(wake)).await?;
    let answer = answer.unwrap_or_default();
    Ok(Response::from_json(&json!({"accepted": true, "woken": answer.woken, "duplicate": answer.duplicate}))?)
}

/// The JobObject's answer to `/wake`.
#[derive(Default, serde::Deserialize)]
struct Woken {
    #[serde(default)]
    woken: bool,
    #[serde(default)]
    duplicate: bool,
}
