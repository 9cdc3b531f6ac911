//! Media uploads through the worker (resumable session, 64 MiB chunks
//! streamed through workerd into the emulator's Files API) against the same
//! chunks sent straight to the emulator; and how much workerd's memory grows
//! over idle while it moves them (it must stream, not buffer).
//!
//! Every run starts from the same disk state: the file it stored is deleted
//! after it and dirty pages are flushed (`sync`) before the next, and each
//! repetition starts with a different path. The emulator's page-cache writes
//! are most of its CPU here; with a fixed order and files left behind, the
//! first run of each repetition wrote to an idle disk and later ones competed
//! with the kernel writing back the gigabytes before them (measured: the
//! second and third runs took three times the emulator CPU per byte).

use super::{Row, Section, mb_per_s, median};
use crate::process::memory_kib;
use crate::stack::{GEMINI_KEY, Stack};
use bytes::Bytes;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const CHUNK: u64 = 64 * 1024 * 1024;

/// A timed upload: how long its chunks took, and the stored file's `files/…` name.
type Timed = (Duration, String);

async fn through_worker(s: &Stack, size: u64, chunk: &Bytes) -> Timed {
    let r = s
        .http
        .post(s.url("/v1/uploads"))
        .json(&json!({"size": size, "mimeType": "video/mp4"}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let session: Value = r.json().await.unwrap_or_default();
    let id = session["id"].as_str().unwrap_or_else(|| panic!("no session: {session}")).to_string();
    let t = Instant::now();
    let (mut at, mut name) = (0, String::new());
    while at < size {
        let len = CHUNK.min(size - at);
        let r = s
            .http
            .put(s.url(&format!("/v1/uploads/{id}")))
            .header("content-range", format!("bytes {at}-{}/{size}", at + len - 1))
            .body(chunk.slice(..len as usize))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert!(status.is_success(), "chunk at {at}: {text}");
        if at + len == size {
            name = file_name(&text);
        }
        at += len;
    }
    (t.elapsed(), name)
}

/// The stored file's `files/…` name in the last chunk's answer.
fn file_name(answer: &str) -> String {
    let v: Value = serde_json::from_str(answer).unwrap_or_default();
    v.pointer("/file/name")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no file name in {answer}"))
        .to_string()
}

/// Delete a run's file (through the worker for its uploads, so the account's
/// index stays true) and flush the disk, so the next run starts as this one did.
async fn reset_disk(s: &Stack, name: &str, through_worker: bool) {
    let r = if through_worker {
        s.http.delete(s.url(&format!("/v1/{name}"))).send().await
    } else {
        s.http.delete(s.emu(&format!("/v1beta/{name}"))).header("x-goog-api-key", GEMINI_KEY).send().await
    };
    let r = r.unwrap_or_else(|e| panic!("{e}"));
    assert!(r.status().is_success(), "deleting {name}: {}", r.status());
    let synced = std::process::Command::new("sync").status().is_ok_and(|s| s.success());
    assert!(synced, "sync failed");
}

/// A plain TCP relay on loopback in front of `target` (`host:port`): the
/// cheapest proxy there is, to tell a proxy hop's cost on this machine from
/// the worker's own. Returns its base URL.
async fn relay(target: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    format!("http://{addr}")
}

async fn straight_to(s: &Stack, base: &str, size: u64, chunk: &Bytes) -> Timed {
    let r = s
        .http
        .post(format!("{base}/upload/v1beta/files"))
        .header("x-goog-api-key", GEMINI_KEY)
        .header("x-goog-upload-protocol", "resumable")
        .header("x-goog-upload-command", "start")
        .header("x-goog-upload-header-content-length", size.to_string())
        .header("x-goog-upload-header-content-type", "video/mp4")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let url =
        r.headers().get("x-goog-upload-url").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let t = Instant::now();
    let (mut at, mut name) = (0, String::new());
    while at < size {
        let len = CHUNK.min(size - at);
        let last = at + len == size;
        let r = s
            .http
            .post(&url)
            .header("x-goog-upload-command", if last { "upload, finalize" } else { "upload" })
            .header("x-goog-upload-offset", at.to_string())
            .body(chunk.slice(..len as usize))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert!(status.is_success(), "chunk at {at}: {status}");
        if last {
            name = file_name(&text);
        }
        at += len;
    }
    (t.elapsed(), name)
}

fn workerd_kib(s: &Stack, pick: impl Fn((u64, u64)) -> u64) -> u64 {
    s.workerd_pids().into_iter().filter_map(memory_kib).map(pick).sum()
}

pub async fn run(size_mb: u64, reps: usize) -> Section {
    let s = Stack::start(json!({}), &[("STORAGE_QUOTA_BYTES", "1099511627776")]);
    let size = size_mb * 1024 * 1024;
    let chunk = Bytes::from((0..CHUNK).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    // Warm the worker (first requests compile the wasm), then take idle memory.
    let _ = s.get("/v1/files").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = workerd_kib(&s, |(_, rss)| rss);
    let relayed_base =
        relay(s.emulator.url.trim_start_matches("http://").trim_end_matches('/').to_string()).await;
    let emulator_base = s.emu("");
    // [direct, through the worker, through the relay] MB/s of every repetition.
    let mut speeds: [Vec<f64>; 3] = [vec![], vec![], vec![]];
    let _ = std::process::Command::new("sync").status();
    for rep in 0..reps {
        for path in (0..3).map(|i| (i + rep) % 3) {
            let ((took, name), via_worker) = match path {
                0 => (straight_to(&s, &emulator_base, size, &chunk).await, false),
                1 => (through_worker(&s, size, &chunk).await, true),
                _ => (straight_to(&s, &relayed_base, size, &chunk).await, false),
            };
            if let Some(v) = speeds.get_mut(path) {
                v.push(mb_per_s(size, took));
            }
            reset_disk(&s, &name, via_worker).await;
        }
    }
    let [direct, via, relayed] = speeds;
    let peak = workerd_kib(&s, |(hwm, _)| hwm);
    let growth_mib = peak.saturating_sub(idle_rss) as f64 / 1024.0;
    let (via, direct, relayed) = (median(via), median(direct), median(relayed));
    let ratio = via / direct;
    Section {
        title: format!("Uploads: {size_mb} MiB through the worker"),
        how: format!(
            "A resumable session through the worker (`POST /v1/uploads`, then 64 MiB `PUT`s with \
             `Content-Range`, each streamed by an UploadObject into the emulator's Files API) against the same \
             chunks sent straight to the emulator's resumable upload. A third run sends them straight through a \
             plain TCP relay (tokio `copy_bidirectional`) on loopback: the cheapest possible proxy, so its ratio \
             is what one extra hop costs on this machine. Median of {reps} repetitions; each starts with a \
             different path, and every run's file is deleted and the disk synced before the next, so no run \
             pays for the page-cache writeback of the one before. Memory: \
             workerd's peak resident set (`VmHWM`, all its processes) minus its resident set when idle \
             ({:.0} MiB) before the uploads.",
            idle_rss as f64 / 1024.0
        ),
        rows: vec![
            Row {
                metric: "the cost of any proxy hop here: MB/s through a plain TCP relay".into(),
                value: format!("{relayed:.0}"),
                baseline: format!("{direct:.0}"),
                ratio: Some(relayed / direct),
                target: None,
            },
            Row {
                metric: "upload MB/s".into(),
                value: format!("{via:.0}"),
                baseline: format!("{direct:.0}"),
                ratio: Some(ratio),
                target: Some(("≥ 0.7".into(), ratio >= 0.7)),
            },
            Row {
                metric: "workerd peak RSS growth".into(),
                value: format!("{growth_mib:.0} MiB"),
                baseline: format!("{:.0} MiB idle", idle_rss as f64 / 1024.0),
                ratio: None,
                target: Some(("< 150 MiB".into(), growth_mib < 150.0)),
            },
        ],
    }
}
