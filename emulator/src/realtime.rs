//! The realtime calls: `generateContent` and `streamGenerateContent` (one JSON
//! array, or server-sent events with `alt=sse`), under a requests-per-minute
//! limit per API key and model as Gemini enforces one (`429 RESOURCE_EXHAUSTED`
//! with a `RetryInfo` saying when a slot frees).

use crate::error::{ApiError, ApiResult, parse_json};
use crate::fields::check_generate_request;
use crate::{Emulator, lock};
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// Emulated nanoseconds in the window an RPM limit counts over.
const MINUTE_NS: i64 = 60_000_000_000;

/// Admission times per (API key, model) within the last emulated minute.
#[derive(Default)]
pub struct RpmLog {
    calls: HashMap<(String, String), VecDeque<i64>>,
}

impl RpmLog {
    /// Count a call now, or say in how many emulated seconds one may be made.
    fn admit(&mut self, key: &str, model: &str, limit: u64, now_ns: i64) -> Result<(), f64> {
        let log = self.calls.entry((key.to_string(), model.to_string())).or_default();
        while log.front().is_some_and(|t| *t <= now_ns - MINUTE_NS) {
            log.pop_front();
        }
        if (log.len() as u64) < limit {
            log.push_back(now_ns);
            return Ok(());
        }
        let oldest = log.front().copied().unwrap_or(now_ns);
        Err(((oldest + MINUTE_NS - now_ns).max(1_000_000) as f64 / 1e9).ceil())
    }

    pub fn clear(&mut self) {
        self.calls.clear();
    }
}

fn key_of(headers: &HeaderMap) -> String {
    headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()).unwrap_or_default().trim().to_string()
}

impl Emulator {
    /// Check the request and count it against the model's RPM limit.
    fn realtime_call(
        &self,
        model: &str,
        method: &str,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> ApiResult<Value> {
        self.known_model(model, method)?;
        let request = parse_json(body)?;
        check_generate_request(&request, "")?;
        if let Some(limit) = self.config().rpm_limit(model) {
            let now = self.now_ns();
            if let Err(secs) = lock(&self.rpm).admit(&key_of(headers), model, limit, now) {
                return Err(ApiError::exhausted(format!(
                    "Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_requests, \
                     limit: {limit}, model: {model}. Please retry in {secs}s."
                ))
                .with_detail(json!({
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": format!("{secs}s"),
                })));
            }
        }
        Ok(request)
    }

    pub fn generate_content(&self, model: &str, headers: &HeaderMap, body: &Bytes) -> ApiResult<Response> {
        let request = self.realtime_call(model, "generateContent", headers, body)?;
        let mut resp = crate::model::respond(model, &request).map_err(|e| ApiError::invalid(e.0))?;
        if self.config().omit_usage
            && let Some(answer) = resp.as_object_mut()
        {
            answer.remove("usageMetadata");
        }
        Ok(axum::Json(resp).into_response())
    }

    /// The answer in `stream_chunks` pieces: text split evenly, every chunk
    /// with the prompt's usage, the last with the whole usage and the finish
    /// reason (as Gemini streams). `alt=sse` sends them as `data:` events, a
    /// `stream_chunk_delay_ms` apart; otherwise as one JSON array.
    pub fn stream(&self, model: &str, sse: bool, headers: &HeaderMap, body: &Bytes) -> ApiResult<Response> {
        let request = self.realtime_call(model, "streamGenerateContent", headers, body)?;
        let whole = crate::model::respond(model, &request).map_err(|e| ApiError::invalid(e.0))?;
        let cfg = self.config();
        let chunks = split(&whole, cfg.stream_chunks.max(1));
        if !sse {
            return Ok(axum::Json(Value::Array(chunks)).into_response());
        }
        let delay = Duration::from_millis(cfg.stream_chunk_delay_ms);
        let events =
            futures_util::stream::iter(chunks.into_iter().enumerate()).then(move |(i, c)| async move {
                if i > 0 {
                    tokio::time::sleep(delay).await;
                }
                Ok::<_, std::convert::Infallible>(Bytes::from(format!("data: {c}\r\n\r\n")))
            });
        Ok(([(header::CONTENT_TYPE, "text/event-stream")], Body::from_stream(events)).into_response())
    }
}

use futures_util::StreamExt;

/// Cut a whole response into `n` streamed chunks.
fn split(whole: &Value, n: usize) -> Vec<Value> {
    let candidate = &whole["candidates"][0];
    let parts = candidate["content"]["parts"].as_array().cloned().unwrap_or_default();
    let text: Vec<char> = parts.iter().filter_map(|p| p["text"].as_str()).flat_map(str::chars).collect();
    let media: Vec<Value> = parts.iter().filter(|p| p.get("text").is_none()).cloned().collect();
    let usage = &whole["usageMetadata"];
    let prompt_only = json!({
        "promptTokenCount": usage["promptTokenCount"],
        "totalTokenCount": usage["promptTokenCount"],
    });
    let per = text.len().div_ceil(n).max(1);
    (0..n)
        .map(|i| {
            let piece: String = text.iter().skip(i * per).take(per).collect();
            let last = i + 1 == n;
            let mut parts = vec![json!({"text": piece})];
            if last {
                parts.extend(media.iter().cloned());
            }
            let mut c = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
            if last {
                c["finishReason"] = candidate["finishReason"].clone();
            }
            json!({
                "candidates": [c],
                "usageMetadata": if last { usage.clone() } else { prompt_only.clone() },
                "modelVersion": whole["modelVersion"],
                "responseId": whole["responseId"],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rpm_log_admits_the_limit_per_minute_and_says_when_a_slot_frees() {
        let mut log = RpmLog::default();
        for i in 0..3 {
            assert!(log.admit("k", "m", 3, i * 1_000_000_000).is_ok());
        }
        assert_eq!(log.admit("k", "m", 3, 10_000_000_000), Err(50.0), "the first call leaves at 60 s");
        assert!(log.admit("other", "m", 3, 10_000_000_000).is_ok(), "each key has its own limit");
        assert!(log.admit("k", "m2", 3, 10_000_000_000).is_ok(), "and each model");
        assert!(log.admit("k", "m", 3, MINUTE_NS + 1).is_ok());
    }

    #[test]
    fn streamed_chunks_carry_the_whole_text_once_and_the_usage_last() {
        let req =
            json!({"contents": [{"parts": [{"text": "a fairly long prompt about streaming answers"}]}]});
        let whole = crate::model::respond("gemini-2.5-flash", &req).unwrap();
        let chunks = split(&whole, 4);
        assert_eq!(chunks.len(), 4);
        let text: String = chunks
            .iter()
            .map(|c| c["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap())
            .collect();
        assert_eq!(text, whole["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap());
        assert_eq!(chunks[3]["usageMetadata"], whole["usageMetadata"]);
        assert!(chunks[0]["usageMetadata"].get("candidatesTokenCount").is_none());
        assert!(chunks[0]["candidates"][0].get("finishReason").is_none());
    }
}
