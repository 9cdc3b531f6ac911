use super::*;
use crate::gemini::Operation;

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A job view as the worker shows it, in `state`, with `changes` merged in.
fn view(state: &str, changes: Value) -> JobView {
    let mut v = json!({
        "id": ID, "state": state, "model": "gemini-2.5-flash", "requestCount": 10,
        "counts": {"succeeded": 0, "failed": 0, "pending": 10, "missing": 0},
        "usage": {"prompt": 0, "candidates": 0, "thoughts": 0, "cached": 0, "toolUsePrompt": 0, "total": 0},
        "createdAt": "2026-11-26T10:00:00.000000000Z", "updatedAt": "2026-11-26T10:05:00.000000000Z",
        "cancelRequested": false, "resultsReady": false, "version": 3,
    });
    if let (Some(v), Some(c)) = (v.as_object_mut(), changes.as_object()) {
        v.extend(c.clone());
    }
    serde_json::from_value(v).unwrap()
}

#[test]
fn every_job_state_has_the_gemini_state_the_sdks_wait_on() {
    let cases = [
        ("accepted", BatchState::Pending),
        ("uploading", BatchState::Pending),
        ("pending", BatchState::Pending),
        ("running", BatchState::Running),
        ("ingesting", BatchState::Running),
        ("succeeded", BatchState::Succeeded),
        ("failed", BatchState::Failed),
        ("cancelled", BatchState::Cancelled),
        ("expired", BatchState::Expired),
    ];
    for (job, gemini) in cases {
        let op = operation(&view(job, json!({})));
        assert_eq!(op.state(), gemini, "{job}");
        assert_eq!(op.done, gemini.is_terminal(), "{job}: done only at the end");
    }
}

#[test]
fn a_running_job_is_a_pending_operation_without_output() {
    let op = operation(&view(
        "running",
        json!({"counts": {"succeeded": 0, "failed": 0, "pending": 10, "missing": 0}}),
    ));
    let wire = serde_json::to_value(&op).unwrap();
    assert_eq!(wire["name"], format!("batches/{ID}"));
    assert_eq!(wire["metadata"]["name"], format!("batches/{ID}"));
    assert_eq!(wire["metadata"]["@type"], BATCH_METADATA_TYPE);
    assert_eq!(wire["metadata"]["model"], "models/gemini-2.5-flash");
    assert_eq!(wire["metadata"]["state"], "BATCH_STATE_RUNNING");
    assert_eq!(wire["metadata"]["batchStats"], json!({"requestCount": "10", "pendingRequestCount": "10"}));
    assert_eq!(wire["metadata"]["createTime"], "2026-11-26T10:00:00.000000000Z");
    assert!(
        wire.get("done").is_none()
            && wire.get("response").is_none()
            && wire["metadata"].get("output").is_none()
    );
    // What the SDKs parse reads back the same.
    let back: Operation = serde_json::from_value(wire).unwrap();
    assert_eq!(back, op);
}

#[test]
fn a_succeeded_job_names_its_results_file_where_the_sdks_read_it() {
    let done = view(
        "succeeded",
        json!({"resultsReady": true, "finishedAt": "2026-11-26T11:00:00.000000000Z",
               "counts": {"succeeded": 7, "failed": 1, "pending": 0, "missing": 2}}),
    );
    let op = operation(&done);
    let wire = serde_json::to_value(&op).unwrap();
    let file = format!("files/batch-{ID}");
    assert_eq!(wire["done"], true);
    assert_eq!(wire["metadata"]["output"]["responsesFile"], file);
    assert_eq!(wire["response"]["@type"], BATCH_OUTPUT_TYPE);
    assert_eq!(wire["response"]["responsesFile"], file);
    assert_eq!(wire["metadata"]["endTime"], "2026-11-26T11:00:00.000000000Z");
    // Missing lines are failures to Gemini's counters, and nothing is left pending.
    assert_eq!(
        wire["metadata"]["batchStats"],
        json!({"requestCount": "10", "successfulRequestCount": "7", "failedRequestCount": "3"})
    );
    assert_eq!(job_of_results_file(&file), Some(ID));
}

#[test]
fn a_failed_job_carries_its_error_and_a_cancelled_one_its_partial_results() {
    let failed = operation(&view(
        "failed",
        json!({"resultsReady": true, "error": {"code": "gemini_refused", "message": "the batch was refused"}}),
    ));
    assert_eq!(failed.error.as_ref().map(|e| e.message.as_str()), Some("the batch was refused"));
    assert!(failed.response.is_none(), "only a success has a response");
    assert!(failed.output().is_some(), "what was returned can still be read");
    let cancelled = operation(&view("cancelled", json!({"resultsReady": true})));
    assert!(cancelled.done && cancelled.error.is_none());
    assert_eq!(cancelled.output().and_then(|o| o.responses_file.clone()), Some(results_file(ID)));
}

#[test]
fn a_batch_made_from_a_file_echoes_the_file_and_one_made_inline_does_not() {
    let from_file = view("pending", json!({"metadata": Source::File("files/abc".into()).metadata()}));
    let m = operation(&from_file).metadata.unwrap();
    assert_eq!(m.input_config.and_then(|c| c.file_name).as_deref(), Some("files/abc"));
    let inline = view("pending", json!({"metadata": Source::Inline { keyed: false }.metadata()}));
    assert!(operation(&inline).metadata.unwrap().input_config.is_none());
}

#[test]
fn names_map_to_jobs_only_when_they_can_be_job_ids() {
    assert_eq!(job_of_batch(&batch_name(ID)), Some(ID));
    assert_eq!(job_of_batch(ID), Some(ID));
    for bad in
        ["batches/abc", "batches/", &format!("batches/{}", ID.to_uppercase()), "files/x", &format!("{ID}0")]
    {
        assert_eq!(job_of_batch(bad), None, "{bad}");
    }
    assert_eq!(job_of_results_file(&format!("batch-{ID}")), Some(ID));
    assert_eq!(job_of_results_file("files/abc123"), None, "an uploaded file is not results");
}

#[test]
fn an_inline_create_becomes_lines_keyed_by_their_metadata() {
    let body = json!({"batch": {"displayName": "inline", "inputConfig": {"requests": {"requests": [
        {"request": {"contents": [{"parts": [{"text": "a"}]}]}, "metadata": {"key": "first"}},
        {"request": {"contents": [{"parts": [{"text": "b"}]}]}},
    ]}}}});
    let c = parse_create(body.clone()).unwrap();
    assert_eq!(c.display_name.as_deref(), Some("inline"));
    assert_eq!(c.source, Source::Inline { keyed: true });
    assert_eq!(c.lines[0], json!({"key": "first", "request": {"contents": [{"parts": [{"text": "a"}]}]}}));
    assert_eq!(c.lines[1], json!({"request": {"contents": [{"parts": [{"text": "b"}]}]}}));
}

#[test]
fn a_file_create_in_either_spelling_names_the_file() {
    for body in [
        json!({"batch": {"display_name": "f", "input_config": {"file_name": "files/in"}}}),
        json!({"batch": {"displayName": "f", "inputConfig": {"fileName": "files/in"}}}),
    ] {
        let c = parse_create(body.clone()).unwrap();
        assert_eq!((c.source, c.display_name.as_deref()), (Source::File("files/in".into()), Some("f")));
        assert!(c.lines.is_empty());
    }
}

#[test]
fn a_create_without_one_input_is_refused_naming_the_field() {
    let cases = [
        (json!({}), "batch"),
        (json!({"batch": {}}), "inputConfig"),
        (json!({"batch": {"inputConfig": {}}}), "fileName"),
        (json!({"batch": {"inputConfig": {"fileName": "files/a", "requests": {"requests": []}}}}), "either"),
        (
            json!({"batch": {"inputConfig": {"requests": {"requests": [{"metadata": {}}]}}}}),
            "requests[0].request",
        ),
        (json!({"batch": {"inputConfig": {"requests": {}}}}), "requests.requests"),
        (json!({"batch": {"displayName": 3, "inputConfig": {"fileName": "files/a"}}}), "displayName"),
        (
            json!({"batch": {"displayName": "n".repeat(513), "inputConfig": {"fileName": "files/a"}}}),
            "at most 512",
        ),
    ];
    for (body, names) in cases {
        let e = parse_create(body.clone()).unwrap_err();
        assert!(e.contains(names), "{body}: {e}");
    }
}

#[test]
fn refusals_reach_the_sdks_as_gemini_errors_with_batchgate_s_code() {
    let cases = [
        (401, "token_expired", 401, "UNAUTHENTICATED"),
        (402, "insufficient_credits", 400, "FAILED_PRECONDITION"),
        (400, "invalid_requests", 400, "INVALID_ARGUMENT"),
        (413, "body_too_large", 400, "INVALID_ARGUMENT"),
        (404, "not_found", 404, "NOT_FOUND"),
        (410, "input_gone", 404, "NOT_FOUND"),
        (409, "results_not_ready", 409, "ABORTED"),
        (429, "too_many_submits", 429, "RESOURCE_EXHAUSTED"),
        (503, "ledger_unavailable", 503, "UNAVAILABLE"),
        (502, "gemini_unreachable", 503, "UNAVAILABLE"),
        (500, "internal", 500, "INTERNAL"),
        (400, "unpriced_model", 404, "NOT_FOUND"),
    ];
    for (status, code, http, name) in cases {
        let (got, envelope) = refusal(status, code, "why");
        let wire = serde_json::to_value(&envelope).unwrap();
        assert_eq!((got, wire["error"]["status"].as_str()), (http, Some(name)), "{code}");
        assert_eq!(wire["error"]["code"], http);
        assert_eq!(wire["error"]["message"], "why");
        assert_eq!(wire["error"]["details"][0]["reason"], code.to_ascii_uppercase());
    }
}

#[test]
fn the_results_file_is_a_generated_file_the_sdks_can_download() {
    let done =
        view("succeeded", json!({"resultsReady": true, "finishedAt": "2026-11-26T11:00:00.000000000Z"}));
    let f = serde_json::to_value(results_file_resource(&done, "http://w/d".into())).unwrap();
    assert_eq!(f["name"], format!("files/batch-{ID}"));
    assert_eq!((f["source"].as_str(), f["state"].as_str()), (Some("GENERATED"), Some("ACTIVE")));
    assert_eq!(f["downloadUri"], "http://w/d");
    assert_eq!(f["createTime"], "2026-11-26T11:00:00.000000000Z");
}

#[test]
fn a_media_file_keeps_its_name_uri_size_and_expiry() {
    let v = FileView {
        name: "files/abc".into(),
        uri: "https://g/v1beta/files/abc".into(),
        mime_type: "application/pdf".into(),
        size_bytes: 1234,
        display_name: Some("invoice".into()),
        created_at: "2026-11-26T10:00:00Z".into(),
        expires_at: "2026-11-28T10:00:00Z".into(),
    };
    let f = serde_json::to_value(media_file(&v)).unwrap();
    assert_eq!(f["name"], "files/abc");
    assert_eq!(f["sizeBytes"], "1234", "int64 as a string, as Gemini writes it");
    assert_eq!(
        (f["source"].as_str(), f["expirationTime"].as_str()),
        (Some("UPLOADED"), Some("2026-11-28T10:00:00Z"))
    );
}

#[test]
fn an_inline_create_holds_at_most_the_inline_limit() {
    let one = json!({"request": {"contents": [{"parts": [{"text": "a"}]}]}});
    let body = |n: usize| json!({"batch": {"inputConfig": {"requests": {"requests": vec![one.clone(); n]}}}});
    assert_eq!(parse_create(body(MAX_INLINE_REQUESTS)).map(|c| c.lines.len()), Ok(MAX_INLINE_REQUESTS));
    let e = parse_create(body(MAX_INLINE_REQUESTS + 1)).err().unwrap_or_default();
    assert!(e.contains("at most 20000 go inline") && e.contains("fileName"), "{e}");
}

#[test]
fn only_an_ended_inline_batch_of_inline_size_answers_inline() {
    let inline = |keyed| Source::Inline { keyed }.metadata();
    let ended = |count: usize, metadata: Value| {
        view("succeeded", json!({"resultsReady": true, "requestCount": count, "metadata": metadata}))
    };
    assert_eq!(answers_inline(&ended(MAX_INLINE_REQUESTS, inline(true))), Some(true));
    assert_eq!(answers_inline(&ended(3, inline(false))), Some(false));
    // The drop-in's metadata on a job too big to have been made inline: its file.
    assert_eq!(answers_inline(&ended(MAX_INLINE_REQUESTS + 1, inline(true))), None);
    assert_eq!(answers_inline(&ended(3, Source::File("files/x".into()).metadata())), None);
    assert_eq!(answers_inline(&ended(3, json!({"mine": 1}))), None);
    let running = view("running", json!({"metadata": inline(true)}));
    assert_eq!(answers_inline(&running), None, "not before it ends");
    let unstored = view("succeeded", json!({"metadata": inline(true)}));
    assert_eq!(answers_inline(&unstored), None, "not before its results are stored");
}

#[test]
fn an_inline_batch_answers_inline_in_request_order_echoing_its_keys() {
    let done = view(
        "succeeded",
        json!({"resultsReady": true, "metadata": Source::Inline { keyed: true }.metadata()}),
    );
    assert_eq!(Source::of_job(&done), Some(Source::Inline { keyed: true }));
    let mut results: HashMap<String, Value> = [
        ("b", json!({"key": "b", "response": {"candidates": [], "usageMetadata": {"totalTokenCount": 3}}})),
        ("a", json!({"key": "a", "error": {"code": 3, "message": "bad part"}})),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let keys = ["a", "b", "c"].map(String::from);
    let answers = inlined_responses(keys, &mut results, true);
    let op = operation_with(&done, Some(answers));
    let wire = serde_json::to_value(&op).unwrap();
    let inline = &wire["metadata"]["output"]["inlinedResponses"]["inlinedResponses"];
    assert_eq!(inline[0], json!({"error": {"code": 3, "message": "bad part"}, "metadata": {"key": "a"}}));
    assert_eq!(inline[1]["response"]["usageMetadata"]["totalTokenCount"], 3);
    assert_eq!(inline[1]["metadata"], json!({"key": "b"}));
    assert_eq!(inline[2]["error"]["code"], 5, "a request Gemini returned nothing for");
    assert!(wire["metadata"]["output"].get("responsesFile").is_none());
    assert_eq!(wire["response"]["inlinedResponses"], wire["metadata"]["output"]["inlinedResponses"]);
    // Without keys given, no metadata is made up.
    let mut none = HashMap::new();
    let plain = inlined_responses(["line-1".to_string()], &mut none, false);
    assert!(plain.inlined_responses[0].metadata.is_none());
}
