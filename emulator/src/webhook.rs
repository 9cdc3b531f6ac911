//! Terminal-state notifications signed per the Standard Webhooks spec, as
//! Gemini's static webhooks are: `webhook-id`, `webhook-timestamp` (Unix seconds)
//! and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed
//! with the base64-decoded part of a `whsec_` secret. Failed deliveries are
//! retried with doubling delays.
//!
//! The body is `{"type": "batch.succeeded", "timestamp": ..., "data": {name, state,
//! model, displayName}}` — Standard Webhooks' envelope; Google does not publish
//! the exact data fields, so the batch name (enough to `GET` it) is the contract.

use crate::store::BatchEntry;
use crate::{Emulator, lock};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use batchgate_core::gemini::BatchState;
use batchgate_core::gemini::timestamp::format_nanos;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub webhook_id: String,
    pub event_type: String,
    pub batch: String,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub delivered: bool,
}

pub struct Event {
    pub id: String,
    pub kind: String,
    pub batch: String,
    pub body: Value,
}

pub fn event_type(state: &BatchState) -> &'static str {
    match state {
        BatchState::Succeeded => "batch.succeeded",
        BatchState::Cancelled => "batch.cancelled",
        BatchState::Expired => "batch.expired",
        _ => "batch.failed",
    }
}

pub fn event_for(b: &BatchEntry, now_ns: i64) -> Event {
    let state = b.state();
    let kind = event_type(&state).to_string();
    let name = format!("batches/{}", b.id);
    Event {
        id: format!("msg_{}_{}", b.id, b.seq),
        kind: kind.clone(),
        batch: name.clone(),
        body: json!({
            "type": kind,
            "timestamp": format_nanos(now_ns),
            "data": {"name": name, "state": state.as_wire(), "model": format!("models/{}", b.model),
                     "displayName": b.display_name},
        }),
    }
}

/// The secret's key bytes: base64 after `whsec_`, or the raw text otherwise.
pub fn secret_key(secret: &str) -> Vec<u8> {
    match secret.strip_prefix("whsec_") {
        Some(b64) => B64.decode(b64).unwrap_or_else(|_| b64.as_bytes().to_vec()),
        None => secret.as_bytes().to_vec(),
    }
}

/// `v1,<base64 signature>` over `id.timestamp.body`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(&secret_key(secret)) {
        Ok(m) => m,
        Err(_) => return String::new(), // HMAC takes keys of any length; unreachable in practice
    };
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

pub async fn deliver(emu: Arc<Emulator>, hook: crate::config::WebhookConfig, event: Event) {
    let body = event.body.to_string();
    let index = {
        let mut log = lock(&emu.webhooks);
        log.push(Delivery {
            webhook_id: event.id.clone(),
            event_type: event.kind.clone(),
            batch: event.batch.clone(),
            attempts: 0,
            last_status: None,
            delivered: false,
        });
        log.len() - 1
    };
    let mut delay = Duration::from_millis(250);
    for _ in 0..hook.max_attempts.max(1) {
        // Real time: receivers check the timestamp against their own clock.
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let result = emu
            .http
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("webhook-id", &event.id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sign(&hook.secret, &event.id, ts, &body))
            .body(body.clone())
            .send()
            .await;
        let status = result.as_ref().ok().map(|r| r.status().as_u16());
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        if let Some(d) = lock(&emu.webhooks).get_mut(index) {
            d.attempts += 1;
            d.last_status = status;
            d.delivered = ok;
        }
        if ok {
            return;
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_reference_vector() {
        // From the Standard Webhooks spec's reference implementations.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, r#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
