//! The realtime lane end to end: `POST /v1/generate` plain and streamed, in
//! the real worker in workerd against the emulator, each call's charge
//! predicted to the micro-credit from the emulator's deterministic usage, and
//! the account's credits conserved (granted − spent − reserved = balance).

use batchgate_e2e::api::{emulated_prices, requests};
use batchgate_e2e::stack::{Stack, client_with, token};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;

const MODEL: &str = "gemini-2.5-flash";
const IMAGE_MODEL: &str = "gemini-3-pro-image-preview";

fn request(text: &str) -> Value {
    json!({"contents": [{"parts": [{"text": text}]}], "generationConfig": {"maxOutputTokens": 200}})
}

/// What the emulator's answer to `req` costs at the standard price.
fn standard_cost(req: &Value) -> i64 {
    emulated_prices(MODEL, &[json!({"request": req})]).0
}

async fn account(client: &batchgate_e2e::record::Http, s: &Stack) -> Value {
    client.get(s.url("/v1/account")).send().await.unwrap().json().await.unwrap()
}

fn conserved(a: &Value) {
    let n = |k: &str| a[k].as_i64().unwrap_or_else(|| panic!("{k} in {a}"));
    assert_eq!(n("granted") - n("spent") - n("reserved"), n("balance"), "credits conserved: {a}");
}

/// Wait until the account holds nothing (a streamed call settles after its answer ends).
async fn settled(client: &batchgate_e2e::record::Http, s: &Stack) -> Value {
    for _ in 0..100 {
        let a = account(client, s).await;
        if a["reserved"] == 0 {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the call never settled: {}", account(client, s).await);
}

async fn generate_calls(s: &Stack) -> usize {
    s.gemini_calls().await.iter().filter(|(_, path, _)| path.contains("enerateContent")).count()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn generate_answers_now_at_the_standard_price_and_refusals_cost_nothing() {
    let s = Stack::start(json!({"streamChunks": 4}), &[("MAX_GENERATE_PER_MINUTE", "8")]);
    let user = client_with(&token("realtime-user"));
    s.grant("realtime-user", 1_000_000_000).await;
    let req = request("What is the capital of France? Answer in one word.");
    let expected = standard_cost(&req);

    let r =
        user.post(s.url("/v1/generate")).json(&json!({"model": MODEL, "request": req})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let cost: Value = serde_json::from_str(r.headers()["batchgate-cost"].to_str().unwrap()).unwrap();
    assert_eq!(cost, json!({"standard": expected, "charged": expected}));
    let answer: Value = r.json().await.unwrap();
    assert!(answer["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap().contains("capital"));
    let a = settled(&user, &s).await;
    assert_eq!(a["spent"].as_i64(), Some(expected), "{a}");
    conserved(&a);

    // A request Gemini refuses reaches the user with its status and costs nothing.
    s.control(
        "/faults",
        json!({"method": "POST", "path": "*:generateContent", "kind": "status", "status": 400, "times": 1}),
    )
    .await;
    let r =
        user.post(s.url("/v1/generate")).json(&json!({"model": MODEL, "request": req})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "gemini_invalid_argument", "{e}");
    assert_eq!(account(&user, &s).await["spent"], expected, "a refused call is not charged");

    // Bad input is refused before Gemini is asked, naming the field.
    let before = generate_calls(&s).await;
    let bad = json!({"model": MODEL, "request": {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"maxOutputTokens": 10_000_000}}});
    let r = user.post(s.url("/v1/generate")).json(&bad).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "invalid_request");
    assert!(e["error"]["message"].as_str().unwrap().contains("maxOutputTokens"), "{e}");
    let r = user
        .post(s.url("/v1/generate"))
        .json(&json!({"model": MODEL, "request": req, "extra": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "unknown fields are refused");
    let r = user
        .post(s.url("/v1/generate"))
        .json(&json!({"model": "gemini-nonexistent", "request": req}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(generate_calls(&s).await, before, "nothing invalid reached Gemini");

    // A balance that cannot cover the quote: 402, nothing sent, nothing held.
    let poor = client_with(&token("realtime-poor"));
    s.grant("realtime-poor", 10).await;
    let r =
        poor.post(s.url("/v1/generate")).json(&json!({"model": MODEL, "request": req})).send().await.unwrap();
    assert_eq!(r.status(), 402);
    let a = account(&poor, &s).await;
    assert_eq!((a["balance"].as_i64(), a["reserved"].as_i64()), (Some(10), Some(0)));
    assert_eq!(generate_calls(&s).await, before);

    // The account's per-minute limit: 429 with Retry-After, past 8 calls.
    let mut statuses = vec![];
    for _ in 0..8 {
        let r = user
            .post(s.url("/v1/generate"))
            .json(&json!({"model": MODEL, "request": req}))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
        }
    }
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 2, "2 calls above made 10 of 8: {statuses:?}");
    assert!(s.uncaught_exceptions().is_empty(), "{:?}", s.uncaught_exceptions());
}

/// Parse the SSE body: the `data:` events, and the cost comment.
fn events(body: &str) -> (Vec<Value>, Option<Value>) {
    let mut data = vec![];
    let mut cost = None;
    for line in body.lines() {
        if let Some(d) = line.strip_prefix("data: ") {
            data.push(serde_json::from_str(d).unwrap());
        } else if let Some(c) = line.strip_prefix(": batchgate-cost ") {
            cost = Some(serde_json::from_str(c).unwrap());
        }
    }
    (data, cost)
}

async fn stream(user: &batchgate_e2e::record::Http, s: &Stack, req: &Value) -> reqwest::Response {
    user.post(s.url("/v1/generate?alt=sse"))
        .json(&json!({"model": MODEL, "request": req}))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn a_stream_passes_through_as_it_arrives_and_a_user_who_leaves_is_still_charged() {
    let s = Stack::start(json!({"streamChunks": 5, "streamChunkDelayMs": 300}), &[]);
    let user = client_with(&token("stream-user"));
    s.grant("stream-user", 1_000_000_000).await;
    let req = request("Tell me a short story about a lighthouse keeper and a storm.");
    let expected = standard_cost(&req);

    let started = std::time::Instant::now();
    let r = stream(&user, &s, &req).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut body = r.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    let first_at = started.elapsed();
    assert!(String::from_utf8_lossy(&first).contains("data: "), "the first event came through");
    let mut rest = first.to_vec();
    while let Some(chunk) = body.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    let all_at = started.elapsed();
    assert!(
        all_at - first_at >= Duration::from_millis(900),
        "events arrive as Gemini sends them, not all at the end"
    );
    let (data, cost) = events(&String::from_utf8(rest).unwrap());
    assert_eq!(data.len(), 5);
    assert_eq!(cost, Some(json!({"standard": expected, "charged": expected})));
    let a = settled(&user, &s).await;
    assert_eq!(a["spent"], expected, "{a}");
    conserved(&a);

    // A user who reads one event and leaves: Gemini's whole answer is still paid for.
    let mut body = stream(&user, &s, &req).await.bytes_stream();
    let _ = body.next().await;
    drop(body);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let a = settled(&user, &s).await;
    assert_eq!(a["spent"], 2 * expected, "the abandoned stream is charged what Gemini reported: {a}");
    conserved(&a);
    assert!(s.uncaught_exceptions().is_empty(), "{:?}", s.uncaught_exceptions());
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn the_model_rpm_limit_is_shared_and_batchgate_never_draws_geminis_429() {
    // Gemini allows 3 a minute; batchgate is told 3: the 4th waits at batchgate, not at Gemini.
    let s = Stack::start(json!({"rpmLimits": {MODEL: 3}}), &[("REALTIME_RPM", r#"{"gemini-2.5-flash": 3}"#)]);
    let (a, b) = (client_with(&token("rpm-a")), client_with(&token("rpm-b")));
    s.grant("rpm-a", 1_000_000_000).await;
    s.grant("rpm-b", 1_000_000_000).await;
    let req = json!({"model": MODEL, "request": request("hello")});
    // An account that cannot pay is refused before it takes a slot of the shared limit.
    let poor = client_with(&token("rpm-poor"));
    for _ in 0..3 {
        assert_eq!(poor.post(s.url("/v1/generate")).json(&req).send().await.unwrap().status(), 402);
    }
    let mut statuses = vec![];
    for c in [&a, &b, &a, &b] {
        let r = c.post(s.url("/v1/generate")).json(&req).send().await.unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            let e: Value = r.json().await.unwrap();
            assert_eq!(e["error"]["code"], "realtime_capacity", "{e}");
        }
    }
    assert_eq!(statuses, [200, 200, 200, 429], "the limit spans accounts");
    let gemini_429s = s
        .gemini_calls()
        .await
        .iter()
        .filter(|(_, p, st)| p.contains("generateContent") && *st == 429)
        .count();
    assert_eq!(gemini_429s, 0, "Gemini never refused a call for rate");
    for c in [&a, &b] {
        let acc = account(c, &s).await;
        assert_eq!(acc["reserved"], 0);
        conserved(&acc);
    }
}

/// The standard and batch prices of `reqs` as the emulator answers them.
fn prices(reqs: &[Value]) -> (i64, i64) {
    emulated_prices(MODEL, reqs)
}

async fn batch_creates(s: &Stack) -> usize {
    s.gemini_calls().await.iter().filter(|(_, p, _)| p.ends_with(":batchGenerateContent")).count()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn realtime_and_auto_jobs_run_in_their_lane_and_are_charged_its_price() {
    let s = Stack::start(json!({}), &[("AUTO_REALTIME_MAX_REQUESTS", "5"), ("REALTIME_SHARD_REQUESTS", "4")]);
    let submit = |body: Value| s.submit(body, None);

    // Realtime: 10 requests in shards of 4, answered now at the standard price, no batch made.
    let reqs = requests(10);
    let (standard, _) = prices(&reqs);
    let (status, job) = submit(json!({"model": MODEL, "requests": reqs, "mode": "realtime"})).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!((job["lane"].as_str(), job["laneReason"].as_str()), (Some("realtime"), Some("mode realtime")));
    let id = job["id"].as_str().unwrap().to_string();
    let done = s.wait_for(&id, 60, |j| j["cost"]["charged"].is_i64()).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["cost"]["charged"], standard, "the realtime lane charges the standard price: {done}");
    assert_eq!(done["counts"]["succeeded"], 10);
    let (status, lines) = s.results(&id, "").await;
    assert_eq!(status, 200);
    let keys: Vec<&str> = lines.iter().map(|l| l["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        (0..10).map(|i| format!("k{i}")).collect::<Vec<_>>(),
        "results in input order, batch format"
    );
    assert!(lines.iter().all(|l| l["response"]["usageMetadata"].is_object()));
    assert_eq!(batch_creates(&s).await, 0, "the realtime lane makes no batch");
    assert_eq!(generate_calls(&s).await, 10, "each request asked once");

    // Auto: 5 requests run realtime, 6 run as a batch; each says why.
    let (_, small) = submit(json!({"model": MODEL, "requests": requests(5), "mode": "auto"})).await;
    assert_eq!(small["lane"], "realtime", "{small}");
    assert!(small["laneReason"].as_str().unwrap().contains("at most 5"), "{small}");
    let six = requests(6);
    let (_, batch_price) = prices(&six);
    let (_, big) = submit(json!({"model": MODEL, "requests": six, "mode": "auto"})).await;
    assert_eq!(big["lane"], "batch", "{big}");
    assert!(big["laneReason"].as_str().unwrap().contains("more than 5"), "{big}");
    for id in [&small["id"], &big["id"]] {
        let done = s.wait_for(id.as_str().unwrap(), 90, |j| j["cost"]["charged"].is_i64()).await;
        assert_eq!(done["state"], "succeeded", "{done}");
    }
    let big_done = s.job(big["id"].as_str().unwrap()).await;
    assert_eq!(big_done["cost"]["charged"], batch_price, "the batch lane keeps half price");
    assert_eq!(batch_creates(&s).await, 1);

    // The listing shows each job's lane, counts and charge; ?state= takes several.
    let (status, list) = s.get("/v1/jobs?state=pending,succeeded").await;
    assert_eq!(status, 200, "{list}");
    let rows = list["jobs"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{list}");
    let row = rows.iter().find(|r| r["id"] == id.as_str()).unwrap();
    assert_eq!((row["lane"].as_str(), row["requestCount"].as_u64()), (Some("realtime"), Some(10)), "{row}");
    assert_eq!(
        (row["counts"]["succeeded"].as_u64(), row["cost"]["charged"].as_i64()),
        (Some(10), Some(standard)),
        "{row}"
    );
    assert_eq!(s.get("/v1/jobs?state=running").await.1["jobs"], json!([]));
    let (status, e) = s.get("/v1/jobs?state=pending,finished").await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("invalid_state")), "{e}");

    // An image model's pictures are served on their own; the lines link them.
    for mode in ["batch", "realtime"] {
        let (_, job) = submit(json!({"model": IMAGE_MODEL, "requests": requests(2), "mode": mode})).await;
        let id = job["id"].as_str().unwrap().to_string();
        let done = s.wait_for(&id, 90, |j| j["cost"]["charged"].is_i64()).await;
        assert_eq!(done["state"], "succeeded", "{done}");
        let (_, lines) = s.results(&id, "").await;
        let media = &lines[0]["response"]["candidates"][0]["content"]["parts"][1]["inlineData"];
        assert_eq!(media["mimeType"], "image/png", "{mode}: {media}");
        assert!(media.get("data").is_none(), "{mode}: no base64 in the line by default");
        let url = media["url"].as_str().unwrap();
        assert_eq!(url, format!("/v1/jobs/{id}/results/k0/media/0"));
        let r = s.http.get(s.url(url)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "image/png");
        let png = r.bytes().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{mode}: the picture itself");
        assert_eq!(media["bytes"], png.len());
        let (_, inline) = s.results(&id, "?inlineMedia=true").await;
        let data = inline[0]["response"]["candidates"][0]["content"]["parts"][1]["inlineData"]["data"]
            .as_str()
            .unwrap();
        assert_eq!(
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data).unwrap(),
            png.to_vec()
        );
        let (_, one) = s.get(&format!("/v1/jobs/{id}/results/k1")).await;
        assert_eq!(
            one["response"]["candidates"][0]["content"]["parts"][1]["inlineData"]["url"],
            format!("/v1/jobs/{id}/results/k1/media/0")
        );
        let (_, page) = s.results(&id, "?limit=1").await;
        assert!(
            page[0]["response"]["candidates"][0]["content"]["parts"][1]["inlineData"]["url"].is_string(),
            "pages link too"
        );
        assert_eq!(
            s.http.get(s.url(&format!("/v1/jobs/{id}/results/k0/media/1"))).send().await.unwrap().status(),
            404
        );
        let other = client_with(&token("someone-else"));
        assert_eq!(
            other.get(s.url(url)).send().await.unwrap().status(),
            404,
            "another account's media is not found"
        );
    }

    // A delete waits for realtime calls under way (Gemini would answer, and bill, after the purge).
    s.control(
        "/faults",
        json!({"method": "POST", "path": "*:generateContent", "kind": "delay", "ms": 3000, "times": 2}),
    )
    .await;
    let (_, slow) = submit(json!({"model": MODEL, "requests": requests(2), "mode": "realtime"})).await;
    let slow_id = slow["id"].as_str().unwrap().to_string();
    let calls = generate_calls(&s).await;
    for _ in 0..100 {
        if generate_calls(&s).await > calls {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let r = s.http.delete(s.url(&format!("/v1/jobs/{slow_id}"))).send().await.unwrap();
    assert_eq!(r.status(), 409, "{:?}", r.text().await);
    let slow_done = s.wait_for(&slow_id, 60, |j| j["cost"]["charged"].is_i64()).await;
    assert_eq!(slow_done["cost"]["charged"], prices(&requests(2)).0, "{slow_done}");
    assert_eq!(s.http.delete(s.url(&format!("/v1/jobs/{slow_id}"))).send().await.unwrap().status(), 200);

    // Answers that do not say what they used are charged their ceiling (what
    // was reserved), never nothing: Google bills them all the same.
    s.control("/config", json!({"omitUsage": true})).await;
    let (status, job) = submit(json!({"model": MODEL, "requests": requests(2), "mode": "realtime"})).await;
    assert_eq!(status, 202, "{job}");
    let reserved = job["cost"]["reserved"].as_i64().unwrap_or(0);
    let done = s.wait_for(job["id"].as_str().unwrap(), 60, |j| j["cost"]["charged"].is_i64()).await;
    s.control("/config", json!({"omitUsage": false})).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(reserved > 0 && done["cost"]["charged"] == reserved, "charged its ceiling ({reserved}): {done}");

    // A mode that is not one is refused, naming it.
    let (status, e) = submit(json!({"model": MODEL, "requests": requests(1), "mode": "fast"})).await;
    assert_eq!(status, 400, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("fast"), "{e}");

    let a = account(&s.http, &s).await;
    assert_eq!(a["reserved"], 0);
    conserved(&a);
    assert!(s.uncaught_exceptions().is_empty(), "{:?}", s.uncaught_exceptions());
}

async fn kinds(s: &Stack, id: &str) -> Vec<String> {
    let (_, events) = s.get(&format!("/v1/jobs/{id}/events?limit=1000")).await;
    events["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn a_job_allowed_to_fall_back_runs_realtime_when_gemini_refuses_the_batch_or_the_quota_is_full() {
    let s = Stack::start(
        json!({}),
        &[
            ("FALLBACK_AFTER_SECS", "2"),
            ("REALTIME_SHARD_REQUESTS", "2"),
            ("ENQUEUED_TOKEN_CAPS", r#"{"gemini-2.5-flash": 20}"#),
            ("FALLBACK_MAX_REQUESTS", "8"),
        ],
    );
    // Gemini refuses the batch outright: the job runs realtime, reserved and charged the standard price.
    s.control("/faults", json!({"method": "POST", "path": "*:batchGenerateContent", "kind": "status", "status": 400, "times": 1})).await;
    let reqs = requests(5);
    let (standard, batch) = prices(&reqs);
    let (status, estimate) = s.post_json("/v1/estimate", &json!({"model": MODEL, "requests": reqs})).await;
    assert_eq!(status, 200, "{estimate}");
    let (status, job) =
        s.submit(json!({"model": MODEL, "requests": reqs, "fallback": "realtime"}), None).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["lane"], "batch");
    assert_eq!(
        job["cost"]["reserved"], estimate["quote"]["standard"],
        "fallback reserves the standard price from the start"
    );
    let id = job["id"].as_str().unwrap().to_string();
    let done = s.wait_for(&id, 60, |j| j["cost"]["charged"].is_i64()).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["lane"], "realtime");
    assert!(done["laneReason"].as_str().unwrap().contains("refused the batch"), "{done}");
    assert_eq!(
        done["cost"]["charged"], standard,
        "answered realtime: the standard price ({batch} as a batch)"
    );
    assert_eq!(s.results(&id, "").await.1.len(), 5);
    assert!(kinds(&s, &id).await.contains(&"fallback_realtime".to_string()), "the timeline shows the switch");

    // Without fallback the same refusal fails the job, and it is charged nothing.
    s.control("/faults", json!({"method": "POST", "path": "*:batchGenerateContent", "kind": "status", "status": 400, "times": 1})).await;
    let (_, plain) = s.submit(json!({"model": MODEL, "requests": requests(2)}), None).await;
    let plain = s.wait_for(plain["id"].as_str().unwrap(), 60, |j| j["cost"]["charged"].is_i64()).await;
    assert_eq!(
        (plain["state"].as_str(), plain["cost"]["charged"].as_i64()),
        (Some("failed"), Some(0)),
        "{plain}"
    );

    // A batch stuck at Gemini fills the model's quota: the next job waits, then falls back after 2 s.
    s.control("/config", json!({"stickNewBatches": true})).await;
    let (_, blocker) = s.submit(json!({"model": MODEL, "requests": requests(3)}), None).await;
    let blocker_id = blocker["id"].as_str().unwrap().to_string();
    s.wait_state(&blocker_id, "pending", 30).await;
    let (_, waiting) =
        s.submit(json!({"model": MODEL, "requests": requests(4), "fallback": "realtime"}), None).await;
    let waiting = s.wait_for(waiting["id"].as_str().unwrap(), 60, |j| j["cost"]["charged"].is_i64()).await;
    assert_eq!(waiting["state"], "succeeded", "{waiting}");
    assert!(waiting["laneReason"].as_str().unwrap().contains("quota"), "{waiting}");
    assert_eq!(waiting["cost"]["charged"], prices(&requests(4)).0);
    s.post_json(&format!("/v1/jobs/{blocker_id}/cancel"), &json!({})).await;

    // Fallback is to the realtime lane only, and for jobs small enough to run there.
    let (status, e) =
        s.submit(json!({"model": MODEL, "requests": requests(2), "fallback": "later"}), None).await;
    assert_eq!(status, 400, "{e}");
    let (status, e) =
        s.submit(json!({"model": MODEL, "requests": requests(9), "fallback": "realtime"}), None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("fallback_too_large")), "{e}");
    let a = account(&s.http, &s).await;
    conserved(&a);
    assert!(s.uncaught_exceptions().is_empty(), "{:?}", s.uncaught_exceptions());
}
