//! Money you can trust (issue 17): every way an account holder could make
//! Gemini run unpaid or spend past their balance, tried against the real worker.
//! Each test first reproduces the hole as an attacker would, asserts the
//! refusal, and then that credits are conserved for every account touched
//! (granted − spent − reserved = balance, nothing left held).
//! Run by `cargo xtask test` (they need wrangler: `cargo xtask setup`).

use batchgate_e2e::api::requests;
use batchgate_e2e::stack::{CLOSE_AFTER, Stack};
use serde_json::{Value, json};

/// Credits add up, and nothing is held once every job has ended.
async fn conserved(s: &Stack) -> Value {
    let (_, a) = s.get("/v1/account").await;
    let n = |k: &str| a[k].as_i64().unwrap_or(i64::MIN);
    assert_eq!(n("granted") - n("spent") - n("reserved"), n("balance"), "the ledger does not add up: {a}");
    a
}

async fn settled(s: &Stack, id: &str) -> Value {
    s.wait_for(id, 60, |j| j["cost"]["charged"].is_number()).await
}

async fn delete(s: &Stack, id: &str) {
    let r = s.http.delete(s.url(&format!("/v1/jobs/{id}"))).send().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), 200, "deleting {id}");
}

fn submission(n: usize) -> Value {
    json!({"model": "gemini-2.5-flash", "requests": requests(n)})
}

async fn job_ids(s: &Stack) -> Vec<String> {
    let (_, list) = s.get("/v1/jobs?limit=200").await;
    list["jobs"].as_array().into_iter().flatten().filter_map(|j| j["id"].as_str().map(String::from)).collect()
}

/// Hole 1: submit one line with `Idempotency-Key: K`, delete the job, submit
/// 100 lines with K. The id derived from K had ledger history, so the second
/// reservation answered "nothing to do" and the big job ran free.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn a_deleted_jobs_idempotency_key_makes_no_second_job() {
    let s = Stack::start(json!({}), &[]);
    let (status, small) = s.submit(submission(1), Some("K")).await;
    assert_eq!(status, 202, "{small}");
    let id = small["id"].as_str().unwrap_or_default().to_string();
    settled(&s, &id).await;
    let (status, again) = s.submit(submission(1), Some("K")).await;
    assert_eq!((status, &again["id"]), (202, &small["id"]), "a retried submit gets its job back");
    delete(&s, &id).await;
    let before = conserved(&s).await;

    let (status, big) = s.submit(submission(100), Some("K")).await;
    assert_eq!(status, 409, "{big}");
    assert_eq!(big["error"]["code"], "idempotency_key_used", "{big}");
    assert_eq!(big["error"]["details"]["job"], id.as_str(), "the refusal names the deleted job");
    assert!(!job_ids(&s).await.contains(&id), "no job under the spent id");
    let after = conserved(&s).await;
    assert_eq!(after, before, "a refused submit left something in the ledger");
    assert_eq!(s.gemini_batches().await.len(), 1, "Gemini ran only the first, paid job");
}

/// Hole 1, retries: a retry child's id was fixed per parent, so deleting the
/// child and retrying again reused it without a reservation.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn a_retry_after_its_child_was_deleted_makes_a_new_paid_child() {
    let s = Stack::start(json!({"failKeys": ["k1", "k2"]}), &[]);
    let (_, parent) = s.submit(submission(5), None).await;
    let parent = parent["id"].as_str().unwrap_or_default().to_string();
    settled(&s, &parent).await;
    let retry = || async {
        let r = s
            .http
            .post(s.url(&format!("/v1/jobs/{parent}/retry")))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        (r.status().as_u16(), r.json::<Value>().await.unwrap_or_default())
    };
    let (status, first) = retry().await;
    assert_eq!(status, 202, "{first}");
    let first_id = first["id"].as_str().unwrap_or_default().to_string();
    settled(&s, &first_id).await;
    delete(&s, &first_id).await;

    let (status, second) = retry().await;
    assert_eq!(status, 202, "{second}");
    let second_id = second["id"].as_str().unwrap_or_default().to_string();
    assert_ne!(second_id, first_id, "the deleted child's id is spent");
    assert_eq!(second["retryOf"], parent.as_str());
    let (_, again) = retry().await;
    assert_eq!(again["id"], second_id.as_str(), "retrying again returns the live child");
    let done = settled(&s, &second_id).await;
    assert!(done["cost"]["reserved"].as_i64().unwrap_or(0) > 0, "the new child was reserved for: {done}");
    let (_, ledger) = s.get("/v1/account/ledger?limit=500").await;
    let reserves = ledger["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == "reserve" && e["job"] == second_id.as_str())
        .count();
    assert_eq!(reserves, 1, "one reservation for the second child: {ledger}");
    conserved(&s).await;
}

/// Hole 2: `maxOutputTokens: i64::MAX` saturated the standard cost and the
/// batch half wrapped negative, so an empty account was admitted.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn a_huge_max_output_tokens_is_refused_naming_the_line() {
    let s = Stack::start(json!({}), &[]);
    let before = conserved(&s).await;
    let line = |max: Value| json!({"key": "x", "request": {"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"maxOutputTokens": max}}});
    for max in [json!(i64::MAX), json!(u64::MAX), json!(65_537)] {
        let body =
            json!({"model": "gemini-2.5-flash", "requests": [requests(1)[0].clone(), line(max.clone())]});
        let (status, answer) = s.submit(body, None).await;
        assert_eq!(status, 400, "maxOutputTokens {max}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_requests", "{answer}");
        let first = &answer["error"]["details"]["lines"][0];
        assert_eq!(first["line"], 2, "the refusal names the line: {answer}");
        let (status, quote) = s.post_json("/v1/estimate", &body_of(&max)).await;
        assert_eq!(status, 400, "the estimate refuses it too: {quote}");
    }
    // A model that is a longer name of a priced one is not priced as it.
    let (status, answer) =
        s.submit(json!({"model": "gemini-2.5-flash-tts", "requests": requests(1)}), None).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("unpriced_model")), "{answer}");
    // Tools billed beyond their tokens, and another model named in a line.
    for (request, code) in [
        (
            json!({"contents": [{"parts": [{"text": "hi"}]}], "tools": [{"googleSearch": {}}]}),
            "unpriced_tool",
        ),
        (
            json!({"model": "models/gemini-2.5-pro", "contents": [{"parts": [{"text": "hi"}]}]}),
            "model_mismatch",
        ),
    ] {
        let (status, answer) =
            s.submit(json!({"model": "gemini-2.5-flash", "requests": [{"request": request}]}), None).await;
        assert_eq!(status, 400, "{answer}");
        let message = answer["error"]["details"]["lines"][0]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(code), "{answer}");
    }
    assert!(job_ids(&s).await.is_empty(), "a refused submit left a job");
    assert_eq!(conserved(&s).await, before, "a refused submit left something in the ledger");
}

fn body_of(max: &Value) -> Value {
    json!({"model": "gemini-2.5-flash", "requests": [{"request": {"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"maxOutputTokens": max}}}]})
}

/// Hole 3: every request Gemini gets carries the output cap it was priced at,
/// so the charge can never pass the reservation.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn every_request_gemini_gets_carries_its_output_cap() {
    let s = Stack::start(json!({"downloadUploadedFiles": true, "stickNewBatches": true}), &[]);
    let (_, job) = s.submit(submission(20), None).await;
    let id = job["id"].as_str().unwrap_or_default().to_string();
    let input = s.gemini_batch_input().await;
    let done = settled(&s, &id).await;
    let charged = done["cost"]["charged"].as_i64().unwrap_or(i64::MAX);
    let reserved = done["cost"]["reserved"].as_i64().unwrap_or(0);
    assert!(charged <= reserved, "charged {charged} past the reservation {reserved}");
    assert_eq!(input.len(), 20);
    for line in &input {
        assert_eq!(line["request"]["generationConfig"]["maxOutputTokens"], 8_192, "{line}");
    }
    conserved(&s).await;
}

/// Hole 4: bodies were read whole before their size was checked, even on the
/// unauthenticated `POST /hooks/gemini` (64 KiB checked after reading up to
/// the platform's 100 MB). A declared `Content-Length` over the cap is refused
/// on the header; a chunked body is stopped at the cap. (workerd, serving
/// locally, answers only once the declared body has arrived, so these bodies
/// are sent whole, just over each cap.)
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn bodies_over_their_cap_are_refused() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let s = Stack::start(json!({}), &[("GEMINI_WEBHOOK_SECRET", secret), ("MAX_JSON_BODY_BYTES", "1048576")]);
    let before = conserved(&s).await;
    for (path, cap) in [
        ("/hooks/gemini", 64 * 1024),
        ("/v1/estimate", 1 << 20),
        ("/v1/jobs", 1 << 20),
        ("/v1/uploads", 64 * 1024),
    ] {
        let body = vec![b' '; cap + 1];
        // A body refused before it is read leaves its connection unusable (see CLOSE_AFTER).
        let r = s
            .http
            .post(s.url(path))
            .header("content-type", "application/json")
            .header(CLOSE_AFTER.0, CLOSE_AFTER.1)
            .body(body)
            .send()
            .await;
        let answer = r.unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(answer.status(), 413, "{path} with {} bytes", cap + 1);
        let v: Value = answer.json().await.unwrap_or_default();
        assert_eq!(v["error"]["code"], "body_too_large", "{path}: {v}");
        assert_eq!(v["error"]["details"]["limit"], cap, "{path}: {v}");
    }
    // No Content-Length: a chunked body is stopped at the cap. The answer
    // comes while the client is still sending, so the client may meet the
    // closed connection before it reads the 413: it asks again (up to 3 times).
    for path in ["/hooks/gemini", "/v1/estimate"] {
        let mut status = None;
        for _ in 0..3 {
            let piece = bytes::Bytes::from(vec![b' '; 256 * 1024]);
            let r = s
                .http
                .post(s.url(path))
                .header("content-type", "application/json")
                .header(CLOSE_AFTER.0, CLOSE_AFTER.1)
                .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                    (0..8).map(move |_| Ok::<_, std::io::Error>(piece.clone())),
                )))
                .send()
                .await;
            status = r.map(|r| r.status().as_u16()).ok();
            if status.is_some() {
                break;
            }
        }
        assert_eq!(status, Some(413), "{path}: a chunked 2 MiB body");
    }
    // Within the byte cap, but 140,000 tiny objects: tens of MB parsed (a few
    // hundred bytes each), enough at the default 10 MB cap to end the isolate.
    // Refused unparsed, and the worker answers on.
    let bomb =
        format!(r#"{{"model":"gemini-2.5-flash","requests":[{}]}}"#, vec![r#"{"":0}"#; 140_000].join(","));
    assert!(bomb.len() < 1 << 20);
    let key = batchgate_e2e::stack::token(batchgate_e2e::stack::ACCOUNT);
    for (path, refused) in [
        ("/v1/jobs", (413, "json_too_complex")),
        ("/v1/estimate", (413, "json_too_complex")),
        // Google's SDKs get Gemini's status, batchgate's code as the reason.
        ("/gemini/v1beta/models/gemini-2.5-flash:batchGenerateContent", (400, "JSON_TOO_COMPLEX")),
    ] {
        let r = s
            .http
            .post(s.url(path))
            .header("content-type", "application/json")
            .header("x-goog-api-key", &key)
            .body(bomb.clone())
            .send()
            .await;
        let answer = r.unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = answer.status().as_u16();
        let v: Value = answer.json().await.unwrap_or_default();
        let code = if path.starts_with("/gemini") {
            &v["error"]["details"][0]["reason"]
        } else {
            &v["error"]["code"]
        };
        assert_eq!((status, code.as_str().unwrap_or_default()), refused, "{path}: {v}");
    }
    let (status, _) = s.get("/v1/account").await;
    assert_eq!(status, 200);
    assert!(job_ids(&s).await.is_empty());
    assert_eq!(conserved(&s).await, before);
}

/// Hole 5: webhooks could be aimed inside the network (and the timeline
/// reported each attempt's exact status, a probe). Only the URLs are
/// submitted; nothing is sent to any of these addresses.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn webhooks_inside_the_network_are_refused() {
    let s = Stack::start(json!({}), &[]);
    let before = conserved(&s).await;
    for url in [
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/hook",
        "https://[::1]/hook",
        "https://localhost/hook",
        "https://2130706433/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://metadata/hook",
        "http://hooks.example.com/hook",
    ] {
        let mut body = submission(1);
        body["webhook"] = json!({"url": url});
        let (status, answer) = s.submit(body, None).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some("invalid_webhook_url")),
            "{url}: {answer}"
        );
    }
    let own = s.url("/hook").replace("http://127.0.0.1", "https://batchgate.test");
    let mut body = submission(1);
    body["webhook"] = json!({"url": own});
    let r = s
        .http
        .post(s.url("/v1/jobs"))
        .header("host", "batchgate.test")
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), 400, "a webhook back at batchgate itself");
    assert!(job_ids(&s).await.is_empty());
    assert_eq!(conserved(&s).await, before);
}

/// Hole 8: `results?only=failed` listed at most 10,000 requests without a
/// result; the rest were lost from the answer.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn every_request_without_a_result_is_listed_past_ten_thousand() {
    // Gemini returns lines for the first 100 requests only.
    let s = Stack::start(json!({"keepLines": 100}), &[]);
    let n = 10_150;
    let reqs: Vec<Value> = (0..n)
        .map(|i| json!({"key": format!("k{i}"), "request": {"contents": [{"parts": [{"text": "x"}]}]}}))
        .collect();
    let (status, job) = s.submit(json!({"model": "gemini-2.5-flash", "requests": reqs}), None).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap_or_default().to_string();
    let done = s.wait_for(&id, 120, |j| j["cost"]["charged"].is_number()).await;
    assert_eq!(done["counts"]["missing"], n - 100, "{done}");
    let (status, lines) = s.results(&id, "?only=failed").await;
    assert_eq!(status, 200, "{:?}", s.get(&format!("/v1/jobs/{id}/results?only=failed")).await);
    let keys: std::collections::HashSet<&str> = lines.iter().filter_map(|l| l["key"].as_str()).collect();
    assert_eq!((lines.len(), keys.len()), (n - 100, n - 100), "every request without a result, once");
    assert!(keys.contains("k10149") && !keys.contains("k99"), "the missing ones, past the first 10,000");
    conserved(&s).await;
}

/// Hole 6, the smaller ones: a short `JWT_SECRET` is refused, never used; the
/// benchmark route needs the admin token and a file id; `metadata` is bounded.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn smaller_holes_are_closed() {
    let s = Stack::start(json!({}), &[("BENCH_ROUTES", "true")]);
    let before = conserved(&s).await;
    let mut body = submission(1);
    body["metadata"] = json!({"blob": "x".repeat(17 * 1024)});
    let (status, answer) = s.submit(body, None).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("metadata_too_large")), "{answer}");
    let r = s.http.post(s.url("/_bench/copy?file=files/abc")).send().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), 401, "a user token does not open the benchmark route");
    let r = s
        .http
        .post(s.url("/_bench/copy?file=../../etc"))
        .bearer_auth(batchgate_e2e::stack::ADMIN_TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), 400, "only a files/ id");
    assert!(job_ids(&s).await.is_empty());
    assert_eq!(conserved(&s).await, before);
    drop(s);

    let short = Stack::start(json!({}), &[("JWT_SECRET", "sixteen-byte-key")]);
    let (status, answer) = short.get("/v1/account").await;
    assert_eq!((status, answer["error"]["code"].as_str()), (503, Some("misconfigured")), "{answer}");
    drop(short);

    // An operator's issuer and audience, when set, are required of every token.
    let (iss, aud) = ("https://auth.example.com", "batchgate");
    let strict = Stack::start(json!({}), &[("JWT_ISSUER", iss), ("JWT_AUDIENCE", aud)]);
    let (status, answer) = strict.get("/v1/account").await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("invalid_claims")), "{answer}");
    let exp =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) + 600;
    let claims = json!({"sub": batchgate_e2e::stack::ACCOUNT, "exp": exp, "iss": iss, "aud": [aud]});
    let good = batchgate_core::auth::sign(&claims, batchgate_e2e::stack::JWT_SECRET.as_bytes());
    let r = batchgate_e2e::stack::client_with(&good).get(strict.url("/v1/account")).send().await;
    assert_eq!(r.map(|r| r.status().as_u16()).ok(), Some(200), "a token with the operator's iss and aud");
}

/// Hole 6: the storage quota counted only finished files, so uploads opened
/// together each passed alone. A session's declared size is held from its
/// start.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn parallel_uploads_cannot_pass_the_storage_quota_together() {
    const MB: u64 = 1 << 20;
    let quota = (10 * MB).to_string();
    let s = Stack::start(json!({}), &[("STORAGE_QUOTA_BYTES", &quota)]);
    let open = || async {
        let r = s
            .http
            .post(s.url("/v1/uploads"))
            .json(&json!({"size": 4 * MB, "mimeType": "application/pdf"}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        (r.status().as_u16(), r.json::<Value>().await.unwrap_or_default())
    };
    let (a, b, c, d) = tokio::join!(open(), open(), open(), open());
    let statuses: Vec<u16> = [&a, &b, &c, &d].iter().map(|(s, _)| *s).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        2,
        "two 4 MB sessions fit 10 MB: {statuses:?}"
    );
    for (status, answer) in [&a, &b, &c, &d] {
        if *status != 201 {
            assert_eq!(
                (*status, answer["error"]["code"].as_str()),
                (413, Some("storage_quota_exceeded")),
                "{answer}"
            );
        }
    }
    conserved(&s).await;
}

/// Hole 6: a delete that lands while the job's create is in flight left the
/// batch Gemini then made running, with no job to cancel or charge it. Gemini
/// makes the batch at once and answers 3 s later; the job is deleted between.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn a_batch_created_after_its_job_was_deleted_is_cancelled() {
    let s = Stack::start(json!({"stickNewBatches": true}), &[]);
    s.control(
        "/faults",
        json!({"method": "POST", "path": "*:batchGenerateContent", "kind": "delayAnswer", "ms": 3_000, "times": 1}),
    )
    .await;
    let (_, job) = s.submit(submission(3), None).await;
    let id = job["id"].as_str().unwrap_or_default().to_string();
    // Wait until Gemini has made the batch, its answer still held back.
    for _ in 0..100 {
        if !s.gemini_batches().await.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    delete(&s, &id).await;
    let mut last = vec![];
    for _ in 0..150 {
        last = s.gemini_batches().await;
        if last.len() == 1 && last[0]["metadata"]["state"] == "BATCH_STATE_CANCELLED" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(last.len(), 1, "{last:?}");
    assert_eq!(last[0]["metadata"]["state"], "BATCH_STATE_CANCELLED", "the orphan batch runs on: {last:?}");
    let a = conserved(&s).await;
    assert_eq!(a["reserved"], 0, "the deleted job holds nothing: {a}");
}

/// Hole 3: a media file a request references was reserved a flat figure
/// whatever its length; it is reserved what its size may cost.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn referenced_files_are_reserved_by_their_size() {
    let s = Stack::start(json!({}), &[]);
    let size = 4 * 1024 * 1024;
    let r = s
        .http
        .post(s.url("/v1/files?displayName=long.pdf"))
        .header("content-type", "application/pdf")
        .body(vec![b'%'; size])
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), 201);
    let file: Value = r.json().await.unwrap_or_default();
    let uri = file["uri"].as_str().unwrap_or_default().to_string();
    // The same file id under another host is not the file whose owner was checked.
    let elsewhere = uri.replacen("127.0.0.1", "localhost", 1);
    assert_ne!(elsewhere, uri);
    let part = json!({"mimeType": "application/pdf", "fileUri": elsewhere});
    let line = json!({"request": {"contents": [{"parts": [{"text": "summarise"}, {"fileData": part}]}]}});
    let (status, refused) =
        s.post_json("/v1/estimate", &json!({"model": "gemini-2.5-flash", "requests": [line]})).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused.to_string().contains("not Gemini's"), "{refused}");
    let request = json!({"contents": [{"parts": [{"text": "summarise"}, {"fileData": {"mimeType": "application/pdf", "fileUri": uri}}]}]});
    let (status, quote) = s
        .post_json("/v1/estimate", &json!({"model": "gemini-2.5-flash", "requests": [{"request": request}]}))
        .await;
    assert_eq!(status, 200, "{quote}");
    // 4 MiB at no less than 2,000 bytes a page: the 1,000-page ceiling, 258 tokens a page.
    let input = quote["quote"]["tokens"]["input"].as_u64().unwrap_or(0);
    assert!(input >= 258_000, "a 4 MiB PDF reserved as {input} input tokens");
    let (status, job) =
        s.submit(json!({"model": "gemini-2.5-flash", "requests": [{"request": request}]}), None).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(
        job["cost"]["reserved"], quote["quote"]["batch"],
        "the submit reserves what the estimate quoted"
    );
    settled(&s, job["id"].as_str().unwrap_or_default()).await;
    // A realtime call that never says what it used is charged its ceiling:
    // the same one, its file sized in.
    s.control("/config", json!({"omitUsage": true})).await;
    let (status, job) = s
        .submit(
            json!({"model": "gemini-2.5-flash", "requests": [{"request": request}], "mode": "realtime"}),
            None,
        )
        .await;
    assert_eq!(status, 202, "{job}");
    let reserved = job["cost"]["reserved"].as_i64().unwrap_or(0);
    assert_eq!(reserved, quote["quote"]["standard"], "realtime reserves the standard price");
    let done =
        s.wait_for(job["id"].as_str().unwrap_or_default(), 60, |j| j["cost"]["charged"].is_i64()).await;
    s.control("/config", json!({"omitUsage": false})).await;
    assert_eq!(done["cost"]["charged"], reserved, "{done}");
    conserved(&s).await;
}

/// Hole 7: a token that may live 30 days went in the watch socket's URL (and
/// from there into logs). A single-use ticket goes there instead.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn watch_tokens_never_go_in_urls() {
    let s = Stack::start(json!({}), &[]);
    let (_, job) = s.submit(submission(1), None).await;
    let id = job["id"].as_str().unwrap_or_default().to_string();
    let socket = |query: String| {
        let url = format!("{}?{query}", s.url(&format!("/v1/jobs/{id}/watch")).replacen("http", "ws", 1));
        async move {
            match tokio_tungstenite::connect_async(url).await {
                Ok(_) => 101,
                Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
                Err(e) => panic!("{e}"),
            }
        }
    };
    let token = batchgate_e2e::stack::token(batchgate_e2e::stack::ACCOUNT);
    assert_eq!(socket(format!("token={token}")).await, 401, "a token in the URL is refused");
    let (status, ticket) = s.post_json(&format!("/v1/jobs/{id}/watch-ticket"), &json!({})).await;
    assert_eq!(status, 200, "{ticket}");
    let ticket = ticket["ticket"].as_str().unwrap_or_default().to_string();
    assert_eq!(socket(format!("ticket={ticket}")).await, 101, "the ticket opens the socket once");
    assert_eq!(socket(format!("ticket={ticket}")).await, 401, "and only once");
    assert_eq!(socket(format!("ticket={}", "0".repeat(64))).await, 401, "an unknown ticket");
    let other = batchgate_e2e::stack::client_with(&batchgate_e2e::stack::token("someone-else"));
    let r = other
        .post(s.url(&format!("/v1/jobs/{id}/watch-ticket")))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), 404, "no tickets for another account's job");
    settled(&s, &id).await;
    conserved(&s).await;
}

/// The drop-in's `countTokens` (free, but on the RPM limit every account
/// shares) was limited per account by nothing, and read its files under their
/// camelCase names only, so another account's file in snake_case reached
/// Gemini unchecked. It now counts as a generate call against the account's
/// limits, and its body is checked as a generate request is.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn count_tokens_is_limited_per_account_and_names_only_its_own_files() {
    let s = Stack::start(json!({}), &[("MAX_GENERATE_PER_MINUTE", "3")]);
    let r = s
        .http
        .post(s.url("/v1/files?displayName=mine.pdf"))
        .header("content-type", "application/pdf")
        .body(b"%PDF-1.4 the first account's own".to_vec())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status(), 201);
    let file: Value = r.json().await.unwrap_or_default();
    let theirs = file["name"].as_str().unwrap_or_default().to_string();
    assert!(theirs.starts_with("files/"), "{file}");

    let key = batchgate_e2e::stack::token("count-tokens-other");
    let other = batchgate_e2e::stack::client_with(&key);
    let count = |body: Value| {
        let req = other
            .post(s.url("/gemini/v1beta/models/gemini-2.5-flash:countTokens"))
            .header("x-goog-api-key", &key)
            .json(&body);
        async move {
            let r = req.send().await.unwrap_or_else(|e| panic!("{e}"));
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or_default())
        }
    };
    let part = json!({"file_data": {"file_uri": theirs, "mime_type": "application/pdf"}});
    for body in [
        json!({"generate_content_request": {"model": "models/gemini-2.5-flash", "contents": [{"parts": [part]}]}}),
        json!({"contents": [{"parts": [part]}]}),
        json!({"contents": [{"parts": [{"fileData": {"fileUri": theirs.replacen("files/", "Files/", 1)}}]}]}),
    ] {
        let (status, answer) = count(body.clone()).await;
        assert_eq!(
            (status, answer["error"]["status"].as_str()),
            (400, Some("INVALID_ARGUMENT")),
            "{body}: {answer}"
        );
    }
    // The refusals above took no slot; three counts a minute, then Gemini's 429.
    let text = json!({"contents": [{"parts": [{"text": "how many tokens is this?"}]}]});
    for _ in 0..3 {
        let (status, answer) = count(text.clone()).await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer["totalTokens"].as_u64().is_some_and(|n| n > 0), "{answer}");
    }
    let (status, answer) = count(text).await;
    assert_eq!((status, answer["error"]["status"].as_str()), (429, Some("RESOURCE_EXHAUSTED")), "{answer}");
    let r = other.get(s.url("/v1/account")).send().await.unwrap_or_else(|e| panic!("{e}"));
    let account: Value = r.json().await.unwrap_or_default();
    assert_eq!((account["spent"].as_i64(), account["reserved"].as_i64()), (Some(0), Some(0)), "{account}");
}
