//! Detection with Gemini webhooks: how long after Gemini ends a batch the
//! worker sees it, measured on the real worker against the emulator, with the
//! emulator's signed webhooks pointed at `POST /hooks/gemini`, beside the same
//! jobs detected by polling alone (the default schedule: first poll at 5 s,
//! then 3 % of the batch's age, at least 30 s).

use super::{Row, Section, median};
use crate::api::requests;
use crate::stack::Stack;
use serde_json::json;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// How long each batch runs at the emulator.
const RUNNING_SECS: f64 = 8.0;

/// Run `jobs` one-request-batch jobs one after another; their detection delays in ms.
async fn delays(s: &Stack, jobs: usize) -> Vec<f64> {
    let mut out = vec![];
    for _ in 0..jobs {
        let (_, job) = s.submit(json!({"model": "gemini-2.5-flash", "requests": requests(3)}), None).await;
        let id = job["id"].as_str().unwrap_or_else(|| panic!("not accepted: {job}")).to_string();
        s.wait_state(&id, "succeeded", 120).await;
        out.push(s.detection_delay_ms(&id).await as f64);
        s.control("/reset", json!({})).await;
    }
    out
}

pub async fn run(jobs: usize) -> Section {
    // The default poll schedule (no test overrides), so polling is what production does.
    let default_polls = [("POLL_FIRST_SECS", "5"), ("POLL_MIN_SECS", "30"), ("POLL_MAX_SECS", "1800")];
    let emulator = json!({"pendingSecs": 1, "runningSecs": RUNNING_SECS});
    let mut vars = default_polls.to_vec();
    vars.push(("GEMINI_WEBHOOK_SECRET", SECRET));
    let s = Stack::start(emulator.clone(), &vars);
    let hook = json!({"url": s.url("/hooks/gemini"), "secret": SECRET});
    // `/reset` restores the start-up config, so the webhook goes back on after each.
    let mut with = vec![];
    for _ in 0..jobs {
        s.control("/config", json!({"webhook": hook})).await;
        with.extend(delays(&s, 1).await);
    }
    let without = delays(&s, jobs).await;
    let (with, without) = (median(with), median(without));
    Section {
        title: "Detection with Gemini webhooks".into(),
        how: format!(
            "{jobs} jobs each way on the real worker; each batch runs {RUNNING_SECS} s at the emulator. Delay: \
             from the batch's `endTime` to the timeline's first poll that saw it ended. batchgate: the \
             emulator's signed webhooks go to `POST /hooks/gemini`, which wakes the job. Baseline: the same \
             worker and schedule (first poll at 5 s, then 3 % of the age, at least 30 s) without webhooks. \
             Median."
        ),
        rows: vec![Row {
            metric: "median detection delay".into(),
            value: format!("{:.0} ms", with),
            baseline: format!("{:.0} ms polling", without),
            ratio: Some(with / without.max(1.0)),
            target: Some(("≤ 1 s".into(), with <= 1_000.0)),
        }],
    }
}
