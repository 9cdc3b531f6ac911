use super::*;
use proptest::prelude::*;
use serde_json::json;

fn event(v: serde_json::Value) -> String {
    format!("data: {v}\r\n\r\n")
}

fn usage_json(prompt: u64, candidates: u64) -> serde_json::Value {
    json!({"promptTokenCount": prompt, "candidatesTokenCount": candidates, "totalTokenCount": prompt + candidates})
}

/// Three chunks as Gemini streams them: usage on each, whole on the last.
fn stream() -> String {
    let mid = |t: &str| json!({"candidates": [{"content": {"parts": [{"text": t}]}}], "usageMetadata": usage_json(7, 0)});
    [
        event(mid("Hello")),
        event(mid(", wor")),
        event(json!({"candidates": [{"content": {"parts": [{"text": "ld"}]}, "finishReason": "STOP"}], "usageMetadata": usage_json(7, 12)})),
    ]
    .concat()
}

fn whole_usage(prompt: u64, candidates: u64) -> Usage {
    Usage { prompt, candidates, total: prompt + candidates, ..Usage::default() }
}

#[test]
fn a_whole_stream_settles_on_the_last_usage() {
    let mut m = StreamMeter::new(1 << 20);
    m.feed(stream().as_bytes());
    assert_eq!(m.settle(true), Some(whole_usage(7, 12)));
}

#[test]
fn a_report_that_goes_down_never_lowers_the_bill() {
    let mut m = StreamMeter::new(1 << 20);
    m.feed(stream().as_bytes());
    // A last event that counts only its own part.
    let last = json!({"candidates": [{"content": {"parts": [{"text": "."}]}, "finishReason": "STOP"}], "usageMetadata": usage_json(7, 1)});
    m.feed(event(last).as_bytes());
    assert_eq!(m.settle(true), Some(whole_usage(7, 12)));
}

#[test]
fn an_unreadable_event_after_the_last_report_makes_the_stream_unmeasured() {
    let mut m = StreamMeter::new(1 << 20);
    m.feed(stream().as_bytes());
    m.feed(b"data: {\"usageMetadata\": {\"promptTokenCount\": \"9\"}}\r\n\r\n");
    assert_eq!(m.settle(true), None);
}

#[test]
fn a_stream_cut_before_its_finish_or_ended_uncleanly_is_unmeasured() {
    let s = stream();
    let cut = s.rfind("data:").unwrap();
    let mut m = StreamMeter::new(1 << 20);
    m.feed(&s.as_bytes()[..cut]);
    assert_eq!(m.settle(true), None, "no chunk finished the answer: the prompt-only usage is not the bill");
    let mut m = StreamMeter::new(1 << 20);
    m.feed(s.as_bytes());
    assert_eq!(m.settle(false), None, "the connection broke: what Gemini went on to bill is unknown");
}

#[test]
fn an_error_event_makes_the_stream_unmeasured() {
    let mut m = StreamMeter::new(1 << 20);
    m.feed(stream().as_bytes());
    m.feed(event(json!({"error": {"code": 500, "message": "internal"}})).as_bytes());
    assert_eq!(m.settle(true), None);
}

#[test]
fn an_event_over_the_cap_is_skipped_and_the_rest_still_read() {
    let big =
        event(json!({"candidates": [{"content": {"parts": [{"inlineData": {"data": "A".repeat(5000)}}]}}]}));
    let mut m = StreamMeter::new(1000);
    m.feed(big.as_bytes());
    m.feed(stream().as_bytes());
    assert!(
        m.line.capacity() <= 2000 && m.data.capacity() <= 2000,
        "nothing near the big event was buffered"
    );
    assert_eq!(m.settle(true), Some(whole_usage(7, 12)));
}

#[test]
fn an_event_skipped_after_the_last_usage_leaves_the_stream_unmeasured() {
    let big =
        event(json!({"candidates": [{"content": {"parts": [{"inlineData": {"data": "A".repeat(5000)}}]}}]}));
    let mut m = StreamMeter::new(1000);
    m.feed(stream().as_bytes());
    m.feed(big.as_bytes());
    assert_eq!(m.settle(true), None, "the skipped event may have carried the real total");
}

#[test]
fn a_last_event_without_its_blank_line_still_counts_at_a_clean_end() {
    let s = stream();
    let mut m = StreamMeter::new(1 << 20);
    m.feed(s.trim_end().as_bytes());
    assert_eq!(m.settle(true), Some(whole_usage(7, 12)));
}

proptest! {
    /// However the bytes are cut, and with LF or CRLF line ends, the meter reads the same usage.
    #[test]
    fn chunking_never_changes_what_is_metered(cuts in prop::collection::vec(0usize..400, 0..12), lf in any::<bool>()) {
        let s = if lf { stream().replace("\r\n", "\n") } else { stream() };
        let bytes = s.as_bytes();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut m = StreamMeter::new(1 << 20);
        let mut at = 0;
        for c in cuts.into_iter().chain([bytes.len()]) {
            m.feed(&bytes[at..c]);
            at = c;
        }
        prop_assert_eq!(m.settle(true), Some(whole_usage(7, 12)));
    }
}

#[test]
fn a_whole_answer_reads_its_usage_without_building_the_rest() {
    let body = json!({"candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}], "usageMetadata": usage_json(3, 4), "modelVersion": "m"});
    assert_eq!(response_usage(body.to_string().as_bytes()), Some(whole_usage(3, 4)));
    assert_eq!(response_usage(b"{\"candidates\": []}"), None);
    assert_eq!(response_usage(b"not json"), None);
}

#[test]
fn the_bill_is_the_standard_price_of_the_usage_or_the_ceiling() {
    let price = Price { input: 3, cached_input: 1, output: 25, ..Price::default() };
    let measured = bill(&price, Some(&whole_usage(10, 4)), 10_000);
    assert_eq!(measured, Bill { charge: 10 * 3 + 4 * 25, measured: true });
    assert_eq!(bill(&price, None, 10_000), Bill { charge: 10_000, measured: false });
}

#[test]
fn the_least_loaded_key_with_room_takes_the_request() {
    let busy = [1_000, 2_000];
    let light = [3_000];
    let loads = [KeyLoad { key: "a", recent_ms: &busy }, KeyLoad { key: "b", recent_ms: &light }];
    assert_eq!(pick_key(&loads, 10_000, 2), Ok("b"));
    assert_eq!(pick_key(&loads, 10_000, 3), Ok("b"));
    assert_eq!(
        pick_key(&loads[..1], 10_000, 2),
        Err(52_000),
        "a full key waits for its oldest call to leave, and the margin"
    );
    assert_eq!(pick_key(&loads[..1], 62_000, 2), Ok("a"), "a minute and the margin later it has room");
    assert_eq!(pick_key(&loads[..1], 61_500, 2), Err(500));
    assert_eq!(pick_key(&[], 10_000, 2), Err(60_000), "no key at all: wait, never send");
}

#[test]
fn rpm_defaults_are_tier_one_and_the_operator_overrides_them() {
    let caps = rpm_caps(None).unwrap();
    assert_eq!(caps.of("gemini-2.5-flash"), 1_000);
    assert_eq!(caps.of("models/gemini-2.5-flash-lite"), 4_000);
    assert_eq!(caps.of("some-new-model"), 150);
    let caps = rpm_caps(Some(r#"{"gemini-2.5-flash": 60, "*": 10}"#)).unwrap();
    assert_eq!((caps.of("gemini-2.5-flash"), caps.of("gemini-2.5-pro"), caps.of("x")), (60, 150, 10));
    assert!(rpm_caps(Some("[1]")).unwrap_err().contains("REALTIME_RPM"));
    assert!(rpm_caps(Some(r#"{"gemini-2.5-flash": 0}"#)).is_err(), "a limit of 0 never admits");
}

#[test]
fn gemini_refusals_keep_their_status_and_name_and_a_refused_key_says_nothing_of_it() {
    let body = json!({"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "bad temperature"}})
        .to_string();
    let r = refused(400, body.as_bytes());
    assert_eq!((r.status, r.code.as_str(), r.key_refused), (400, "gemini_invalid_argument", false));
    assert!(r.message.contains("bad temperature") && r.gemini.is_some());

    let body = json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "slow down",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7.2s"}]}})
    .to_string();
    assert_eq!(refused(429, body.as_bytes()).retry_after_secs, Some(8));
    assert_eq!(refused(503, b"overloaded").retry_after_secs, Some(30));
    assert_eq!(refused(503, b"overloaded").code, "gemini_http_503");

    let body = json!({"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "API key not valid for project 1234",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}})
    .to_string();
    let r = refused(400, body.as_bytes());
    assert_eq!((r.status, r.code.as_str(), r.key_refused), (503, "gemini_key_refused", true));
    assert!(!r.message.contains("1234") && r.gemini.is_none());
}

#[test]
fn answers_and_errors_are_written_as_batch_result_lines_and_indexed_back() {
    let pretty = b"{\n  \"candidates\": [],\n  \"usageMetadata\": {\"promptTokenCount\": 3, \"candidatesTokenCount\": 4, \"totalTokenCount\": 7}\n}";
    let mut stored = answer_line("a", pretty).unwrap();
    assert_eq!(stored.iter().filter(|b| **b == b'\n').count(), 1, "one line, however Gemini printed it");
    stored.extend(error_line("b", 400, "bad request"));
    assert!(answer_line("c", b"<html>").is_none());
    let (records, tally) = index_answers(&stored);
    assert_eq!(records.len(), 2);
    assert_eq!((records[0].number, records[0].offset, records[0].key.as_deref()), (1, 0, Some("a")));
    assert_eq!(records[1].offset, records[0].len + 1);
    assert_eq!(
        &stored[records[1].offset as usize..][..records[1].len as usize],
        error_line("b", 400, "bad request").trim_ascii_end()
    );
    assert_eq!((tally.succeeded, tally.failed), (1, 1));
    assert_eq!(tally.usage, whole_usage(3, 4));
    assert!(
        matches!(records[1].outcome, crate::results::Outcome::Error { code: 3, .. }),
        "HTTP 400 is INVALID_ARGUMENT"
    );
}
