//! Is the reservation a ceiling? (issue 17) For requests built to cost more
//! than they look — CJK text, long PDFs and hour-long audio inline, no
//! `maxOutputTokens`, thinking models asked to think without limit — the
//! tokens the emulator bills, over the tokens the submit reserved for them.
//! The reservation is core's own (the validator writes the output cap into
//! the request, as the submit does); the bill is the emulator's model applied
//! to the request as Gemini would get it.

use super::{Row, Section};
use batchgate_core::pricing::EstimateRules;
use batchgate_core::submit::{Limits, Validator};
use gemini_emulator::model::usage;
use serde_json::{Value, json};

fn inline(mime: &str, bytes: usize) -> Value {
    json!({"inlineData": {"mimeType": mime, "data": "A".repeat(bytes.div_ceil(3) * 4)}})
}

/// (name, model, request) for each adversarial case.
fn cases() -> Vec<(&'static str, &'static str, Value)> {
    let text = |t: String| json!({"contents": [{"parts": [{"text": t}]}]});
    let parts = |p: Vec<Value>| json!({"contents": [{"parts": p}]});
    let think = json!({"thinkingConfig": {"thinkingBudget": -1}});
    vec![
        ("CJK text, 20,000 characters", "gemini-2.5-flash", text("漢字かな交じり文".repeat(2_500))),
        ("English text, 80,000 characters", "gemini-2.5-flash", text("lorem ipsum ".repeat(6_667))),
        (
            "a 4 MiB PDF inline",
            "gemini-2.5-pro",
            parts(vec![json!({"text": "summarise"}), inline("application/pdf", 4 << 20)]),
        ),
        (
            "an hour of 32 kbit/s audio inline",
            "gemini-2.5-flash",
            parts(vec![inline("audio/mp3", 14_400_000)]),
        ),
        ("a 12 MP photo inline (3 MB)", "gemini-2.5-flash", parts(vec![inline("image/jpeg", 3_000_000)])),
        ("no maxOutputTokens, long prompt", "gemini-2.5-pro", text("why? ".repeat(40_000))),
        (
            "unlimited thinking, small cap",
            "gemini-2.5-flash",
            json!({"contents": [{"parts": [{"text": "x".repeat(4_000)}]}], "generationConfig": {"maxOutputTokens": 100, "thinkingConfig": think["thinkingConfig"]}}),
        ),
    ]
}

pub fn run() -> Section {
    let mut rows = vec![];
    let (mut worst_in, mut worst_out) = (0f64, 0f64);
    for (name, model, request) in cases() {
        let mut v =
            Validator::new(Limits::default()).with_estimate(EstimateRules::default()).with_model(model);
        let line = v.item(1, json!({"key": "k", "request": request}));
        let sent: Value = line.as_deref().and_then(|l| serde_json::from_slice(l).ok()).unwrap_or_default();
        let Ok(summary) = v.finish() else {
            rows.push(Row {
                metric: name.into(),
                value: "refused".into(),
                baseline: "—".into(),
                ratio: None,
                target: None,
            });
            continue;
        };
        let reserved = summary.tokens;
        let billed = usage(model, &sent["request"]).unwrap_or_default();
        let input = billed.prompt as f64 / reserved.input.max(1) as f64;
        let output = (billed.candidates + billed.thoughts) as f64 / reserved.output.max(1) as f64;
        worst_in = worst_in.max(input);
        worst_out = worst_out.max(output);
        rows.push(Row {
            metric: name.into(),
            value: format!("billed {} in / {} out", billed.prompt, billed.candidates + billed.thoughts),
            baseline: format!("reserved {} in / {} out", reserved.input, reserved.output),
            ratio: Some(input.max(output)),
            target: Some(("output ≤ 1.00".into(), output <= 1.0)),
        });
    }
    rows.push(Row {
        metric: "worst ratios, billed over reserved".into(),
        value: format!("input {worst_in:.2}, output {worst_out:.2}"),
        baseline: "the reservation".into(),
        ratio: Some(worst_out),
        target: Some(("output ≤ 1.00 always".into(), worst_out <= 1.0)),
    });
    Section {
        title: "Adversarial requests: billed over reserved".into(),
        how: "Each request is checked and priced by core's validator exactly as a submit is (the output cap \
              written into the request), and billed by the emulator's model on the request as sent. The \
              emulator counts text at 4 characters a token and a media part at 258 tokens, so its input \
              bill is below the reservation here; Gemini's tokenizer bills CJK near a token a character \
              and media by length, which the reservation now assumes (see README, \"What a job may ask \
              for\"). Output is bounded by the cap in the request, thinking included."
            .into(),
        rows,
    }
}
