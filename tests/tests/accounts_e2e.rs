//! Accounts, tokens and credits end to end: the real worker in workerd against
//! the emulator, whose deterministic token counts let every charge be predicted
//! to the micro-credit. Run by `cargo xtask test`.

use batchgate_e2e::api::{emulated_prices, requests};
use batchgate_e2e::stack::{ACCOUNT, ADMIN_TOKEN, JWT_SECRET, STARTING_CREDITS, Stack, client_with, token};
use serde_json::{Value, json};

const MODEL: &str = "gemini-2.5-flash";

fn submission(n: usize) -> Value {
    json!({"model": MODEL, "requests": requests(n)})
}

/// What the emulator will charge for `requests(n)`, at the batch price.
fn expected_charge(reqs: &[Value]) -> i64 {
    emulated_prices(MODEL, reqs).1
}

async fn json_of(r: reqwest::Response) -> (u16, Value) {
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn account(s: &Stack, client: &batchgate_e2e::record::Http) -> Value {
    let (status, v) = json_of(client.get(s.url("/v1/account")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{v}");
    v
}

async fn ended_and_charged(s: &Stack, id: &str) -> Value {
    s.wait_for(id, 90, |j| j["cost"]["charged"].is_i64()).await
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn a_finished_job_costs_its_usage_at_the_batch_price_to_the_micro_credit() {
    let s = Stack::start(json!({}), &[]);
    let reqs = requests(25);
    let expected = expected_charge(&reqs);

    let (status, quote) =
        json_of(s.http.post(s.url("/v1/estimate")).json(&submission(25)).send().await.unwrap()).await;
    assert_eq!(status, 200, "{quote}");
    let (batch, standard) =
        (quote["quote"]["batch"].as_i64().unwrap(), quote["quote"]["standard"].as_i64().unwrap());
    assert!((0..=1).contains(&(batch * 2 - standard)), "batch is half of standard: {quote}");
    let before = account(&s, &s.http).await;
    assert_eq!(before["balance"], STARTING_CREDITS);
    assert_eq!(before["reserved"], 0, "an estimate reserves nothing");

    let (status, job) = s.submit(submission(25), None).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["cost"]["reserved"], quote["quote"]["batch"], "the reservation is the quote");
    let held = account(&s, &s.http).await;
    assert_eq!(held["reserved"], quote["quote"]["batch"]);
    assert_eq!(
        held["balance"].as_i64().unwrap(),
        STARTING_CREDITS - quote["quote"]["batch"].as_i64().unwrap()
    );

    let id = job["id"].as_str().unwrap();
    let done = ended_and_charged(&s, id).await;
    assert_eq!(done["state"], "succeeded");
    assert_eq!(done["cost"]["charged"], expected, "charged {}; expected {expected}", done["cost"]);
    let after = account(&s, &s.http).await;
    assert_eq!(after["balance"].as_i64().unwrap(), STARTING_CREDITS - expected);
    assert_eq!(after["reserved"], 0);
    assert_eq!(after["spent"], expected);
    assert_eq!(after["saved"].as_i64().unwrap(), done["cost"]["standard"].as_i64().unwrap() - expected);
    assert_eq!(
        after["granted"].as_i64().unwrap()
            - after["spent"].as_i64().unwrap()
            - after["reserved"].as_i64().unwrap(),
        after["balance"].as_i64().unwrap()
    );

    // The ledger tells the story: grant, reserve, settle, release (newest first).
    let (status, ledger) = json_of(s.http.get(s.url("/v1/account/ledger")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let kinds: Vec<&str> =
        ledger["entries"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["release", "settle", "reserve", "grant"]);
    let (_, page) = json_of(s.http.get(s.url("/v1/account/ledger?limit=2")).send().await.unwrap()).await;
    let cursor = page["nextCursor"].as_str().unwrap();
    let (_, rest) = json_of(
        s.http.get(s.url(&format!("/v1/account/ledger?limit=2&cursor={cursor}"))).send().await.unwrap(),
    )
    .await;
    assert_eq!(rest["entries"].as_array().unwrap().len(), 2);
    assert!(rest["nextCursor"].is_null());

    // The operator sees the same account.
    let (status, admin_view) = json_of(
        s.http
            .get(s.url(&format!("/v1/admin/accounts/{ACCOUNT}")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(admin_view["balance"], after["balance"]);
}

/// Gemini 2.5 Flash bills audio input at $1.00 / 1M against $0.30 for text,
/// and 2.5 Pro bills a request whose prompt passes 200k tokens at higher rates,
/// the whole request. Both are charged what Gemini bills, to the micro-credit,
/// and reserved at least that.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn audio_and_long_prompts_are_charged_at_their_own_rates() {
    use batchgate_core::pricing::{PriceTable, Tokens};
    let s = Stack::start(json!({}), &[]);
    let audio = |i: usize| {
        json!({"key": format!("a{i}"), "request": {"contents": [{"parts": [
            {"text": format!("transcribe clip {i}")},
            {"inlineData": {"mimeType": "audio/mp3", "data": "SUQzBAAAAAAA"}}]}]}})
    };
    let long = json!({"key": "long", "request": {
        "contents": [{"parts": [{"text": "lorem ipsum ".repeat(70_000)}]}],
        "generationConfig": {"maxOutputTokens": 64}}});
    let short = json!({"key": "short", "request": {"contents": [{"parts": [{"text": "a short one"}]}]}});
    let cases =
        [("gemini-2.5-flash", (0..4).map(audio).collect::<Vec<_>>()), ("gemini-2.5-pro", vec![long, short])];
    for (model, reqs) in cases {
        let (_, expected) = emulated_prices(model, &reqs);
        // What the same answers would cost with audio and long prompts billed as plain text.
        let flat = {
            let p = PriceTable::default().price(model).unwrap_or_default();
            let plain = batchgate_core::pricing::Price { audio_input: None, long_context: None, ..p };
            let mut tokens = Tokens::default();
            for r in &reqs {
                let u = gemini_emulator::model::usage(model, &r["request"]).unwrap();
                tokens.add(&Tokens {
                    input: u.prompt,
                    output: u.candidates + u.thoughts,
                    ..Tokens::default()
                });
            }
            plain.batch(&tokens)
        };
        assert!(
            expected > flat,
            "{model}: the test's answers cost more than plain text ({expected} vs {flat})"
        );
        let (status, job) = s.submit(json!({"model": model, "requests": reqs}), None).await;
        assert_eq!(status, 202, "{job}");
        let reserved = job["cost"]["reserved"].as_i64().unwrap();
        let done = ended_and_charged(&s, job["id"].as_str().unwrap()).await;
        assert_eq!(done["state"], "succeeded", "{done}");
        assert_eq!(done["cost"]["charged"], expected, "{model}: {}", done["cost"]);
        assert!(reserved >= expected, "{model}: reserved {reserved}, charged {expected}");
    }
    let after = account(&s, &s.http).await;
    assert_eq!(after["reserved"], 0);
    assert_eq!(
        after["granted"].as_i64().unwrap() - after["spent"].as_i64().unwrap(),
        after["balance"].as_i64().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn failed_jobs_cost_nothing_and_expired_ones_only_what_was_delivered() {
    let s = Stack::start(json!({"stickNewBatches": true}), &[]);
    // FAILED: everything reserved comes back.
    let (_, job) = s.submit(submission(5), None).await;
    let failed_id = job["id"].as_str().unwrap().to_string();
    let batch = s.the_gemini_batch().await;
    s.control(&format!("/batches/{batch}/state"), json!({"state": "FAILED"})).await;
    let failed = ended_and_charged(&s, &failed_id).await;
    assert_eq!(failed["state"], "failed");
    assert_eq!(failed["cost"]["charged"], 0);
    assert_eq!(account(&s, &s.http).await["balance"], STARTING_CREDITS);

    // EXPIRED with the first 4 of 10 lines answered: those 4 are charged.
    let reqs = requests(10);
    let (_, job) = s.submit(submission(10), None).await;
    let id = job["id"].as_str().unwrap().to_string();
    let batch = loop {
        let batches = s.gemini_batches().await;
        if let Some(b) = batches.iter().find(|b| b["metadata"]["state"] == "BATCH_STATE_PENDING") {
            break b["name"].as_str().unwrap().trim_start_matches("batches/").to_string();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    s.control(&format!("/batches/{batch}/state"), json!({"state": "EXPIRED", "partialResults": 4})).await;
    let expired = ended_and_charged(&s, &id).await;
    assert_eq!(expired["state"], "expired");
    assert_eq!(expired["counts"]["succeeded"], 4);
    let delivered = expected_charge(&reqs[..4]);
    assert!(delivered > 0);
    assert_eq!(expired["cost"]["charged"], delivered);
    let acct = account(&s, &s.http).await;
    assert_eq!(acct["balance"].as_i64().unwrap(), STARTING_CREDITS - delivered);
    assert_eq!(acct["reserved"], 0);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn another_accounts_jobs_are_not_found_on_any_route() {
    let s = Stack::start(json!({}), &[]);
    let (_, job) = s.submit(submission(3), None).await;
    let id = job["id"].as_str().unwrap().to_string();
    s.wait_for(&id, 60, |j| j["resultsReady"] == true).await;

    s.grant("mallory", 1_000_000_000).await;
    let mallory = client_with(&token("mallory"));
    for (method, path) in [
        ("GET", format!("/v1/jobs/{id}")),
        ("GET", format!("/v1/jobs/{id}/results")),
        ("GET", format!("/v1/jobs/{id}/results?only=failed")),
        ("GET", format!("/v1/jobs/{id}/results?limit=10")),
        ("GET", format!("/v1/jobs/{id}/results/k1")),
        ("POST", format!("/v1/jobs/{id}/cancel")),
        ("DELETE", format!("/v1/jobs/{id}")),
    ] {
        let r = mallory.request(method.parse().unwrap(), s.url(&path)).send().await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or_default();
        assert_eq!(status, 404, "{method} {path} as another account: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (_, list) = json_of(mallory.get(s.url("/v1/jobs")).send().await.unwrap()).await;
    assert_eq!(list["jobs"], json!([]), "another account's history is its own");
    // The same Idempotency-Key in two accounts names two different jobs.
    let (_, mine) = s.submit(submission(1), Some("same-key")).await;
    let r = mallory
        .post(s.url("/v1/jobs"))
        .header("idempotency-key", "same-key")
        .json(&submission(1))
        .send()
        .await
        .unwrap();
    let (status, theirs) = json_of(r).await;
    assert_eq!(status, 202);
    assert_ne!(mine["id"], theirs["id"]);
    // The owner still has everything.
    let (status, _) = s.get(&format!("/v1/jobs/{id}/results/k1")).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn parallel_submits_racing_for_the_last_credits_never_overspend() {
    let s = Stack::start(json!({"stickNewBatches": true}), &[]);
    let (_, quote) =
        json_of(s.http.post(s.url("/v1/estimate")).json(&submission(2)).send().await.unwrap()).await;
    let price = quote["quote"]["batch"].as_i64().unwrap();
    // Room for exactly 3 of these jobs.
    s.grant("racer", price * 3 + price / 2).await;
    let racer = client_with(&token("racer"));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (c, url, body) = (racer.clone(), s.url("/v1/jobs"), submission(2));
            tokio::spawn(async move { c.post(url).json(&body).send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut statuses = vec![];
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [202, 202, 202, 402, 402, 402, 402, 402]);
    let acct = account(&s, &racer).await;
    assert_eq!(acct["reserved"], price * 3);
    assert_eq!(acct["balance"], price / 2);

    // A 402 carries the quote and the balance, and nothing reaches Gemini for
    // it (counted once the three accepted jobs have their batches).
    while s.gemini_batches().await.len() < 3 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let uploads = |calls: Vec<(String, String, u64)>| {
        calls.iter().filter(|(m, p, _)| m == "POST" && p.contains("upload")).count()
    };
    let files_before = uploads(s.gemini_calls().await);
    let r = racer.post(s.url("/v1/jobs")).json(&submission(2)).send().await.unwrap();
    let (status, refused) = json_of(r).await;
    assert_eq!(status, 402);
    assert_eq!(refused["error"]["code"], "insufficient_credits");
    assert_eq!(refused["error"]["details"]["quote"]["batch"], price);
    assert_eq!(refused["error"]["details"]["balance"], price / 2);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let files_after =
        s.gemini_calls().await.iter().filter(|(m, p, _)| m == "POST" && p.contains("upload")).count();
    assert_eq!(files_before, files_after, "a refused job uploaded something");
    let (_, list) = json_of(racer.get(s.url("/v1/jobs")).send().await.unwrap()).await;
    assert_eq!(list["jobs"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn every_kind_of_bad_token_is_a_401_and_limits_answer_429() {
    let s =
        Stack::start(json!({}), &[("MAX_SUBMITS_PER_MINUTE", "2"), ("CORS_ORIGINS", "https://app.example")]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let sign = |claims: Value, secret: &str| batchgate_core::auth::sign(&claims, secret.as_bytes());
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    let none_alg = format!(
        "{}.{}.",
        b64(r#"{"alg":"none"}"#),
        b64(&json!({"sub": ACCOUNT, "exp": now + 60}).to_string())
    );
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "missing_token"),
        (Some("Bearer".into()), "missing_token"),
        (Some(format!("Basic {}", b64("a:b"))), "missing_token"),
        (Some("Bearer garbage".into()), "malformed_token"),
        (
            Some(format!("Bearer {}", sign(json!({"sub": ACCOUNT, "exp": now - 3600}), JWT_SECRET))),
            "token_expired",
        ),
        (
            Some(format!("Bearer {}", sign(json!({"sub": ACCOUNT, "exp": now + 60}), "not-the-secret"))),
            "bad_signature",
        ),
        (Some(format!("Bearer {}", sign(json!({"sub": ACCOUNT}), JWT_SECRET))), "invalid_claims"),
        (Some(format!("Bearer {}", sign(json!({"exp": now + 60}), JWT_SECRET))), "invalid_claims"),
        (Some(format!("Bearer {none_alg}")), "unsupported_algorithm"),
        (Some(format!("Bearer {ADMIN_TOKEN}")), "malformed_token"),
    ];
    let plain = batchgate_e2e::stack::client();
    for (auth, code) in cases {
        for (method, path) in
            [("GET", "/v1/jobs"), ("POST", "/v1/jobs"), ("GET", "/v1/account"), ("POST", "/v1/estimate")]
        {
            let mut r = plain.request(method.parse().unwrap(), s.url(path));
            if let Some(a) = &auth {
                r = r.header("authorization", a);
            }
            let (status, body) = json_of(r.json(&submission(1)).send().await.unwrap()).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (401, Some(code)),
                "{method} {path} with {auth:?}: {body}"
            );
        }
    }
    // Admin routes take only the admin token.
    let (status, _) =
        json_of(s.http.get(s.url(&format!("/v1/admin/accounts/{ACCOUNT}"))).send().await.unwrap()).await;
    assert_eq!(status, 401, "a user token is not an admin token");
    let (status, body) = json_of(
        plain
            .post(s.url("/v1/admin/accounts/x/grants"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"amount": 0}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_amount")));

    // Two submits a minute, then 429 with Retry-After.
    for _ in 0..2 {
        assert_eq!(s.submit(submission(1), None).await.0, 202);
    }
    let r = s.http.post(s.url("/v1/jobs")).json(&submission(1)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let (_, body) = json_of(r).await;
    assert_eq!(body["error"]["code"], "too_many_submits");

    // CORS: the configured origin is answered, any other is not.
    let pre = |origin: &'static str| {
        plain
            .request(reqwest::Method::OPTIONS, s.url("/v1/jobs"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
    };
    let ok = pre("https://app.example").await.unwrap();
    assert_eq!(ok.status().as_u16(), 204);
    assert_eq!(ok.headers()["access-control-allow-origin"], "https://app.example");
    assert!(ok.headers()["access-control-allow-headers"].to_str().unwrap().contains("authorization"));
    let other = pre("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let r = s.http.get(s.url("/v1/account")).header("origin", "https://app.example").send().await.unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "https://app.example");
    let r = s.http.get(s.url("/v1/account")).header("origin", "https://evil.example").send().await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}
