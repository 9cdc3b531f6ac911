//! Job inputs sent in resumable parts (`/v1/inputs`) through the real worker:
//! parts validated as they stream (line numbers and keys across parts), a part
//! cut mid-body and resent from the server's `received`, a repeated part
//! answered and not taken twice, every refusal leaving the input where it was,
//! an estimate and then one job from the input (a second is refused), and
//! every key in its results. Run by `cargo xtask test`.

use batchgate_e2e::stack::{ACCOUNT, CLOSE_AFTER, Stack, client_with, token};
use bytes::Bytes;
use serde_json::{Value, json};

const MODEL: &str = "gemini-2.5-flash";
/// Parts of at most this much (the worker's `MAX_INPUT_PART_BYTES` here).
const PART: usize = 256 * 1024;
const REQUESTS: usize = 3_000;

/// The input: `REQUESTS` lines of ~400 bytes, keyed `k0`…; a blank line now and
/// then (it still counts as a line: it numbers the lines after it).
fn lines() -> Vec<String> {
    (0..REQUESTS)
        .map(|i| {
            let text = format!("question {i}: {}", "what is the square of this number? ".repeat(10));
            let blank = if i % 500 == 499 { "\n" } else { "" };
            format!(
                "{blank}{}\n",
                json!({"key": format!("k{i}"), "request": {"contents": [{"parts": [{"text": text}]}]}})
            )
        })
        .collect()
}

/// The input cut into parts of whole lines, each at most `PART` bytes.
fn parts(lines: &[String]) -> Vec<Vec<u8>> {
    let mut parts = vec![Vec::new()];
    for line in lines {
        if parts.last().is_some_and(|p| p.len() + line.len() > PART) {
            parts.push(Vec::new());
        }
        if let Some(p) = parts.last_mut() {
            p.extend_from_slice(line.as_bytes());
        }
    }
    parts
}

async fn answer(r: reqwest::Response) -> (u16, Value) {
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn put(s: &Stack, id: &str, start: usize, body: &[u8], total: &str) -> (u16, Value) {
    let range = format!("bytes {start}-{}/{total}", start + body.len() - 1);
    let r = s
        .http
        .put(s.url(&format!("/v1/inputs/{id}")))
        .header("content-range", range)
        .header(CLOSE_AFTER.0, CLOSE_AFTER.1)
        .body(body.to_vec())
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT part at {start}: {e}"));
    answer(r).await
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn a_job_sent_as_parts_runs_with_every_key_after_a_part_cut_mid_body() {
    let part_bytes = PART.to_string();
    let s = Stack::start(json!({}), &[("MAX_INPUT_PART_BYTES", &part_bytes)]);
    let lines = lines();
    let parts = parts(&lines);
    assert!(parts.len() >= 4, "the test wants several parts, has {}", parts.len());
    let total: usize = parts.iter().map(Vec::len).sum();

    let (status, input) =
        answer(s.http.post(s.url("/v1/inputs")).json(&json!({})).send().await.unwrap()).await;
    assert_eq!(status, 201, "{input}");
    assert_eq!((input["state"].as_str(), input["received"].as_u64()), (Some("open"), Some(0)));
    assert_eq!(input["maxPartBytes"], PART);
    let id = input["id"].as_str().unwrap().to_string();

    // Part 1, then part 1 again (its answer was "lost"): the same counts, not taken twice.
    let (status, first) = put(&s, &id, 0, &parts[0], "*").await;
    assert_eq!(status, 200, "{first}");
    let (status, again) = put(&s, &id, 0, &parts[0], "*").await;
    assert_eq!((status, &again), (200, &first), "a repeated part is answered as it was");
    let mut at = parts[0].len();

    // Part 2's connection dies halfway: nothing of it is kept.
    let half = parts[1].len() / 2;
    let cut: Vec<std::io::Result<Bytes>> = vec![
        Ok(Bytes::from(parts[1][..half].to_vec())),
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "cable pulled")),
    ];
    let broken = s
        .http
        .put(s.url(&format!("/v1/inputs/{id}")))
        .header("content-range", format!("bytes {at}-{}/*", at + parts[1].len() - 1))
        .header("content-length", parts[1].len().to_string())
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(cut)))
        .send()
        .await;
    assert!(!broken.as_ref().is_ok_and(|r| r.status().is_success()), "a broken part was accepted");
    let (_, st) = s.get(&format!("/v1/inputs/{id}")).await;
    assert_eq!(st["received"], at, "the input resumes where it was: {st}");

    // Refusals leave it where it was.
    let (status, e) = put(&s, &id, at + 10, &parts[1], "*").await;
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("wrong_offset")), "{e}");
    assert_eq!(e["error"]["details"]["received"], at);
    let mut bad = parts[1].clone();
    let second_line = bad.iter().position(|b| *b == b'\n').unwrap() + 1;
    bad.splice(second_line..second_line + 1, *b"#");
    let (status, e) = put(&s, &id, at, &bad, "*").await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("invalid_requests")), "{e}");
    let first_lines = first["lines"].as_u64().unwrap();
    assert_eq!(e["error"]["details"]["lines"][0]["line"], first_lines + 2, "numbered across parts: {e}");
    let (status, e) = put(&s, &id, at, &parts[1][..parts[1].len() - 1], "*").await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("partial_line")), "{e}");
    let (status, e) = put(&s, &id, at, &parts[0], "*").await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("duplicate_key")), "{e}");
    let (status, e) = put(&s, &id, at, &vec![b'\n'; PART + 1], "*").await;
    assert_eq!((status, e["error"]["code"].as_str()), (413, Some("part_too_large")), "{e}");
    let (_, st) = s.get(&format!("/v1/inputs/{id}")).await;
    assert_eq!((st["received"].as_u64(), st["lines"].as_u64()), (Some(at as u64), Some(first_lines)));

    // The rest, resent from the server's `received`, the last with the total.
    for (i, part) in parts.iter().enumerate().skip(1) {
        let total = if i == parts.len() - 1 { total.to_string() } else { "*".into() };
        let (status, counts) = put(&s, &id, at, part, &total).await;
        assert_eq!(status, 200, "part {i}: {counts}");
        at += part.len();
        assert_eq!(counts["received"], at);
    }
    let (_, st) = s.get(&format!("/v1/inputs/{id}")).await;
    assert_eq!((st["received"].as_u64(), st["size"].as_u64()), (Some(total as u64), Some(total as u64)));
    assert_eq!(st["lines"], REQUESTS + REQUESTS / 500, "blank lines count as lines");

    // Another account cannot see, use or delete it.
    let other = client_with(&token("someone-else"));
    let (status, _) = answer(other.get(s.url(&format!("/v1/inputs/{id}"))).send().await.unwrap()).await;
    assert_eq!(status, 404);
    let (status, _) = answer(
        other.post(s.url("/v1/jobs")).json(&json!({"model": MODEL, "input": id})).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, 404);

    // An estimate from the input, and from the same lines as NDJSON.
    let (status, est) = s.post_json("/v1/estimate", &json!({"model": MODEL, "input": id})).await;
    assert_eq!((status, est["requestCount"].as_u64()), (200, Some(REQUESTS as u64)), "{est}");
    let r = s
        .http
        .post(s.url(&format!("/v1/estimate?model={MODEL}")))
        .header("content-type", "application/x-ndjson")
        .header(CLOSE_AFTER.0, CLOSE_AFTER.1)
        .body(lines.concat())
        .send()
        .await
        .unwrap();
    let (status, nd) = answer(r).await;
    assert_eq!((status, &nd["quote"]), (200, &est["quote"]), "the same lines, the same quote: {nd}");

    // One job from it; a second is refused.
    let (status, job) =
        s.submit(json!({"model": MODEL, "input": id, "displayName": "from parts"}), None).await;
    assert_eq!(status, 202, "{job}");
    let job_id = job["id"].as_str().unwrap().to_string();
    assert_eq!(job["requestCount"], REQUESTS);
    let (status, e) = s.submit(json!({"model": MODEL, "input": id}), None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("input_used")), "{e}");
    assert_eq!(e["error"]["details"]["job"], job_id.as_str());
    let (_, st) = s.get(&format!("/v1/inputs/{id}")).await;
    assert_eq!((st["state"].as_str(), st["job"].as_str()), (Some("used"), Some(job_id.as_str())));

    let done = s.wait_state(&job_id, "succeeded", 240).await;
    assert_eq!(done["counts"]["succeeded"], REQUESTS, "{done}");
    let (status, results) = s.results(&job_id, "").await;
    assert_eq!(status, 200);
    let mut keys: Vec<String> =
        results.iter().filter_map(|r| r["key"].as_str().map(str::to_string)).collect();
    keys.sort();
    let mut want: Vec<String> = (0..REQUESTS).map(|i| format!("k{i}")).collect();
    want.sort();
    assert_eq!(keys, want, "every key, once");
    // Charged what it delivered, like any job: the ledger's spend is the job's charge.
    let charged = s.wait_for(&job_id, 60, |j| j["cost"]["charged"].is_i64()).await;
    assert_eq!(charged["cost"]["charged"], charged["cost"]["delivered"], "{}", charged["cost"]);
    let account = s.get("/v1/account").await.1;
    assert_eq!(account["account"], ACCOUNT);
    assert_eq!(account["spent"], charged["cost"]["charged"], "{account}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn an_input_refuses_what_does_not_fit_and_a_job_waits_for_every_declared_byte() {
    let s = Stack::start(json!({}), &[]);
    for (body, code) in [
        (json!({"size": 0}), "invalid_size"),
        (json!({"size": -1}), "invalid_json"),
        (json!({"rows": 1}), "invalid_json"),
    ] {
        let (status, e) = answer(s.http.post(s.url("/v1/inputs")).json(&body).send().await.unwrap()).await;
        assert_eq!((status, e["error"]["code"].as_str()), (400, Some(code)), "{body}: {e}");
    }
    let line = format!("{}\n", json!({"key": "a", "request": {"contents": [{"parts": [{"text": "hi"}]}]}}));
    let (status, input) =
        answer(s.http.post(s.url("/v1/inputs")).json(&json!({"size": line.len() * 2})).send().await.unwrap())
            .await;
    assert_eq!(status, 201, "{input}");
    let id = input["id"].as_str().unwrap().to_string();
    let total = (line.len() * 2).to_string();
    assert_eq!(put(&s, &id, 0, line.as_bytes(), &total).await.0, 200);
    let (status, e) = put(&s, &id, line.len(), line.as_bytes(), "999").await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("size_mismatch")), "{e}");
    for bad in ["bytes 0-1", "items 0-1/2", "bytes 5-1/*"] {
        let r = s
            .http
            .put(s.url(&format!("/v1/inputs/{id}")))
            .header("content-range", bad)
            .body(line.clone())
            .send()
            .await
            .unwrap();
        let (status, e) = answer(r).await;
        assert_eq!((status, e["error"]["code"].as_str()), (400, Some("invalid_content_range")), "{bad}: {e}");
    }
    // Half the declared bytes: no job yet, and nothing is left claimed.
    let (status, e) = s.submit(json!({"model": MODEL, "input": id}), None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("input_incomplete")), "{e}");
    let (status, e) = s.submit(json!({"model": MODEL, "input": id, "requests": []}), None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("invalid_json")), "{e}");
    let (status, e) = s.submit(json!({"model": MODEL, "input": "f".repeat(64)}), None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (404, Some("not_found")), "{e}");
    // The second line repeats the first's key: refused, the input still open.
    let (status, e) = put(&s, &id, line.len(), line.as_bytes(), &total).await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("duplicate_key")), "{e}");
    let second = line.replace("\"a\"", "\"b\"");
    assert_eq!(put(&s, &id, line.len(), second.as_bytes(), &total).await.0, 200);
    // Deleted: its parts go, and it makes no job.
    let (status, st) = answer(s.http.delete(s.url(&format!("/v1/inputs/{id}"))).send().await.unwrap()).await;
    assert_eq!((status, st["state"].as_str()), (200, Some("deleted")), "{st}");
    let (status, e) = s.submit(json!({"model": MODEL, "input": id}), None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("input_ended")), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn parts_past_their_limits_are_refused_and_a_job_waits_for_a_declared_total() {
    let s = Stack::start(json!({}), &[("MAX_REQUESTS_PER_JOB", "3")]);
    let line =
        |k: &str| format!("{}\n", json!({"key": k, "request": {"contents": [{"parts": [{"text": "hi"}]}]}}));
    let open = |body: Value| {
        let (http, url) = (s.http.clone(), s.url("/v1/inputs"));
        async move { answer(http.post(url).json(&body).send().await.unwrap()).await }
    };
    let (status, e) = open(json!({"size": 1u64 << 60})).await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("invalid_size")), "{e}");

    let (_, input) = open(json!({})).await;
    let id = input["id"].as_str().unwrap().to_string();
    // A range no input can have is refused, not a crash.
    for huge in ["bytes 0-18446744073709551615/*", "bytes 0-9/18446744073709551615"] {
        let r =
            s.http.put(s.url(&format!("/v1/inputs/{id}"))).header("content-range", huge).body("x\n").send();
        let (status, e) = answer(r.await.unwrap()).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (400, Some("invalid_content_range")),
            "{huge}: {e}"
        );
    }
    let two = format!("{}{}", line("a"), line("b"));
    assert_eq!(put(&s, &id, 0, two.as_bytes(), "*").await.0, 200);
    // No total declared yet: the uploader may not be done, so no job.
    let (status, e) = s.submit(json!({"model": MODEL, "input": id}), None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("input_incomplete")), "{e}");
    // Two more requests would pass MAX_REQUESTS_PER_JOB: refused, nothing taken.
    let more = format!("{}{}", line("c"), line("d"));
    let (status, e) = put(&s, &id, two.len(), more.as_bytes(), "*").await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("too_many_requests")), "{e}");
    // A body longer than its range (sent chunked, no Content-Length) is cut off at the range.
    let chunks: Vec<std::io::Result<Bytes>> = vec![Ok(Bytes::from(line("c"))), Ok(Bytes::from(line("d")))];
    let r = s
        .http
        .put(s.url(&format!("/v1/inputs/{id}")))
        .header("content-range", format!("bytes {}-{}/*", two.len(), two.len() + line("c").len() - 1))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    let (status, e) = answer(r).await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("length_mismatch")), "{e}");
    let (_, st) = s.get(&format!("/v1/inputs/{id}")).await;
    assert_eq!((st["received"].as_u64(), st["lines"].as_u64()), (Some(two.len() as u64), Some(2)), "{st}");
    // The last part declares the total; then the job.
    let total = two.len() + line("c").len();
    assert_eq!(put(&s, &id, two.len(), line("c").as_bytes(), &total.to_string()).await.0, 200);
    let (status, job) = s.submit(json!({"model": MODEL, "input": id}), None).await;
    assert_eq!((status, job["requestCount"].as_u64()), (202, Some(3)), "{job}");

    // A part without a total may not reach past the declared one.
    let (_, sized) = open(json!({"size": 10})).await;
    let sized = sized["id"].as_str().unwrap().to_string();
    let (status, e) = put(&s, &sized, 0, line("a").as_bytes(), "*").await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("size_mismatch")), "{e}");
}
