//! The Rust client, compiled to wasm, against the real worker and the Gemini
//! emulator: in Node (Node 20 has no WebSocket: the watch polls with `ETag`)
//! and in headless Chromium (the watch listens on the job's WebSocket). The
//! endpoint and token are baked in at build time: tests/tests/sdk_e2e.rs
//! starts the stack, then builds and runs this in both engines.
#![cfg(target_arch = "wasm32")]

use batchgate_sdk::Batchgate;
use js_sys::{Function, JSON, Promise, Reflect};
use serde_json::{Value, json};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

const MODEL: &str = "gemini-2.5-flash";

fn bg() -> Batchgate {
    let (Some(endpoint), Some(token)) = (option_env!("BATCHGATE_URL"), option_env!("BATCHGATE_TOKEN")) else {
        panic!("built without BATCHGATE_URL and BATCHGATE_TOKEN: run through tests/tests/sdk_e2e.rs");
    };
    Batchgate::new(js(&json!({ "endpoint": endpoint, "token": token })))
        .unwrap_or_else(|e| panic!("{}", text(&e)))
}

fn js(v: &Value) -> JsValue {
    JSON::parse(&v.to_string()).unwrap_or_default()
}

fn text(v: &JsValue) -> String {
    JSON::stringify(v).ok().and_then(|s| s.as_string()).unwrap_or_default()
}

fn value(v: &JsValue) -> Value {
    serde_json::from_str(&text(v)).unwrap_or_default()
}

async fn settle(p: Promise) -> Result<Value, Value> {
    JsFuture::from(p).await.map(|v| value(&v)).map_err(|e| value(&e))
}

async fn ok(p: Promise) -> Value {
    settle(p).await.unwrap_or_else(|e| panic!("refused: {e}"))
}

async fn next(iterator: &JsValue) -> Value {
    let next: Function = Reflect::get(iterator, &"next".into()).unwrap_or_default().unchecked_into();
    ok(next.call0(iterator).unwrap_or_default().unchecked_into()).await
}

fn requests(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"key": format!("q{i:02}"), "request": {"contents": [{"parts": [{"text": format!("question {i:02}: what is it squared?")}]}]}}))
        .collect()
}

#[wasm_bindgen_test]
async fn a_job_is_submitted_watched_streamed_and_charged_exactly() {
    let bg = bg();
    let sockets = Reflect::get(&js_sys::global(), &"WebSocket".into()).is_ok_and(|w| w.is_function());
    let job =
        ok(bg.submit(js(&json!({"model": MODEL, "requests": requests(3), "displayName": "wasm live"}))))
            .await;
    let id = job["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        job["cost"]["reserved"],
        ok(Promise::resolve(
            &bg.estimate(js(&json!({"model": MODEL, "requests": requests(3)}))).unwrap_or_default()
        ))
        .await["batch"]
    );

    let watch: JsValue = bg
        .watch(id.clone().into(), js(&json!({"intervalMs": 100})))
        .unwrap_or_else(|e| panic!("{}", text(&e)))
        .into();
    let mut views = vec![];
    loop {
        let step = next(&watch).await;
        if step["done"] == true {
            break;
        }
        views.push(step["value"].clone());
    }
    let order = ["accepted", "uploading", "pending", "running", "ingesting", "succeeded"];
    let states: Vec<&str> = views.iter().filter_map(|v| v["state"].as_str()).collect();
    let rank = |s: &&str| order.iter().position(|o| o == s);
    assert!(
        states.windows(2).all(|w| rank(&w[0]) <= rank(&w[1])),
        "in order ({}): {states:?}",
        if sockets { "socket" } else { "polling" }
    );
    let done = views.last().cloned().unwrap_or_default();
    assert_eq!(done["state"], "succeeded", "{done}");
    let charged = done["cost"]["charged"].as_i64().unwrap_or_else(|| panic!("charged: {done}"));

    let results: JsValue =
        bg.results(id.clone().into(), JsValue::UNDEFINED).unwrap_or_else(|e| panic!("{}", text(&e))).into();
    let mut keys = vec![];
    loop {
        let step = next(&results).await;
        if step["done"] == true {
            break;
        }
        assert!(step["value"]["response"]["usageMetadata"]["totalTokenCount"].as_u64() > Some(0), "{step}");
        keys.push(step["value"]["key"].as_str().unwrap_or_default().to_string());
    }
    keys.sort();
    assert_eq!(keys, ["q00", "q01", "q02"]);

    // Other tests run meanwhile on the same account: the job's own ledger
    // entries say what it cost (reserved, then settled to the charge).
    let ledger = ok(bg.ledger(js(&json!({"limit": 200})))).await;
    let own: Vec<&Value> =
        ledger["entries"].as_array().into_iter().flatten().filter(|e| e["job"] == id.as_str()).collect();
    let sum = |field: &str| own.iter().filter_map(|e| e[field].as_i64()).sum::<i64>();
    assert_eq!(
        (sum("balanceDelta"), sum("heldDelta")),
        (-charged, 0),
        "the account paid exactly the charge: {own:?}"
    );
}

#[wasm_bindgen_test]
async fn a_large_job_goes_through_an_input_in_parts_of_whole_lines() {
    let bg = bg();
    let mut ndjson = String::new();
    for r in requests(12) {
        ndjson.push_str(&r.to_string());
        ndjson.push('\n');
    }
    let line = ndjson.find('\n').unwrap_or(0) as u64 + 1;
    let parts = js_sys::Array::of1(&ndjson.into());
    let blob = web_sys::Blob::new_with_str_sequence(&parts).unwrap_or_else(|_| panic!("a Blob"));
    let progress = js_sys::Array::new();
    let record = progress.clone();
    let on_progress = wasm_bindgen::closure::Closure::<dyn FnMut(JsValue)>::new(move |p: JsValue| {
        record.push(&p);
    });
    let input = js(&json!({"model": MODEL, "inlineBytes": 100, "partBytes": 4 * line + 10}));
    let _ = Reflect::set(&input, &"requests".into(), &blob);
    let _ = Reflect::set(&input, &"onProgress".into(), on_progress.as_ref());
    let job = ok(bg.submit(input)).await;
    let seen = value(&progress);
    let input_id = seen[0]["inputId"].as_str().unwrap_or_default();
    assert!(!input_id.is_empty(), "the job went through an input: {seen}");
    let received: Vec<u64> = seen
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["received"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(received, [0, 4 * line, 8 * line, 12 * line], "three parts of four lines");
    let done =
        ok(bg.wait(job["id"].clone().as_str().unwrap_or_default().into(), js(&json!({"intervalMs": 100}))))
            .await;
    assert_eq!(
        (done["state"].as_str(), done["counts"]["succeeded"].as_u64()),
        (Some("succeeded"), Some(12)),
        "{done}"
    );
}

#[wasm_bindgen_test]
async fn an_upload_interrupted_by_an_abort_is_resumed_by_its_id() {
    let bg = bg();
    let size = 20 * 1024 * 1024;
    let bytes: Vec<u8> = (0..size).map(|i: usize| ((i * 31 + (i >> 12)) % 251) as u8).collect();
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes.as_slice()));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("application/pdf");
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options)
        .unwrap_or_else(|_| panic!("a Blob"));
    let controller: JsValue = {
        let ctor: Function =
            Reflect::get(&js_sys::global(), &"AbortController".into()).unwrap_or_default().unchecked_into();
        Reflect::construct(&ctor, &js_sys::Array::new()).unwrap_or_default()
    };
    let seen = js_sys::Array::new();
    let record = seen.clone();
    let abort_controller = controller.clone();
    let on_progress = wasm_bindgen::closure::Closure::<dyn FnMut(JsValue)>::new(move |p: JsValue| {
        record.push(&p);
        if Reflect::get(&p, &"received".into()).ok().and_then(|r| r.as_f64()) > Some(0.0) {
            let abort: Function =
                Reflect::get(&abort_controller, &"abort".into()).unwrap_or_default().unchecked_into();
            let _ = abort.call0(&abort_controller);
        }
    });
    let first = js(&json!({"displayName": "report.pdf"}));
    let _ = Reflect::set(
        &first,
        &"signal".into(),
        &Reflect::get(&controller, &"signal".into()).unwrap_or_default(),
    );
    let _ = Reflect::set(&first, &"onProgress".into(), on_progress.as_ref());
    let e = settle(bg.upload(blob.clone().into(), first)).await.err().unwrap_or_default();
    assert_eq!(e["code"], "aborted", "{e}");
    let seen = value(&seen);
    let upload_id = seen[0]["uploadId"].as_str().unwrap_or_default().to_string();
    assert!(seen.as_array().and_then(|a| a.last()).and_then(|p| p["received"].as_u64()) > Some(0), "{seen}");
    let file = ok(bg.upload(blob.into(), js(&json!({"uploadId": upload_id})))).await;
    assert_eq!(
        (file["sizeBytes"].as_u64(), file["mimeType"].as_str()),
        (Some(size as u64), Some("application/pdf")),
        "{file}"
    );
}
