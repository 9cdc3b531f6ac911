//! The result-line scanner (key, outcome, usage without building the response)
//! against the obvious alternative, `serde_json` parsing each line into a
//! `Value`, over the same realistic result lines.

use super::{Row, Section, median};
use batchgate_core::results::{Outcome, scan_line};
use std::time::Instant;

/// A result line shaped like Gemini's, with `answer_bytes` of response text.
pub fn result_line(i: usize, answer_bytes: usize) -> String {
    let text: String =
        "The quick brown fox jumps over the lazy dog. ".chars().cycle().take(answer_bytes).collect();
    format!(
        "{{\"key\":\"request-{i}\",\"response\":{{\"candidates\":[{{\"content\":{{\"parts\":[{{\"text\":\"{text}\"}}],\"role\":\"model\"}},\
         \"finishReason\":\"STOP\",\"index\":0,\"safetyRatings\":[{{\"category\":\"HARM_CATEGORY_HATE_SPEECH\",\"probability\":\"NEGLIGIBLE\"}}]}}],\
         \"usageMetadata\":{{\"promptTokenCount\":{p},\"candidatesTokenCount\":{c},\"totalTokenCount\":{t},\"thoughtsTokenCount\":17,\
         \"promptTokensDetails\":[{{\"modality\":\"TEXT\",\"tokenCount\":{p}}}]}},\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"r{i}\"}}}}",
        p = 100 + i % 7,
        c = answer_bytes / 4,
        t = 117 + answer_bytes / 4 + i % 7,
    )
}

pub fn run(lines: usize, reps: usize) -> Section {
    let data: Vec<String> = (0..lines).map(|i| result_line(i, 1800)).collect();
    let bytes: usize = data.iter().map(|l| l.len() + 1).sum();
    let (mut ours, mut theirs) = (vec![], vec![]);
    let mut check = (0u64, 0u64);
    for _ in 0..reps {
        let t = Instant::now();
        let mut total = 0;
        for l in &data {
            if let Outcome::Success(u) = scan_line(l.as_bytes()).outcome {
                total += u.total;
            }
        }
        ours.push(bytes as f64 / t.elapsed().as_secs_f64());
        check.0 = total;

        let t = Instant::now();
        let mut total = 0;
        for l in &data {
            let v: serde_json::Value = serde_json::from_slice(l.as_bytes()).unwrap_or_default();
            total += v["response"]["usageMetadata"]["totalTokenCount"].as_u64().unwrap_or(0);
        }
        theirs.push(bytes as f64 / t.elapsed().as_secs_f64());
        check.1 = total;
    }
    assert_eq!(check.0, check.1, "both read the same usage");
    let (ours, theirs) = (median(ours), median(theirs));
    let ratio = ours / theirs;
    Section {
        title: "Result scanner (native)".into(),
        how: format!(
            "{lines} Gemini-shaped result lines ({:.0} MB, ~2 KB each): `batchgate_core::results::scan_line` \
             (key, outcome, usage; the response skipped, not built) against `serde_json::from_slice::<Value>` \
             of each whole line. Median of {reps} runs, single thread, same process.",
            bytes as f64 / 1e6
        ),
        rows: vec![Row {
            metric: "throughput".into(),
            value: format!("{:.2} GB/s", ours / 1e9),
            baseline: format!("{:.2} GB/s", theirs / 1e9),
            ratio: Some(ratio),
            target: Some(("≥ 3×".into(), ratio >= 3.0)),
        }],
    }
}
