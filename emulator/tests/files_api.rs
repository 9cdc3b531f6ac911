//! Files API over HTTP: resumable upload, offsets, sizes, listing, expiry, auth.

mod common;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

#[tokio::test]
async fn resumable_upload_in_chunks_with_query_and_resume() {
    let emu = start(json!({"chunkGranularity": 1024})).await;
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let url = emu.start_upload(3000, "application/pdf", "doc").await;
    assert!(url.starts_with(&emu.base), "the session URL is absolute and points at the emulator");

    let r = emu.chunk(&url, 0, data[..1024].to_vec(), false).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-goog-upload-status"], "active");

    // A wrong offset is refused and says where the server is.
    let r = emu.chunk(&url, 0, data[..1024].to_vec(), false).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.headers()["x-goog-upload-size-received"], "1024");

    // Non-final chunks must be multiples of the granularity.
    let r = emu.chunk(&url, 1024, data[1024..1500].to_vec(), false).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let q = emu.http.post(&url).header("X-Goog-Upload-Command", "query").send().await.unwrap();
    assert_eq!(q.headers()["x-goog-upload-size-received"], "1024", "the refused chunk left nothing behind");

    let r = emu.chunk(&url, 1024, data[1024..2048].to_vec(), false).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = emu.chunk(&url, 2048, data[2048..].to_vec(), true).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-goog-upload-status"], "final");
    let file: Value = r.json().await.unwrap();
    let file = &file["file"];
    assert_eq!(file["sizeBytes"], "3000");
    assert_eq!(file["mimeType"], "application/pdf");
    assert_eq!(file["displayName"], "doc");
    assert_eq!(file["state"], "ACTIVE");
    assert_eq!(file["source"], "UPLOADED");
    let hex: String = Sha256::digest(&data).iter().map(|b| format!("{b:02x}")).collect();
    let expected = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, hex);
    assert_eq!(file["sha256Hash"], expected.as_str(), "base64 of the hex digest, as observed");

    // A retried finalize (its answer lost) returns the same file.
    let again = emu.chunk(&url, 2048, data[2048..].to_vec(), true).await;
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["file"]["name"], file["name"]);

    let name = file["name"].as_str().unwrap();
    let got: Value = emu.get(&format!("/v1beta/{name}")).await.json().await.unwrap();
    assert_eq!(&got, file);
}

#[tokio::test]
async fn declared_size_is_enforced_both_ways() {
    let emu = start(json!({})).await;
    let url = emu.start_upload(10, "text/plain", "x").await;
    let r = emu.chunk(&url, 0, b"12345".to_vec(), true).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "finalize with fewer bytes than declared");
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("mismatch"));

    let url = emu.start_upload(4, "text/plain", "x").await;
    let r = emu.chunk(&url, 0, b"too many bytes".to_vec(), true).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "more bytes than declared");

    let r = emu
        .http
        .post(emu.url("/upload/v1beta/files"))
        .header("x-goog-api-key", KEY)
        .header("X-Goog-Upload-Protocol", "resumable")
        .header("X-Goog-Upload-Command", "start")
        .header("X-Goog-Upload-Header-Content-Length", (3u64 << 30).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "over the 2 GB cap");
    let summary: Value =
        emu.http.get(emu.url("/_emulator/state")).send().await.unwrap().json().await.unwrap();
    assert_eq!(summary["files"], 0, "no failed upload became a file");
}

#[tokio::test]
async fn the_start_body_may_be_snake_camel_or_empty() {
    let emu = start(json!({})).await;
    for body in [
        json!({"file": {"display_name": "a", "mime_type": "text/plain", "size_bytes": 3}}),
        json!({"file": {"displayName": "b", "mimeType": "text/plain", "sizeBytes": "3"}}),
        json!({}),
    ] {
        let r = emu
            .http
            .post(emu.url("/upload/v1beta/files"))
            .header("x-goog-api-key", KEY)
            .header("X-Goog-Upload-Protocol", "resumable")
            .header("X-Goog-Upload-Command", "start")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{body}");
        let url = r.headers()["x-goog-upload-url"].to_str().unwrap().to_string();
        let done = emu.chunk(&url, 0, b"abc".to_vec(), true).await;
        assert_eq!(done.status(), StatusCode::OK, "{body}");
    }
    let r = emu
        .http
        .post(emu.url("/upload/v1beta/files"))
        .header("x-goog-api-key", KEY)
        .header("X-Goog-Upload-Protocol", "resumable")
        .header("X-Goog-Upload-Command", "start")
        .json(&json!({"file": {"colour": "blue"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: Value = r.json().await.unwrap();
    assert!(e["error"]["message"].as_str().unwrap().contains("Unknown name \"colour\""));
}

#[tokio::test]
async fn listing_pages_newest_first_and_delete_removes() {
    let emu = start(json!({})).await;
    let mut names = vec![];
    for i in 0..5 {
        names.push(
            emu.upload(format!("file {i}").as_bytes(), "text/plain").await["name"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let p1: Value = emu.get("/v1beta/files?pageSize=3").await.json().await.unwrap();
    let got: Vec<&str> =
        p1["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(got, vec![names[4].as_str(), names[3].as_str(), names[2].as_str()]);
    let token = p1["nextPageToken"].as_str().unwrap();
    let p2: Value =
        emu.get(&format!("/v1beta/files?pageSize=3&pageToken={token}")).await.json().await.unwrap();
    assert_eq!(p2["files"].as_array().unwrap().len(), 2);
    assert!(p2.get("nextPageToken").is_none(), "no token on the last page");

    assert_eq!(emu.delete(&format!("/v1beta/{}", names[0])).await.status(), StatusCode::OK);
    assert_eq!(emu.get(&format!("/v1beta/{}", names[0])).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn uploaded_files_are_not_downloadable_and_files_expire_after_48_hours() {
    let emu = start(json!({})).await;
    let name = emu.upload(b"secret", "text/plain").await["name"].as_str().unwrap().to_string();
    let r = emu.get(&format!("/v1beta/{name}:download?alt=media")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["status"], "FAILED_PRECONDITION");

    emu.advance(47.0 * 3600.0).await;
    assert_eq!(emu.get(&format!("/v1beta/{name}")).await.status(), StatusCode::OK);
    emu.advance(1.0 * 3600.0).await;
    assert_eq!(emu.get(&format!("/v1beta/{name}")).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn api_keys_are_checked_like_google_does() {
    let emu = start(json!({})).await;
    let r = emu.http.get(emu.url("/v1beta/files")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["status"], "PERMISSION_DENIED");

    let r = emu.http.get(emu.url("/v1beta/files")).header("x-goog-api-key", "wrong").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["details"][0]["reason"], "API_KEY_INVALID");

    let r = emu.http.get(emu.url(&format!("/v1beta/files?key={KEY}"))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "?key= works too");

    // Chunks carry no key (the Python SDK sends none); the log records that.
    emu.upload(b"abc", "text/plain").await;
    let log = emu.requests().await;
    let chunk = log.iter().rev().find(|r| r["uploadCommand"] == "upload, finalize").unwrap();
    assert_eq!(chunk["apiKey"], false);
    assert_eq!(chunk["status"], 200);
}

#[tokio::test]
async fn cancelled_upload_sessions_accept_nothing_more() {
    let emu = start(json!({})).await;
    let url = emu.start_upload(6, "text/plain", "x").await;
    let r = emu.http.post(&url).header("X-Goog-Upload-Command", "cancel").send().await.unwrap();
    assert_eq!(r.headers()["x-goog-upload-status"], "cancelled");
    let r = emu.chunk(&url, 0, b"abcdef".to_vec(), true).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.headers()["x-goog-upload-status"], "cancelled");
}
