//! The package's wasm in a JavaScript engine, through the exports users call:
//! Node by default, headless Chromium with `WASM_BINDGEN_USE_BROWSER=1` (both
//! run by `cargo xtask test`). The rules must give the worker's figures; the
//! transport is checked against a scripted `fetch` for what a live server
//! cannot steer (a results loop left early, an abort while a poll hangs, a
//! stream left early). Against the real worker: tests/live.rs.
#![cfg(target_arch = "wasm32")]

use batchgate_core::pricing::{EstimateRules, PriceTable, Quote, Tokens};
use batchgate_sdk::Batchgate;
use js_sys::{Function, JSON, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

fn js(json: &str) -> JsValue {
    JSON::parse(json).unwrap_or_else(|_| panic!("not JSON: {json}"))
}

fn text(v: &JsValue) -> String {
    JSON::stringify(v).ok().and_then(|s| s.as_string()).unwrap_or_default()
}

fn value(v: &JsValue) -> serde_json::Value {
    serde_json::from_str(&text(v)).unwrap_or_default()
}

fn client(options: &str) -> Batchgate {
    Batchgate::new(js(options)).unwrap_or_else(|e| panic!("refused: {}", text(&e)))
}

fn default_client() -> Batchgate {
    client(r#"{"endpoint": "http://127.0.0.1:9/", "token": "t"}"#)
}

fn quote(v: Result<JsValue, JsValue>) -> Quote {
    let v = v.unwrap_or_else(|e| panic!("refused: {:?}", js_sys::Error::from(e).message()));
    serde_json::from_str(&text(&v)).unwrap_or_else(|e| panic!("{} is not a quote: {e}", text(&v)))
}

/// A refusal's `{code, message, status}`.
fn refusal(e: JsValue) -> (String, String, u32) {
    let get = |k: &str| Reflect::get(&e, &k.into()).unwrap_or(JsValue::UNDEFINED);
    (
        get("code").as_string().unwrap_or_default(),
        get("message").as_string().unwrap_or_default(),
        get("status").as_f64().unwrap_or(-1.0) as u32,
    )
}

#[wasm_bindgen_test]
fn estimate_is_the_workers_quote() {
    let text = "a".repeat(4_000);
    let requests = format!(
        r#"{{"model": "models/gemini-2.5-flash", "requests": [
            {{"key": "a", "request": {{"contents": [{{"parts": [{{"text": "{text}"}}]}}], "generationConfig": {{"maxOutputTokens": 500}}}}}},
            {{"request": {{"contents": [{{"parts": [{{"inlineData": {{"mimeType": "image/png", "data": "AAAA"}}}}]}}]}}}}
        ]}}"#
    );
    let q = quote(default_client().estimate(js(&requests)));
    // The worker's rules, applied natively to the same two requests.
    let est = EstimateRules::default();
    let price = PriceTable::default().price("gemini-2.5-flash").unwrap_or_else(|| panic!("no price"));
    let tokens = Tokens {
        input: 4_000 / est.chars_per_token + est.image_tokens,
        cached_input: 0,
        output: 500 + est.default_max_output_tokens,
        ..Tokens::default()
    };
    assert_eq!(Some(q), price.quote(&tokens));
    assert!(q.batch * 2 >= q.standard && q.batch > 0, "batch is half price");
}

#[wasm_bindgen_test]
fn a_bad_request_is_refused_naming_its_line() {
    let bg = default_client();
    let two = r#"{"model": "gemini-2.5-flash", "requests": [
        {"request": {"contents": [{"parts": [{"text": "ok"}]}]}},
        {"request": {"contents": "not a list"}}
    ]}"#;
    let (code, message, status) = refusal(bg.estimate(js(two)).err().unwrap_or_default());
    assert_eq!((code.as_str(), status), ("invalid_requests", 400));
    assert!(message.contains("line 2") && message.contains("contents"), "{message}");
    let dup = r#"{"model": "gemini-2.5-flash", "requests": [{"key": "k", "request": {"contents": [{"parts": [{"text": "a"}]}]}},
                  {"key": "k", "request": {"contents": [{"parts": [{"text": "b"}]}]}}]}"#;
    assert!(refusal(bg.estimate(js(dup)).err().unwrap_or_default()).1.contains("duplicate key"));
    let unknown = refusal(bg.estimate(js(r#"{"model": "no-such-model", "requests": [{"request": {"contents": [{"parts": [{"text": "a"}]}]}}]}"#)).err().unwrap_or_default());
    assert!(unknown.1.contains("\"no-such-model\" has no price"), "{unknown:?}");
    let not_array = refusal(
        bg.estimate(js(r#"{"model": "gemini-2.5-flash", "requests": {"not": "an array"}}"#))
            .err()
            .unwrap_or_default(),
    );
    assert_eq!(not_array.0, "invalid_argument");
}

#[wasm_bindgen_test]
fn an_operators_price_table_is_used_or_refused_by_name() {
    let mine = client(
        r#"{"endpoint": "http://x", "token": "t", "prices": {"my-model": {"input": 2, "output": 4, "cachedInput": 1}}}"#,
    );
    let one = r#"{"model": "my-model", "requests": [{"request": {"contents": [{"parts": [{"text": "abcd"}]}], "generationConfig": {"maxOutputTokens": 10}}}]}"#;
    let q = quote(mine.estimate(js(one)));
    // 1 input token × 2 + 10 output × 4 = 42 standard; batch is half.
    assert_eq!((q.standard, q.batch, q.savings), (42, 21, 21));
    assert_eq!(mine.models(), ["my-model"]);
    let flash = one.replace("my-model", "gemini-2.5-flash");
    assert!(mine.estimate(js(&flash)).is_err(), "only the operator's models are priced");
    let bad = Batchgate::new(js(
        r#"{"endpoint": "http://x", "token": "t", "prices": {"m": {"input": 1, "output": "2", "cachedInput": 0}}}"#,
    ));
    let (code, message, _) = refusal(bad.err().unwrap_or_default());
    assert!(code == "invalid_argument" && message.contains("\"output\""), "{message}");
    assert!(Batchgate::new(js(r#"{"token": "t"}"#)).is_err(), "an endpoint is required");
    assert!(
        Batchgate::new(js(r#"{"endpoint": "http://x", "token": 5}"#)).is_err(),
        "a token is a string or a function"
    );
}

#[wasm_bindgen_test]
fn a_result_line_costs_its_usage_and_an_error_line_nothing() {
    let bg = default_client();
    let line = js(
        r#"{"key": "a", "response": {"usageMetadata": {"promptTokenCount": 10, "cachedContentTokenCount": 4, "candidatesTokenCount": 3, "thoughtsTokenCount": 2, "totalTokenCount": 15}}}"#,
    );
    let q = quote(bg.result_cost("gemini-2.5-flash".into(), line.clone()));
    // 6 input × 300 + 4 cached × 30 + 5 output × 2,500 = 14,420 standard.
    assert_eq!((q.standard, q.batch), (14_420, 7_210));
    let error = js(r#"{"key": "b", "error": {"code": 3, "message": "bad"}}"#);
    assert_eq!(quote(bg.result_cost("gemini-2.5-flash".into(), error)).batch, 0);
    assert!(bg.result_cost("nope".into(), line).is_err());
    assert!(bg.models().iter().any(|m| m == "gemini-2.5-flash"));
}

/// Replace the global `fetch` with `body` (a JavaScript function body of
/// `(url, init)`), which may keep state on `globalThis.script`.
fn script_fetch(body: &str) {
    let f = Function::new_with_args("url, init", body);
    let global = js_sys::global();
    let _ = Reflect::set(&global, &"script".into(), &js_sys::Object::new());
    let _ = Reflect::set(&global, &"fetch".into(), &f);
}

fn script() -> serde_json::Value {
    value(&Reflect::get(&js_sys::global(), &"script".into()).unwrap_or_default())
}

async fn next(iterator: &JsValue) -> JsValue {
    let next: Function = Reflect::get(iterator, &"next".into()).unwrap_or_default().unchecked_into();
    let promise: Promise = next.call0(iterator).unwrap_or_default().unchecked_into();
    JsFuture::from(promise).await.unwrap_or_else(|e| panic!("next failed: {}", text(&e)))
}

async fn sleep(ms: i32) {
    let p = Promise::new(&mut |resolve, _| {
        let set: Function =
            Reflect::get(&js_sys::global(), &"setTimeout".into()).unwrap_or_default().unchecked_into();
        let _ = set.call2(&JsValue::UNDEFINED, &resolve, &ms.into());
    });
    let _ = JsFuture::from(p).await;
}

#[wasm_bindgen_test]
async fn leaving_the_results_loop_early_cancels_the_page_being_read() {
    script_fetch(
        r#"const lines = ['{"key":"a"}\n', '{"key":"b"}\n'];
        const body = new ReadableStream({
            pull(c) { if (lines.length) c.enqueue(new TextEncoder().encode(lines.shift())); else c.close(); },
            cancel() { script.cancelled = true; },
        });
        return Promise.resolve(new Response(body, { headers: { "batchgate-next-cursor": "page 2" } }));"#,
    );
    let results: JsValue =
        default_client().results("j".into(), JsValue::UNDEFINED).unwrap_or_else(|_| panic!("refused")).into();
    let first = next(&results).await;
    assert_eq!(value(&first)["value"]["key"], "a");
    let stop: Function = Reflect::get(&results, &"return".into()).unwrap_or_default().unchecked_into();
    let _ = stop.call0(&results);
    sleep(20).await;
    assert_eq!(script()["cancelled"], true, "the page's download was cancelled");
    assert_eq!(value(&next(&results).await)["done"], true, "and the loop is over");
}

#[wasm_bindgen_test]
async fn an_aborted_wait_rejects_at_once_though_a_poll_is_still_pending() {
    script_fetch("return new Promise(() => {});"); // the server never answers
    let controller = web_sys_abort();
    let options = js_sys::Object::new();
    let _ = Reflect::set(
        &options,
        &"signal".into(),
        &Reflect::get(&controller, &"signal".into()).unwrap_or_default(),
    );
    let _ = Reflect::set(&options, &"intervalMs".into(), &50.into());
    let waiting = default_client().wait("j".into(), options.into());
    sleep(20).await;
    let abort: Function = Reflect::get(&controller, &"abort".into()).unwrap_or_default().unchecked_into();
    let _ = abort.call0(&controller);
    let e = JsFuture::from(waiting).await.err().unwrap_or_default();
    assert_eq!(refusal(e).0, "aborted");
}

fn web_sys_abort() -> JsValue {
    let ctor: Function =
        Reflect::get(&js_sys::global(), &"AbortController".into()).unwrap_or_default().unchecked_into();
    Reflect::construct(&ctor, &js_sys::Array::new()).unwrap_or_default()
}

#[wasm_bindgen_test]
async fn a_token_function_is_asked_once_for_concurrent_calls_and_again_after_a_401() {
    script_fetch(
        r#"script.calls = (script.calls || 0) + 1;
        const auth = new Headers(init.headers).get("authorization");
        // The server takes only the second token: the first has expired.
        const ok = auth === "Bearer t2";
        return Promise.resolve(new Response(ok ? '{"ok":true}' : '{"error":{"code":"expired_token","message":"expired"}}', { status: ok ? 200 : 401 }));"#,
    );
    let _ = Reflect::set(&js_sys::global(), &"asked".into(), &0.into());
    let token =
        Function::new_no_args("globalThis.asked += 1; return Promise.resolve('t' + globalThis.asked);");
    let options = js(r#"{"endpoint": "http://x/"}"#);
    let _ = Reflect::set(&options, &"token".into(), &token);
    let bg = Batchgate::new(options).unwrap_or_else(|_| panic!("refused"));
    let both = Promise::all(&js_sys::Array::of2(&bg.account(), &bg.account()));
    let answers = JsFuture::from(both).await.unwrap_or_else(|e| panic!("{}", text(&e)));
    assert_eq!(text(&answers), r#"[{"ok":true},{"ok":true}]"#);
    let asked = || Reflect::get(&js_sys::global(), &"asked".into()).ok().and_then(|v| v.as_f64());
    assert_eq!(asked(), Some(2.0), "one ask for both calls, one more for the token both had refused");
    let _ = JsFuture::from(bg.account()).await;
    assert_eq!(asked(), Some(2.0), "a good token is reused");
}

#[wasm_bindgen_test]
async fn leaving_a_stream_early_closes_it_and_its_cost_is_then_unknown() {
    script_fetch(
        r#"let sent = false;
        const body = new ReadableStream({
            pull(c) {
                if (sent) return new Promise(() => {}); // Gemini is still answering
                sent = true;
                c.enqueue(new TextEncoder().encode('data: {"n":1}\n\n'));
            },
            cancel() { script.cancelled = true; },
        });
        return Promise.resolve(new Response(body, { headers: { "content-type": "text/event-stream" } }));"#,
    );
    let stream = default_client()
        .generate_stream("m".into(), js("{}"), JsValue::UNDEFINED)
        .unwrap_or_else(|_| panic!("refused"));
    let chunks = Reflect::get(&stream, &"chunks".into()).unwrap_or_default();
    assert_eq!(value(&next(&chunks).await)["value"]["n"], 1);
    let stop: Function = Reflect::get(&chunks, &"return".into()).unwrap_or_default().unchecked_into();
    let _ = stop.call0(&chunks);
    sleep(20).await;
    assert_eq!(script()["cancelled"], true, "the connection was closed");
    let cost: Promise = Reflect::get(&stream, &"cost".into()).unwrap_or_default().unchecked_into();
    assert!(JsFuture::from(cost).await.is_ok_and(|c| c.is_null()));
}

#[wasm_bindgen_test]
async fn generate_answers_with_the_response_its_cost_and_call_id() {
    script_fetch(
        r#"const body = JSON.parse(init.body);
        if (body.model === "poor") return Promise.resolve(new Response('{"error":{"code":"insufficient_credits","message":"no"}}', { status: 402 }));
        script.path = new URL(url).pathname;
        return Promise.resolve(new Response('{"candidates":[]}', { headers: { "batchgate-cost": '{"standard":7,"charged":7}', "batchgate-call-id": "gen_1" } }));"#,
    );
    let bg = default_client();
    let r = JsFuture::from(bg.generate("m".into(), js(r#"{"contents": []}"#), JsValue::UNDEFINED)).await;
    let r = value(&r.unwrap_or_else(|e| panic!("{}", text(&e))));
    assert_eq!(
        r,
        serde_json::json!({"response": {"candidates": []}, "cost": {"standard": 7, "charged": 7}, "callId": "gen_1"})
    );
    assert_eq!(script()["path"], "/v1/generate");
    let e = JsFuture::from(bg.generate("poor".into(), js("{}"), JsValue::UNDEFINED))
        .await
        .err()
        .unwrap_or_default();
    assert_eq!(refusal(e), ("insufficient_credits".into(), "no".into(), 402));
}
