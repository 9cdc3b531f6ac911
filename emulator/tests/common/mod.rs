//! A running emulator on loopback with a stopped clock, and the client calls the
//! tests share.
#![allow(dead_code)]

use gemini_emulator::config::Config;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

pub const KEY: &str = "test-key";

pub struct Emu {
    pub base: String,
    pub http: Client,
    pub server: gemini_emulator::Server,
}

pub async fn start(patch: Value) -> Emu {
    let mut cfg = Config { api_key: KEY.into(), ..Config::default() };
    cfg = cfg.patched(&patch).expect("valid config patch");
    // Scale 0: emulated time moves only when a test advances it.
    let server = gemini_emulator::start(cfg, 0.0, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    Emu { base: server.base_url(), http: Client::new(), server }
}

impl Emu {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http.get(self.url(path)).header("x-goog-api-key", KEY).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.http.post(self.url(path)).header("x-goog-api-key", KEY).json(&body).send().await.unwrap()
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.http.delete(self.url(path)).header("x-goog-api-key", KEY).send().await.unwrap()
    }

    pub async fn control(&self, path: &str, body: Value) -> Value {
        let r = self.http.post(self.url(&format!("/_emulator{path}"))).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "control {path} failed: {}", r.text().await.unwrap());
        r.json().await.unwrap()
    }

    pub async fn advance(&self, secs: f64) {
        self.control("/clock", json!({"advanceSecs": secs})).await;
    }

    /// Start a resumable upload; returns the session URL.
    pub async fn start_upload(&self, size: u64, mime: &str, name: &str) -> String {
        let r = self
            .http
            .post(self.url("/upload/v1beta/files"))
            .header("x-goog-api-key", KEY)
            .header("X-Goog-Upload-Protocol", "resumable")
            .header("X-Goog-Upload-Command", "start")
            .header("X-Goog-Upload-Header-Content-Length", size.to_string())
            .header("X-Goog-Upload-Header-Content-Type", mime)
            .json(&json!({"file": {"display_name": name}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["x-goog-upload-status"], "active");
        r.headers()["x-goog-upload-url"].to_str().unwrap().to_string()
    }

    pub async fn chunk(&self, url: &str, offset: u64, bytes: Vec<u8>, finalize: bool) -> Response {
        let cmd = if finalize { "upload, finalize" } else { "upload" };
        self.http
            .post(url)
            .header("X-Goog-Upload-Command", cmd)
            .header("X-Goog-Upload-Offset", offset.to_string())
            .body(bytes)
            .send()
            .await
            .unwrap()
    }

    /// Upload `bytes` in one `upload, finalize`; returns the File JSON.
    pub async fn upload(&self, bytes: &[u8], mime: &str) -> Value {
        let url = self.start_upload(bytes.len() as u64, mime, "test").await;
        let r = self.chunk(&url, 0, bytes.to_vec(), true).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["x-goog-upload-status"], "final");
        let v: Value = r.json().await.unwrap();
        v["file"].clone()
    }

    pub async fn create_file_batch(&self, model: &str, file_name: &str) -> Response {
        self.post(
            &format!("/v1beta/models/{model}:batchGenerateContent"),
            json!({"batch": {"display_name": "t", "input_config": {"file_name": file_name}}}),
        )
        .await
    }

    pub async fn batch(&self, name: &str) -> Value {
        let r = self.get(&format!("/v1beta/{name}")).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    /// Poll (in real time) until the batch is terminal.
    pub async fn wait_done(&self, name: &str) -> Value {
        for _ in 0..500 {
            let op = self.batch(name).await;
            if op["done"] == json!(true) {
                return op;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("batch {name} did not finish");
    }

    pub async fn download(&self, file_name: &str) -> String {
        let r = self.get(&format!("/v1beta/{file_name}:download?alt=media")).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.text().await.unwrap()
    }

    pub async fn requests(&self) -> Vec<Value> {
        let v: Value =
            self.http.get(self.url("/_emulator/requests")).send().await.unwrap().json().await.unwrap();
        v["requests"].as_array().unwrap().clone()
    }
}

pub fn jsonl(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| format!("{{\"key\":\"k{i}\",\"request\":{{\"contents\":[{{\"parts\":[{{\"text\":\"question number {i}\"}}]}}]}}}}\n"))
        .collect::<String>()
        .into_bytes()
}

pub fn parse_lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}
