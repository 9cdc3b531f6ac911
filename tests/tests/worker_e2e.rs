//! The real worker in workerd (`wrangler dev`) against the emulator: the job
//! lifecycle end to end, under Gemini's failure modes, across a workerd crash.
//! Run by `cargo xtask test` (they need wrangler: `cargo xtask setup`).

use batchgate_e2e::api::requests;
use batchgate_e2e::stack::Stack;
use gemini_emulator::model;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const NEEDS: &str = "needs wrangler and the built worker: run through `cargo xtask test`";

fn keys(lines: &[Value]) -> BTreeSet<String> {
    lines.iter().filter_map(|l| l["key"].as_str().map(String::from)).collect()
}

fn submission(n: usize) -> Value {
    json!({"model": "gemini-2.5-flash", "displayName": "e2e", "requests": requests(n)})
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn a_hundred_requests_come_back_under_their_keys_with_their_usage() {
    let _ = NEEDS;
    let s = Stack::start(json!({}), &[]);
    let (status, job) = s.submit(submission(100), None).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["state"], "accepted");
    let id = job["id"].as_str().unwrap().to_string();
    let done = s.wait_state(&id, "succeeded", 60).await;
    assert_eq!(done["counts"], json!({"succeeded": 100, "failed": 0, "pending": 0, "missing": 0}));
    assert_eq!(done["resultsReady"], true);

    let (status, lines) = s.results(&id, "").await;
    assert_eq!(status, 200);
    assert_eq!(lines.len(), 100);
    let mut total = 0;
    for line in &lines {
        let i: usize = line["key"].as_str().unwrap()[1..].parse().unwrap();
        let request =
            json!({"contents": [{"parts": [{"text": format!("question {i}: what is {i} squared?")}]}]});
        let u = model::usage("gemini-2.5-flash", &request).unwrap();
        assert_eq!(line["response"]["usageMetadata"]["totalTokenCount"], u.total(), "{line}");
        total += u.total();
    }
    assert_eq!(done["usage"]["total"], total, "the job's usage is the sum of its lines");

    // One key, a page, and the cursor.
    let (status, one) = s.get(&format!("/v1/jobs/{id}/results/k42")).await;
    assert_eq!(status, 200);
    assert_eq!(one["key"], "k42");
    let r = s.http.get(s.url(&format!("/v1/jobs/{id}/results?limit=30"))).send().await.unwrap();
    let cursor = r.headers()["batchgate-next-cursor"].to_str().unwrap().to_string();
    assert_eq!(r.text().await.unwrap().lines().count(), 30);
    let (_, rest) = s.results(&id, &format!("?limit=1000&cursor={cursor}")).await;
    assert_eq!(rest.len(), 70);

    // Gemini's files are cleaned up; only the batch remains.
    let calls = s.gemini_calls().await;
    assert_eq!(
        calls.iter().filter(|(m, p, _)| m == "DELETE" && p.contains("/files/")).count(),
        2,
        "{calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn shuffled_results_and_per_line_errors_are_joined_by_key() {
    let s = Stack::start(json!({"shuffleResults": true, "seed": 9, "failKeys": ["k3", "k17"]}), &[]);
    let body: String = requests(30).iter().map(|r| r.to_string() + "\n").collect();
    let (status, job) = s.submit_ndjson("gemini-2.5-flash-lite", body).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let done = s.wait_state(&id, "succeeded", 60).await;
    assert_eq!(done["counts"]["succeeded"], 28);
    assert_eq!(done["counts"]["failed"], 2);
    let (_, lines) = s.results(&id, "").await;
    let order: Vec<String> = lines.iter().filter_map(|l| l["key"].as_str().map(String::from)).collect();
    assert_ne!(order.first().map(String::as_str), Some("k0"), "Gemini's order is kept in the stored file");
    for line in lines.iter().filter(|l| l.get("response").is_some()) {
        let key = line["key"].as_str().unwrap();
        let text = line["response"]["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap();
        assert!(text.contains(&format!("question {}:", &key[1..])), "{key} holds its own answer: {text}");
    }
    let (_, failed) = s.results(&id, "?only=failed").await;
    assert_eq!(keys(&failed), ["k17", "k3"].map(String::from).into_iter().collect());
    let (_, page) = s.results(&id, "?only=failed&limit=1").await;
    assert_eq!(page.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn failed_expired_and_cancelled_batches_end_the_job_accordingly() {
    // An expired batch without results is submitted again once, then the job expires.
    let s = Stack::start(json!({"stickNewBatches": true}), &[("MAX_RESUBMITS", "1")]);
    for (force, state, attempts) in [("FAILED", "failed", 1), ("EXPIRED", "expired", 2)] {
        s.control("/reset", json!({})).await;
        s.control("/config", json!({"stickNewBatches": true, "pendingSecs": 0.5, "runningSecs": 0.5})).await;
        let (_, job) = s.submit(submission(3), None).await;
        let id = job["id"].as_str().unwrap().to_string();
        for attempt in 1..=attempts {
            let batch = s.nth_gemini_batch(attempt).await;
            s.wait_for(&id, 30, |v| v["state"] == "pending" || v["state"] == "running").await;
            s.control(&format!("/batches/{batch}/state"), json!({"state": force})).await;
        }
        let done = s.wait_state(&id, state, 30).await;
        assert_eq!(s.gemini_batches().await.len(), attempts, "{done}");
        assert_eq!(done["resultsReady"], false, "{done}");
        assert!(done["error"]["message"].is_string(), "{done}");
        assert_eq!(s.results(&id, "").await.0, 409, "no results to read");
    }

    // Cancel while Gemini holds it: the worker tells Gemini, then reports cancelled.
    s.control("/reset", json!({})).await;
    s.control("/config", json!({"stickNewBatches": true})).await;
    let (_, job) = s.submit(submission(3), None).await;
    let id = job["id"].as_str().unwrap().to_string();
    s.the_gemini_batch().await;
    s.wait_state(&id, "pending", 30).await;
    let r = s.http.post(s.url(&format!("/v1/jobs/{id}/cancel"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let done = s.wait_state(&id, "cancelled", 30).await;
    assert_eq!(done["cancelRequested"], true);
    assert!(s.gemini_calls().await.iter().any(|(m, p, _)| m == "POST" && p.ends_with(":cancel")));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn a_batch_stuck_in_pending_finishes_when_gemini_gets_to_it() {
    let s = Stack::start(json!({"stickNewBatches": true}), &[]);
    let (_, job) = s.submit(submission(5), None).await;
    let id = job["id"].as_str().unwrap().to_string();
    let batch = s.the_gemini_batch().await;
    let pending = s.wait_state(&id, "pending", 30).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let polls =
        s.gemini_calls().await.iter().filter(|(m, p, _)| m == "GET" && p.contains("/batches/")).count();
    assert!(polls >= 3, "it keeps polling: {polls}");
    assert_eq!(s.job(&id).await["state"], "pending", "{pending}");
    s.control(&format!("/batches/{batch}/release"), json!({})).await;
    s.wait_state(&id, "succeeded", 30).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn a_batch_pending_past_the_limit_is_cancelled_and_submitted_again() {
    let s = Stack::start(json!({"stickNewBatches": true}), &[("PENDING_LIMIT_SECS", "2")]);
    let (_, job) = s.submit(submission(5), None).await;
    let id = job["id"].as_str().unwrap().to_string();
    let first = s.nth_gemini_batch(1).await;
    let second = s.nth_gemini_batch(2).await;
    s.control("/config", json!({"stickNewBatches": false})).await;
    s.control(&format!("/batches/{second}/release"), json!({})).await;
    let done = s.wait_state(&id, "succeeded", 30).await;
    assert_eq!(done["counts"]["succeeded"], 5, "{done}");
    let states: Vec<(String, String)> = s
        .gemini_batches()
        .await
        .iter()
        .map(|b| {
            (b["name"].as_str().unwrap().to_string(), b["metadata"]["state"].as_str().unwrap().to_string())
        })
        .collect();
    assert!(states.contains(&(format!("batches/{first}"), "BATCH_STATE_CANCELLED".into())), "{states:?}");
    let (_, events) = s.get(&format!("/v1/jobs/{id}/events?limit=1000")).await;
    let kinds: Vec<&str> =
        events["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"shard_resubmitted"), "{kinds:?}");
}

/// `n` requests of about `tokens` input tokens each (4 characters a token).
fn sized_requests(prefix: &str, n: usize, tokens: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let text = format!("{prefix}{i:04} {}", "word ".repeat(tokens * 4 / 5));
            json!({"key": format!("{prefix}{i}"), "request": {"contents": [{"parts": [{"text": text}]}]}})
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn jobs_over_the_token_quota_run_as_shards_that_share_the_cap() {
    const CAP: u64 = 5_000;
    let caps = format!("{{\"gemini-2.5-flash\": {CAP}}}");
    let s = Stack::start(
        // Results files without a final newline: shard objects must still read as separate lines.
        json!({"enqueuedTokenCap": CAP, "omitFinalNewline": true}),
        // Shards of 90 % of the cap: one at a time on the model, whichever job it is from.
        &[("ENQUEUED_TOKEN_CAPS", &caps), ("QUOTA_RETRY_SECS", "0.3"), ("SHARD_FILL_PERCENT", "90")],
    );
    // Two jobs of ~10,000 tokens each under a 5,000-token cap: three shards each, sharing the quota.
    let mut ids = vec![];
    for prefix in ["a", "b"] {
        let body = json!({"model": "gemini-2.5-flash", "requests": sized_requests(prefix, 100, 100)});
        let (status, job) = s.submit(body, None).await;
        assert_eq!(status, 202, "{job}");
        assert_eq!(job["shards"], 3, "{job}");
        ids.push(job["id"].as_str().unwrap().to_string());
    }
    for (id, prefix) in ids.iter().zip(["a", "b"]) {
        // The charge lands just after the state: wait for both (CI once saw the view between them).
        let done = s.wait_for(id, 120, |j| j["state"] == "succeeded" && j["cost"]["charged"].is_i64()).await;
        assert_eq!(
            done["counts"],
            json!({"succeeded": 100, "failed": 0, "pending": 0, "missing": 0}),
            "{done}"
        );
        assert_eq!(done["cost"]["charged"], done["cost"]["delivered"]);
        // Whole, paged across shard boundaries, and by key in the last shard.
        let (_, lines) = s.results(id, "").await;
        let want: BTreeSet<String> = (0..100).map(|i| format!("{prefix}{i}")).collect();
        assert_eq!(keys(&lines), want);
        assert_eq!(lines.len(), 100);
        let mut paged = vec![];
        let mut cursor = String::new();
        loop {
            let r =
                s.http.get(s.url(&format!("/v1/jobs/{id}/results?limit=30{cursor}"))).send().await.unwrap();
            let next = r.headers().get("batchgate-next-cursor").map(|v| v.to_str().unwrap().to_string());
            paged.extend(r.text().await.unwrap().lines().map(|l| serde_json::from_str::<Value>(l).unwrap()));
            match next {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        assert_eq!(keys(&paged), want);
        let (status, last) = s.get(&format!("/v1/jobs/{id}/results/{prefix}99")).await;
        assert_eq!((status, last["key"].as_str()), (200, Some(format!("{prefix}99").as_str())));
        let (_, events) = s.get(&format!("/v1/jobs/{id}/events?limit=1000")).await;
        let shards =
            events["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "shard_started").count();
        assert_eq!(shards, 2, "shards 1 and 2 started after shard 0");
    }
    let state: Value = s.http.get(s.emu("/_emulator/state")).send().await.unwrap().json().await.unwrap();
    let peak = state["peakEnqueuedTokens"].as_object().unwrap().values().filter_map(Value::as_u64).max();
    assert!(peak.is_some_and(|p| p <= CAP && p > CAP / 2), "peak enqueued {peak:?} (cap {CAP})");
    assert_eq!(state["batches"], 6);
    let refused = s.gemini_calls().await.into_iter().filter(|(_, _, status)| *status == 429).count();
    assert_eq!(refused, 0, "the governor kept every create under the cap");
    let admin = s
        .http
        .get(s.url("/v1/admin/quota/gemini-2.5-flash"))
        .bearer_auth(batchgate_e2e::stack::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let quota: Value = admin.json().await.unwrap();
    assert_eq!(quota["enqueued"], 0, "every hold was released: {quota}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn gemini_errors_on_every_call_are_retried_until_the_job_completes() {
    let s = Stack::start(json!({"chunkGranularity": 8388608}), &[]);
    for (method, path, status) in [
        ("POST", "/upload/v1beta/files", 429),
        ("POST", "/upload/v1beta/files", 500),
        ("POST", "*:batchGenerateContent", 503),
        ("POST", "*:batchGenerateContent", 429),
        ("GET", "/v1beta/batches/*", 500),
        ("GET", "/v1beta/batches/*", 429),
        ("GET", "/v1beta/files/*", 503),
        ("GET", "*:download", 500),
    ] {
        s.control(
            "/faults",
            json!({"method": method, "path": path, "kind": "status", "status": status, "times": 1}),
        )
        .await;
    }
    s.control(
        "/faults",
        json!({"method": "GET", "path": "*:download", "kind": "truncate", "bytes": 500, "times": 1}),
    )
    .await;
    let (_, job) = s.submit(submission(40), None).await;
    let id = job["id"].as_str().unwrap().to_string();
    let done = s.wait_state(&id, "succeeded", 90).await;
    assert_eq!(done["counts"]["succeeded"], 40);
    let faults: Value = s.http.get(s.emu("/_emulator/faults")).send().await.unwrap().json().await.unwrap();
    for f in faults["faults"].as_array().unwrap() {
        assert_eq!(f["fired"], 1, "every fault was met and survived: {f}");
    }
    let (_, lines) = s.results(&id, "").await;
    assert_eq!(keys(&lines).len(), 40, "complete despite a truncated download");
    assert_eq!(s.gemini_batches().await.len(), 1, "create failures did not make a second batch");

    // The Gemini key stays a secret through every error path.
    let key = batchgate_e2e::stack::GEMINI_KEY;
    let seen = [
        s.job(&id).await.to_string(),
        s.get("/v1/jobs").await.1.to_string(),
        format!("{lines:?}"),
        s.worker_log(),
    ];
    for text in seen {
        assert!(!text.contains(key), "the Gemini key leaked: {}", &text[..text.len().min(300)]);
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn a_job_survives_workerd_being_killed_and_restarted() {
    let mut s = Stack::start(json!({"stickNewBatches": true}), &[]);
    let (_, job) = s.submit(submission(10), None).await;
    let id = job["id"].as_str().unwrap().to_string();
    let batch = s.the_gemini_batch().await;
    s.wait_state(&id, "pending", 30).await;
    s.restart_worker();
    s.control(&format!("/batches/{batch}/release"), json!({})).await;
    // A request re-arms the alarm workerd dropped while it was down.
    let done = s.wait_state(&id, "succeeded", 60).await;
    assert_eq!(done["counts"]["succeeded"], 10);
    assert_eq!(s.gemini_batches().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn bad_input_is_refused_with_its_line_and_reaches_nothing() {
    let s = Stack::start(json!({}), &[("MAX_REQUESTS_PER_JOB", "5"), ("MAX_JSON_BODY_BYTES", "20000")]);
    let ok = |k: &str| json!({"key": k, "request": {"contents": [{"parts": [{"text": "hi"}]}]}});
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"model": "gemini-2.5-flash", "requests": []}), 400, "no requests"),
        (json!({"model": "gemini-2.5-flash", "requests": [ok("a"), ok("a")]}), 400, "duplicate key"),
        (
            json!({"model": "gemini-2.5-flash", "requests": [ok("a"), {"key": "b", "request": {"contents": "x"}}]}),
            400,
            "line 2",
        ),
        (json!({"model": "Not A Model", "requests": [ok("a")]}), 400, "invalid_model"),
        (json!({"model": "gemini-2.5-flash", "requests": [ok("a")], "colour": 1}), 400, "unknown field"),
        (
            json!({"model": "gemini-2.5-flash", "requests": (0..6).map(|i| ok(&format!("k{i}"))).collect::<Vec<_>>()}),
            400,
            "more than 5",
        ),
        (
            json!({"model": "gemini-2.5-flash", "requests": [{"key": "big", "request": {"contents": [{"parts": [{"text": "x".repeat(30000)}]}]}}]}),
            413,
            "body_too_large",
        ),
    ];
    for (body, status, needle) in cases {
        let (got, answer) = s.submit(body.clone(), None).await;
        assert_eq!(got, status, "{answer}");
        assert!(answer.to_string().contains(needle), "{answer} should mention {needle}");
        assert!(answer["error"]["code"].is_string(), "{answer}");
    }
    let (got, answer) = s
        .submit_ndjson(
            "gemini-2.5-flash",
            "{\"request\":{\"contents\":[{\"parts\":[{\"text\":\"a\"}]}]}}\nnot json\n",
        )
        .await;
    assert_eq!(got, 400);
    assert_eq!(answer["error"]["details"]["lines"][0]["line"], 2);
    assert!(s.gemini_calls().await.is_empty(), "Gemini never heard of any of it");
    let (_, list) = s.get("/v1/jobs").await;
    assert_eq!(list["jobs"], json!([]), "no job was created");
    assert_eq!(s.get("/v1/jobs/nope").await.0, 404);
    assert_eq!(s.get(&format!("/v1/jobs/{}", "0".repeat(64))).await.0, 404);
    assert_eq!(s.get("/v2/anything").await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn listing_etags_idempotency_and_delete() {
    let s = Stack::start(json!({}), &[]);
    let (_, a) = s.submit(submission(2), Some("retry-me")).await;
    let (status, again) = s.submit(submission(2), Some("retry-me")).await;
    assert_eq!(status, 202);
    assert_eq!(again["id"], a["id"], "the same job on retry");
    let (_, b) = s.submit(submission(2), None).await;
    let (a, b) = (a["id"].as_str().unwrap().to_string(), b["id"].as_str().unwrap().to_string());
    s.wait_state(&a, "succeeded", 60).await;
    s.wait_state(&b, "succeeded", 60).await;
    assert_eq!(s.gemini_batches().await.len(), 2, "one batch per job, none for the retry");

    let (_, list) = s.get("/v1/jobs?limit=1").await;
    assert_eq!(list["jobs"][0]["id"], b.as_str(), "newest first");
    let cursor = list["nextCursor"].as_str().unwrap();
    let (_, next) = s.get(&format!("/v1/jobs?limit=1&cursor={cursor}")).await;
    assert_eq!(next["jobs"][0]["id"], a.as_str());
    assert_eq!(s.get("/v1/jobs?state=succeeded").await.1["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(s.get("/v1/jobs?state=failed").await.1["jobs"].as_array().unwrap().len(), 0);

    let r = s.http.get(s.url(&format!("/v1/jobs/{a}"))).send().await.unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let r = s.http.get(s.url(&format!("/v1/jobs/{a}"))).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(r.status(), 304);

    let r = s.http.delete(s.url(&format!("/v1/jobs/{a}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(s.get(&format!("/v1/jobs/{a}")).await.0, 404);
    assert_eq!(s.results(&a, "").await.0, 404);
    assert_eq!(s.get("/v1/jobs").await.1["jobs"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn watchers_see_every_change_up_to_the_end_over_a_websocket() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let s = Stack::start(json!({"stickNewBatches": true}), &[]);
    let (_, job) = s.submit(submission(4), None).await;
    let id = job["id"].as_str().unwrap().to_string();
    let ws_url = |ticket: &str| {
        format!("{}?ticket={ticket}", s.url(&format!("/v1/jobs/{id}/watch")).replacen("http", "ws", 1))
    };
    // Browsers cannot set headers on a socket: a single-use ticket, never the token, goes in the URL.
    let ticket_for = |client: batchgate_e2e::record::Http| {
        let url = s.url(&format!("/v1/jobs/{id}/watch-ticket"));
        async move {
            let r = client.post(url).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or_default())
        }
    };
    let (status, ticket) = ticket_for(s.http.clone()).await;
    assert_eq!(status, 200, "{ticket}");
    let ticket = ticket["ticket"].as_str().unwrap().to_string();
    let (mut socket, _) =
        tokio_tungstenite::connect_async(ws_url(&ticket)).await.expect("the owner can watch");
    let first: Value = match socket.next().await {
        Some(Ok(Message::Text(t))) => serde_json::from_str(&t).unwrap(),
        other => panic!("no first view: {other:?}"),
    };
    assert_eq!(first["id"], id.as_str());
    let batch = s.the_gemini_batch().await;
    s.control(&format!("/batches/{batch}/release"), json!({})).await;
    let mut states = vec![first["state"].as_str().unwrap().to_string()];
    let mut last = first;
    while let Some(msg) = tokio::time::timeout(std::time::Duration::from_secs(60), socket.next())
        .await
        .expect("a view within 60 s")
    {
        match msg {
            Ok(Message::Text(t)) => {
                last = serde_json::from_str(&t).unwrap();
                states.push(last["state"].as_str().unwrap().to_string());
            }
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let order = ["accepted", "uploading", "pending", "running", "ingesting", "succeeded"];
    let ranks: Vec<usize> = states.iter().map(|st| order.iter().position(|o| o == st).unwrap()).collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "states went backwards: {states:?}");
    assert_eq!(last["state"], "succeeded", "{states:?}");
    assert_eq!(last["counts"]["succeeded"], 4);
    assert!(last["cost"]["charged"].is_i64(), "the socket closes once the job is charged: {last}");

    // A ticket is spent on first use; a token in the URL is not accepted; another
    // account gets no ticket; the header form still works.
    let status_of = |r: Result<_, tokio_tungstenite::tungstenite::Error>| match r {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
        Ok(_) => 101,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        status_of(tokio_tungstenite::connect_async(ws_url(&ticket)).await.map(|_| ())),
        401,
        "a used ticket"
    );
    let token_url = ws_url("x").replace(
        "ticket=x",
        &format!("token={}", batchgate_e2e::stack::token(batchgate_e2e::stack::ACCOUNT)),
    );
    assert_eq!(
        status_of(tokio_tungstenite::connect_async(token_url).await.map(|_| ())),
        401,
        "a token in the URL"
    );
    let (status, _) =
        ticket_for(batchgate_e2e::stack::client_with(&batchgate_e2e::stack::token("someone-else"))).await;
    assert_eq!(status, 404, "another account's job has no tickets for it");
    let mut with_header = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        s.url(&format!("/v1/jobs/{id}/watch")).replacen("http", "ws", 1),
    )
    .unwrap();
    let bearer = format!("Bearer {}", batchgate_e2e::stack::token(batchgate_e2e::stack::ACCOUNT));
    with_header.headers_mut().insert("authorization", bearer.parse().unwrap());
    assert_eq!(
        status_of(tokio_tungstenite::connect_async(with_header).await.map(|_| ())),
        101,
        "the header form"
    );
    let (status, body) = s.get(&format!("/v1/jobs/{id}/watch")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (426, Some("upgrade_required")));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn retry_makes_a_linked_child_job_of_the_lines_that_did_not_succeed() {
    let s = Stack::start(json!({"failKeys": ["k3", "k17"]}), &[]);
    let (_, job) = s.submit(submission(20), None).await;
    let parent = job["id"].as_str().unwrap().to_string();
    s.wait_for(&parent, 60, |j| j["cost"]["charged"].is_number()).await;

    // The timeline tells the job's story in order, charge included.
    let (status, page) = s.get(&format!("/v1/jobs/{parent}/events?limit=1000")).await;
    assert_eq!(status, 200, "{page}");
    let events = page["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    let position =
        |k: &str| kinds.iter().position(|x| *x == k).unwrap_or_else(|| panic!("no {k} in {kinds:?}"));
    assert!(position("submitted") < position("uploaded"));
    assert!(position("uploaded") < position("batch_created"));
    assert!(position("batch_created") < position("polled"));
    assert!(position("polled") < position("ingested"));
    assert!(position("ingested") < position("charged"));
    let to: Vec<&str> =
        events.iter().filter(|e| e["kind"] == "state").map(|e| e["detail"]["to"].as_str().unwrap()).collect();
    assert_eq!(to.last(), Some(&"succeeded"), "{to:?}");
    let charged = &events[position("charged")]["detail"]["amount"];
    assert_eq!(charged, &s.job(&parent).await["cost"]["charged"]);
    assert!(!page.to_string().contains("upload_id"), "no upload session URL in the timeline");
    let (_, first) = s.get(&format!("/v1/jobs/{parent}/events?limit=2")).await;
    let (_, rest) = s.get(&format!("/v1/jobs/{parent}/events?after={}", first["nextCursor"])).await;
    assert_eq!(rest["events"][0]["seq"], events[2]["seq"], "pages continue where the cursor points");
    let other = batchgate_e2e::stack::client_with(&batchgate_e2e::stack::token("someone-else"));
    let r = other.get(s.url(&format!("/v1/jobs/{parent}/events"))).send().await.unwrap();
    assert_eq!(r.status(), 404, "another account's timeline does not exist");
    // Gemini would now answer them: the child should succeed.
    s.control("/config", json!({"failKeys": []})).await;
    let retry = |id: String| {
        let req = s.http.post(s.url(&format!("/v1/jobs/{id}/retry")));
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or_default())
        }
    };
    let (status, child) = retry(parent.clone()).await;
    assert_eq!(status, 202, "{child}");
    assert_eq!(child["retryOf"], parent.as_str());
    assert_eq!(child["requestCount"], 2);
    assert_eq!(child["model"], "gemini-2.5-flash");
    let child_id = child["id"].as_str().unwrap().to_string();
    let (_, again) = retry(parent.clone()).await;
    assert_eq!(again["id"], child_id.as_str(), "retrying twice gives the same child");
    let done = s.wait_state(&child_id, "succeeded", 60).await;
    assert_eq!(done["counts"]["succeeded"], 2, "{done}");
    let (_, lines) = s.results(&child_id, "").await;
    assert_eq!(keys(&lines), ["k17", "k3"].map(String::from).into_iter().collect());
    for line in &lines {
        let key = line["key"].as_str().unwrap();
        let text = line["response"]["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap();
        assert!(text.contains(&format!("question {}:", &key[1..])), "{key} was resent as it was: {text}");
    }
    let (status, nothing) = retry(child_id.clone()).await;
    assert_eq!((status, nothing["error"]["code"].as_str()), (409, Some("nothing_to_retry")), "{nothing}");

    // A batch that failed outright: every line is missing, so every line is retried.
    s.control("/reset", json!({})).await;
    s.control("/config", json!({"stickNewBatches": true})).await;
    let (_, job) = s.submit(submission(4), None).await;
    let failed = job["id"].as_str().unwrap().to_string();
    let (status, early) = retry(failed.clone()).await;
    assert_eq!((status, early["error"]["code"].as_str()), (409, Some("job_not_finished")), "{early}");
    let batch = s.the_gemini_batch().await;
    s.wait_state(&failed, "pending", 30).await;
    s.control(&format!("/batches/{batch}/state"), json!({"state": "FAILED"})).await;
    s.wait_state(&failed, "failed", 30).await;
    let (status, child) = retry(failed).await;
    assert_eq!((status, child["requestCount"].as_u64()), (202, Some(4)), "{child}");
}

/// A receiver for webhooks: records every delivery, answers 500 to the first.
async fn webhook_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>)
{
    use std::sync::{Arc, Mutex};
    let got: Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>> = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let mut all = seen.lock().unwrap();
                all.push((headers, body));
                if all.len() == 1 {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn an_ended_job_calls_its_webhook_signed_and_retried_until_it_lands() {
    use batchgate_core::webhook::Secret;
    let mut s = Stack::start(json!({}), &[("WEBHOOK_ALLOW_HTTP", "true")]);
    let (url, got) = webhook_receiver().await;
    let mut body = submission(3);
    body["webhook"] = json!({"url": "ftp://example.com/hook"});
    let (status, refused) = s.submit(body.clone(), None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (400, Some("invalid_webhook_url")), "{refused}");
    body["webhook"] = json!({"url": url});
    let (status, job) = s.submit(body, None).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    // The first delivery gets a 500. workerd then dies before the retry is due;
    // the retry still lands (and a request to the job re-arms its alarm if
    // the restart lost it).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while got.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    s.restart_worker();
    s.job(&id).await;
    while got.lock().unwrap().len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let deliveries = got.lock().unwrap().clone();
    assert_eq!(deliveries.len(), 2, "one failed delivery and its retry");
    let (_, secret) = s.get("/v1/account/webhook-secret").await;
    let secret = Secret::parse(secret["secret"].as_str().unwrap()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let header = |h: &axum::http::HeaderMap, k: &str| {
        h.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    };
    for (headers, body) in &deliveries {
        let (wid, ts, sig) = (
            header(headers, "webhook-id"),
            header(headers, "webhook-timestamp"),
            header(headers, "webhook-signature"),
        );
        assert_eq!(
            secret.verify((&wid, &ts, &sig), body.as_bytes(), now, 300),
            Ok(()),
            "signed with the account's secret"
        );
        assert_eq!(wid, format!("{id}-succeeded"), "the same id on every attempt");
        let payload: Value = serde_json::from_str(body).unwrap();
        assert_eq!(payload["type"], "job.succeeded");
        assert_eq!(payload["data"]["id"], id.as_str());
        assert!(payload["data"]["cost"]["charged"].is_number(), "sent once the job was charged: {payload}");
    }
    let (_, page) = s.get(&format!("/v1/jobs/{id}/events?limit=1000")).await;
    let kinds: Vec<&str> =
        page["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    let failed = kinds.iter().position(|k| *k == "webhook_failed");
    let delivered = kinds.iter().position(|k| *k == "webhook_delivered");
    assert!(failed.is_some() && failed < delivered, "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn a_gemini_webhook_wakes_the_job_within_a_second_and_forgeries_are_refused() {
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    // Polling alone would take a minute to notice: only the webhook can be this quick.
    let vars = [("GEMINI_WEBHOOK_SECRET", SECRET), ("POLL_FIRST_SECS", "60"), ("POLL_MIN_SECS", "60")];
    let s = Stack::start(json!({"pendingSecs": 1, "runningSecs": 1}), &vars);
    s.control("/config", json!({"webhook": {"url": s.url("/hooks/gemini"), "secret": SECRET}})).await;
    let (_, job) = s.submit(submission(5), None).await;
    let id = job["id"].as_str().unwrap().to_string();
    let done = s.wait_state(&id, "succeeded", 30).await;
    assert_eq!(done["counts"]["succeeded"], 5);
    let batch = s.gemini_batches().await.remove(0);
    let delay = s.detection_delay_ms(&id).await;
    let (_, events) = s.get(&format!("/v1/jobs/{id}/events?limit=1000")).await;
    let events = events["events"].as_array().unwrap().clone();
    eprintln!("webhook detection: the job saw the end {delay} ms after Gemini ended the batch");
    assert!(delay <= 1_000, "detected {delay} ms after Gemini ended the batch");
    assert!(
        events.iter().any(|e| e["kind"] == "gemini_webhook" && e["detail"]["woken"] == true),
        "{events:?}"
    );

    // Forgeries, stale messages and replays.
    let secret = batchgate_core::webhook::Secret::parse(SECRET).unwrap();
    let body = json!({"type": "batch.succeeded", "data": {"name": batch["name"], "displayName": format!("batchgate-{id}")}})
        .to_string();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let post = |msg: &str, ts: i64, signature: String| {
        s.http
            .post(s.url("/hooks/gemini"))
            .header("webhook-id", msg)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(body.clone())
            .send()
    };
    let forged = post("msg_1", now, "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into()).await.unwrap();
    assert_eq!(forged.status(), 401);
    assert_eq!(forged.json::<Value>().await.unwrap()["error"]["code"], "invalid_signature");
    let old = now - 3_600;
    let stale = post("msg_2", old, secret.sign("msg_2", old, body.as_bytes())).await.unwrap();
    assert_eq!(stale.status(), 401);
    assert_eq!(stale.json::<Value>().await.unwrap()["error"]["code"], "stale_timestamp");
    let first = post("msg_3", now, secret.sign("msg_3", now, body.as_bytes())).await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.json::<Value>().await.unwrap()["duplicate"], false);
    let again = post("msg_3", now, secret.sign("msg_3", now, body.as_bytes())).await.unwrap();
    assert_eq!(
        again.json::<Value>().await.unwrap()["duplicate"],
        true,
        "a replayed webhook-id is not acted on"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn an_unreadable_quota_table_refuses_submits_and_names_the_variable() {
    let s = Stack::start(json!({}), &[("ENQUEUED_TOKEN_CAPS", "{\"gemini-2.5-flash\": \"lots\"}")]);
    let (status, body) = s.submit(submission(2), None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "misconfigured");
    assert!(body["error"]["message"].as_str().unwrap().contains("ENQUEUED_TOKEN_CAPS"), "{body}");
    assert!(s.gemini_calls().await.is_empty(), "nothing reached Gemini");
    let (_, jobs) = s.get("/v1/jobs").await;
    assert_eq!(jobs["jobs"].as_array().map(Vec::len), Some(0), "nothing was stored: {jobs}");
}
