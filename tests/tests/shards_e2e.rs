//! Shards side by side through the real worker: several batches of one job at
//! Gemini at once under the model's cap, results of a stored shard read before
//! the job ends (whole, paged and by key), and two Gemini keys (two emulators
//! behind one address, as two Google projects) with one key revoked mid-job.
//! Run by `cargo xtask test`.

use batchgate_core::keys::key_id;
use batchgate_e2e::key_router::KeyRouter;
use batchgate_e2e::process::Service;
use batchgate_e2e::stack::{ADMIN_TOKEN, GEMINI_KEY, Stack};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

const MODEL: &str = "gemini-2.5-flash";
/// The enqueued-token cap, at the emulator and in the worker's settings.
const CAP: u64 = 5_000;
const REQUESTS: usize = 60;

/// `n` requests of about 100 input tokens each: ~8,000 tokens, several
/// shards of at most 30 % of the cap, three of which fit under it at once.
fn requests(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let text = format!("s{i:04} {}", "word ".repeat(80));
            json!({"key": format!("s{i}"), "request": {"contents": [{"parts": [{"text": text}]}]}})
        })
        .collect()
}

fn keys_of(lines: &[Value]) -> BTreeSet<String> {
    lines.iter().filter_map(|l| l["key"].as_str().map(str::to_string)).collect()
}

fn vars(caps: &str) -> Vec<(&'static str, String)> {
    vec![
        ("ENQUEUED_TOKEN_CAPS", caps.to_string()),
        ("QUOTA_RETRY_SECS", "0.3".into()),
        ("SHARD_FILL_PERCENT", "30".into()),
    ]
}

fn caps() -> String {
    format!("{{\"{MODEL}\": {CAP}}}")
}

/// Batches at an emulator: `(name, displayName, state)`.
async fn batches_at(s: &Stack, base: &str, key: &str) -> Vec<(String, String, String)> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let batches = s.batches_at(base, key).await;
    batches
        .iter()
        .map(|b| (text(&b["name"]), text(&b["metadata"]["displayName"]), text(&b["metadata"]["state"])))
        .collect()
}

async fn admin_keys(s: &Stack) -> Vec<Value> {
    let r = s.http.get(s.url("/v1/admin/keys")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["keys"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn shards_run_side_by_side_and_their_results_are_read_as_they_land() {
    let caps = caps();
    let vars = vars(&caps);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Every batch waits at Gemini until the test lets it go.
    let s = Stack::start(json!({"enqueuedTokenCap": CAP, "stickNewBatches": true}), &vars);
    let (status, job) = s.submit(json!({"model": MODEL, "requests": requests(REQUESTS)}), None).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let shards = job["shards"].as_u64().unwrap();
    assert!(shards >= 4, "{job}");

    // Three shards fit under the cap at once: three batches, and the rest wait at the quota.
    s.nth_gemini_batch(3).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let waiting = batches_at(&s, &s.emulator.url, GEMINI_KEY).await;
    assert_eq!(waiting.len(), 3, "three at once: {waiting:?}");
    let (_, early) = s.results(&id, "").await;
    assert!(early.is_empty());
    let (status, _) = s.get(&format!("/v1/jobs/{id}/results")).await;
    assert_eq!(status, 409, "the whole results wait for the end");

    // Shard 1's batch finishes first: its lines can be read while shards 0 and 2 still wait.
    let shard_1 = format!("batchgate-{id}-1-0");
    let (name, _, _) =
        waiting.iter().find(|(_, d, _)| *d == shard_1).cloned().unwrap_or_else(|| panic!("{waiting:?}"));
    s.control(&format!("/{name}/release"), json!({})).await;
    let view = s.wait_for(&id, 60, |v| v["readable"]["shards"] == 1).await;
    assert_eq!(view["state"], "running", "{view}");
    let lines = view["readable"]["lines"].as_u64().unwrap();
    let (status, partial) = s.results(&id, "?partial=true").await;
    assert_eq!(status, 200);
    assert_eq!(partial.len() as u64, lines, "{view}");
    let landed = keys_of(&partial);
    assert!(partial.iter().all(|l| l["response"].is_object()), "{partial:?}");
    // Pages go in line order and stop at the first shard not stored (shard 0),
    // so a cursor never passes lines still to come.
    let (_, paged) = s.results(&id, "?partial=true&limit=1000").await;
    assert!(paged.is_empty(), "{paged:?}");
    let one = landed.iter().next().unwrap();
    let (status, line) = s.get(&format!("/v1/jobs/{id}/results/{one}")).await;
    assert_eq!((status, line["key"].as_str()), (200, Some(one.as_str())), "by key, before the end");
    let (status, refused) = s.get(&format!("/v1/jobs/{id}/results/s0")).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("results_not_ready")),
        "shard 0 waits"
    );
    let (status, bad) = s.get(&format!("/v1/jobs/{id}/results?partial=yes")).await;
    assert_eq!((status, bad["error"]["code"].as_str()), (400, Some("invalid_partial")));

    // Shard 0 lands too: pages now run through shards 0 and 1, and tell where to go on from.
    let shard_0 = format!("batchgate-{id}");
    let (name, _, _) =
        waiting.iter().find(|(_, d, _)| *d == shard_0).cloned().unwrap_or_else(|| panic!("{waiting:?}"));
    s.control(&format!("/{name}/release"), json!({})).await;
    let view = s.wait_for(&id, 60, |v| v["readable"]["shards"] == 2).await;
    let r =
        s.http.get(s.url(&format!("/v1/jobs/{id}/results?partial=true&limit=1000"))).send().await.unwrap();
    let resume = r.headers().get("batchgate-resume-cursor").map(|v| v.to_str().unwrap().to_string());
    assert!(r.headers().get("batchgate-next-cursor").is_none(), "nothing more stored yet");
    let paged: Vec<Value> =
        r.text().await.unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(paged.len() as u64, view["readable"]["lines"].as_u64().unwrap(), "{view}");
    assert!(keys_of(&paged).contains("s0") && landed.is_subset(&keys_of(&paged)));
    assert!(resume.is_some(), "a partial page says where to go on from");

    // Let everything go: the job ends with every key, charged what it delivered.
    s.control("/config", json!({"stickNewBatches": false})).await;
    for (name, _, state) in batches_at(&s, &s.emulator.url, GEMINI_KEY).await {
        if state == "BATCH_STATE_PENDING" {
            s.control(&format!("/{name}/release"), json!({})).await;
        }
    }
    // The charge is recorded a step after the state ends.
    let done = s.wait_for(&id, 120, |v| v["state"] == "succeeded" && !v["cost"]["charged"].is_null()).await;
    assert_eq!(done["counts"]["succeeded"], REQUESTS, "{done}");
    assert_eq!(done["readable"]["shards"], shards);
    assert_eq!(done["cost"]["charged"], done["cost"]["delivered"]);
    let (_, all) = s.results(&id, "").await;
    let want: BTreeSet<String> = (0..REQUESTS).map(|i| format!("s{i}")).collect();
    assert_eq!(keys_of(&all), want);
    assert!(landed.is_subset(&want));
    let state = s.emulator_state().await;
    let peak = state["peakEnqueuedTokens"].as_object().unwrap().values().filter_map(Value::as_u64).max();
    assert!(peak.is_some_and(|p| p <= CAP), "peak enqueued {peak:?} (cap {CAP})");
    let refused = s.gemini_calls().await.into_iter().filter(|(_, _, status)| *status == 429).count();
    assert_eq!(refused, 0, "the quota kept every create under the cap");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn shards_spread_over_two_keys_and_a_revoked_key_hands_its_shards_to_the_other() {
    const KEY_B: &str = "e2e-gemini-key-b";
    let router = KeyRouter::start().await;
    // Project B holds its batches PENDING: they are still there when its key is revoked.
    let b_config =
        json!({"pendingSecs": 0.5, "runningSecs": 0.5, "enqueuedTokenCap": CAP, "stickNewBatches": true});
    let b = Service::emulator(&["--api-key", KEY_B, "--config", &b_config.to_string()]).unwrap();
    let caps = caps();
    let keys = format!("{GEMINI_KEY},{KEY_B}");
    let mut vars = vars(&caps);
    vars.push(("GEMINI_API_BASE", router.url.clone()));
    vars.push(("GEMINI_API_KEYS", keys));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s = Stack::start(json!({"enqueuedTokenCap": CAP}), &vars);
    router.route(GEMINI_KEY, &s.emulator.url);
    router.route(KEY_B, &b.url);
    let (id_a, id_b) = (key_id(GEMINI_KEY), key_id(KEY_B));

    let (status, job) = s.submit(json!({"model": MODEL, "requests": requests(REQUESTS)}), None).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    // Shards land on both keys.
    let mut on_b = vec![];
    for _ in 0..300 {
        on_b = batches_at(&s, &b.url, KEY_B).await;
        if !on_b.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!on_b.is_empty(), "no shard reached key B");
    assert!(on_b.iter().all(|(_, d, _)| d.starts_with(&format!("batchgate-{id}"))));
    let listed = admin_keys(&s).await;
    let text = serde_json::to_string(&listed).unwrap();
    assert!(!text.contains(KEY_B) && !text.contains(GEMINI_KEY), "keys are shown by id only: {text}");
    let row = |keys: &[Value], id: &str| keys.iter().find(|k| k["id"] == id).cloned().unwrap_or_default();
    assert_eq!(row(&listed, &id_b)["state"], "active");
    assert!(row(&listed, &id_b)["batches"].as_u64().unwrap_or(0) >= 1, "{listed:?}");

    // Key B is revoked (rotated away at Google): its shards go to key A.
    let r = s
        .http
        .post(format!("{}/_emulator/config", b.url))
        .json(&json!({"apiKey": "rotated-away"}))
        .send()
        .await;
    assert!(r.is_ok_and(|r| r.status().is_success()));
    // No create can reach B from now on (B refuses the old key).
    let at_revocation = batches_at(&s, &b.url, "rotated-away").await.len();
    let done = s.wait_for(&id, 120, |v| v["state"] == "succeeded" && !v["cost"]["charged"].is_null()).await;
    assert_eq!(done["counts"]["succeeded"], REQUESTS, "{done}");
    assert_eq!(done["cost"]["charged"], done["cost"]["delivered"], "charged once, for what was delivered");
    let (_, all) = s.results(&id, "").await;
    let want: BTreeSet<String> = (0..REQUESTS).map(|i| format!("s{i}")).collect();
    assert_eq!(keys_of(&all), want);
    assert_eq!(all.len(), REQUESTS, "every key once");

    let listed = admin_keys(&s).await;
    let (a, b_row) = (row(&listed, &id_a), row(&listed, &id_b));
    assert_eq!((a["state"].as_str(), a["batches"].as_u64()), (Some("active"), Some(0)), "{listed:?}");
    assert_eq!(b_row["state"], "revoked", "{listed:?}");
    // Reinstating: only a configured key, only for the operator.
    let reinstate = |id: String| s.http.post(s.url(&format!("/v1/admin/keys/{id}/reinstate")));
    let r = reinstate("key-00000000".into()).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 404, "an id no key has");
    let r = reinstate(id_b.clone()).send().await.unwrap();
    assert_eq!(r.status(), 401, "a user's token is not the operator's");
    assert!(b_row["reason"].as_str().is_some_and(|r| r.contains("API key not valid")), "{b_row}");
    let (_, events) = s.get(&format!("/v1/jobs/{id}/events?limit=1000")).await;
    let resubmitted =
        events["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "shard_resubmitted").count();
    assert!(resubmitted >= at_revocation, "each shard of key B went again: {resubmitted} of {at_revocation}");
    // A later job runs on key A alone.
    let (_, next) = s.submit(json!({"model": MODEL, "requests": requests(5)}), None).await;
    let next_id = next["id"].as_str().unwrap().to_string();
    s.wait_state(&next_id, "succeeded", 60).await;
    let created_on_b = batches_at(&s, &b.url, "rotated-away").await.len();
    assert_eq!(created_on_b, at_revocation, "nothing reached key B after it was refused");
}
