//! The realtime routes over HTTP: `generateContent`, `streamGenerateContent`
//! as a JSON array and as server-sent events, and the RPM limit's 429.

mod common;

use common::start;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn request() -> Value {
    json!({"contents": [{"parts": [{"text": "Explain server-sent events briefly, please."}]}]})
}

#[tokio::test]
async fn sse_streams_the_answer_in_chunks_with_the_usage_last() {
    let emu = start(json!({"streamChunks": 4})).await;
    let whole: Value =
        emu.post("/v1beta/models/gemini-2.5-flash:generateContent", request()).await.json().await.unwrap();
    let r = emu.post("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", request()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let body = r.text().await.unwrap();
    let chunks: Vec<Value> = body
        .split("\r\n\r\n")
        .filter(|e| !e.is_empty())
        .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap())
        .collect();
    assert_eq!(chunks.len(), 4);
    assert_eq!(chunks[3]["usageMetadata"], whole["usageMetadata"]);
    let text: String =
        chunks.iter().map(|c| c["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap()).collect();
    assert_eq!(text, whole["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap());

    let array: Value = emu
        .post("/v1beta/models/gemini-2.5-flash:streamGenerateContent", request())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(array.as_array().unwrap().len(), 4, "without alt=sse: one JSON array");
}

#[tokio::test]
async fn calls_past_the_rpm_limit_get_429_with_retry_info() {
    let emu = start(json!({"rpmLimits": {"gemini-2.5-flash": 2}})).await;
    for _ in 0..2 {
        let r = emu.post("/v1beta/models/gemini-2.5-flash:generateContent", request()).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = emu.post("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", request()).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "streams count against the same limit");
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["status"], "RESOURCE_EXHAUSTED");
    let retry = e["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.RetryInfo")
        .expect("a RetryInfo detail");
    let secs: f64 = retry["retryDelay"].as_str().unwrap().trim_end_matches('s').parse().unwrap();
    assert!(secs > 0.0 && secs <= 60.0, "{secs}");
    let other = emu.post("/v1beta/models/gemini-2.5-pro:generateContent", request()).await;
    assert_eq!(other.status(), StatusCode::OK, "another model has its own limit");
}
