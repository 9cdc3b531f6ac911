//! Calls the e2e suites make: batchgate's HTTP API and the emulator's control API.

use crate::stack::{CLOSE_AFTER, GEMINI_KEY, Stack};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub fn requests(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"key": format!("k{i}"), "request": {"contents": [{"parts": [{"text": format!("question {i}: what is {i} squared?")}]}]}}))
        .collect()
}

/// What the emulator's answers to `reqs` (`{key, request}` lines) cost on
/// `model` at the default prices: `(standard, batch)` micro-credits.
pub fn emulated_prices(model: &str, reqs: &[Value]) -> (i64, i64) {
    use batchgate_core::pricing::{PriceTable, Tokens};
    use batchgate_core::results::{Tally, Usage};
    // Each answer at its own tier (a prompt past 200k), its audio at audio's rate.
    let mut tally = Tally::default();
    for r in reqs {
        let u = gemini_emulator::model::usage(model, &r["request"]).unwrap_or_else(|e| panic!("{e:?}"));
        tally.add_usage(&Usage {
            prompt: u.prompt,
            candidates: u.candidates,
            thoughts: u.thoughts,
            total: u.total(),
            audio_prompt: u.audio,
            ..Usage::default()
        });
    }
    let price = PriceTable::default().price(model).unwrap_or_default();
    (price.standard(&Tokens::from(&tally)), price.batch(&Tokens::from(&tally)))
}

impl Stack {
    pub async fn submit(&self, body: Value, idempotency_key: Option<&str>) -> (u16, Value) {
        let mut req = self.http.post(self.url("/v1/jobs")).json(&body);
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("submit: {e}"));
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// Submit NDJSON (a string, or a stream for inputs too big to hold).
    pub async fn submit_ndjson(&self, model: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(&format!("/v1/jobs?model={model}")))
            .header("content-type", "application/x-ndjson")
            .header(CLOSE_AFTER.0, CLOSE_AFTER.1)
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("submit: {e}"));
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// Submit a file of NDJSON lines as an input in parts of at most `part`
    /// bytes (cut at line ends), then the job from it: how production sends
    /// a job larger than one request body may be. The second part's
    /// connection is cut halfway once, and the part sent again from the
    /// server's `received`, as a client that lost its connection does.
    pub async fn submit_parts(&self, model: &str, path: &std::path::Path, part: usize) -> (u16, Value) {
        use tokio::io::AsyncReadExt;
        let r = self
            .http
            .post(self.url("/v1/inputs"))
            .json(&json!({}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let input: Value = r.json().await.unwrap_or_default();
        let id = input["id"].as_str().unwrap_or_else(|| panic!("no input: {input}")).to_string();
        let mut file = tokio::fs::File::open(path).await.unwrap_or_else(|e| panic!("{e}"));
        let total = file.metadata().await.map(|m| m.len()).unwrap_or_default() as usize;
        let (mut at, mut carry, mut cut) = (0usize, Vec::new(), true);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            while carry.len() < part {
                let n = file.read(&mut buf).await.unwrap_or_else(|e| panic!("{e}"));
                if n == 0 {
                    break;
                }
                carry.extend_from_slice(&buf[..n]);
            }
            if carry.is_empty() {
                break;
            }
            let end = if carry.len() <= part && at + carry.len() == total {
                carry.len()
            } else {
                carry[..part.min(carry.len())]
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map(|i| i + 1)
                    .expect("a line longer than a part")
            };
            let body: Vec<u8> = carry.drain(..end).collect();
            let range = if at + end == total {
                format!("bytes {at}-{}/{total}", at + end - 1)
            } else {
                format!("bytes {at}-{}/*", at + end - 1)
            };
            if at > 0 && cut {
                cut = false;
                self.cut_part(&id, &range, &body).await;
                let (_, input) = self.get(&format!("/v1/inputs/{id}")).await;
                assert_eq!(input["received"], at, "after a cut part the input resumes where it was: {input}");
            }
            let r = self
                .http
                .put(self.url(&format!("/v1/inputs/{id}")))
                .header("content-range", range)
                .header(CLOSE_AFTER.0, CLOSE_AFTER.1)
                .body(body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("part at {at}: {e}"));
            assert!(
                r.status().is_success(),
                "part at {at}: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            );
            at += end;
        }
        self.submit(json!({"model": model, "input": id}), None).await
    }

    /// Send half of a part, then break the connection.
    async fn cut_part(&self, id: &str, range: &str, body: &[u8]) {
        let half = body.len() / 2;
        let pieces: Vec<std::io::Result<bytes::Bytes>> = vec![
            Ok(bytes::Bytes::copy_from_slice(&body[..half])),
            Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "cable pulled")),
        ];
        let broken = self
            .http
            .put(self.url(&format!("/v1/inputs/{id}")))
            .header("content-range", range)
            .header("content-length", body.len().to_string())
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(pieces)))
            .send()
            .await;
        assert!(!broken.is_ok_and(|r| r.status().is_success()), "a part cut halfway was accepted");
    }

    /// The operator grants `account` credits.
    pub async fn grant(&self, account: &str, amount: i64) {
        let r = self
            .http
            .post(self.url(&format!("/v1/admin/accounts/{account}/grants")))
            .bearer_auth(crate::stack::ADMIN_TOKEN)
            .json(&json!({"amount": amount}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status().as_u16(), 201, "{:?}", r.text().await);
    }

    /// A GET, sent again (it is idempotent) when the connection it went out on
    /// was one workerd had just dropped: its local server may close a pooled
    /// keep-alive connection after a long or large exchange (ARCHITECTURE.md,
    /// "workerd as a local HTTP server"), and a client retries a GET on a reset.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let mut tries = 0;
        let r = loop {
            match self.http.get(self.url(path)).send().await {
                Ok(r) => break r,
                Err(e) if e.is_request() && tries < 2 => tries += 1,
                Err(e) => panic!("GET {path}: {e:?}"),
            }
        };
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    pub async fn job(&self, id: &str) -> Value {
        let (status, v) = self.get(&format!("/v1/jobs/{id}")).await;
        assert_eq!(status, 200, "GET job {id}: {v}");
        v
    }

    /// Poll until `done(job)` (or panic after `secs`).
    pub async fn wait_for(&self, id: &str, secs: u64, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let j = self.job(id).await;
            if done(&j) {
                return j;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} did not get there in {secs}s; last: {j}; logs in {}",
                self.log_path().display()
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    pub async fn wait_state(&self, id: &str, state: &str, secs: u64) -> Value {
        self.wait_for(id, secs, |j| j["state"] == state).await
    }

    /// `GET /v1/jobs/:id/results{query}` as parsed lines.
    pub async fn results(&self, id: &str, query: &str) -> (u16, Vec<Value>) {
        let r = self
            .http
            .get(self.url(&format!("/v1/jobs/{id}/results{query}")))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        let lines = if status == 200 {
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
                .collect()
        } else {
            vec![]
        };
        (status, lines)
    }

    pub async fn control(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(self.emu(&format!("/_emulator{path}")))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(r.status().is_success(), "emulator control {path} refused");
        r.json().await.unwrap_or(Value::Null)
    }

    /// The emulator's request log: (method, path, status).
    pub async fn gemini_calls(&self) -> Vec<(String, String, u64)> {
        let v: Value = self
            .http
            .get(self.emu("/_emulator/requests"))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .unwrap_or_else(|e| panic!("{e}"))
            .json()
            .await
            .unwrap_or_default();
        v["requests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| !r["path"].as_str().unwrap_or_default().starts_with("/_emulator"))
            .map(|r| {
                (
                    r["method"].as_str().unwrap_or_default().into(),
                    r["path"].as_str().unwrap_or_default().into(),
                    r["status"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    }

    /// Gemini's batches, newest first (as the emulator lists them).
    pub async fn gemini_batches(&self) -> Vec<Value> {
        self.batches_at(&self.emulator.url, GEMINI_KEY).await
    }

    /// The batches of the emulator at `base` (another project), listed with `key`.
    pub async fn batches_at(&self, base: &str, key: &str) -> Vec<Value> {
        let v: Value = self
            .http
            .get(format!("{base}/v1beta/batches?pageSize=100"))
            .header("x-goog-api-key", key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .json()
            .await
            .unwrap_or_default();
        v["operations"].as_array().cloned().unwrap_or_default()
    }

    /// How long after Gemini ended the job's (only) batch the worker's poll
    /// saw it, in ms: the timeline's first poll of a terminal state against
    /// the batch's `endTime`.
    pub async fn detection_delay_ms(&self, id: &str) -> i64 {
        let millis = |v: &Value| {
            v.as_str()
                .and_then(batchgate_core::gemini::timestamp::parse_millis)
                .unwrap_or_else(|| panic!("not a timestamp: {v}"))
        };
        let (_, events) = self.get(&format!("/v1/jobs/{id}/events?limit=1000")).await;
        let events = events["events"].as_array().cloned().unwrap_or_default();
        let seen = events
            .iter()
            .find(|e| {
                e["kind"] == "polled"
                    && [
                        "BATCH_STATE_SUCCEEDED",
                        "BATCH_STATE_FAILED",
                        "BATCH_STATE_CANCELLED",
                        "BATCH_STATE_EXPIRED",
                    ]
                    .contains(&e["detail"]["geminiState"].as_str().unwrap_or_default())
            })
            .unwrap_or_else(|| panic!("no poll saw the end: {events:?}"));
        let name = events
            .iter()
            .find_map(|e| e["detail"]["batch"].as_str().filter(|_| e["kind"] == "batch_created"))
            .unwrap_or_else(|| panic!("no batch in the timeline: {events:?}"))
            .to_string();
        let batch = self.gemini_batches().await.into_iter().find(|b| b["name"] == name.as_str());
        let batch = batch.unwrap_or_else(|| panic!("Gemini has no {name}"));
        millis(&seen["at"]) - millis(&batch["metadata"]["endTime"])
    }

    /// The emulator's `/_emulator/state` counts.
    pub async fn emulator_state(&self) -> Value {
        match self.http.get(self.emu("/_emulator/state")).send().await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(e) => panic!("emulator state: {e}"),
        }
    }

    /// How many times the emulator's fault rules have fired, in all.
    pub async fn faults_fired(&self) -> u64 {
        let v: Value = match self.http.get(self.emu("/_emulator/faults")).send().await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(e) => panic!("emulator faults: {e}"),
        };
        v["faults"].as_array().into_iter().flatten().filter_map(|f| f["fired"].as_u64()).sum()
    }

    /// Wait until Gemini has `n` batches and return the `n`th made (1-based; id without `batches/`).
    pub async fn nth_gemini_batch(&self, n: usize) -> String {
        for _ in 0..300 {
            let batches = self.gemini_batches().await;
            // Listed newest first.
            if batches.len() >= n
                && let Some(b) = batches.get(batches.len() - n)
            {
                return b["name"].as_str().unwrap_or_default().trim_start_matches("batches/").to_string();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("Gemini never got batch number {n}");
    }

    /// Wait until Gemini has exactly one batch and return its id (without `batches/`).
    pub async fn the_gemini_batch(&self) -> String {
        for _ in 0..200 {
            if let Some(b) = self.gemini_batches().await.first() {
                return b["name"].as_str().unwrap_or_default().trim_start_matches("batches/").to_string();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no batch reached Gemini");
    }

    /// POST a JSON body to the worker: (status, answer).
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// The input lines Gemini got for its first batch, read from the emulator
    /// (start it with `downloadUploadedFiles`, and `stickNewBatches` so the
    /// file is still there; the batch is released afterwards).
    pub async fn gemini_batch_input(&self) -> Vec<Value> {
        let batch = self.the_gemini_batch().await;
        let b: Value = self
            .http
            .get(self.emu(&format!("/v1beta/batches/{batch}")))
            .header("x-goog-api-key", GEMINI_KEY)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .json()
            .await
            .unwrap_or_default();
        let file =
            b["metadata"]["inputConfig"]["fileName"].as_str().unwrap_or_else(|| panic!("no input file: {b}"));
        let text = self
            .http
            .get(self.emu(&format!("/download/v1beta/{file}:download?alt=media")))
            .header("x-goog-api-key", GEMINI_KEY)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .text()
            .await
            .unwrap_or_default();
        self.control(&format!("/batches/{batch}/release"), json!({})).await;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
            .collect()
    }
}
