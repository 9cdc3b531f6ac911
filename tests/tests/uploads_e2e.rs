//! Media uploads through the worker into the Gemini Files API (the emulator):
//! single and resumable, a connection killed mid-chunk and resumed, every bad
//! chunk refused, files owned per account, and a batch job over uploaded PDFs.
//! Run by `cargo xtask test`.

use base64::Engine;
use batchgate_e2e::stack::{GEMINI_KEY, Stack, client_with, token};
use bytes::Bytes;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const MB: u64 = 1024 * 1024;

/// Byte `i` of a test file (deterministic, not constant, so misplaced bytes show).
fn byte(i: u64) -> u8 {
    ((i * 31 + i / 4096) % 251) as u8
}

fn content(start: u64, len: u64) -> Vec<u8> {
    (start..start + len).map(byte).collect()
}

/// Gemini's `sha256Hash` of the first `len` bytes of the test file.
fn gemini_hash(len: u64) -> String {
    let mut h = Sha256::new();
    let mut at = 0;
    while at < len {
        let n = (8 * MB).min(len - at);
        h.update(content(at, n));
        at += n;
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    base64::engine::general_purpose::STANDARD.encode(hex)
}

async fn json_of(r: reqwest::Response) -> (u16, Value) {
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// The file as Gemini (the emulator) has it.
async fn gemini_file(s: &Stack, name: &str) -> Value {
    let r = s
        .http
        .get(s.emu(&format!("/v1beta/{name}")))
        .header("x-goog-api-key", GEMINI_KEY)
        .send()
        .await
        .unwrap();
    r.json().await.unwrap_or_default()
}

async fn put_chunk(s: &Stack, id: &str, start: u64, len: u64, total: u64) -> (u16, Value) {
    let r = s
        .http
        .put(s.url(&format!("/v1/uploads/{id}")))
        .header("content-range", format!("bytes {start}-{}/{total}", start + len - 1))
        .body(content(start, len))
        .send()
        .await
        .unwrap();
    json_of(r).await
}

async fn upload_pdf(s: &Stack, client: &batchgate_e2e::record::Http, size: u64) -> Value {
    let r = client
        .post(s.url("/v1/files?displayName=doc.pdf"))
        .header("content-type", "application/pdf")
        .body(content(0, size))
        .send()
        .await
        .unwrap();
    let (status, file) = json_of(r).await;
    assert_eq!(status, 201, "{file}");
    file
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn a_single_upload_lands_whole_and_belongs_to_its_account() {
    let s = Stack::start(json!({}), &[]);
    let file = upload_pdf(&s, &s.http, MB).await;
    let name = file["name"].as_str().unwrap();
    assert_eq!(file["mimeType"], "application/pdf");
    assert_eq!(file["sizeBytes"], MB);
    assert!(file["uri"].as_str().unwrap().ends_with(name), "{file}");
    assert!(file["expiresAt"].as_str().unwrap().ends_with('Z'));
    let at_gemini = gemini_file(&s, name).await;
    assert_eq!(at_gemini["sizeBytes"], MB.to_string());
    assert_eq!(at_gemini["sha256Hash"], gemini_hash(MB), "the bytes Gemini holds differ");

    let (_, list) = json_of(s.http.get(s.url("/v1/files")).send().await.unwrap()).await;
    assert_eq!(list["files"][0]["name"], name);
    let id = name.trim_start_matches("files/");
    let other = client_with(&token("someone-else"));
    for (method, path) in [("GET", format!("/v1/files/{id}")), ("DELETE", format!("/v1/files/{id}"))] {
        let r = other.request(method.parse().unwrap(), s.url(&path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404, "{method} {path} as another account");
    }
    let (_, theirs) = json_of(other.get(s.url("/v1/files")).send().await.unwrap()).await;
    assert_eq!(theirs["files"], json!([]));

    // Bad single uploads: a type outside the allowlist, no length, an empty body.
    let r = s
        .http
        .post(s.url("/v1/files"))
        .header("content-type", "application/x-msdownload")
        .body(vec![1u8; 10])
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(r).await;
    assert_eq!((status, body["error"]["code"].as_str()), (415, Some("unsupported_mime_type")));
    let r = s
        .http
        .post(s.url("/v1/files"))
        .header("content-type", "image/png")
        .header("content-length", "0")
        .body(Vec::<u8>::new())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400, "an empty file");
    let r = s.http.post(s.url("/v1/files")).header("content-type", "image/png").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 411, "no Content-Length");

    let (status, deleted) =
        json_of(s.http.delete(s.url(&format!("/v1/files/{id}"))).send().await.unwrap()).await;
    assert_eq!((status, &deleted["deleted"]), (200, &json!(true)));
    assert_eq!(gemini_file(&s, name).await["error"]["code"], 403, "deleted at Gemini too");
    let (_, list) = json_of(s.http.get(s.url("/v1/files")).send().await.unwrap()).await;
    assert_eq!(list["files"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn a_300_mb_upload_survives_a_connection_killed_mid_chunk() {
    let s = Stack::start(json!({}), &[]);
    let total = 300 * MB;
    let chunk = 64 * MB;
    let r = s
        .http
        .post(s.url("/v1/uploads"))
        .json(&json!({"size": total, "mimeType": "video/mp4", "displayName": "big"}))
        .send()
        .await
        .unwrap();
    let (status, session) = json_of(r).await;
    assert_eq!(status, 201, "{session}");
    assert_eq!(session["received"], 0);
    assert_eq!(session["chunkGranularity"], 8 * MB);
    let id = session["id"].as_str().unwrap().to_string();

    assert_eq!(put_chunk(&s, &id, 0, chunk, total).await.0, 200);
    // The second chunk's connection dies after 20 MB of 64.
    let sent = 20 * MB;
    let parts: Vec<std::io::Result<Bytes>> = vec![
        Ok(Bytes::from(content(chunk, sent))),
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "cable pulled")),
    ];
    let broken = s
        .http
        .put(s.url(&format!("/v1/uploads/{id}")))
        .header("content-range", format!("bytes {chunk}-{}/{total}", 2 * chunk - 1))
        .header("content-length", chunk.to_string())
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(parts)))
        .send()
        .await;
    assert!(
        broken.is_err() || !broken.as_ref().is_ok_and(|r| r.status().is_success()),
        "a broken chunk was accepted"
    );

    // The client asks where to resume once the broken chunk has settled. Gemini
    // may keep part of a broken chunk: anything from the first chunk's end to
    // what was sent, not necessarily a multiple of 8 MiB.
    let mut resume = 0;
    for _ in 0..200 {
        let (status, st) =
            json_of(s.http.get(s.url(&format!("/v1/uploads/{id}"))).send().await.unwrap()).await;
        assert_eq!(status, 200, "{st}");
        if st["sending"] == false {
            resume = st["received"].as_u64().unwrap();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!((chunk..=chunk + sent).contains(&resume), "resume from {resume}");
    let mut at = resume;
    let mut last = Value::Null;
    while at < total {
        let len = chunk.min(total - at);
        let (status, answer) = put_chunk(&s, &id, at, len, total).await;
        assert!(status == 200 || status == 201, "chunk at {at}: {answer}");
        at += len;
        last = answer;
    }
    assert_eq!(last["state"], "done", "{last}");
    let name = last["file"]["name"].as_str().unwrap();
    assert_eq!(last["file"]["sizeBytes"], total);
    let at_gemini = gemini_file(&s, name).await;
    assert_eq!(at_gemini["sizeBytes"], total.to_string());
    assert_eq!(at_gemini["sha256Hash"], gemini_hash(total), "the reassembled file differs");
    // A finished session takes nothing more.
    let (status, body) = put_chunk(&s, &id, 0, 8 * MB, total).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("upload_ended")));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn bad_chunks_are_refused_and_leave_the_session_where_it_was() {
    let s = Stack::start(json!({}), &[("MAX_UPLOAD_CHUNK_BYTES", "16777216")]);
    let total = 20 * MB;
    let r = s
        .http
        .post(s.url("/v1/uploads"))
        .json(&json!({"size": total, "mimeType": "application/pdf"}))
        .send()
        .await
        .unwrap();
    let id = json_of(r).await.1["id"].as_str().unwrap().to_string();
    let code = |v: &Value| v["error"]["code"].as_str().map(String::from);

    // Wrong offset: skipping ahead, and overlapping what is stored.
    let (status, v) = put_chunk(&s, &id, 8 * MB, 8 * MB, total).await;
    assert_eq!(
        (status, code(&v).as_deref(), &v["error"]["details"]["received"]),
        (409, Some("wrong_offset"), &json!(0))
    );
    assert_eq!(put_chunk(&s, &id, 0, 8 * MB, total).await.0, 200);
    let (status, v) = put_chunk(&s, &id, 0, 8 * MB, total).await;
    assert_eq!((status, v["error"]["details"]["received"].as_u64()), (409, Some(8 * MB)));
    // The declared size differs from the range's total.
    let (status, v) = put_chunk(&s, &id, 8 * MB, 8 * MB, total + 1).await;
    assert_eq!((status, code(&v).as_deref()), (400, Some("size_mismatch")));
    // Not a multiple of 8 MiB and not the last chunk.
    let (status, v) = put_chunk(&s, &id, 8 * MB, MB, total).await;
    assert_eq!((status, code(&v).as_deref()), (400, Some("invalid_chunk_size")));
    // More than one request may carry (16 MiB here).
    let (status, v) = put_chunk(&s, &id, 8 * MB, 24 * MB, 40 * MB).await;
    assert_eq!(status, 400, "{v}");
    let r = s
        .http
        .post(s.url("/v1/uploads"))
        .json(&json!({"size": 40 * MB, "mimeType": "application/pdf"}))
        .send()
        .await
        .unwrap();
    let big = json_of(r).await.1["id"].as_str().unwrap().to_string();
    let (status, v) = put_chunk(&s, &big, 0, 24 * MB, 40 * MB).await;
    assert_eq!((status, code(&v).as_deref()), (413, Some("chunk_too_large")));
    // A body shorter than its range.
    let r = s
        .http
        .put(s.url(&format!("/v1/uploads/{id}")))
        .header("content-range", format!("bytes {}-{}/{total}", 8 * MB, 16 * MB - 1))
        .body(content(8 * MB, MB))
        .send()
        .await
        .unwrap();
    let (status, v) = json_of(r).await;
    assert_eq!((status, code(&v).as_deref()), (400, Some("length_mismatch")));
    // A bad type or size never opens a session.
    let r = s
        .http
        .post(s.url("/v1/uploads"))
        .json(&json!({"size": 10, "mimeType": "application/zip"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    let r = s
        .http
        .post(s.url("/v1/uploads"))
        .json(&json!({"size": 3u64 << 30, "mimeType": "video/mp4"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);

    // Still at 8 MiB: finish properly, and nothing was half-done along the way.
    let (_, st) = json_of(s.http.get(s.url(&format!("/v1/uploads/{id}"))).send().await.unwrap()).await;
    assert_eq!((st["received"].as_u64(), &st["state"]), (Some(8 * MB), &json!("open")));
    assert_eq!(put_chunk(&s, &id, 8 * MB, 8 * MB, total).await.0, 200);
    let (status, done) = put_chunk(&s, &id, 16 * MB, 4 * MB, total).await;
    assert_eq!((status, &done["state"]), (201, &json!("done")), "{done}");
    assert_eq!(
        gemini_file(&s, done["file"]["name"].as_str().unwrap()).await["sha256Hash"],
        gemini_hash(total)
    );
    // Another account cannot see or touch the session.
    let other = client_with(&token("someone-else"));
    let r = other.get(s.url(&format!("/v1/uploads/{id}"))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn jobs_may_use_their_own_uploaded_pdfs_and_no_one_elses() {
    let s = Stack::start(json!({}), &[]);
    let a = upload_pdf(&s, &s.http, 200_000).await;
    let b = upload_pdf(&s, &s.http, 300_000).await;
    let ask = |file: &Value, q: &str| {
        json!({"contents": [{"parts": [
            {"fileData": {"mimeType": "application/pdf", "fileUri": file["uri"]}},
            {"text": q}
        ]}]})
    };
    let requests = json!([
        {"key": "a1", "request": ask(&a, "Summarise this contract.")},
        {"key": "b1", "request": ask(&b, "List the parties.")},
        {"key": "ab", "request": {"contents": [{"parts": [
            {"fileData": {"mimeType": "application/pdf", "fileUri": a["uri"]}},
            {"fileData": {"mimeType": "application/pdf", "fileUri": b["name"]}},
            {"text": "Compare them."}]}]}}
    ]);
    let (status, job) = s.submit(json!({"model": "gemini-2.5-flash", "requests": requests}), None).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap();
    let done = s.wait_for(id, 90, |j| j["cost"]["charged"].is_i64()).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["counts"]["succeeded"], 3);
    // Each PDF part is 258 prompt tokens in the emulator's model.
    let (_, line) = s.get(&format!("/v1/jobs/{id}/results/ab")).await;
    assert!(line["response"]["usageMetadata"]["promptTokenCount"].as_u64().unwrap() > 2 * 258);

    // Another account naming these files is refused at submit, by line, and nothing reaches Gemini.
    let batches_before = s.gemini_batches().await.len();
    let other = client_with(&token("someone-else"));
    let body = json!({"model": "gemini-2.5-flash", "requests": [
        {"key": "ok", "request": {"contents": [{"parts": [{"text": "hello"}]}]}},
        {"key": "steal", "request": ask(&a, "Summarise.")}
    ]});
    let r = other.post(s.url("/v1/jobs")).json(&body).send().await.unwrap();
    let (status, refused) = json_of(r).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["code"], "invalid_requests");
    assert_eq!(refused["error"]["details"]["lines"][0]["line"], 2);
    assert!(
        refused["error"]["details"]["lines"][0]["message"]
            .as_str()
            .unwrap()
            .contains(a["name"].as_str().unwrap())
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(s.gemini_batches().await.len(), batches_before);
}
