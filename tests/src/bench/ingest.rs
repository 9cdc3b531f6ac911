//! Ingestion through workerd: a 100,000-line (~200 MB) results file moved from
//! Gemini (the emulator) into R2 by the real worker, with every line scanned and
//! indexed, against the worker copying the same bytes into R2 with the same
//! ranged reads and part size but no parsing (`/_bench/copy`).

use super::median;
use super::{Row, Section};
use crate::stack::{GEMINI_KEY, Stack};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};

pub async fn run(lines: usize, reps: usize) -> Section {
    let s = Stack::start(
        json!({"pendingSecs": 0, "runningSecs": 0, "answerPadBytes": 1800}),
        &[("BENCH_ROUTES", "true"), ("POLL_FIRST_SECS", "0.05"), ("POLL_MIN_SECS", "0.05")],
    );
    // Keep Gemini's results files after the jobs clean up, for the baseline copies.
    s.control("/faults", json!({"method": "DELETE", "path": "*/files/*", "kind": "status", "status": 400}))
        .await;
    let body: String = (0..lines)
        .map(|i| json!({"key": format!("k{i}"), "request": {"contents": [{"parts": [{"text": format!("classify article {i}")}]}]}}).to_string() + "\n")
        .collect();
    // Alternate ingestion and copy so drift on a noisy machine hits both alike.
    let (mut ingests, mut copies, mut size) = (vec![], vec![], 0.0);
    let mut seen = HashSet::new();
    for _ in 0..reps {
        ingests.push(ingest_once(&s, body.clone()).await);
        let (name, bytes) = newest_results_file(&s, &mut seen).await;
        size = bytes;
        copies.push(copy_once(&s, &name).await);
    }
    let (ingest_secs, copy_secs) = (median(ingests), median(copies));
    let mb = size / 1_048_576.0;
    let ratio = ingest_secs / copy_secs;
    Section {
        title: format!("Ingestion through workerd ({lines} result lines)"),
        how: format!(
            "A {lines}-request job whose results file is {mb:.0} MiB (~2 KB lines): the worker in workerd (wrangler's dev engine, local R2 \
             and Durable Object SQLite) reads it from the emulator in 8 MiB ranges, scans and indexes every line and \
             stores it as R2 parts (timed from `ingesting` to `resultsReady`, polled every 20 ms). Baseline: the same \
             worker copying the same file with the same ranges and parts, parsing nothing. Median of {reps} alternating runs; the ratio is time over the baseline's time."
        ),
        rows: vec![Row {
            metric: "ingestion MB/s".into(),
            value: format!("{:.0}", mb / ingest_secs),
            baseline: format!("{:.0}", mb / copy_secs),
            ratio: Some(ratio),
            target: Some(("≤ 1.25".into(), ratio <= 1.25)),
        }],
    }
}

/// Submit the job and time its ingestion, from `ingesting` to `resultsReady`.
async fn ingest_once(s: &Stack, body: String) -> f64 {
    let (status, job) = s.submit_ndjson("gemini-2.5-flash", body).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap_or_default().to_string();
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut started = None;
    loop {
        let j = s.job(&id).await;
        if started.is_none() && (j["state"] == "ingesting" || j["resultsReady"] == true) {
            started = Some(Instant::now());
        }
        if j["resultsReady"] == true {
            return started.map_or(0.0, |t| t.elapsed().as_secs_f64());
        }
        assert!(Instant::now() < deadline, "ingestion did not finish: {j}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The results file of the job just finished (one not `seen` before) and its size.
async fn newest_results_file(s: &Stack, seen: &mut HashSet<String>) -> (String, f64) {
    let files: Value = s
        .http
        .get(s.emu("/v1beta/files?pageSize=100"))
        .header("x-goog-api-key", GEMINI_KEY)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_default();
    let file = files["files"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["name"].as_str().is_some_and(|n| n.starts_with("files/batch-") && !seen.contains(n)))
        .cloned()
        .unwrap_or_else(|| panic!("no new results file in {files}"));
    let name = file["name"].as_str().unwrap_or_default().to_string();
    seen.insert(name.clone());
    (name, file["sizeBytes"].as_str().and_then(|v| v.parse().ok()).unwrap_or(0.0))
}

/// The baseline: the worker copies the file into R2 without parsing; seconds.
async fn copy_once(s: &Stack, name: &str) -> f64 {
    let copy: Value = s
        .http
        .post(s.url(&format!("/_bench/copy?file={name}")))
        .bearer_auth(crate::stack::ADMIN_TOKEN)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_default();
    copy["ms"].as_f64().unwrap_or(f64::NAN) / 1000.0
}
