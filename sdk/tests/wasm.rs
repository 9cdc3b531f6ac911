//! The SDK inside a JavaScript engine, through the same bindings the package
//! exposes: Node by default, headless Chromium with `WASM_BINDGEN_USE_BROWSER=1`
//! (both run by `cargo xtask test`). What needs a server is in the Node e2e.
#![cfg(target_arch = "wasm32")]

use batchgate_core::pricing::{EstimateRules, PriceTable, Tokens};
use batchgate_sdk::{Batchgate, error_class};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;

fn js(json: &str) -> JsValue {
    js_sys::JSON::parse(json).unwrap_or(JsValue::UNDEFINED)
}

fn get(v: &JsValue, k: &str) -> JsValue {
    js_sys::Reflect::get(v, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED)
}

fn client(endpoint: &str) -> Batchgate {
    Batchgate::new(js(&format!(r#"{{"endpoint": "{endpoint}", "token": "t"}}"#))).unwrap_or_else(|e| {
        panic!("constructor threw {e:?}");
    })
}

/// A thrown value is a `BatchgateError` (an `Error`) with these fields.
fn assert_error(e: &JsValue, status: u16, code: &str) {
    let class = error_class();
    let prototype: js_sys::Object = get(&class, "prototype").unchecked_into();
    assert!(prototype.is_prototype_of(e), "{e:?} is a BatchgateError");
    assert!(e.is_instance_of::<js_sys::Error>(), "{e:?} is an Error");
    assert_eq!(get(e, "status").as_f64(), Some(status as f64), "status of {e:?}");
    assert_eq!(get(e, "code").as_string().as_deref(), Some(code), "code of {e:?}");
    assert_eq!(get(e, "isNetworkError").as_bool(), Some(status == 0));
}

#[wasm_bindgen_test]
fn estimate_is_the_workers_quote() {
    let bg = client("http://localhost:8787");
    let text = "a".repeat(4_000);
    let input = format!(
        r#"{{"model": "models/gemini-2.5-flash", "requests": [
            {{"key": "a", "request": {{"contents": [{{"parts": [{{"text": "{text}"}}]}}], "generationConfig": {{"maxOutputTokens": 500}}}}}},
            {{"request": {{"contents": [{{"parts": [{{"inlineData": {{"mimeType": "image/png", "data": "AAAA"}}}}]}}]}}}}
        ]}}"#
    );
    let quote = bg.estimate(js(&input)).unwrap_or_else(|e| panic!("estimate threw {e:?}"));
    // The worker's rules, applied natively to the same two requests.
    let rules = EstimateRules::default();
    let price = PriceTable::default().price("gemini-2.5-flash").unwrap_or_else(|| panic!("no price"));
    let tokens = Tokens {
        input: 4_000 / rules.chars_per_token + rules.image_tokens,
        cached_input: 0,
        output: 500 + rules.default_max_output_tokens,
    };
    let expected = price.quote(&tokens);
    let n = |k: &str| get(&quote, k).as_f64().unwrap_or(-1.0) as i64;
    assert_eq!(
        (n("standard"), n("batch"), n("savings")),
        (expected.standard, expected.batch, expected.savings)
    );
    assert_eq!(get(&get(&quote, "tokens"), "input").as_f64(), Some(tokens.input as f64));
    assert!(expected.batch * 2 >= expected.standard && expected.batch > 0, "batch is half price");
}

#[wasm_bindgen_test]
fn a_bad_request_is_refused_naming_its_line() {
    let bg = client("http://localhost:8787");
    let input = r#"{"model": "gemini-2.5-flash", "requests": [
        {"request": {"contents": [{"parts": [{"text": "ok"}]}]}},
        {"request": {"contents": "not a list"}}
    ]}"#;
    let e = bg.estimate(js(input)).err().unwrap_or(JsValue::NULL);
    assert_error(&e, 400, "invalid_requests");
    let message = get(&e, "message").as_string().unwrap_or_default();
    assert!(message.contains("line 2"), "{message}");
    let unknown = bg.estimate(js(r#"{"model": "no-such-model", "requests": []}"#)).err();
    assert!(unknown.is_some(), "a model without a price cannot be quoted");
}

#[wasm_bindgen_test]
fn the_constructor_says_what_is_wrong() {
    let missing = Batchgate::new(js(r#"{"token": "t"}"#)).err().unwrap_or(JsValue::NULL);
    assert!(get(&missing, "message").as_string().unwrap_or_default().contains("endpoint"), "{missing:?}");
    let bad_token =
        Batchgate::new(js(r#"{"endpoint": "http://x", "token": 7}"#)).err().unwrap_or(JsValue::NULL);
    assert!(get(&bad_token, "message").as_string().unwrap_or_default().contains("token"), "{bad_token:?}");
    let prices = r#"{"endpoint": "http://x", "token": "t", "prices": {"my-model": {"input": 2, "output": 4, "cachedInput": 1}}}"#;
    let bg = Batchgate::new(js(prices)).unwrap_or_else(|e| panic!("{e:?}"));
    let q = bg
        .estimate(js(r#"{"model": "my-model", "requests": [{"request": {"contents": [{"parts": [{"text": "abcd"}]}], "generationConfig": {"maxOutputTokens": 10}}}]}"#))
        .unwrap_or_else(|e| panic!("{e:?}"));
    // 1 input token × 2 + 10 output × 4 = 42 standard; batch is half.
    assert_eq!(get(&q, "standard").as_f64(), Some(42.0));
    assert_eq!(get(&q, "batch").as_f64(), Some(21.0));
}

#[wasm_bindgen_test]
async fn an_unreachable_server_is_a_network_error_not_an_api_error() {
    // Port 9 (discard) on loopback: nothing listens, the connection is refused.
    let bg = client("http://127.0.0.1:9");
    let e = bg.job("a-job".into()).await.err().unwrap_or(JsValue::NULL);
    assert_error(&e, 0, "network_error");
    let e = bg.account().await.err().unwrap_or(JsValue::NULL);
    assert_error(&e, 0, "network_error");
}
