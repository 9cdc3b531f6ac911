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
    let state = serde_json::to_value(view.state).unwrap_or_default();
    serde_json::json!({
        "type": format!("job.{}", state.as_str().unwrap_or("ended")),
        "timestamp": timestamp,
        "data": view,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
