//! Webhooks out. A job submitted with `webhook: {url}` has its final view
//! POSTed there once it has ended and been charged: `{type: "job.<state>",
//! timestamp, data}`, signed per Standard Webhooks with the account's secret
//! (`GET /v1/account/webhook-secret`). Any answer but 2xx is retried on core's
//! schedule (about a day) through the JobObject's alarm, under the same
//! `webhook-id`, so receivers can drop duplicates. Every attempt is in the timeline.

use crate::accounts;
use crate::gemini::with_timeout;
use crate::job_store::Store;
use batchgate_core::gemini::timestamp::format_nanos;
use batchgate_core::timeline::Event;
use batchgate_core::view::JobView;
use batchgate_core::webhook::{RETRY_SCHEDULE_MS, Secret, payload};
use serde::{Deserialize, Serialize};
use serde_json::json;
use worker::{AbortController, Env, Fetch, Headers, Method, Request, RequestInit, Result};

/// How long one delivery may take before it counts as failed.
const TIMEOUT_MS: u64 = 15_000;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub url: String,
    pub attempts: u32,
    /// When the next attempt is due (0: not yet scheduled, the job is running).
    pub next_at_ms: u64,
    pub done: bool,
}

impl Delivery {
    pub fn new(url: String) -> Delivery {
        Delivery { url, attempts: 0, next_at_ms: 0, done: false }
    }
}

/// Deliver the ended job's webhook if one is due; when the next attempt is due, if any.
pub async fn run(
    env: &Env,
    store: &Store,
    account: &str,
    view: &JobView,
    now_ms: u64,
) -> Result<Option<u64>> {
    let Some(mut d) = store.get::<Delivery>("webhook")? else { return Ok(None) };
    if d.done {
        return Ok(None);
    }
    if d.next_at_ms == 0 {
        d.next_at_ms = now_ms;
    }
    if d.next_at_ms > now_ms {
        return Ok(Some(d.next_at_ms));
    }
    let id = format!("{}-{}", view.id, serde_json::to_value(view.state)?.as_str().unwrap_or("ended"));
    let answer = send(env, account, &d.url, &id, view, now_ms).await;
    d.attempts += 1;
    let event = match &answer {
        Ok(status) if (200..300).contains(status) => {
            d.done = true;
            Event { kind: "webhook_delivered", detail: json!({"attempt": d.attempts, "status": status}) }
        }
        _ => {
            let detail = match &answer {
                Ok(status) => json!({"attempt": d.attempts, "status": status}),
                Err(e) => json!({"attempt": d.attempts, "error": e.to_string()}),
            };
            match RETRY_SCHEDULE_MS.get(d.attempts as usize) {
                Some(delay) => {
                    d.next_at_ms = now_ms + delay;
                    Event { kind: "webhook_failed", detail }
                }
                None => {
                    d.done = true;
                    Event { kind: "webhook_abandoned", detail }
                }
            }
        }
    };
    store.put("webhook", &d)?;
    store.add_event(now_ms, &event)?;
    Ok((!d.done).then_some(d.next_at_ms))
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
    init.with_method(Method::Post).with_headers(headers).with_body(Some(body.into()));
    let request = Request::new_with_init(url, &init)?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    match with_timeout(TIMEOUT_MS, fetch.send_with_signal(&signal), || controller.abort()).await {
        Some(resp) => Ok(resp?.status_code()),
        None => Err(worker::Error::RustError(format!("no answer within {} s", TIMEOUT_MS / 1000))),
    }
}
