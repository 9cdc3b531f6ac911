//! The SDK's rules inside a JavaScript engine, through the bindings the package
//! calls: Node by default, headless Chromium with `WASM_BINDGEN_USE_BROWSER=1`
//! (both run by `cargo xtask test`). The JavaScript client around them is
//! tested against the real worker (sdk/tests/e2e.mjs in Node, the demo's e2e
//! in Chromium).
#![cfg(target_arch = "wasm32")]

use batchgate_core::pricing::{EstimateRules, PriceTable, Quote, Tokens};
use batchgate_sdk::Rules;
use wasm_bindgen_test::wasm_bindgen_test;

fn rules() -> Rules {
    Rules::new(None).unwrap_or_else(|e| panic!("the default table is refused: {e}"))
}

fn quote(json: Result<String, String>) -> Quote {
    let json = json.unwrap_or_else(|e| panic!("refused: {e}"));
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json} is not a quote: {e}"))
}

#[wasm_bindgen_test]
fn estimate_is_the_workers_quote() {
    let text = "a".repeat(4_000);
    let requests = format!(
        r#"[
            {{"key": "a", "request": {{"contents": [{{"parts": [{{"text": "{text}"}}]}}], "generationConfig": {{"maxOutputTokens": 500}}}}}},
            {{"request": {{"contents": [{{"parts": [{{"inlineData": {{"mimeType": "image/png", "data": "AAAA"}}}}]}}]}}}}
        ]"#
    );
    let q = quote(rules().estimate("models/gemini-2.5-flash", &requests));
    // The worker's rules, applied natively to the same two requests.
    let est = EstimateRules::default();
    let price = PriceTable::default().price("gemini-2.5-flash").unwrap_or_else(|| panic!("no price"));
    let tokens = Tokens {
        input: 4_000 / est.chars_per_token + est.image_tokens,
        cached_input: 0,
        output: 500 + est.default_max_output_tokens,
    };
    assert_eq!(Some(q), price.quote(&tokens));
    assert!(q.batch * 2 >= q.standard && q.batch > 0, "batch is half price");
}

#[wasm_bindgen_test]
fn a_bad_request_is_refused_naming_its_line() {
    let requests = r#"[
        {"request": {"contents": [{"parts": [{"text": "ok"}]}]}},
        {"request": {"contents": "not a list"}}
    ]"#;
    let e = rules().estimate("gemini-2.5-flash", requests).err().unwrap_or_default();
    assert!(e.contains("line 2") && e.contains("contents"), "{e}");
    let dup = r#"[{"key": "k", "request": {"contents": [{"parts": [{"text": "a"}]}]}},
                  {"key": "k", "request": {"contents": [{"parts": [{"text": "b"}]}]}}]"#;
    let e = rules().estimate("gemini-2.5-flash", dup).err().unwrap_or_default();
    assert!(e.contains("duplicate key"), "{e}");
    let e = rules().estimate("no-such-model", "[]").err().unwrap_or_default();
    assert!(e.contains("\"no-such-model\" has no price"), "{e}");
    assert!(rules().estimate("gemini-2.5-flash", r#"{"not": "an array"}"#).is_err());
}

#[wasm_bindgen_test]
fn an_operators_price_table_is_used_or_refused_by_name() {
    let table = r#"{"my-model": {"input": 2, "output": 4, "cachedInput": 1}}"#;
    let mine = Rules::new(Some(table.into())).unwrap_or_else(|e| panic!("{e}"));
    let one = r#"[{"request": {"contents": [{"parts": [{"text": "abcd"}]}], "generationConfig": {"maxOutputTokens": 10}}}]"#;
    let q = quote(mine.estimate("my-model", one));
    // 1 input token × 2 + 10 output × 4 = 42 standard; batch is half.
    assert_eq!((q.standard, q.batch, q.savings), (42, 21, 21));
    assert_eq!(mine.models(), r#"["my-model"]"#);
    assert!(mine.estimate("gemini-2.5-flash", one).is_err(), "only the operator's models are priced");
    let bad = Rules::new(Some(r#"{"m": {"input": 1, "output": "2", "cachedInput": 0}}"#.into())).err();
    assert!(bad.is_some_and(|e| e.contains("m") && e.contains("\"output\"")));
    assert!(Rules::new(Some("{".into())).is_err());
}

#[wasm_bindgen_test]
fn a_result_line_costs_its_usage_and_an_error_line_nothing() {
    let line = r#"{"key": "a", "response": {"usageMetadata": {"promptTokenCount": 10, "cachedContentTokenCount": 4, "candidatesTokenCount": 3, "thoughtsTokenCount": 2, "totalTokenCount": 15}}}"#;
    let q = quote(rules().result_cost("gemini-2.5-flash", line));
    // 6 input × 300 + 4 cached × 30 + 5 output × 2,500 = 14,420 standard.
    assert_eq!((q.standard, q.batch), (14_420, 7_210));
    let error = r#"{"key": "b", "error": {"code": 3, "message": "bad"}}"#;
    assert_eq!(quote(rules().result_cost("gemini-2.5-flash", error)).batch, 0);
    assert!(rules().result_cost("nope", line).is_err());
    assert!(rules().result_cost("gemini-2.5-flash", "not json").is_err());
    let models: Vec<String> = serde_json::from_str(&rules().models()).unwrap_or_default();
    assert!(models.iter().any(|m| m == "gemini-2.5-flash"), "{models:?}");
}
