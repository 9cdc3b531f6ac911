//! Batches over HTTP: every state path, results, quotas and bad input.

mod common;
use common::*;
use gemini_emulator::model;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn assert_rfc3339_nanos(v: &Value) {
    let s = v.as_str().unwrap();
    let frac = s.split('.').nth(1).unwrap();
    assert_eq!(frac.len(), 10, "nine fractional digits and Z: {s}");
    assert!(s.ends_with('Z'));
}

#[tokio::test]
async fn file_batch_goes_pending_running_succeeded_with_exact_wire_shape() {
    let emu = start(json!({"pendingSecs": 60, "runningSecs": 600})).await;
    let input = jsonl(20);
    let file = emu.upload(&input, "jsonl").await;
    let r = emu.create_file_batch("gemini-2.5-flash", file["name"].as_str().unwrap()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let op: Value = r.json().await.unwrap();
    let name = op["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("batches/") && name.len() == "batches/".len() + 36);
    let md = &op["metadata"];
    assert_eq!(md["@type"], "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch");
    assert_eq!(md["state"], "BATCH_STATE_PENDING");
    assert_eq!(md["name"], name.as_str());
    assert_eq!(md["model"], "models/gemini-2.5-flash");
    assert_eq!(md["inputConfig"]["fileName"], file["name"]);
    assert_eq!(md["batchStats"], json!({"requestCount": "20", "pendingRequestCount": "20"}));
    assert!(op.get("done").is_none(), "done is absent until terminal");
    assert_rfc3339_nanos(&md["createTime"]);

    emu.advance(61.0).await;
    let op = emu.batch(&name).await;
    assert_eq!(op["metadata"]["state"], "BATCH_STATE_RUNNING");
    assert!(op.get("done").is_none());

    emu.advance(600.0).await;
    let op = emu.wait_done(&name).await;
    let md = &op["metadata"];
    assert_eq!(md["state"], "BATCH_STATE_SUCCEEDED");
    assert_eq!(md["batchStats"], json!({"requestCount": "20", "successfulRequestCount": "20"}));
    assert_rfc3339_nanos(&md["endTime"]);
    let out = md["output"]["responsesFile"].as_str().unwrap();
    assert_eq!(out, format!("files/batch-{}", &name["batches/".len()..]));
    assert_eq!(op["response"]["responsesFile"], out);
    assert_eq!(
        op["response"]["@type"],
        "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"
    );

    let results_file: Value = emu.get(&format!("/v1beta/{out}")).await.json().await.unwrap();
    assert_eq!(results_file["source"], "GENERATED");

    // Both download paths serve the same bytes; every key is there with its usage.
    let a = emu.download(out).await;
    let b = emu.get(&format!("/download/v1beta/{out}:download?alt=media")).await.text().await.unwrap();
    assert_eq!(a, b);
    let lines = parse_lines(&a);
    assert_eq!(lines.len(), 20);
    for line in &lines {
        let key = line["key"].as_str().unwrap();
        let i: usize = key[1..].parse().unwrap();
        let request = json!({"contents": [{"parts": [{"text": format!("question number {i}")}]}]});
        let u = model::usage("gemini-2.5-flash", &request).unwrap();
        let usage = &line["response"]["usageMetadata"];
        assert_eq!(usage["promptTokenCount"], u.prompt);
        assert_eq!(usage["candidatesTokenCount"], u.candidates);
        assert_eq!(usage["thoughtsTokenCount"], u.thoughts);
        assert_eq!(usage["totalTokenCount"], u.total());
    }

    // Range requests let a client resume a download.
    let r = emu
        .http
        .get(emu.url(&format!("/v1beta/{out}:download?alt=media")))
        .header("x-goog-api-key", KEY)
        .header("Range", "bytes=10-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.text().await.unwrap(), a[10..]);
}

#[tokio::test]
async fn inline_batch_answers_inline_with_metadata_and_lists_without_results() {
    let emu = start(json!({"pendingSecs": 1, "runningSecs": 1})).await;
    let body = json!({"batch": {"displayName": "inline", "inputConfig": {"requests": {"requests": [
        {"request": {"contents": [{"parts": [{"text": "one"}]}]}, "metadata": {"key": "a"}},
        {"request": {"contents": [{"parts": [{"text": "two"}]}], "generationConfig": {"maxOutputTokens": 3}}, "metadata": {"key": "b"}}
    ]}}}});
    let op: Value = emu
        .post("/v1beta/models/gemini-2.5-flash-lite:batchGenerateContent", body)
        .await
        .json()
        .await
        .unwrap();
    let name = op["name"].as_str().unwrap().to_string();
    assert!(op["metadata"].get("inputConfig").is_none(), "inline input is not echoed");
    emu.advance(5.0).await;
    let op = emu.wait_done(&name).await;
    let items = op["metadata"]["output"]["inlinedResponses"]["inlinedResponses"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1]["metadata"]["key"], "b");
    assert_eq!(items[1]["response"]["usageMetadata"]["candidatesTokenCount"], 3);
    assert!(items[0]["response"]["usageMetadata"].get("thoughtsTokenCount").is_none(), "lite does not think");
    assert_eq!(op["response"]["inlinedResponses"]["inlinedResponses"].as_array().unwrap().len(), 2);

    let list: Value = emu.get("/v1beta/batches?pageSize=10").await.json().await.unwrap();
    let listed = &list["operations"][0];
    assert_eq!(listed["name"], name.as_str());
    assert!(listed["metadata"].get("output").is_none(), "listings leave inline results out");
}

#[tokio::test]
async fn shuffled_results_keep_every_key() {
    let emu = start(json!({"shuffleResults": true, "seed": 3, "pendingSecs": 0, "runningSecs": 0})).await;
    let file = emu.upload(&jsonl(40), "jsonl").await;
    let op: Value =
        emu.create_file_batch("gemini-2.5-flash", file["name"].as_str().unwrap()).await.json().await.unwrap();
    let op = emu.wait_done(op["name"].as_str().unwrap()).await;
    let lines = parse_lines(&emu.download(op["metadata"]["output"]["responsesFile"].as_str().unwrap()).await);
    let keys: Vec<String> = lines.iter().map(|l| l["key"].as_str().unwrap().to_string()).collect();
    let expected: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    assert_ne!(keys, expected, "out of order");
    assert_eq!(keys.iter().cloned().collect::<BTreeSet<_>>(), expected.into_iter().collect::<BTreeSet<_>>());
}

#[tokio::test]
async fn per_line_errors_by_key_by_control_and_by_rate() {
    let emu = start(json!({"failKeys": ["k1"], "pendingSecs": 100, "runningSecs": 0})).await;
    let file = emu.upload(&jsonl(10), "jsonl").await;
    let op: Value =
        emu.create_file_batch("gemini-2.5-flash", file["name"].as_str().unwrap()).await.json().await.unwrap();
    let name = op["name"].as_str().unwrap().to_string();
    let id = &name["batches/".len()..];
    emu.control(&format!("/batches/{id}/fail-lines"), json!({"keys": ["k7"]})).await;
    emu.advance(100.0).await;
    let op = emu.wait_done(&name).await;
    assert_eq!(
        op["metadata"]["batchStats"],
        json!({"requestCount": "10", "successfulRequestCount": "8", "failedRequestCount": "2"})
    );
    let lines = parse_lines(&emu.download(op["metadata"]["output"]["responsesFile"].as_str().unwrap()).await);
    let failed: BTreeSet<&str> =
        lines.iter().filter(|l| l.get("error").is_some()).map(|l| l["key"].as_str().unwrap()).collect();
    assert_eq!(failed, ["k1", "k7"].into_iter().collect());
    let err = &lines.iter().find(|l| l["key"] == "k1").unwrap()["error"];
    assert_eq!(err["code"], 13);
    assert!(err.get("status").is_none(), "per-item errors carry no status string");

    // A seeded rate fails the same lines every time.
    emu.control("/config", json!({"failKeys": [], "lineErrorRate": 0.5, "seed": 11, "pendingSecs": 0})).await;
    let mut outcomes = vec![];
    for _ in 0..2 {
        let op: Value = emu
            .create_file_batch("gemini-2.5-flash", file["name"].as_str().unwrap())
            .await
            .json()
            .await
            .unwrap();
        let op = emu.wait_done(op["name"].as_str().unwrap()).await;
        outcomes.push(op["metadata"]["batchStats"].clone());
    }
    assert_eq!(outcomes[0], outcomes[1]);
    assert!(outcomes[0].get("failedRequestCount").is_some());
}

#[tokio::test]
async fn cancel_pending_and_running() {
    let emu = start(json!({"pendingSecs": 10, "runningSecs": 100})).await;
    let file = emu.upload(&jsonl(10), "jsonl").await;
    let fname = file["name"].as_str().unwrap();
    let a: Value = emu.create_file_batch("gemini-2.5-flash", fname).await.json().await.unwrap();
    let a = a["name"].as_str().unwrap().to_string();
    let r: Value = emu.post(&format!("/v1beta/{a}:cancel"), json!({})).await.json().await.unwrap();
    assert_eq!(r, json!({}));
    let op = emu.batch(&a).await;
    assert_eq!(op["metadata"]["state"], "BATCH_STATE_CANCELLED");
    assert_eq!(op["done"], true);
    assert_eq!(op["error"]["code"], 1);
    assert!(op["metadata"].get("output").is_none(), "nothing ran, nothing to return");

    let b: Value = emu.create_file_batch("gemini-2.5-flash", fname).await.json().await.unwrap();
    let b = b["name"].as_str().unwrap().to_string();
    emu.advance(10.0 + 50.0).await; // half-way through RUNNING
    emu.post(&format!("/v1beta/{b}:cancel"), json!({})).await;
    let op = emu.wait_done(&b).await;
    assert_eq!(op["metadata"]["state"], "BATCH_STATE_CANCELLED");
    let lines = parse_lines(&emu.download(op["metadata"]["output"]["responsesFile"].as_str().unwrap()).await);
    let served = lines.iter().filter(|l| l.get("response").is_some()).count();
    let cancelled = lines.iter().filter(|l| l["error"]["code"] == 1).count();
    assert_eq!((served, cancelled), (5, 5), "partial results: the lines served before the cancel");
}

#[tokio::test]
async fn forced_failure_expiry_stuck_pending_and_delete() {
    let emu = start(json!({"pendingSecs": 1, "runningSecs": 1})).await;
    let file = emu.upload(&jsonl(3), "jsonl").await;
    let fname = file["name"].as_str().unwrap();
    let mk = || async {
        emu.create_file_batch("gemini-2.5-flash", fname).await.json::<Value>().await.unwrap()["name"]
            .as_str()
            .unwrap()
            .to_string()
    };

    let failed = mk().await;
    emu.control(&format!("/batches/{}/state", &failed[8..]), json!({"state": "FAILED"})).await;
    let op = emu.batch(&failed).await;
    assert_eq!(op["metadata"]["state"], "BATCH_STATE_FAILED");
    assert_eq!(op["error"]["code"], 13);

    let released = mk().await;
    emu.control(&format!("/batches/{}/state", &released[8..]), json!({"state": "PENDING"})).await;
    emu.advance(3600.0).await;
    emu.control(&format!("/batches/{}/release", &released[8..]), json!({})).await;
    emu.advance(2.0).await;
    assert_eq!(emu.wait_done(&released).await["metadata"]["state"], "BATCH_STATE_SUCCEEDED");

    let stuck = mk().await;
    emu.control(&format!("/batches/{}/state", &stuck[8..]), json!({"state": "BATCH_STATE_PENDING"})).await;
    emu.advance(47.0 * 3600.0).await;
    assert_eq!(emu.batch(&stuck).await["metadata"]["state"], "BATCH_STATE_PENDING", "stuck for days");
    emu.advance(3600.0).await;
    let op = emu.batch(&stuck).await;
    assert_eq!(op["metadata"]["state"], "BATCH_STATE_EXPIRED", "48 h after creation");
    assert_eq!(op["done"], true);
    assert!(op["metadata"].get("output").is_none(), "expired batches have no results");

    // Files expire too: the input is gone 48 h after its upload.
    assert_eq!(emu.create_file_batch("gemini-2.5-flash", fname).await.status(), StatusCode::NOT_FOUND);

    assert_eq!(emu.delete(&format!("/v1beta/{released}")).await.status(), StatusCode::OK);
    assert_eq!(emu.get(&format!("/v1beta/{released}")).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn quotas_answer_429_and_free_up_when_batches_end() {
    let emu = start(json!({"maxConcurrentBatches": 2, "pendingSecs": 10, "runningSecs": 10})).await;
    let file = emu.upload(&jsonl(2), "jsonl").await;
    let fname = file["name"].as_str().unwrap();
    for _ in 0..2 {
        assert_eq!(emu.create_file_batch("gemini-2.5-flash", fname).await.status(), StatusCode::OK);
    }
    let r = emu.create_file_batch("gemini-2.5-flash", fname).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["status"], "RESOURCE_EXHAUSTED");
    emu.advance(20.0).await;
    for _ in 0..500 {
        let state: Value =
            emu.http.get(emu.url("/_emulator/state")).send().await.unwrap().json().await.unwrap();
        if state["batchesByState"]["BATCH_STATE_SUCCEEDED"] == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(emu.create_file_batch("gemini-2.5-flash", fname).await.status(), StatusCode::OK);

    // Enqueued tokens: each line of jsonl(2) is 5 prompt tokens, so 10 per batch.
    let emu = start(json!({"enqueuedTokenCap": 25, "pendingSecs": 10})).await;
    let file = emu.upload(&jsonl(2), "jsonl").await;
    let fname = file["name"].as_str().unwrap();
    assert_eq!(emu.create_file_batch("gemini-2.5-flash", fname).await.status(), StatusCode::OK);
    assert_eq!(emu.create_file_batch("gemini-2.5-flash", fname).await.status(), StatusCode::OK);
    assert_eq!(
        emu.create_file_batch("gemini-2.5-flash", fname).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        emu.create_file_batch("gemini-2.5-pro", fname).await.status(),
        StatusCode::OK,
        "the cap is per model"
    );
    let state: Value = emu.http.get(emu.url("/_emulator/state")).send().await.unwrap().json().await.unwrap();
    assert_eq!(state["enqueuedTokens"]["gemini-2.5-flash"], 20);
}

#[tokio::test]
async fn bad_batch_requests_are_named_and_create_nothing() {
    let emu = start(json!({"maxInlineBatchBytes": 2000})).await;
    let file = emu.upload(&jsonl(1), "jsonl").await;
    let fname = file["name"].as_str().unwrap().to_string();
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "gemini-9-ultra",
            json!({"batch": {"inputConfig": {"fileName": fname}}}),
            StatusCode::NOT_FOUND,
            "models/gemini-9-ultra is not found",
        ),
        (
            "gemini-2.5-flash",
            json!({"batch": {"inputConfig": {"fileName": fname}, "colour": 1}}),
            StatusCode::BAD_REQUEST,
            "Unknown name \"colour\" at 'batch'",
        ),
        ("gemini-2.5-flash", json!({"batch": {"displayName": "x"}}), StatusCode::BAD_REQUEST, "input_config"),
        (
            "gemini-2.5-flash",
            json!({"batch": {"inputConfig": {"fileName": "files/nope"}}}),
            StatusCode::NOT_FOUND,
            "files/nope",
        ),
        (
            "gemini-2.5-flash",
            json!({"batch": {"inputConfig": {"requests": {"requests": [{"request": {"contents": [], "bogus": true}}]}}}}),
            StatusCode::BAD_REQUEST,
            "requests[0].request",
        ),
        (
            "gemini-2.5-flash",
            json!({"batch": {"inputConfig": {"requests": {"requests": [{"request": {"contents": [{"parts": [{"text": "x".repeat(3000)}]}]}}]}}}}),
            StatusCode::BAD_REQUEST,
            "exceeds",
        ),
    ];
    for (model, body, status, needle) in cases {
        let r = emu.post(&format!("/v1beta/models/{model}:batchGenerateContent"), body.clone()).await;
        assert_eq!(r.status(), status, "{body}");
        let e: Value = r.json().await.unwrap();
        assert!(e["error"]["message"].as_str().unwrap().contains(needle), "{e} should mention {needle}");
        assert_eq!(e["error"]["code"], status.as_u16());
    }
    let r = emu
        .http
        .post(emu.url("/v1beta/models/gemini-2.5-flash:batchGenerateContent"))
        .header("x-goog-api-key", KEY)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let state: Value = emu.http.get(emu.url("/_emulator/state")).send().await.unwrap().json().await.unwrap();
    assert_eq!(state["batches"], 0);
    assert_eq!(emu.get("/v1beta/batches/doesnotexist").await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn realtime_generate_and_count_tokens() {
    let emu = start(json!({})).await;
    let req = json!({"contents": [{"parts": [{"text": "abcdefgh"}]}]});
    let r: Value =
        emu.post("/v1beta/models/gemini-2.5-pro:generateContent", req.clone()).await.json().await.unwrap();
    assert_eq!(r["usageMetadata"]["promptTokenCount"], 2);
    assert_eq!(r["candidates"][0]["content"]["role"], "model");
    let c: Value = emu.post("/v1beta/models/gemini-2.5-pro:countTokens", req).await.json().await.unwrap();
    assert_eq!(c["totalTokens"], 2);
    let r =
        emu.post("/v1beta/models/gemini-2.5-pro:generateContent", json!({"contents": [], "oops": 1})).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}
