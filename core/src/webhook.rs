//! Standard Webhooks (standardwebhooks.com) signatures, for the webhooks
//! batchgate sends (signed with an account's secret) and the ones it receives
//! from Gemini: `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`
//! under a `whsec_<base64>` secret. Also the delivery retry schedule.

use crate::auth::same_secret;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const PREFIX: &str = "whsec_";

/// Delays before each delivery attempt (the first at once), as Standard
/// Webhooks suggests: about a day of retries in all.
pub const RETRY_SCHEDULE_MS: &[u64] =
    &[0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000];

/// Why a received webhook was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookError {
    MalformedSecret,
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not a number or is outside the tolerance.
    Timestamp,
    Signature,
}

/// A signing secret: `whsec_` and base64 of its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn parse(text: &str) -> Result<Secret, WebhookError> {
        let b64 = text.strip_prefix(PREFIX).unwrap_or(text);
        let bytes = STANDARD.decode(b64).map_err(|_| WebhookError::MalformedSecret)?;
        if bytes.len() < 16 {
            return Err(WebhookError::MalformedSecret);
        }
        Ok(Secret(bytes))
    }

    pub fn from_bytes(bytes: &[u8]) -> Secret {
        Secret(bytes.to_vec())
    }

    pub fn encode(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// The `webhook-signature` value for a message.
    pub fn sign(&self, id: &str, timestamp_s: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(id, timestamp_s, body)))
    }

    fn mac(&self, id: &str, timestamp_s: i64, body: &[u8]) -> Vec<u8> {
        // HMAC accepts a key of any length, so this cannot fail.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => return Vec::new(),
        };
        mac.update(format!("{id}.{timestamp_s}.").as_bytes());
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }

    /// Check a received message: the timestamp within `tolerance_s` of `now_s`
    /// (replays of old messages fail), and one of the space-separated `v1,`
    /// signatures matching (compared in constant time).
    pub fn verify(
        &self,
        headers: (&str, &str, &str),
        body: &[u8],
        now_s: i64,
        tolerance_s: i64,
    ) -> Result<(), WebhookError> {
        let (id, timestamp, signatures) = headers;
        if id.is_empty() {
            return Err(WebhookError::MissingHeader("webhook-id"));
        }
        if signatures.is_empty() {
            return Err(WebhookError::MissingHeader("webhook-signature"));
        }
        let ts: i64 = timestamp.trim().parse().map_err(|_| WebhookError::Timestamp)?;
        if (now_s - ts).abs() > tolerance_s {
            return Err(WebhookError::Timestamp);
        }
        let expected = STANDARD.encode(self.mac(id, ts, body));
        let matches = signatures
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .any(|candidate| same_secret(candidate, &expected));
        if matches { Ok(()) } else { Err(WebhookError::Signature) }
    }
}

/// Whether `url` may receive a job's webhook: `https://` with a host (or
/// `http://` when the operator allows it, for local development), at most 2 KB,
/// no whitespace. The error names the problem.
pub fn check_url(url: &str, allow_http: bool) -> Result<(), String> {
    let rest = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(r), _) => r,
        (None, Some(r)) if allow_http => r,
        (None, Some(_)) => return Err("webhook.url must use https".into()),
        _ => return Err("webhook.url must be an https:// URL".into()),
    };
    if url.len() > 2048 {
        return Err("webhook.url is longer than 2048 characters".into());
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("webhook.url contains whitespace".into());
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains('@') {
        return Err("webhook.url needs a host (and no credentials)".into());
    }
    Ok(())
}

/// The body of a job's webhook: `{type, timestamp, data}` with the final job view.
pub fn payload(view: &crate::view::JobView, timestamp: &str) -> serde_json::Value {
    serde_json::json!({
        "type": format!("job.{}", state_name(view)),
        "timestamp": timestamp,
        "data": view,
    })
}

/// The `webhook-id` of a job's terminal event: the same on every attempt.
pub fn message_id(view: &crate::view::JobView) -> String {
    format!("{}-{}", view.id, state_name(view))
}

fn state_name(view: &crate::view::JobView) -> String {
    let state = serde_json::to_value(view.state).unwrap_or_default();
    state.as_str().unwrap_or("ended").to_string()
}

/// A job's webhook: where it goes and how its deliveries went.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub url: String,
    pub attempts: u32,
    /// When the next attempt is due; 0 until the job ends (then: at once).
    pub next_at_ms: u64,
    pub done: bool,
}

impl Delivery {
    pub fn new(url: String) -> Delivery {
        Delivery { url, attempts: 0, next_at_ms: 0, done: false }
    }

    /// When the next attempt is due, if one is owed (the job has ended).
    pub fn due_at(&self, now_ms: u64) -> Option<u64> {
        (!self.done).then_some(if self.next_at_ms == 0 { now_ms } else { self.next_at_ms })
    }

    /// Record an attempt: the receiver's status, or why there was none. A 2xx
    /// ends it; anything else waits for the schedule's next delay, and after
    /// the last one the delivery is abandoned. The timeline entry says which.
    pub fn record(&mut self, answer: Result<u16, String>, now_ms: u64) -> crate::timeline::Event {
        use crate::timeline::Event;
        self.attempts += 1;
        let detail = match &answer {
            Ok(status) => serde_json::json!({"attempt": self.attempts, "status": status}),
            Err(e) => serde_json::json!({"attempt": self.attempts, "error": e}),
        };
        if answer.as_ref().is_ok_and(|s| (200..300).contains(s)) {
            self.done = true;
            return Event { kind: "webhook_delivered", detail };
        }
        match RETRY_SCHEDULE_MS.get(self.attempts as usize) {
            Some(delay) => {
                self.next_at_ms = now_ms + delay;
                Event { kind: "webhook_failed", detail }
            }
            None => {
                self.done = true;
                Event { kind: "webhook_abandoned", detail }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_end_on_a_2xx_and_give_up_after_the_schedule() {
        let mut d = Delivery::new("https://x/hook".into());
        assert_eq!(d.due_at(1_000), Some(1_000), "due as soon as the job has ended");
        let e = d.record(Ok(500), 1_000);
        assert_eq!((e.kind, d.due_at(2_000)), ("webhook_failed", Some(1_000 + RETRY_SCHEDULE_MS[1])));
        let e = d.record(Err("refused".into()), 7_000);
        assert_eq!((e.kind, e.detail["error"].as_str()), ("webhook_failed", Some("refused")));
        let e = d.record(Ok(204), 400_000);
        assert_eq!((e.kind, d.due_at(500_000), d.attempts), ("webhook_delivered", None, 3));

        let mut d = Delivery::new("https://x/hook".into());
        let kinds: Vec<&str> =
            (0..RETRY_SCHEDULE_MS.len()).map(|i| d.record(Ok(503), i as u64).kind).collect();
        assert_eq!(kinds.last(), Some(&"webhook_abandoned"));
        assert_eq!(kinds.iter().filter(|k| **k == "webhook_failed").count(), RETRY_SCHEDULE_MS.len() - 1);
        assert_eq!(d.due_at(0), None);
    }

    #[test]
    fn webhook_urls_are_https_with_a_host() {
        assert_eq!(check_url("https://hooks.example.com/batchgate?x=1", false), Ok(()));
        assert!(check_url("http://hooks.example.com/", false).is_err_and(|e| e.contains("https")));
        assert_eq!(check_url("http://127.0.0.1:9000/hook", true), Ok(()));
        for bad in [
            "ftp://x",
            "https://",
            "https:///path",
            "https://user:pw@host/",
            "https://a b/",
            "hooks.example.com",
        ] {
            assert!(check_url(bad, true).is_err(), "{bad}");
        }
    }

    // The reference vector of the Standard Webhooks libraries.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;

    fn secret() -> Secret {
        Secret::parse(SECRET).unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn signs_like_the_reference_libraries() {
        assert_eq!(secret().sign(ID, TS, BODY), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(secret().encode(), SECRET);
    }

    #[test]
    fn verifies_and_refuses_what_it_should() {
        let s = secret();
        let sig = s.sign(ID, TS, BODY);
        assert_eq!(s.verify((ID, "1614265330", &sig), BODY, TS + 10, 300), Ok(()));
        let several = format!("v1,bm90IGl0 {sig}");
        assert_eq!(s.verify((ID, "1614265330", &several), BODY, TS, 300), Ok(()), "any listed signature");
        assert_eq!(s.verify((ID, "1614265330", &sig), b"{}", TS, 300), Err(WebhookError::Signature));
        assert_eq!(s.verify(("msg_other", "1614265330", &sig), BODY, TS, 300), Err(WebhookError::Signature));
        assert_eq!(s.verify((ID, "1614265330", &sig), BODY, TS + 301, 300), Err(WebhookError::Timestamp));
        assert_eq!(s.verify((ID, "soon", &sig), BODY, TS, 300), Err(WebhookError::Timestamp));
        assert_eq!(
            s.verify(("", "1614265330", &sig), BODY, TS, 300),
            Err(WebhookError::MissingHeader("webhook-id"))
        );
        let other = Secret::from_bytes(&[7; 32]);
        assert_eq!(other.verify((ID, "1614265330", &sig), BODY, TS, 300), Err(WebhookError::Signature));
        assert_eq!(Secret::parse("whsec_short"), Err(WebhookError::MalformedSecret));
    }

    #[test]
    fn retries_last_about_a_day() {
        let total: u64 = RETRY_SCHEDULE_MS.iter().sum();
        assert!(total > 20 * 3_600_000 && total < 30 * 3_600_000, "{total}");
        assert_eq!(RETRY_SCHEDULE_MS.first(), Some(&0), "the first attempt is immediate");
    }
}
