//! The result-line scanner (key, outcome, usage without building the response)
//! against the obvious alternative, `serde_json` parsing each line into a
//! `Value`, over the same realistic result lines.

use super::{Row, Section, median};
use crate::process::workspace_root;
use batchgate_core::results::{Outcome, scan_line};
use std::process::Command;
use std::time::Instant;

/// Where `cargo xtask bench` puts the scanner compiled to wasm (for Node).
pub const WASM_PKG: &str = "target/scanner-wasm/batchgate_scanner_wasm.js";
/// Lines for the wasm run (copied into wasm memory per call, so fewer).
const WASM_LINES: usize = 20_000;

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
    let wasm_lines = data.get(..WASM_LINES.min(data.len())).unwrap_or_default();
    Section {
        title: "Result scanner".into(),
        how: format!(
            "{lines} Gemini-shaped result lines ({:.0} MB, ~2 KB each): `batchgate_core::results::scan_line` \
             (key, outcome, usage; the response skipped, not built) against `serde_json::from_slice::<Value>` \
             of each whole line. Native: median of {reps} runs, single thread, same process. Wasm: the same \
             code compiled to wasm32 (`tests/wasm-scanner`, wasm-release profile) and run in Node over the \
             first {} lines already in wasm memory, after three warm-up runs, both functions alternating, median of {} runs each.",
            bytes as f64 / 1e6,
            wasm_lines.len(),
            reps.max(5)
        ),
        rows: vec![
            Row {
                metric: "native throughput".into(),
                value: format!("{:.2} GB/s", ours / 1e9),
                baseline: format!("{:.2} GB/s", theirs / 1e9),
                ratio: Some(ratio),
                target: Some(("≥ 3×".into(), ratio >= 3.0)),
            },
            wasm_row(wasm_lines, reps),
        ],
    }
}

/// The same comparison in wasm, in Node (what the worker and the SDK run).
fn wasm_row(lines: &[String], reps: usize) -> Row {
    let missing = |why: String| Row {
        metric: "wasm (Node) throughput".into(),
        value: why,
        baseline: "—".into(),
        ratio: None,
        target: Some(("≥ 3×".into(), false)),
    };
    let pkg = workspace_root().join(WASM_PKG);
    if !pkg.exists() {
        return missing(format!("not built ({WASM_PKG})"));
    }
    let Ok(file) = tempfile::NamedTempFile::new() else { return missing("no temp file".into()) };
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    if std::fs::write(file.path(), text).is_err() {
        return missing("cannot write the lines".into());
    }
    let out = Command::new("node")
        .arg(workspace_root().join("tests/wasm-scanner/bench.mjs"))
        .arg(&pkg)
        .arg(file.path())
        .arg(reps.max(5).to_string())
        .output();
    let parsed: Option<serde_json::Value> =
        out.ok().filter(|o| o.status.success()).and_then(|o| serde_json::from_slice(&o.stdout).ok());
    let Some(v) = parsed else { return missing("the Node run failed".into()) };
    let runs = |k: &str| -> Vec<f64> {
        v[k].as_array().map(|a| a.iter().filter_map(|x| x.as_f64()).collect()).unwrap_or_default()
    };
    let same = v["totals"].as_array().is_some_and(|t| t.iter().all(|p| p[0] == p[1]));
    assert!(same, "scanner and serde read the same usage in wasm: {v}");
    let (ours, theirs) = (median(runs("scan")), median(runs("serde")));
    let ratio = ours / theirs;
    Row {
        metric: "wasm (Node) throughput".into(),
        value: format!("{ours:.0} MB/s"),
        baseline: format!("{theirs:.0} MB/s"),
        ratio: Some(ratio),
        target: Some(("≥ 3×".into(), ratio >= 3.0)),
    }
}
