//! Webhooks out. A job submitted with `webhook: {url}` has its final view
//! POSTed there once it has ended and been charged: `{type: "job.<state>",
//! timestamp, data}`, signed per Standard Webhooks with the account's secret
//! (`GET /v1/account/webhook-secret`). Any answer but 2xx is retried on core's
//! schedule (about a day) through the JobObject's alarm, under the same
//! `webhook-id`, so receivers can drop duplicates. Every attempt is in the timeline.

use super::store::Store;
use crate::objects::account::client as accounts;
use crate::platform::config::Settings;
use crate::platform::gemini::with_timeout;
use batchgate_core::gemini::timestamp::format_nanos;
use batchgate_core::view::JobView;
use batchgate_core::webhook::{Delivery, Secret, message_id, payload};
use worker::{AbortController, Env, Fetch, Headers, Method, Request, RequestInit, RequestRedirect, Result};

/// Where the job's webhook delivery is kept.
pub const DELIVERY: &str = "webhook";

/// How long one delivery may take before it counts as failed.
const TIMEOUT_MS: u64 = 15_000;

/// Deliver the ended job's webhook if one is due; when the next attempt is due, if any.
pub async fn run(
    env: &Env,
    settings: &Settings,
    store: &Store,
    account: &str,
    view: &JobView,
    now_ms: u64,
) -> Result<Option<u64>> {
    let Some(mut d) = store.get::<Delivery>(DELIVERY)? else { return Ok(None) };
    let Some(due) = d.due_at(now_ms) else { return Ok(None) };
    if due > now_ms {
        return Ok(Some(due));
    }
    // Checked again at each attempt: the rules may have grown since the submit.
    let answer = match batchgate_core::webhook::check_url(&d.url, settings.webhook_allow_http, None) {
        Ok(()) => send(env, account, &d.url, &message_id(view), view, now_ms).await,
        Err(e) => Err(worker::Error::RustError(e)),
    };
    let event = d.record(answer.map_err(|e| e.to_string()), now_ms);
    store.put(DELIVERY, &d)?;
    store.add_event(now_ms, &event)?;
    Ok(d.due_at(now_ms))
}

/// POST the signed payload; the receiver's status.
async fn send(env: &Env, account: &str, url: &str, id: &str, view: &JobView, now_ms: u64) -> Result<u16> {
    let failed = |e: String| worker::Error::RustError(e);
    let secret = accounts::webhook_secret(env, account).await.map_err(|e| failed(format!("{e:?}")))?;
    let secret = Secret::parse(&secret).map_err(|e| failed(format!("the account's secret: {e:?}")))?;
    let now_s = (now_ms / 1000) as i64;
    let body = payload(view, &format_nanos(now_s.saturating_mul(1_000_000_000))).to_string();
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    headers.set("webhook-id", id)?;
    headers.set("webhook-timestamp", &now_s.to_string())?;
    headers.set("webhook-signature", &secret.sign(id, now_s, body.as_bytes()))?;
    headers.set("user-agent", "batchgate-webhooks/1")?;
    let mut init = RequestInit::new();
    // A redirect is a failed attempt, never followed: it could lead anywhere.
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(body.into()))
        .with_redirect(RequestRedirect::Manual);
    let request = Request::new_with_init(url, &init)?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    match with_timeout(TIMEOUT_MS, fetch.send_with_signal(&signal), || controller.abort()).await {
        Some(resp) => Ok(resp?.status_code()),
        None => Err(worker::Error::RustError(format!("no answer within {} s", TIMEOUT_MS / 1000))),
    }
}
