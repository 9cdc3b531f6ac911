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

/// Whether `url` may receive a job's webhook: `https://` with a host outside
/// every private network and not batchgate's own (`own_host`; see
/// `netguard`), at most 2 KB, no whitespace. `local_dev` (`WEBHOOK_ALLOW_HTTP`,
/// for local development only) also allows `http://` and loopback receivers.
/// The error names the problem.
pub fn check_url(url: &str, local_dev: bool, own_host: Option<&str>) -> Result<(), String> {
    let allow_http = local_dev;
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
    let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err("webhook.url needs a host (and no credentials)".into());
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => {
            let (inside, port) = v6.split_once(']').ok_or("webhook.url has an unclosed [IPv6] host")?;
            check_port(port)?;
            format!("[{inside}]")
        }
        None => match authority.rsplit_once(':') {
            Some((h, port)) => {
                check_port(&format!(":{port}"))?;
                h.to_string()
            }
            None => authority.to_string(),
        },
    };
    if local_dev && crate::netguard::is_loopback(&host) {
        return Ok(());
    }
    match crate::netguard::refuse_host(&host, own_host) {
        Some(why) => Err(format!("webhook.url {why}")),
        None => Ok(()),
    }
}

/// An authority's port part: empty, or `:` and 1 to 5 digits.
fn check_port(port: &str) -> Result<(), String> {
    match port.strip_prefix(':') {
        None if port.is_empty() => Ok(()),
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err("webhook.url has an invalid port".into()),
    }
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
    /// ends it; anything else (a redirect included) waits for the schedule's
    /// next delay, and after the last one the delivery is abandoned. The
    /// timeline entry says which, and no more than the status class: the
    /// exact status or error of a URL the user chose would let them probe what
    /// answers where from batchgate's side.
    pub fn record(&mut self, answer: Result<u16, String>, now_ms: u64) -> crate::timeline::Event {
        use crate::timeline::Event;
        self.attempts += 1;
        let result = match &answer {
            Ok(status) => format!("{}xx", status / 100),
            Err(_) => "no answer".into(),
        };
        let detail = serde_json::json!({"attempt": self.attempts, "result": result});
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
        let e = d.record(Err("connect ECONNREFUSED 10.0.0.1".into()), 7_000);
        assert_eq!((e.kind, e.detail["result"].as_str()), ("webhook_failed", Some("no answer")));
        assert!(!e.detail.to_string().contains("10.0.0.1"), "no error text in the timeline: {}", e.detail);
        let e = d.record(Ok(302), 8_000);
        assert_eq!(
            (e.kind, e.detail.to_string()),
            ("webhook_failed", r#"{"attempt":3,"result":"3xx"}"#.to_string())
        );
        let e = d.record(Ok(204), 400_000);
        assert_eq!((e.kind, d.due_at(500_000), d.attempts), ("webhook_delivered", None, 4));

        let mut d = Delivery::new("https://x/hook".into());
        let kinds: Vec<&str> =
            (0..RETRY_SCHEDULE_MS.len()).map(|i| d.record(Ok(503), i as u64).kind).collect();
        assert_eq!(kinds.last(), Some(&"webhook_abandoned"));
        assert_eq!(kinds.iter().filter(|k| **k == "webhook_failed").count(), RETRY_SCHEDULE_MS.len() - 1);
        assert_eq!(d.due_at(0), None);
    }

    #[test]
    fn webhook_urls_are_https_with_a_host() {
        assert_eq!(check_url("https://hooks.example.com/batchgate?x=1", false, None), Ok(()));
        assert_eq!(check_url("https://hooks.example.com:8443/batchgate", false, None), Ok(()));
        assert!(check_url("http://hooks.example.com/", false, None).is_err_and(|e| e.contains("https")));
        assert_eq!(check_url("http://127.0.0.1:9000/hook", true, None), Ok(()));
        assert_eq!(check_url("http://[::1]:9000/hook", true, None), Ok(()));
        assert_eq!(check_url("http://localhost:9000/hook", true, None), Ok(()));
        for bad in [
            "ftp://x",
            "https://",
            "https:///path",
            "https://user:pw@host/",
            "https://a b/",
            "hooks.example.com",
            "https://[::1/",
            "https://host:99999999/",
            "https://host:/",
        ] {
            assert!(check_url(bad, true, None).is_err(), "{bad}");
        }
    }

    /// Issue 17: webhooks could be aimed inside the network.
    #[test]
    fn webhook_urls_inside_a_network_are_refused_even_in_local_development_but_loopback() {
        for bad in [
            "https://127.0.0.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1/",
            "https://[::1]/",
            "https://localhost/",
            "https://2130706433/",
            "https://[::ffff:127.0.0.1]:8443/",
            "https://metadata/",
            "https://0x7f.1/",
            "https://api.localhost./",
        ] {
            let e = check_url(bad, false, None).unwrap_err();
            assert!(e.starts_with("webhook.url"), "{bad}: {e}");
        }
        for inside in
            ["http://10.0.0.1/", "http://192.168.1.1/", "http://[fd00::1]/", "http://169.254.169.254/"]
        {
            assert!(
                check_url(inside, true, None).is_err(),
                "local development allows loopback only: {inside}"
            );
        }
        assert!(
            check_url("https://batchgate.example.com/hook", false, Some("batchgate.example.com")).is_err()
        );
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
