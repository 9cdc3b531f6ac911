//! Scripted faults of every kind, the request log, and signed webhooks.

mod common;
use axum::http::HeaderMap;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn add_fault(emu: &Emu, rule: Value) -> u64 {
    emu.control("/faults", rule).await["id"].as_u64().unwrap()
}

#[tokio::test]
async fn status_faults_skip_then_fire_n_times_with_retry_info() {
    let emu = start(json!({"pendingSecs": 0, "runningSecs": 0})).await;
    let file = emu.upload(&jsonl(1), "jsonl").await;
    let fname = file["name"].as_str().unwrap();
    add_fault(
        &emu,
        json!({"method": "POST", "path": "/v1beta/models/*:batchGenerateContent",
        "kind": "status", "status": 429, "retryDelaySecs": 2, "skip": 1, "times": 2}),
    )
    .await;
    let mut statuses = vec![];
    for _ in 0..4 {
        let r = emu.create_file_batch("gemini-2.5-flash", fname).await;
        statuses.push(r.status().as_u16());
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            let e: Value = r.json().await.unwrap();
            assert_eq!(e["error"]["status"], "RESOURCE_EXHAUSTED");
            assert_eq!(e["error"]["details"][0]["retryDelay"], "2s");
        }
    }
    assert_eq!(statuses, vec![200, 429, 429, 200]);
    let faults: Value =
        emu.http.get(emu.url("/_emulator/faults")).send().await.unwrap().json().await.unwrap();
    assert_eq!(faults["faults"][0]["fired"], 2);

    for status in [500u16, 503] {
        emu.http.delete(emu.url("/_emulator/faults")).send().await.unwrap();
        add_fault(&emu, json!({"path": "/v1beta/batches/*", "kind": "status", "status": status, "times": 1}))
            .await;
        assert_eq!(emu.get("/v1beta/batches/x").await.status().as_u16(), status);
        assert_eq!(emu.get("/v1beta/batches/x").await.status(), StatusCode::NOT_FOUND, "only once");
    }
}

#[tokio::test]
async fn hang_delay_and_removal() {
    let emu = start(json!({})).await;
    let id = add_fault(&emu, json!({"path": "/v1beta/files", "kind": "hang"})).await;
    let client = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    let r = client.get(emu.url("/v1beta/files")).header("x-goog-api-key", KEY).send().await;
    assert!(r.unwrap_err().is_timeout(), "a hung call times out on the client");
    emu.http.delete(emu.url(&format!("/_emulator/faults/{id}"))).send().await.unwrap();
    assert_eq!(emu.get("/v1beta/files").await.status(), StatusCode::OK);

    add_fault(&emu, json!({"path": "/v1beta/files", "kind": "delay", "ms": 300, "times": 1})).await;
    let t = std::time::Instant::now();
    assert_eq!(emu.get("/v1beta/files").await.status(), StatusCode::OK);
    assert!(t.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn truncated_and_slow_downloads() {
    let emu = start(json!({"pendingSecs": 0, "runningSecs": 0})).await;
    let file = emu.upload(&jsonl(200), "jsonl").await;
    let op: Value =
        emu.create_file_batch("gemini-2.5-flash", file["name"].as_str().unwrap()).await.json().await.unwrap();
    let op = emu.wait_done(op["name"].as_str().unwrap()).await;
    let out = op["metadata"]["output"]["responsesFile"].as_str().unwrap().to_string();
    let full = emu.download(&out).await;

    add_fault(&emu, json!({"path": "*:download", "kind": "truncate", "bytes": 1000, "times": 1})).await;
    let r = emu
        .http
        .get(emu.url(&format!("/v1beta/{out}:download?alt=media")))
        .header("x-goog-api-key", KEY)
        .send()
        .await;
    let body = match r {
        Ok(r) => r.bytes().await.map(|b| b.len()),
        Err(e) => Err(e),
    };
    assert!(body.is_err(), "the body breaks off and the client notices: {body:?}");
    assert_eq!(emu.download(&out).await, full, "the next attempt is whole");

    add_fault(&emu, json!({"path": "*:download", "kind": "slow", "bytesPerSec": full.len() * 2, "times": 1}))
        .await;
    let t = std::time::Instant::now();
    assert_eq!(emu.download(&out).await, full);
    assert!(t.elapsed() >= Duration::from_millis(400), "half a second of bytes at that rate");
}

#[tokio::test]
async fn finalize_can_answer_200_with_an_error_body() {
    let emu = start(json!({})).await;
    add_fault(&emu, json!({"path": "/upload/v1beta/files", "kind": "finalizeError", "times": 1})).await;
    let url = emu.start_upload(3, "jsonl", "x").await;
    let r = emu.chunk(&url, 0, b"abc".to_vec(), true).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-goog-upload-status"], "final");
    let body: Value = r.json().await.unwrap();
    assert!(body.get("file").is_none());
    assert_eq!(body["error"]["message"], "Unsupported MIME type: jsonl");

    // The same anomaly when a MIME allowlist is configured.
    emu.control("/config", json!({"allowedMimeTypes": ["application/json"]})).await;
    let url = emu.start_upload(3, "jsonl", "x").await;
    let body: Value = emu.chunk(&url, 0, b"abc".to_vec(), true).await.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("Unsupported MIME type"));
    let url = emu.start_upload(3, "application/json", "x").await;
    let body: Value = emu.chunk(&url, 0, b"abc".to_vec(), true).await.json().await.unwrap();
    assert!(body.get("file").is_some());
}

#[tokio::test]
async fn the_request_log_records_calls_statuses_and_faults() {
    let emu = start(json!({})).await;
    add_fault(&emu, json!({"path": "/v1beta/batches", "kind": "status", "status": 503, "times": 1})).await;
    emu.get("/v1beta/batches?pageSize=5").await;
    emu.get("/v1beta/batches?pageSize=5").await;
    let log = emu.requests().await;
    let calls: Vec<(&str, u64, bool)> = log
        .iter()
        .filter(|r| r["path"] == "/v1beta/batches")
        .map(|r| (r["query"].as_str().unwrap(), r["status"].as_u64().unwrap(), r["fault"].is_string()))
        .collect();
    assert_eq!(calls, vec![("pageSize=5", 503, true), ("pageSize=5", 200, false)]);
}

#[derive(Default)]
struct Received {
    events: Vec<(HeaderMap, String)>,
    fail_first: usize,
}

async fn receiver(state: Arc<Mutex<Received>>) -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let state = Arc::clone(&state);
            async move {
                let mut s = state.lock().unwrap();
                if s.fail_first > 0 {
                    s.fail_first -= 1;
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                s.events.push((headers, body));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hook")
}

#[tokio::test]
async fn terminal_states_fire_signed_webhooks_with_retries() {
    let got = Arc::new(Mutex::new(Received { fail_first: 1, ..Default::default() }));
    let url = receiver(Arc::clone(&got)).await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let emu =
        start(json!({"pendingSecs": 0, "runningSecs": 0, "webhook": {"url": url, "secret": secret}})).await;
    let file = emu.upload(&jsonl(2), "jsonl").await;
    let op: Value =
        emu.create_file_batch("gemini-2.5-flash", file["name"].as_str().unwrap()).await.json().await.unwrap();
    let name = op["name"].as_str().unwrap().to_string();
    emu.wait_done(&name).await;
    for _ in 0..100 {
        if !got.lock().unwrap().events.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (headers, body) = got.lock().unwrap().events.first().cloned().expect("delivered after one retry");
    let h = |n: &str| headers[n].to_str().unwrap().to_string();
    let ts: i64 = h("webhook-timestamp").parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((now - ts).abs() < 60, "a real-time Unix timestamp");
    assert_eq!(h("webhook-signature"), gemini_emulator::webhook::sign(secret, &h("webhook-id"), ts, &body));
    let event: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["type"], "batch.succeeded");
    assert_eq!(event["data"]["name"], name.as_str());
    let deliveries: Value =
        emu.http.get(emu.url("/_emulator/webhooks")).send().await.unwrap().json().await.unwrap();
    assert_eq!(deliveries["deliveries"][0]["attempts"], 2);
    assert_eq!(deliveries["deliveries"][0]["delivered"], true);
}
