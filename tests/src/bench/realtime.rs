//! The realtime lane. A realtime job under a model's requests-per-minute
//! limit (`REALTIME_RPM`, the emulator enforcing the same limit): how close it
//! comes to the least time the limit allows (a minute's allowance at once,
//! the rest as the oldest calls leave the one-minute window). And
//! `POST /v1/generate`'s latency against calling the emulator's
//! `generateContent` directly with the same request (what batchgate adds: the
//! token, the quote, the account's reservation and settle, the RPM slot).

use super::{Row, Section, median};
use crate::api::requests;
use crate::stack::{GEMINI_KEY, Stack};
use serde_json::json;
use std::time::Instant;

const RPM: u64 = 600;
const MODEL: &str = "gemini-2.5-flash";
const CALLS: usize = 200;
/// The calls' model: apart from the job's, so the job's minute does not limit them.
const CALLS_MODEL: &str = "gemini-2.5-flash-lite";

pub async fn run() -> Section {
    let rpm = format!(r#"{{"{MODEL}": {RPM}, "{CALLS_MODEL}": 100000}}"#);
    // The account's own per-minute limit is lifted: the calls measure latency, not it.
    let vars = [("REALTIME_RPM", rpm.as_str()), ("MAX_GENERATE_PER_MINUTE", "100000")];
    let s = Stack::start(json!({"rpmLimits": {MODEL: RPM}}), &vars);
    let mut rows = vec![throughput(&s).await];
    rows.extend(generate_overhead(&s).await);
    let gemini_429s =
        s.gemini_calls().await.iter().filter(|(_, p, st)| p.contains("enerateContent") && *st == 429).count();
    rows.push(Row {
        metric: "calls Gemini refused for rate (429)".into(),
        value: gemini_429s.to_string(),
        baseline: "—".into(),
        ratio: None,
        target: Some(("0".into(), gemini_429s == 0)),
    });
    Section {
        title: "Realtime lane".into(),
        how: format!(
            "One worker, its limit and the emulator's both {RPM} requests a minute for {MODEL}. A realtime job \
             of one and a half times that many requests (the least time the sliding minute allows: 60 s, a \
             minute's allowance at once and the rest as the first leave it), then {CALLS} `POST /v1/generate` calls one after \
             another ({CALLS_MODEL}, unlimited) beside the same request sent to the emulator directly."
        ),
        rows,
    }
}

/// Requests per minute the job achieved, against the limit's best.
async fn throughput(s: &Stack) -> Row {
    // More than a minute's allowance and well short of two: the least time is one minute.
    let n = 3 * RPM as usize / 2;
    let started = Instant::now();
    let (status, job) =
        s.submit(json!({"model": MODEL, "requests": requests(n), "mode": "realtime"}), None).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap_or_default().to_string();
    let done = s.wait_for(&id, 600, |j| j["cost"]["charged"].is_i64()).await;
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["counts"]["succeeded"], n, "{done}");
    // A minute's allowance goes at once; the rest as the first leave the window.
    let least = 60.0;
    let share = least / elapsed;
    Row {
        metric: format!("realtime job of {n} requests: time (rate as a share of the limit's best)"),
        value: format!("{elapsed:.1} s ({:.0} requests/min)", n as f64 * 60.0 / elapsed),
        baseline: format!("{least:.0} s, the least {RPM} RPM allows"),
        ratio: Some(share),
        target: Some(("≥ 0.90".into(), share >= 0.9)),
    }
}

/// p50 of `POST /v1/generate` against the emulator's `generateContent` direct.
async fn generate_overhead(s: &Stack) -> Vec<Row> {
    let request = json!({"contents": [{"parts": [{"text": "What is the capital of France?"}]}], "generationConfig": {"maxOutputTokens": 64}});
    let direct = s.emu(&format!("/v1beta/models/{CALLS_MODEL}:generateContent"));
    let (mut via, mut straight) = (vec![], vec![]);
    for _ in 0..CALLS {
        let t = Instant::now();
        let r = s
            .http
            .post(s.url("/v1/generate"))
            .json(&json!({"model": CALLS_MODEL, "request": request}))
            .send()
            .await;
        let status = r.as_ref().map_or(0, |r| r.status().as_u16());
        let body = match r {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => e.to_string(),
        };
        assert_eq!(status, 200, "generate failed under the benchmark: {body}");
        via.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let r = s.http.post(&direct).header("x-goog-api-key", GEMINI_KEY).json(&request).send().await;
        if let Ok(r) = r {
            let _ = r.bytes().await;
        }
        straight.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let (v, d) = (median(via), median(straight));
    vec![Row {
        metric: format!("`POST /v1/generate` p50 ({CALLS} calls)"),
        value: format!("{v:.1} ms"),
        baseline: format!("{d:.1} ms (the emulator direct)"),
        ratio: Some(v / d.max(1e-9)),
        target: None,
    }]
}
